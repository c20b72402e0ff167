/**
 * CFG-2 URI shorthand: each plane written as one string, in a file, in `KURA_*` and in flags.
 */
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  type KuraConfig,
  loadConfig,
  resolveConfig,
  type StorageOptionsParser,
} from "../../src/config/index.js";
import { KuraError } from "../../src/core/errors.js";

/** Every storage config carries the blob timeouts; these tests set none. */
const DEFAULT_TIMEOUTS = { idle_ms: 30_000, operation_ms: 30_000 };

const passthrough: StorageOptionsParser = async (_backend, options) => options;
const CWD = "/work/app";

function resolve(input: Record<string, unknown>, env?: Record<string, string>): Promise<KuraConfig> {
  return resolveConfig(input, { cwd: CWD, env, storageOptionsParser: passthrough });
}

async function problemsOf(input: Record<string, unknown>): Promise<{ path: string; message: string }[]> {
  try {
    await resolve(input);
  } catch (e) {
    if (!(e instanceof KuraError)) throw e;
    return e.context.problems as { path: string; message: string }[];
  }
  throw new Error("expected the configuration to be rejected");
}

describe("storage", () => {
  it("s3://bucket/prefix with query parameters as typed options", async () => {
    const c = await resolve({
      storage:
        "s3://mail-bodies/kura/prod?region=ap-northeast-1&endpoint=http%3A%2F%2F127.0.0.1%3A9000&force_path_style=true&multipart_chunk_mb=16",
    });
    expect(c.storage).toEqual({
      timeouts: DEFAULT_TIMEOUTS,
      backend: "s3",
      options: {
        bucket: "mail-bodies",
        prefix: "kura/prod",
        region: "ap-northeast-1",
        endpoint: "http://127.0.0.1:9000",
        force_path_style: true,
        multipart_chunk_mb: 16,
      },
    });
  });

  it("s3://bucket alone, and a flag parameter without a value", async () => {
    expect((await resolve({ storage: "s3://b?force_path_style" })).storage.options).toEqual({
      bucket: "b",
      force_path_style: true,
    });
  });

  it("gs://bucket/prefix (and gcs://)", async () => {
    expect((await resolve({ storage: "gs://hera-sessions/prod/" })).storage).toEqual({
      timeouts: DEFAULT_TIMEOUTS,
      backend: "gcs",
      options: { bucket: "hera-sessions", prefix: "prod" },
    });
    expect((await resolve({ storage: "gcs://b" })).storage).toEqual({
      timeouts: DEFAULT_TIMEOUTS,
      backend: "gcs",
      options: { bucket: "b" },
    });
  });

  it("azure://container/prefix?account_name=…&endpoint=…", async () => {
    const c = await resolve({
      storage:
        "azure://bodies/tenant-a?account_name=devstoreaccount1&endpoint=http://127.0.0.1:10000/devstoreaccount1",
    });
    expect(c.storage).toEqual({
      timeouts: DEFAULT_TIMEOUTS,
      backend: "azure",
      options: {
        container: "bodies",
        prefix: "tenant-a",
        account_name: "devstoreaccount1",
        endpoint: "http://127.0.0.1:10000/devstoreaccount1",
      },
    });
  });

  it("fs:///abs/path, file:./rel (against cwd), file:///abs, fs: (default under data_dir)", async () => {
    expect((await resolve({ storage: "fs:///var/lib/kura/blobs" })).storage.options.base_path).toBe(
      "/var/lib/kura/blobs",
    );
    expect((await resolve({ storage: "file:./objects" })).storage.options.base_path).toBe(
      join(CWD, "objects"),
    );
    expect((await resolve({ storage: "file:///srv/o%20bjects" })).storage.options.base_path).toBe(
      "/srv/o bjects",
    );
    expect((await resolve({ storage: "fs:" })).storage).toEqual({
      timeouts: DEFAULT_TIMEOUTS,
      backend: "fs",
      options: { base_path: join(CWD, "data", "blobs") },
    });
  });

  it("memory: and a bare backend name", async () => {
    expect((await resolve({ storage: "memory:" })).storage).toEqual({
      timeouts: DEFAULT_TIMEOUTS,
      backend: "memory",
      options: {},
    });
    expect((await resolve({ storage: "memory" })).storage).toEqual({
      timeouts: DEFAULT_TIMEOUTS,
      backend: "memory",
      options: {},
    });
    expect((await resolve({ storage: "memory:?name=scratch" })).storage).toEqual({
      timeouts: DEFAULT_TIMEOUTS,
      backend: "memory",
      options: { name: "scratch" },
    });
  });

  it("mistakes are problems at the plane's path, never repeating the URI", async () => {
    const problems = await problemsOf({ storage: "s3://AKIA:hunter2@bucket/x" });
    expect(problems.map((p) => p.path)).toEqual(["storage"]);
    expect(problems[0]!.message).toContain("credentials");
    expect(JSON.stringify(problems)).not.toContain("hunter2");
    expect((await problemsOf({ storage: "s3:///prefix" }))[0]!.message).toContain("must name a bucket");
    expect((await problemsOf({ storage: "ftp://user:pw@host/x" }))[0]!.message).toMatch(
      /unsupported URI scheme "ftp:"/,
    );
    expect((await problemsOf({ storage: "fs://remote-host/x" }))[0]!.message).toContain("local path");
    expect((await problemsOf({ storage: "memory://x" }))[0]!.message).toContain("takes no location");
    expect((await problemsOf({ storage: "s3://b?region=%E0%A4%A" }))[0]!.message).toContain("%-escape");
  });
});

