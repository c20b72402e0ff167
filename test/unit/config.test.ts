/**
 * Config loading (SPEC CFG-1, §4b): defaults, YAML files, precedence, validation, freezing.
 * Seed env names, URI shorthand and secrets have their own config-*.test.ts files.
 */
import { mkdir, mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  redactConfig,
  resolveConfig as resolveConfigFormat,
  type StorageOptionsParser,
} from "../../src/config/index.js";
import { KuraError } from "../../src/core/errors.js";
// As Kura's entry points load it: the format, and each adapter's section checked by the adapter.
import { loadConfig, resolveConfig } from "../../src/open/config.js";

/** Hands the options through unchanged, so assertions see exactly what the loader built. */
const passthrough: StorageOptionsParser = async (_backend, options) => options;

async function tempDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), "kura-config-"));
}

async function writeYaml(dir: string, text: string, name = "kura.yaml"): Promise<string> {
  const file = join(dir, name);
  await writeFile(file, text);
  return file;
}

async function failure(promise: Promise<unknown>): Promise<KuraError> {
  try {
    await promise;
  } catch (e) {
    if (e instanceof KuraError) return e;
    throw e;
  }
  throw new Error("expected the configuration to be rejected");
}

function problems(e: KuraError): { path: string; message: string; code: string }[] {
  return e.context.problems as { path: string; message: string; code: string }[];
}

describe("defaults", () => {
  it("with no file and an empty environment, every key has its documented default", async () => {
    const cwd = await tempDir();
    const c = await loadConfig({ cwd, env: {}, storageOptionsParser: passthrough });
    expect(c).toEqual({
      data_dir: join(cwd, "data"),
      durability: "os",
      database: { backend: "sqlite", path: join(cwd, "data", "kura.db") },
      storage: {
        backend: "fs",
        options: { base_path: join(cwd, "data", "blobs") },
        timeouts: { idle_ms: 30_000, operation_ms: 30_000 },
      },
      kv: { backend: "lmdb", path: join(cwd, "data", "kv") },
      search: { backend: "embedded" },
      vector: {
        backend: "embedded",
        dimensions: 768,
        metric: "l2",
        mode: "balanced",
        quantization: "f32",
        url: null,
        schema: null,
        max_connections: 4,
        embed_messages: false,
      },
      embedder: {
        backend: "hashing",
        url: "https://api.openai.com/v1",
        api_key: null,
        model: "text-embedding-3-small",
        request_dimensions: false,
        batch_size: 96,
        timeout_ms: 30000,
      },
      retention: {
        deleted_messages_days: 30,
        session_files_days: 7,
        archive_after_days: null,
        kv_tombstone_days: 7,
        upload_expiry_hours: 24,
      },
      outbox: { retention_hours: 168 },
      node: { id: null, stale_after_hours: 24, allow_local_vectors: false },
      sessions: { ttl_seconds: 86400, dir: join(cwd, "data", "sessions") },
      limits: { max_message_bytes: 131072, max_upload_bytes: 1099511627776 },
      server: {
        host: "127.0.0.1",
        port: 8787,
        public_url: null,
        base_domain: null,
        cors: { origins: [] },
        body_timeout_ms: 30000,
        buffered_body_timeout_ms: 60000,
        idle_timeout_ms: 72000,
        shutdown_timeout_ms: 10000,
        tls: null,
        s3: { port: null, region: "us-east-1", domain: null },
      },
      auth: {
        jwt_secret: null,
        jwks_url: null,
        issuer: null,
        audience: null,
        max_token_lifetime_seconds: 86400,
        clock_skew_seconds: 60,
        auto_create_tenants: true,
        tenant_refresh_ms: 250,
      },
      tiers: { free: { limits: {} } },
      encryption: null,
    });
  });

  it("resolveConfig() with nothing gives the same embedded defaults", async () => {
    const cwd = await tempDir();
    const a = await loadConfig({ cwd, env: {}, storageOptionsParser: passthrough });
    const b = await resolveConfig(undefined, { cwd, storageOptionsParser: passthrough });
    expect(b).toEqual(a);
  });

  it("the default parser is the blob adapter registry (fs options validated and defaulted by the adapter)", async () => {
    const cwd = await tempDir();
    const c = await loadConfig({ cwd, env: {} });
    expect(c.storage.backend).toBe("fs");
    expect(c.storage.options.base_path).toBe(join(cwd, "data", "blobs"));
    // Unset: presigned URLs follow the server (server.public_url, else where it listens).
    expect(c.storage.options.public_url).toBeUndefined();
  });
});

