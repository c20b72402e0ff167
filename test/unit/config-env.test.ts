/**
 * Settings from the environment (SPEC CFG-1): `KURA_*` variables and the seed env names,
 * their contradictions and their bad values.
 */
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { type KuraConfig, loadConfig, type StorageOptionsParser } from "../../src/config/index.js";
import { KuraError } from "../../src/core/errors.js";

/** Every storage config carries the blob timeouts; these tests set none. */
const DEFAULT_TIMEOUTS = { idle_ms: 30_000, operation_ms: 30_000 };

const passthrough: StorageOptionsParser = async (_backend, options) => options;

async function load(env: Record<string, string | undefined>): Promise<KuraConfig> {
  const cwd = await mkdtemp(join(tmpdir(), "kura-config-env-"));
  return loadConfig({ cwd, env, storageOptionsParser: passthrough });
}

async function problemsFor(
  env: Record<string, string>,
): Promise<{ path: string; message: string; code: string }[]> {
  try {
    await load(env);
  } catch (e) {
    if (!(e instanceof KuraError)) throw e;
    expect(e.code).toBe("CONFIG_INVALID");
    return e.context.problems as { path: string; message: string; code: string }[];
  }
  throw new Error("expected the configuration to be rejected");
}

describe("KURA_* variables", () => {
  it("a double underscore nests and names are lower-cased", async () => {
    const c = await load({
      KURA_STORAGE__BACKEND: "s3",
      KURA_STORAGE__OPTIONS__BUCKET: "b",
      KURA_STORAGE__OPTIONS__FORCE_PATH_STYLE: "true",
      KURA_STORAGE__OPTIONS__MULTIPART_CHUNK_MB: "16",
      KURA_STORAGE__OPTIONS__RATIO: "0.5",
      KURA_STORAGE__OPTIONS__ENDPOINT: "http://127.0.0.1:9000",
      KURA_DATA_DIR: "/var/kura",
      KURA_DURABILITY: "fsync",
      KURA_SERVER__PORT: "9000",
    });
    expect(c.storage).toEqual({
      timeouts: DEFAULT_TIMEOUTS,
      backend: "s3",
      options: {
        bucket: "b",
        force_path_style: true,
        multipart_chunk_mb: 16,
        ratio: 0.5,
        endpoint: "http://127.0.0.1:9000",
      },
    });
    expect(c.data_dir).toBe("/var/kura");
    expect(c.durability).toBe("fsync");
    expect(c.server.port).toBe(9000);
  });

  it("a whole plane may be a URI, refined by deeper variables", async () => {
    const c = await load({ KURA_STORAGE: "s3://media/kura", KURA_STORAGE__OPTIONS__REGION: "eu-central-1" });
    expect(c.storage).toEqual({
      timeouts: DEFAULT_TIMEOUTS,
      backend: "s3",
      options: { bucket: "media", prefix: "kura", region: "eu-central-1" },
    });
  });

  it("single-word variables that are not top-level keys (env:VAR targets) and KURA_CONFIG are not settings", async () => {
    const c = await load({ KURA_JWT_SECRET: "x", KURA_MASTER_KEY: "y", KURA_CONFIG: "" });
    expect(c.auth.jwt_secret).toBeNull();
  });

  it("empty variables count as unset", async () => {
    const c = await load({ KURA_SERVER__PORT: "", USE_S3: "", SESSION_TTL: "" });
    expect(c.server.port).toBe(8787);
    expect(c.storage.backend).toBe("fs");
  });

  it("a nested name under an unknown section, or a malformed name, is a problem", async () => {
    const problems = await problemsFor({
      KURA_SERVR__PORT: "1",
      KURA_SERVER____PORT: "2",
      KURA_DATA_DIR__X: "3",
    });
    expect(problems.map((p) => p.path).sort()).toEqual(["KURA_SERVER____PORT", "data_dir", "servr"]);
    expect(problems.find((p) => p.path === "servr")?.message).toBe("unknown key (from KURA_SERVR__PORT)");
    expect(problems.find((p) => p.path === "data_dir")?.message).toContain("(from KURA_DATA_DIR__X)");
  });
});