describe("database", () => {
  it("postgres:// and postgresql:// keep the URL for the driver, minus Kura's own parameters", async () => {
    expect((await resolve({ database: "postgres://kura:pw@db:5432/kura" })).database).toEqual({
      backend: "postgres",
      url: "postgres://kura:pw@db:5432/kura",
      schema: "public",
      max_connections: 10,
    });
    expect(
      (
        await resolve({
          database: "postgresql://kura@db/kura?sslmode=require&schema=tenant_a&max_connections=4",
        })
      ).database,
    ).toEqual({
      backend: "postgres",
      url: "postgresql://kura@db/kura?sslmode=require",
      schema: "tenant_a",
      max_connections: 4,
    });
  });

  it("a password holding ? or @ does not confuse the parameters", async () => {
    const c = await resolve({ database: "postgres://u:p?w@d@db/k?schema=s" });
    expect(c.database).toMatchObject({ url: "postgres://u:p?w@d@db/k", schema: "s" });
  });

  it("sqlite:./path, sqlite:///abs, sqlite: (default)", async () => {
    expect((await resolve({ database: "sqlite:./db/kura.db" })).database).toEqual({
      backend: "sqlite",
      path: join(CWD, "db", "kura.db"),
    });
    expect((await resolve({ database: "sqlite:///var/lib/kura.db" })).database).toEqual({
      backend: "sqlite",
      path: "/var/lib/kura.db",
    });
    expect((await resolve({ database: "sqlite:" })).database).toEqual({
      backend: "sqlite",
      path: join(CWD, "data", "kura.db"),
    });
  });

  it("unknown query parameters of a local path URI are unknown keys", async () => {
    const problems = await problemsOf({ database: "sqlite:./x.db?journal=wal" });
    expect(problems).toEqual([{ path: "database.journal", message: "unknown key", code: "CONFIG_INVALID" }]);
  });

  it("a plane URI may come from env:VAR", async () => {
    const c = await resolve({ database: "env:DATABASE_URL" }, { DATABASE_URL: "postgres://db/kura" });
    expect(c.database).toMatchObject({ backend: "postgres", url: "postgres://db/kura" });
  });
});

describe("kv", () => {
  it("redis:// and rediss:// with key_prefix taken out of the URL", async () => {
    expect((await resolve({ kv: "redis://:secret@cache:6379/0" })).kv).toEqual({
      backend: "redis",
      url: "redis://:secret@cache:6379/0",
      key_prefix: "kura:",
    });
    expect((await resolve({ kv: "rediss://cache:6380/1?key_prefix=app:" })).kv).toEqual({
      backend: "redis",
      url: "rediss://cache:6380/1",
      key_prefix: "app:",
    });
  });

  it("lmdb:./path, lmdb: and memory:", async () => {
    expect((await resolve({ kv: "lmdb:./state" })).kv).toEqual({ backend: "lmdb", path: join(CWD, "state") });
    expect((await resolve({ kv: "lmdb:" })).kv).toEqual({ backend: "lmdb", path: join(CWD, "data", "kv") });
    expect((await resolve({ kv: "memory:" })).kv).toEqual({ backend: "memory" });
  });

  it("a URI of another plane is rejected", async () => {
    expect((await problemsOf({ kv: "s3://b" }))[0]).toMatchObject({ path: "kv" });
  });
});

describe("search and vector", () => {
  it("a backend name, with optional parameters", async () => {
    const c = await resolve({
      database: "postgres://db/k",
      search: "postgres",
      vector: "pgvector?dimensions=384&metric=cosine",
    });
    expect(c.search).toEqual({ backend: "postgres" });
    expect(c.vector).toMatchObject({
      backend: "pgvector",
      dimensions: 384,
      metric: "cosine",
      mode: "balanced",
      url: "postgres://db/k",
      schema: "public",
    });
    expect((await problemsOf({ search: "lucene" }))[0]!.path).toBe("search.backend");
  });
});

describe("shorthand from every source", () => {
  it("YAML, KURA_* and flags", async () => {
    const cwd = await mkdtemp(join(tmpdir(), "kura-config-uri-"));
    const file = join(cwd, "kura.yaml");
    // `memory:` must be quoted in YAML (a trailing colon starts a mapping); the bare name needs no quotes.
    await writeFile(
      file,
      'storage: s3://from-yaml/p?region=eu-west-1\nkv: "memory:"\nsearch: embedded\ndatabase: sqlite:./k.db\n',
    );
    const c = await loadConfig({
      file,
      cwd,
      env: { KURA_KV: "redis://cache:6379" },
      overrides: { database: "postgres://db/kura", "storage.options.prefix": "q" },
      storageOptionsParser: passthrough,
    });
    expect(c.storage).toEqual({
      timeouts: DEFAULT_TIMEOUTS,
      backend: "s3",
      options: { bucket: "from-yaml", prefix: "q", region: "eu-west-1" },
    });
    expect(c.kv).toMatchObject({ backend: "redis", url: "redis://cache:6379" });
    expect(c.database).toMatchObject({ backend: "postgres", url: "postgres://db/kura" });
  });
});