describe("YAML file", () => {
  it("reads the SPEC §4b shape", async () => {
    const cwd = await tempDir();
    const file = await writeYaml(
      cwd,
      `
data_dir: /srv/kura
durability: fsync
database: { backend: postgres, url: "postgres://kura@db:5432/kura", max_connections: 20 }
storage:
  backend: s3
  options: { bucket: mail, region: ap-northeast-1, force_path_style: true, multipart_threshold_mb: 16 }
kv: { backend: redis, url: "redis://127.0.0.1:6379/0" }
search: { backend: postgres }
vector: { backend: pgvector, dimensions: 384, metric: cosine, mode: accurate }
retention: { deleted_messages_days: 90, session_files_days: 1 }
sessions: { ttl_seconds: 3600 }
limits: { max_message_bytes: 65536 }
server: { host: 0.0.0.0, port: 9000, base_domain: example.com, cors: { origins: ["https://app.example.com"] } }
auth: { issuer: "https://id.example.com", audience: kura, jwks_url: "https://id.example.com/.well-known/jwks.json" }
`,
    );
    const c = await loadConfig({ file, cwd, env: {}, storageOptionsParser: passthrough });
    expect(c.data_dir).toBe("/srv/kura");
    expect(c.durability).toBe("fsync");
    expect(c.database).toEqual({
      backend: "postgres",
      url: "postgres://kura@db:5432/kura",
      schema: "public",
      max_connections: 20,
    });
    expect(c.storage).toEqual({
      backend: "s3",
      options: {
        bucket: "mail",
        region: "ap-northeast-1",
        force_path_style: true,
        multipart_threshold_mb: 16,
      },
      timeouts: { idle_ms: 30_000, operation_ms: 30_000 },
    });
    expect(c.kv).toEqual({ backend: "redis", url: "redis://127.0.0.1:6379/0", key_prefix: "kura:" });
    expect(c.search).toEqual({ backend: "postgres" });
    // pgvector's database and schema default to the PostgreSQL catalog's.
    expect(c.vector).toEqual({
      backend: "pgvector",
      dimensions: 384,
      metric: "cosine",
      mode: "accurate",
      quantization: "f32",
      url: c.database.backend === "postgres" ? c.database.url : "not postgres",
      schema: c.database.backend === "postgres" ? c.database.schema : "not postgres",
      max_connections: 4,
      embed_messages: false,
    });
    expect(c.retention).toEqual({
      deleted_messages_days: 90,
      session_files_days: 1,
      archive_after_days: null,
      kv_tombstone_days: 7,
      upload_expiry_hours: 24,
    });
    expect(c.sessions).toEqual({ ttl_seconds: 3600, dir: "/srv/kura/sessions" });
    expect(c.limits.max_message_bytes).toBe(65536);
    expect(c.server).toEqual({
      host: "0.0.0.0",
      port: 9000,
      public_url: null,
      base_domain: "example.com",
      cors: { origins: ["https://app.example.com"] },
      body_timeout_ms: 30000,
      buffered_body_timeout_ms: 60000,
      idle_timeout_ms: 72000,
      shutdown_timeout_ms: 10000,
      tls: null,
      s3: { port: null, region: "us-east-1", domain: null },
    });
    expect(c.auth).toEqual({
      jwt_secret: null,
      jwks_url: "https://id.example.com/.well-known/jwks.json",
      issuer: "https://id.example.com",
      audience: "kura",
      max_token_lifetime_seconds: 86400,
      clock_skew_seconds: 60,
      auto_create_tenants: true,
      tenant_refresh_ms: 250,
    });
  });

  it("an empty file and empty sections mean defaults; a plane without backend gets the default backend", async () => {
    const cwd = await tempDir();
    const empty = await writeYaml(cwd, "", "empty.yaml");
    expect(
      (await loadConfig({ file: empty, cwd, env: {}, storageOptionsParser: passthrough })).kv.backend,
    ).toBe("lmdb");
    const file = await writeYaml(cwd, "server:\nauth:\nkv: { path: ./state }\n");
    const c = await loadConfig({ file, cwd, env: {}, storageOptionsParser: passthrough });
    expect(c.server.port).toBe(8787);
    expect(c.kv).toEqual({ backend: "lmdb", path: join(cwd, "state") });
  });

  it("KURA_CONFIG names the file when none is given; an explicit file wins", async () => {
    const cwd = await tempDir();
    await writeYaml(cwd, "server: { port: 1111 }\n", "a.yaml");
    await writeYaml(cwd, "server: { port: 2222 }\n", "b.yaml");
    const env = { KURA_CONFIG: "a.yaml" };
    expect((await loadConfig({ cwd, env, storageOptionsParser: passthrough })).server.port).toBe(1111);
    expect(
      (await loadConfig({ file: "b.yaml", cwd, env, storageOptionsParser: passthrough })).server.port,
    ).toBe(2222);
  });

  it("a missing file is CONFIG_FILE_UNREADABLE", async () => {
    const cwd = await tempDir();
    const e = await failure(loadConfig({ file: "nope.yaml", cwd, env: {} }));
    expect(e.code).toBe("CONFIG_FILE_UNREADABLE");
    expect(e.kind).toBe("ConfigInvalid");
    expect(e.message).toContain(join(cwd, "nope.yaml"));
    expect(e.message).toContain("ENOENT");
  });

  it("unparsable YAML is CONFIG_FILE_UNREADABLE with the position, never the offending line", async () => {
    const cwd = await tempDir();
    const file = await writeYaml(cwd, 'server:\n  port: 1\nauth:\n  jwt_secret: "s3cr3t-value\n');
    const e = await failure(loadConfig({ file, cwd, env: {} }));
    expect(e.code).toBe("CONFIG_FILE_UNREADABLE");
    expect(e.message).toMatch(/line \d+, column \d+/);
    expect(e.message).not.toContain("s3cr3t-value");
    expect(JSON.stringify(e.toJSON())).not.toContain("s3cr3t-value");
  });

  it("duplicate keys are a parse error", async () => {
    const cwd = await tempDir();
    const file = await writeYaml(cwd, "durability: os\ndurability: fsync\n");
    expect((await failure(loadConfig({ file, cwd, env: {} }))).code).toBe("CONFIG_FILE_UNREADABLE");
  });

  it("a file that is not a mapping is CONFIG_INVALID", async () => {
    const cwd = await tempDir();
    const file = await writeYaml(cwd, "- a\n- b\n");
    const e = await failure(loadConfig({ file, cwd, env: {} }));
    expect(e.code).toBe("CONFIG_INVALID");
    expect(e.message).toContain("must hold a mapping");
  });
});

