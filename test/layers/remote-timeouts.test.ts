/**
 * Time limits and retries of the remote planes as the openers wire them (`open/catalog.ts`,
 * `open/search.ts`, `open/kv.ts`), against real servers: a PostgreSQL lock held by another
 * connection makes a catalog write hit the server's `lock_timeout` (`OPERATION_TIMEOUT`,
 * nothing written, not repeated) and a read hit it too (repeated, and it succeeds once the lock
 * is gone); with no server-side limit the client-side read limit answers; Redis `CLIENT PAUSE`
 * makes a KV read time out (not repeated: it had its whole time), and a write time out with its
 * outcome unknown.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { PostgresDatabaseConfig } from "../../src/config/index.js";
import { openCatalog } from "../../src/open/catalog.js";
import { resolveConfig } from "../../src/open/config.js";
import { openKvStore } from "../../src/open/kv.js";
import { openSearchIndex } from "../../src/open/search.js";
import type { Catalog, ObjectRow } from "../../src/ports/catalog.js";
import type { KvStore } from "../../src/ports/kv-store.js";
import { backendAvailable } from "../support/backends.js";
import { rawClient } from "../support/catalog-postgres.js";
import { postgresForTests } from "../support/servers/postgres.js";
import { dropPrefix, REDIS_URL, redisProblem } from "../support/servers/redis.js";

const db = await postgresForTests();
const pgAvailable = backendAvailable("catalog-postgres", "problem" in db ? db.problem : undefined);
const url = "url" in db ? db.url : "";
const redisAvailable = backendAvailable("kv-redis", await redisProblem());
const dataDir = mkdtempSync(join(tmpdir(), "kura-remote-timeouts-"));

afterAll(async () => {
  rmSync(dataDir, { recursive: true, force: true });
  if ("destroy" in db) await db.destroy();
});

describe.skipIf(!pgAvailable)("PostgreSQL planes", () => {
  const schema = `kura_${randomBytes(5).toString("hex")}`;
  const tenantId = "t-timeouts";
  const database = (over: Partial<PostgresDatabaseConfig> = {}): PostgresDatabaseConfig => ({
    backend: "postgres",
    url,
    schema,
    max_connections: 4,
    lock_timeout_ms: 200,
    ...over,
  });
  const row = (key: string, blob: string): ObjectRow => ({
    tenantId,
    key,
    storeId: "local",
    blobKey: blob,
    sizeBytes: 1,
    checksum: "ab".repeat(32),
    contentType: "text/plain",
    createdAt: 1,
    updatedAt: 1,
  });
  let raw: pg.Client;
  const retries: string[] = [];
  let onRetry: () => void = () => undefined;
  let catalog: Catalog;

  beforeAll(async () => {
    catalog = await openCatalog(
      database(),
      {},
      {
        retry: {
          sleep: async () => undefined,
          onRetry: (e) => {
            retries.push(e.operation);
            onRetry();
          },
        },
      },
    );
    raw = await rawClient(url, schema);
  });
  afterAll(async () => {
    await catalog?.close();
    await raw?.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => undefined);
    await raw?.end();
  });

  it("a commit that waits on a row another connection holds fails at the server's lock_timeout: OPERATION_TIMEOUT, nothing written, not repeated", async () => {
    const [first] = await catalog.commit([{ ops: [{ op: "putObject", row: row("doc", "blob-1") }] }]);
    expect(first?.ok).toBe(true);
    retries.length = 0;
    await raw.query("BEGIN");
    try {
      await raw.query("SELECT 1 FROM objects WHERE tenant_id = $1 AND key = $2 FOR UPDATE", [
        tenantId,
        "doc",
      ]);
      const [outcome] = await catalog.commit([
        {
          ops: [
            { op: "putObject", row: row("doc", "blob-2") },
            { op: "putObject", row: row("other", "blob-3") },
          ],
        },
      ]);
      expect(outcome).toMatchObject({
        ok: false,
        error: { code: "OPERATION_TIMEOUT", retryable: true, context: { side: "server", limit: "lock" } },
      });
      expect(
        (outcome as { error: { context: Record<string, unknown> } }).error.context.outcome,
      ).toBeUndefined();
    } finally {
      await raw.query("ROLLBACK");
    }
    expect(retries).toEqual([]);
    expect((await catalog.getObject(tenantId, "doc"))?.blobKey).toBe("blob-1");
    expect(await catalog.getObject(tenantId, "other")).toBeUndefined();
  });

  it("a read blocked by a table lock times out on the server and is repeated until the lock is gone", async () => {
    retries.length = 0;
    await raw.query("BEGIN");
    await raw.query("LOCK TABLE objects IN ACCESS EXCLUSIVE MODE");
    let released: Promise<unknown> | undefined;
    onRetry = () => {
      released ??= raw.query("ROLLBACK");
    };
    try {
      // Blocked until the first attempt's lock_timeout; the retries release the lock.
      expect((await catalog.getObject(tenantId, "doc"))?.blobKey).toBe("blob-1");
      await released;
    } finally {
      onRetry = () => undefined;
      if (!released) await raw.query("ROLLBACK");
    }
    expect(retries[0]).toBe("catalog.getObject");
  });

  it("without a server-side limit, the client-side read limit answers OPERATION_TIMEOUT", async () => {
    const unlimited = await openCatalog(
      database({ lock_timeout_ms: 0, statement_timeout_ms: 0, read_timeout_ms: 300 }),
      {},
      { retry: false },
    );
    await raw.query("BEGIN");
    try {
      await raw.query("LOCK TABLE objects IN ACCESS EXCLUSIVE MODE");
      await expect(unlimited.getObject(tenantId, "doc")).rejects.toMatchObject({
        code: "OPERATION_TIMEOUT",
        operation: "catalog.getObject",
        context: { side: "client", timeoutMs: 300 },
      });
    } finally {
      await raw.query("ROLLBACK");
      await unlimited.close();
    }
  });

  it("the full-text index gets the catalog's server-side limits: a search blocked by a lock is OPERATION_TIMEOUT", async () => {
    const config = await resolveConfig({
      data_dir: dataDir,
      database: database(),
      search: { backend: "postgres" },
    });
    const index = await openSearchIndex(config, { retry: false });
    await raw.query("BEGIN");
    try {
      await raw.query("LOCK TABLE search_docs IN ACCESS EXCLUSIVE MODE");
      await expect(index.count(tenantId)).rejects.toMatchObject({
        code: "OPERATION_TIMEOUT",
        kind: "Unavailable",
        context: { side: "server", limit: "lock" },
      });
    } finally {
      await raw.query("ROLLBACK");
      await index.close();
    }
  });
});

describe.skipIf(!redisAvailable)("Redis KV", () => {
  const prefix = `kura-test-${randomUUID().slice(0, 8)}:`;
  const retries: string[] = [];
  let store: KvStore;
  let admin: Redis;

  beforeAll(async () => {
    const config = await resolveConfig({
      data_dir: dataDir,
      kv: { backend: "redis", url: REDIS_URL, key_prefix: prefix, command_timeout_ms: 100 },
    });
    store = await openKvStore(
      config,
      {},
      {
        retry: { sleep: async () => undefined, onRetry: (e) => retries.push(e.operation) },
      },
    );
    admin = new Redis(REDIS_URL);
  });
  afterAll(async () => {
    await store?.close();
    admin?.disconnect();
    await dropPrefix(prefix);
  });

  it("a read that Redis does not answer in time (CLIENT PAUSE) fails with OPERATION_TIMEOUT, not repeated", async () => {
    await store.set("k", "v1");
    retries.length = 0;
    await admin.call("CLIENT", "PAUSE", "300", "ALL");
    await expect(store.get("k")).rejects.toMatchObject({
      code: "OPERATION_TIMEOUT",
      kind: "Unavailable",
      operation: "kv.get",
      context: { side: "client" },
    });
    expect(retries).toEqual([]);
    // The outcome of a read does not matter: once Redis answers again, so does the store.
    await expect.poll(() => store.get("k").catch(() => undefined), { timeout: 5000 }).toBe("v1");
  });

  it("a write that times out fails with its outcome unknown and is not repeated; it applies whole or not at all", async () => {
    retries.length = 0;
    await admin.call("CLIENT", "PAUSE", "300", "WRITE");
    const error = await store.set("w", { a: 1, b: "two" }).catch((e: unknown) => e);
    expect(error).toMatchObject({
      code: "OPERATION_TIMEOUT",
      operation: "kv.set",
      context: { outcome: "unknown", side: "client" },
    });
    expect(retries).toEqual([]);
    // Redis ran the script once the pause ended: the whole value, at version 1, never twice.
    await expect
      .poll(() => store.getEntry("w").catch(() => undefined), { timeout: 5000 })
      .toMatchObject({ value: { a: 1, b: "two" }, version: 1 });
  });
});