describe("seed env names", () => {
  it("USE_S3 selects s3 or fs", async () => {
    expect((await load({ USE_S3: "true" })).storage.backend).toBe("s3");
    expect((await load({ USE_S3: "false" })).storage.backend).toBe("fs");
    expect((await load({ USE_S3: "TRUE" })).storage.backend).toBe("s3");
  });

  it("STORAGE_MODE=local is fs; cloud is CLOUD_STORAGE_TYPE, s3 by default", async () => {
    expect((await load({ STORAGE_MODE: "local" })).storage.backend).toBe("fs");
    expect((await load({ STORAGE_MODE: "cloud" })).storage.backend).toBe("s3");
    expect((await load({ STORAGE_MODE: "cloud", CLOUD_STORAGE_TYPE: "s3" })).storage.backend).toBe("s3");
    expect((await load({ STORAGE_MODE: "cloud", CLOUD_STORAGE_TYPE: "gcs" })).storage.backend).toBe("gcs");
    expect((await load({ STORAGE_MODE: "cloud", CLOUD_STORAGE_TYPE: "azure" })).storage.backend).toBe(
      "azure",
    );
    // Only consulted in cloud mode, as in the source deployment files (local mode keeps it around).
    expect((await load({ STORAGE_MODE: "local", CLOUD_STORAGE_TYPE: "gcs" })).storage.backend).toBe("fs");
  });

  it("S3_BUCKET_NAME and AWS_REGION fill the s3 options; GCS_BUCKET_NAME the gcs bucket", async () => {
    const s3 = await load({ STORAGE_MODE: "cloud", S3_BUCKET_NAME: "hera", AWS_REGION: "ap-northeast-1" });
    expect(s3.storage).toEqual({
      timeouts: DEFAULT_TIMEOUTS,
      backend: "s3",
      options: { bucket: "hera", region: "ap-northeast-1" },
    });
    const gcs = await load({
      STORAGE_MODE: "cloud",
      CLOUD_STORAGE_TYPE: "gcs",
      GCS_BUCKET_NAME: "hera-gcs",
      S3_BUCKET_NAME: "ignored",
      AWS_REGION: "ignored",
    });
    expect(gcs.storage).toEqual({
      timeouts: DEFAULT_TIMEOUTS,
      backend: "gcs",
      options: { bucket: "hera-gcs" },
    });
  });

  it("bucket names apply to the backend chosen at any level, and not to other backends", async () => {
    const byKura = await load({ KURA_STORAGE__BACKEND: "s3", S3_BUCKET_NAME: "late" });
    expect(byKura.storage.options).toEqual({ bucket: "late" });
    const fs = await load({ S3_BUCKET_NAME: "unused", GCS_BUCKET_NAME: "unused" });
    expect(fs.storage.options.bucket).toBeUndefined();
  });

  it("REDIS_URL selects redis for the KV plane", async () => {
    const c = await load({ REDIS_URL: "redis://redis:6379/0" });
    expect(c.kv).toEqual({ backend: "redis", url: "redis://redis:6379/0", key_prefix: "kura:" });
  });

  it("SESSION_TYPE selects redis, lmdb or memory", async () => {
    expect((await load({ SESSION_TYPE: "redis", REDIS_URL: "rediss://r:6380" })).kv).toEqual({
      backend: "redis",
      url: "rediss://r:6380",
      key_prefix: "kura:",
    });
    expect((await load({ SESSION_TYPE: "lmdb" })).kv.backend).toBe("lmdb");
    expect((await load({ SESSION_TYPE: "memory" })).kv).toEqual({ backend: "memory" });
  });

  it("SESSION_TYPE=redis without a URL anywhere asks for kv.url, naming the variable", async () => {
    const problems = await problemsFor({ SESSION_TYPE: "redis" });
    expect(problems).toEqual([
      { path: "kv.url", message: "is required (from SESSION_TYPE)", code: "CONFIG_INVALID" },
    ]);
  });

  it("SESSION_TTL and SESSIONS_DIR set the sessions section (a relative dir against cwd)", async () => {
    const cwd = await mkdtemp(join(tmpdir(), "kura-config-env-"));
    const c = await loadConfig({
      cwd,
      env: { SESSION_TTL: "600", SESSIONS_DIR: "./tmp/user_sessions" },
      storageOptionsParser: passthrough,
    });
    expect(c.sessions).toEqual({ ttl_seconds: 600, dir: join(cwd, "tmp", "user_sessions") });
  });

  it("the seed 002 production environment", async () => {
    const c = await load({
      STORAGE_MODE: "cloud",
      CLOUD_STORAGE_TYPE: "s3",
      REDIS_URL: "redis://your-redis-url:6379/0",
      AWS_ACCESS_KEY_ID: "AKIA",
      AWS_SECRET_ACCESS_KEY: "secret",
      AWS_REGION: "ap-northeast-1",
      S3_BUCKET_NAME: "your-bucket-name",
      SESSION_TTL: "86400",
    });
    expect(c.storage).toEqual({
      timeouts: DEFAULT_TIMEOUTS,
      backend: "s3",
      options: { bucket: "your-bucket-name", region: "ap-northeast-1" },
    });
    expect(c.kv.backend).toBe("redis");
    expect(c.sessions.ttl_seconds).toBe(86400);
  });
});