describe("relative paths", () => {
  it("are resolved against cwd: data_dir, database.path, kv.path, sessions.dir, fs base_path, the file itself", async () => {
    const cwd = await tempDir();
    await mkdir(join(cwd, "etc"));
    await writeYaml(
      cwd,
      `
data_dir: ./var/kura
database: { backend: sqlite, path: db/main.db }
storage: { backend: fs, options: { base_path: ./objects } }
kv: { backend: lmdb, path: ../kv-elsewhere }
sessions: { dir: ./sess }
`,
      "etc/kura.yaml",
    );
    const c = await loadConfig({ file: "etc/kura.yaml", cwd, env: {}, storageOptionsParser: passthrough });
    expect(c.data_dir).toBe(join(cwd, "var", "kura"));
    expect(c.database).toEqual({ backend: "sqlite", path: join(cwd, "db", "main.db") });
    expect(c.storage.options.base_path).toBe(join(cwd, "objects"));
    expect(c.kv).toEqual({ backend: "lmdb", path: join(cwd, "..", "kv-elsewhere") });
    expect(c.sessions.dir).toBe(join(cwd, "sess"));
  });

  it("paths left to their defaults follow data_dir", async () => {
    const cwd = await tempDir();
    const c = await loadConfig({ cwd, env: { KURA_DATA_DIR: "store" }, storageOptionsParser: passthrough });
    expect(c.data_dir).toBe(join(cwd, "store"));
    expect(c.database).toEqual({ backend: "sqlite", path: join(cwd, "store", "kura.db") });
    expect(c.kv).toEqual({ backend: "lmdb", path: join(cwd, "store", "kv") });
    expect(c.sessions.dir).toBe(join(cwd, "store", "sessions"));
    expect(c.storage.options.base_path).toBe(join(cwd, "store", "blobs"));
  });
});