describe("contradictions are CONFIG_CONFLICT problems", () => {
  const cases: [Record<string, string>, string, string][] = [
    [{ USE_S3: "false", STORAGE_MODE: "cloud" }, "USE_S3", "USE_S3=false contradicts STORAGE_MODE=cloud"],
    [{ USE_S3: "true", STORAGE_MODE: "local" }, "USE_S3", "USE_S3=true contradicts STORAGE_MODE=local"],
    [
      { USE_S3: "true", CLOUD_STORAGE_TYPE: "gcs" },
      "USE_S3",
      "USE_S3=true contradicts CLOUD_STORAGE_TYPE=gcs",
    ],
    [
      { USE_S3: "true", STORAGE_MODE: "cloud", CLOUD_STORAGE_TYPE: "azure" },
      "USE_S3",
      "USE_S3=true contradicts CLOUD_STORAGE_TYPE=azure",
    ],
    [
      { SESSION_TYPE: "lmdb", REDIS_URL: "redis://r" },
      "SESSION_TYPE",
      "SESSION_TYPE=lmdb contradicts REDIS_URL",
    ],
    [
      { SESSION_TYPE: "memory", REDIS_URL: "redis://r" },
      "SESSION_TYPE",
      "SESSION_TYPE=memory contradicts REDIS_URL",
    ],
  ];
  for (const [env, path, message] of cases) {
    it(
      Object.entries(env)
        .map(([k, v]) => `${k}=${v}`)
        .join(" "),
      async () => {
        const problems = await problemsFor(env);
        expect(problems).toHaveLength(1);
        expect(problems[0]).toMatchObject({ path, code: "CONFIG_CONFLICT" });
        expect(problems[0]!.message).toContain(message);
      },
    );
  }

  it("every contradiction is reported together", async () => {
    const problems = await problemsFor({
      USE_S3: "true",
      STORAGE_MODE: "local",
      CLOUD_STORAGE_TYPE: "gcs",
      SESSION_TYPE: "lmdb",
      REDIS_URL: "redis://r",
    });
    expect(problems.map((p) => p.code)).toEqual(["CONFIG_CONFLICT", "CONFIG_CONFLICT", "CONFIG_CONFLICT"]);
  });

  it("agreeing settings are fine", async () => {
    expect(
      (await load({ USE_S3: "true", STORAGE_MODE: "cloud", CLOUD_STORAGE_TYPE: "s3" })).storage.backend,
    ).toBe("s3");
    expect((await load({ USE_S3: "false", STORAGE_MODE: "local" })).storage.backend).toBe("fs");
    expect((await load({ SESSION_TYPE: "redis", REDIS_URL: "redis://r" })).kv.backend).toBe("redis");
  });
});

describe("bad values are problems named after the variable", () => {
  it("each one, all at once", async () => {
    const problems = await problemsFor({
      USE_S3: "maybe",
      STORAGE_MODE: "hybrid",
      CLOUD_STORAGE_TYPE: "dropbox",
      SESSION_TYPE: "file",
      SESSION_TTL: "1d",
      REDIS_URL: "http://cache:6379",
    });
    expect(problems.map((p) => p.path)).toEqual([
      "USE_S3",
      "STORAGE_MODE",
      "CLOUD_STORAGE_TYPE",
      "SESSION_TYPE",
      "REDIS_URL",
      "SESSION_TTL",
    ]);
    expect(problems.every((p) => p.code === "CONFIG_INVALID")).toBe(true);
    expect(problems[0]!.message).toBe('must be true or false (got "maybe")');
  });

  it("SESSION_TTL must be a positive whole number", async () => {
    expect((await problemsFor({ SESSION_TTL: "0" }))[0]!.path).toBe("SESSION_TTL");
    expect((await problemsFor({ SESSION_TTL: "-5" }))[0]!.path).toBe("SESSION_TTL");
  });
});