describe("precedence: defaults < YAML < seed env names < KURA_* < overrides", () => {
  async function ttl(levels: { yaml?: boolean; seed?: boolean; kura?: boolean; flag?: boolean }) {
    const cwd = await tempDir();
    const file = levels.yaml ? await writeYaml(cwd, "sessions: { ttl_seconds: 100 }\n") : undefined;
    const env: Record<string, string> = {};
    if (levels.seed) env.SESSION_TTL = "200";
    if (levels.kura) env.KURA_SESSIONS__TTL_SECONDS = "300";
    const overrides = levels.flag ? { "sessions.ttl_seconds": 400 } : undefined;
    const c = await loadConfig({ file, cwd, env, overrides, storageOptionsParser: passthrough });
    return c.sessions.ttl_seconds;
  }

  it("the same key set at every level: each level beats the ones below it", async () => {
    expect(await ttl({ yaml: true, seed: true, kura: true, flag: true })).toBe(400);
    expect(await ttl({ yaml: true, seed: true, kura: true })).toBe(300);
    expect(await ttl({ yaml: true, seed: true })).toBe(200);
    expect(await ttl({ yaml: true })).toBe(100);
    expect(await ttl({})).toBe(86400);
    expect(await ttl({ yaml: true, flag: true })).toBe(400);
    expect(await ttl({ seed: true, kura: true })).toBe(300);
  });

  it("the storage bucket through every level, seed names included", async () => {
    const cwd = await tempDir();
    const file = await writeYaml(
      cwd,
      "storage: { backend: s3, options: { bucket: from-yaml, region: eu-west-1 } }\n",
    );
    const base = { file, cwd, storageOptionsParser: passthrough };
    const seed = { S3_BUCKET_NAME: "from-seed" };
    const kura = { ...seed, KURA_STORAGE__OPTIONS__BUCKET: "from-kura" };
    const bucket = async (env: Record<string, string>, overrides?: Record<string, unknown>) =>
      (await loadConfig({ ...base, env, overrides })).storage.options.bucket;
    expect(await bucket({})).toBe("from-yaml");
    expect(await bucket(seed)).toBe("from-seed");
    expect(await bucket(kura)).toBe("from-kura");
    expect(await bucket(kura, { storage: { options: { bucket: "from-flag" } } })).toBe("from-flag");
    // Values not overridden survive from lower levels.
    expect((await loadConfig({ ...base, env: kura })).storage.options.region).toBe("eu-west-1");
  });

  it("overrides take nested objects and dotted keys, mixed", async () => {
    const cwd = await tempDir();
    const c = await loadConfig({
      cwd,
      env: {},
      overrides: {
        "server.port": 9001,
        server: { host: "0.0.0.0" },
        "vector.metric": "ip",
        durability: "fsync",
      },
      storageOptionsParser: passthrough,
    });
    expect(c.server.port).toBe(9001);
    expect(c.server.host).toBe("0.0.0.0");
    expect(c.vector.metric).toBe("ip");
    expect(c.durability).toBe("fsync");
  });

  it("flags given as text (as a CLI parses them) are accepted for numbers; undefined flags are ignored", async () => {
    const cwd = await tempDir();
    const c = await loadConfig({
      cwd,
      env: {},
      overrides: { "server.port": "9100", "server.host": undefined },
      storageOptionsParser: passthrough,
    });
    expect(c.server.port).toBe(9100);
    expect(c.server.host).toBe("127.0.0.1");
  });

  it("a higher level that switches a plane's backend replaces the plane instead of merging into it", async () => {
    const cwd = await tempDir();
    const file = await writeYaml(
      cwd,
      "storage: { backend: fs, options: { base_path: ./b } }\nkv: { backend: lmdb, path: ./kv }\n",
    );
    const c = await loadConfig({
      file,
      cwd,
      env: { USE_S3: "true", S3_BUCKET_NAME: "bkt", REDIS_URL: "redis://cache:6379/0" },
      storageOptionsParser: passthrough,
    });
    expect(c.storage).toEqual({
      backend: "s3",
      options: { bucket: "bkt" },
      timeouts: { idle_ms: 30_000, operation_ms: 30_000 },
    });
    expect(c.kv).toEqual({ backend: "redis", url: "redis://cache:6379/0", key_prefix: "kura:" });
  });

  it("server.public_url is an http(s) origin, kept without a trailing slash; fs public_url only when set", async () => {
    const cwd = await tempDir();
    const c = await loadConfig({
      cwd,
      env: { KURA_SERVER__PUBLIC_URL: "https://kura.example.com/" },
      storageOptionsParser: passthrough,
    });
    expect(c.server.public_url).toBe("https://kura.example.com");
    expect(c.storage.options.public_url).toBeUndefined();
    for (const bad of [
      "ftp://kura.example.com",
      "https://kura.example.com/api",
      "https://u:p@kura.example.com",
    ]) {
      const e = await failure(
        loadConfig({ cwd, env: { KURA_SERVER__PUBLIC_URL: bad }, storageOptionsParser: passthrough }),
      );
      expect(problems(e).map((p) => p.path)).toEqual(["server.public_url"]);
    }
    const d = await loadConfig({
      cwd,
      env: { KURA_STORAGE__OPTIONS__PUBLIC_URL: "https://files.example.com" },
      storageOptionsParser: passthrough,
    });
    expect(d.storage.options.public_url).toBe("https://files.example.com");
  });
});

describe("validation", () => {
  it("unknown keys are errors, each at its own path", async () => {
    const cwd = await tempDir();
    const file = await writeYaml(
      cwd,
      `
colour: blue
server: { prot: 80 }
database: { backend: postgres, url: "postgres://h/db", pool: 5 }
vector: { dims: 3 }
`,
    );
    const e = await failure(loadConfig({ file, cwd, env: { KURA_LIMITS__MAX_BYTES: "1" } }));
    expect(e.code).toBe("CONFIG_INVALID");
    const unknown = problems(e)
      .filter((p) => p.message.startsWith("unknown key"))
      .map((p) => p.path)
      .sort();
    expect(unknown).toEqual(["colour", "database.pool", "limits.max_bytes", "server.prot", "vector.dims"]);
    expect(problems(e).find((p) => p.path === "limits.max_bytes")?.message).toBe(
      "unknown key (from KURA_LIMITS__MAX_BYTES)",
    );
  });

  it("__proto__ keys are unknown keys, not a way to the prototype", async () => {
    const cwd = await tempDir();
    const file = await writeYaml(cwd, "__proto__: { polluted: 1 }\nserver: { __proto__: { port: 1 } }\n");
    const e = await failure(
      loadConfig({ file, cwd, env: {}, overrides: { "__proto__.x": 1 }, storageOptionsParser: passthrough }),
    );
    expect(problems(e).map((p) => p.path)).toEqual(["__proto__", "server.__proto__", "__proto__.x"]);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it("every problem is reported at once, each with its path, in one CONFIG_INVALID", async () => {
    const cwd = await tempDir();
    const file = await writeYaml(
      cwd,
      `
durability: sometimes
database: { backend: mysql }
kv: { backend: redis }
vector: { dimensions: 0, metric: manhattan }
server: { port: 70000, cors: { origins: 5 } }
retention: { deleted_messages_days: -1 }
auth: { jwks_url: "ftp://keys" }
`,
    );
    const e = await failure(loadConfig({ file, cwd, env: {}, storageOptionsParser: passthrough }));
    expect(e.code).toBe("CONFIG_INVALID");
    expect(e.kind).toBe("ConfigInvalid");
    const paths = problems(e).map((p) => p.path);
    for (const path of [
      "durability",
      "database.backend",
      "kv.url",
      "vector.dimensions",
      "vector.metric",
      "server.port",
      "server.cors.origins",
      "retention.deleted_messages_days",
      "auth.jwks_url",
    ]) {
      expect(paths).toContain(path);
      expect(e.message).toContain(`  ${path}: `);
    }
    expect(e.message).toMatch(/^invalid configuration \(\d+ problems\):/);
    expect(problems(e).find((p) => p.path === "kv.url")?.message).toContain("is required");
    expect(problems(e).find((p) => p.path === "durability")?.message).toContain(file);
  });

  it("a value's source is named in its problem", async () => {
    const cwd = await tempDir();
    const e = await failure(
      loadConfig({
        cwd,
        env: { KURA_SERVER__PORT: "http" },
        overrides: { "limits.max_message_bytes": "lots" },
        storageOptionsParser: passthrough,
      }),
    );
    expect(problems(e).find((p) => p.path === "server.port")?.message).toContain("(from KURA_SERVER__PORT)");
    expect(problems(e).find((p) => p.path === "limits.max_message_bytes")?.message).toContain(
      "(from override limits.max_message_bytes)",
    );
  });

  it("postgres search and pgvector need the postgres catalog (CONFIG_CONFLICT problems)", async () => {
    const cwd = await tempDir();
    const e = await failure(
      resolveConfig(
        { search: "postgres", vector: { backend: "pgvector" } },
        { cwd, storageOptionsParser: passthrough },
      ),
    );
    expect(problems(e).map((p) => [p.path, p.code])).toEqual([
      ["search.backend", "CONFIG_CONFLICT"],
      ["vector.backend", "CONFIG_CONFLICT"],
    ]);
  });

  it("storage options are validated by the adapter, with their paths", async () => {
    const cwd = await tempDir();
    const e = await failure(
      resolveConfig(
        { storage: { backend: "memory", options: { nmae: "x" } }, server: { port: -1 } },
        { cwd },
      ),
    );
    expect(problems(e).map((p) => p.path)).toEqual(["server.port", "storage.options.nmae"]);
    const s3 = await failure(
      resolveConfig({ storage: { backend: "s3", options: { bucket: "Not_A_Bucket" } } }, { cwd }),
    );
    expect(problems(s3).map((p) => p.path)).toContain("storage.options.bucket");
  });

  it("the config layer alone knows no adapter: storage options pass through to be checked when the store opens", async () => {
    const cwd = await tempDir();
    const config = await resolveConfigFormat(
      { storage: { backend: "memory", options: { nmae: "x" } } },
      { cwd },
    );
    expect(config.storage.options).toEqual({ nmae: "x" });
  });

  it("the injected parser sees the backend and options; its CONFIG_INVALID problems are merged in", async () => {
    const cwd = await tempDir();
    const seen: unknown[] = [];
    const parser: StorageOptionsParser = async (backend, options) => {
      seen.push([backend, options]);
      throw new KuraError("CONFIG_INVALID", "bad", {
        context: { problems: [{ path: "storage.options.region", message: "unknown region" }] },
      });
    };
    const e = await failure(
      resolveConfig(
        { storage: "s3://bucket/p?region=mars", durability: "x" },
        { cwd, storageOptionsParser: parser },
      ),
    );
    expect(seen).toEqual([["s3", { bucket: "bucket", prefix: "p", region: "mars" }]]);
    expect(problems(e).map((p) => p.path)).toEqual(["durability", "storage.options.region"]);
  });

  it("text where numbers belong and numbers where text belongs are read as meant", async () => {
    const cwd = await tempDir();
    const file = await writeYaml(cwd, 'server: { port: "9000" }\nauth: { jwt_secret: 123456 }\n');
    const c = await loadConfig({ file, cwd, env: {}, storageOptionsParser: passthrough });
    expect(c.server.port).toBe(9000);
    expect(c.auth.jwt_secret).toBe("123456");
  });

  it("storage timeouts come from any level and must be positive", async () => {
    const cwd = await tempDir();
    const file = await writeYaml(cwd, "storage: { timeouts: { idle_ms: 5000 } }\n");
    const c = await loadConfig({
      file,
      cwd,
      env: { KURA_STORAGE__TIMEOUTS__OPERATION_MS: "7000" },
      storageOptionsParser: passthrough,
    });
    expect(c.storage.timeouts).toEqual({ idle_ms: 5000, operation_ms: 7000 });
    const e = await loadConfig({
      cwd,
      env: { KURA_STORAGE__TIMEOUTS__IDLE_MS: "0" },
      storageOptionsParser: passthrough,
    }).catch((err: KuraError) => err);
    expect(problems(e as KuraError).map((p) => p.path)).toEqual(["storage.timeouts.idle_ms"]);
  });

  it("outbox.retention_hours: from the file or the environment, 0 allowed, never negative", async () => {
    const cwd = await tempDir();
    const file = await writeYaml(cwd, "outbox: { retention_hours: 0 }\n");
    const c = await loadConfig({ file, cwd, env: {}, storageOptionsParser: passthrough });
    expect(c.outbox).toEqual({ retention_hours: 0 });
    const fromEnv = await loadConfig({
      cwd,
      env: { KURA_OUTBOX__RETENTION_HOURS: "24" },
      storageOptionsParser: passthrough,
    });
    expect(fromEnv.outbox.retention_hours).toBe(24);
    const e = await loadConfig({
      cwd,
      env: { KURA_OUTBOX__RETENTION_HOURS: "-1" },
      storageOptionsParser: passthrough,
    }).catch((err: KuraError) => err);
    expect(problems(e as KuraError).map((p) => p.path)).toEqual(["outbox.retention_hours"]);
  });
});

describe("resolveConfig", () => {
  it("validates a plain object like a file, using env only for env:VAR", async () => {
    const cwd = await tempDir();
    const c = await resolveConfig(
      { data_dir: "d", auth: { jwt_secret: "env:SECRET" } },
      {
        cwd,
        env: { SECRET: "x".repeat(32), KURA_SERVER__PORT: "1", USE_S3: "true" },
        storageOptionsParser: passthrough,
      },
    );
    expect(c.data_dir).toBe(join(cwd, "d"));
    expect(c.auth.jwt_secret).toBe("x".repeat(32));
    expect(c.server.port).toBe(8787);
    expect(c.storage.backend).toBe("fs");
  });

  it("returns a config it produced as it is, and accepts a copy of one", async () => {
    const cwd = await tempDir();
    const c = await loadConfig({ cwd, env: {}, storageOptionsParser: passthrough });
    expect(await resolveConfig(c)).toBe(c);
    const copy = JSON.parse(JSON.stringify(c));
    expect(await resolveConfig(copy, { cwd: "/elsewhere", storageOptionsParser: passthrough })).toEqual(c);
  });

  it("rejects what is not a mapping", async () => {
    const e = await failure(resolveConfig("kura.yaml"));
    expect(e.code).toBe("CONFIG_INVALID");
  });
});

describe("the result is deep-frozen", () => {
  it("mutation throws at every depth", async () => {
    const cwd = await tempDir();
    const c = await loadConfig({
      cwd,
      env: { KURA_SERVER__CORS__ORIGINS: "https://a.example, https://b.example" },
      storageOptionsParser: passthrough,
    });
    expect(c.server.cors.origins).toEqual(["https://a.example", "https://b.example"]);
    const anyC = c as unknown as Record<string, Record<string, unknown>>;
    expect(() => {
      anyC.server!.port = 1;
    }).toThrow(TypeError);
    expect(() => {
      (c.server.cors.origins as string[]).push("https://c.example");
    }).toThrow(TypeError);
    expect(() => {
      (c.storage.options as Record<string, unknown>).base_path = "/tmp";
    }).toThrow(TypeError);
    expect(() => {
      (c as unknown as Record<string, unknown>).durability = "fsync";
    }).toThrow(TypeError);
    expect(Object.isFrozen(c.database)).toBe(true);
  });
});

describe("vector and embedder", () => {
  it("pgvector beside a SQLite catalog needs vector.url, and takes it", async () => {
    const cwd = await tempDir();
    const err = await loadConfig({
      cwd,
      env: { KURA_VECTOR__BACKEND: "pgvector" },
      storageOptionsParser: passthrough,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KuraError);
    expect((err as KuraError).code).toBe("CONFIG_INVALID");
    expect(JSON.stringify((err as KuraError).context)).toContain("vector.url");
    const c = await loadConfig({
      cwd,
      env: { KURA_VECTOR__BACKEND: "pgvector", KURA_VECTOR__URL: "postgres://v@127.0.0.1:5433/vec" },
      storageOptionsParser: passthrough,
    });
    expect(c.vector).toMatchObject({
      backend: "pgvector",
      url: "postgres://v@127.0.0.1:5433/vec",
      schema: "public",
    });
  });

  it("embedder settings from the environment, the api key redacted when printed", async () => {
    const cwd = await tempDir();
    const c = await loadConfig({
      cwd,
      env: {
        KURA_EMBEDDER__BACKEND: "openai",
        KURA_EMBEDDER__URL: "http://127.0.0.1:9999/v1",
        KURA_EMBEDDER__API_KEY: "sk-test-123",
        KURA_EMBEDDER__BATCH_SIZE: "16",
        KURA_VECTOR__EMBED_MESSAGES: "true",
        KURA_VECTOR__QUANTIZATION: "f16",
      },
      storageOptionsParser: passthrough,
    });
    expect(c.embedder).toMatchObject({ backend: "openai", url: "http://127.0.0.1:9999/v1", batch_size: 16 });
    expect(c.vector).toMatchObject({ embed_messages: true, quantization: "f16" });
    expect(JSON.stringify(redactConfig(c))).not.toContain("sk-test-123");
  });

  it("i8 quantization needs the cosine metric", async () => {
    const cwd = await tempDir();
    const err = await loadConfig({
      cwd,
      env: { KURA_VECTOR__QUANTIZATION: "i8", KURA_VECTOR__METRIC: "l2" },
      storageOptionsParser: passthrough,
    }).catch((e: unknown) => e);
    expect(JSON.stringify((err as KuraError).context)).toContain("vector.quantization");
    const ok = await loadConfig({
      cwd,
      env: { KURA_VECTOR__QUANTIZATION: "i8", KURA_VECTOR__METRIC: "cosine" },
      storageOptionsParser: passthrough,
    });
    expect(ok.vector.quantization).toBe("i8");
  });

  it("rejects an unknown embedder and a bad quantization, naming both", async () => {
    const cwd = await tempDir();
    const err = await loadConfig({
      cwd,
      env: { KURA_EMBEDDER__BACKEND: "word2vec", KURA_VECTOR__QUANTIZATION: "b1" },
      storageOptionsParser: passthrough,
    }).catch((e: unknown) => e);
    const text = JSON.stringify((err as KuraError).context);
    expect(text).toContain("embedder.backend");
    expect(text).toContain("vector.quantization");
  });
});

describe("tiers and auth.auto_create_tenants", () => {
  it("always has the free tier, takes configured tiers' limits, and refuses unknown limits", async () => {
    const cwd = await mkdtemp(join(tmpdir(), "kura-config-"));
    const c = await resolveConfig(
      {
        auth: { auto_create_tenants: "false" },
        tiers: { pro: { limits: { max_objects: 10, max_requests_per_second: "5" } } },
      },
      { cwd, env: {} },
    );
    expect(c.tiers).toEqual({
      free: { limits: {} },
      pro: { limits: { max_objects: 10, max_requests_per_second: 5 } },
    });
    expect(c.auth.auto_create_tenants).toBe(false);
    await expect(
      resolveConfig({ tiers: { pro: { limits: { max_bytes: 1 } } } }, { cwd, env: {} }),
    ).rejects.toMatchObject({ code: "CONFIG_INVALID" });
  });
});
