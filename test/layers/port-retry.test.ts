/**
 * The retry layer of the remote planes (`layers/port-retry.ts`) over real adapters — the
 * PostgreSQL catalog and full-text index, the Redis KV store, the exact vector index — with a
 * fault layer (`port-faults.ts`) between them: a retryable failure of a read or idempotent call
 * is repeated and the call succeeds; the same failure of a `once` call (a catalog commit, a KV
 * write) is not repeated; a failure that is not retryable is not either.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openPostgresCatalog, postgresCatalog } from "../../src/adapters/catalog/postgres/index.js";
import { redisKvStore } from "../../src/adapters/kv/redis/index.js";
import { postgresFtsSearchIndex } from "../../src/adapters/search/postgres-fts/index.js";
import { exactVectorIndex } from "../../src/adapters/vector/exact/index.js";
import { type ErrorCode, KuraError } from "../../src/core/errors.js";
import { PortFaults, withPortFaults } from "../../src/layers/port-faults.js";
import { withPortRetry } from "../../src/layers/port-retry.js";
import type { CallKind } from "../../src/ports/calls.js";
import { CATALOG_CALLS, type Catalog, type ObjectRow } from "../../src/ports/catalog.js";
import { KV_CALLS, type KvStore } from "../../src/ports/kv-store.js";
import { SEARCH_CALLS, type SearchIndex } from "../../src/ports/search-index.js";
import { VECTOR_CALLS, type VectorIndex } from "../../src/ports/vector-index.js";
import { backendAvailable } from "../support/backends.js";
import { rawClient } from "../support/catalog-postgres.js";
import { postgresForTests } from "../support/servers/postgres.js";
import { dropPrefix, REDIS_URL, redisProblem } from "../support/servers/redis.js";

const db = await postgresForTests();
const pgAvailable = backendAvailable("catalog-postgres", "problem" in db ? db.problem : undefined);
const url = "url" in db ? db.url : "";
const redisAvailable = backendAvailable("kv-redis", await redisProblem());

/** Fails the next call of `method` once with `code`, then lets every call through. */
function failOnce(faults: PortFaults, method: string, code: ErrorCode): void {
  faults.arm({
    mode: "reject",
    methods: [method],
    make: () => {
      faults.disarm();
      return new KuraError(code, `injected ${code}`);
    },
  });
}

/** The port behind faults behind the retry layer, with the retries it made counted. */
function layered<T extends object>(port: T, plane: string, calls: Readonly<Record<string, CallKind>>) {
  const faults = new PortFaults();
  const retries: string[] = [];
  const wrapped = withPortRetry(withPortFaults(port, faults), {
    plane,
    calls,
    sleep: async () => undefined,
    onRetry: (e) => retries.push(e.operation),
  });
  return { wrapped, faults, retries };
}

describe("call lists", () => {
  it("never let a layer repeat a catalog commit or a KV write", () => {
    expect(CATALOG_CALLS.commit).toBe("once");
    for (const m of ["set", "setMany", "incr", "delete"] as const) expect(KV_CALLS[m]).toBe("once");
  });
});

describe.skipIf(!pgAvailable)("catalog (PostgreSQL)", () => {
  const schema = `kura_${randomBytes(5).toString("hex")}`;
  let catalog: Catalog;
  const tenantId = "t-retry";
  const row = (key: string): ObjectRow => ({
    tenantId,
    key,
    storeId: "local",
    blobKey: `${tenantId}/objects/${key}`,
    sizeBytes: 1,
    checksum: "ab".repeat(32),
    contentType: "text/plain",
    createdAt: 1,
    updatedAt: 1,
  });

  beforeAll(async () => {
    catalog = await openPostgresCatalog(postgresCatalog.parseOptions({ url, schema }));
  });
  afterAll(async () => {
    await catalog?.close();
    const raw = await rawClient(url, schema);
    await raw.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await raw.end();
    if ("destroy" in db) await db.destroy();
  });

  it("repeats a read that failed with a retryable error, and the read succeeds", async () => {
    const [done] = await catalog.commit([{ ops: [{ op: "putObject", row: row("a") }] }]);
    expect(done?.ok).toBe(true);
    const { wrapped, faults, retries } = layered(catalog, "catalog", CATALOG_CALLS);
    failOnce(faults, "getObject", "CATALOG_UNAVAILABLE");
    expect((await wrapped.getObject(tenantId, "a"))?.blobKey).toBe(`${tenantId}/objects/a`);
    expect(retries).toEqual(["catalog.getObject"]);
  });

  it("repeats an idempotent write (tryLease): the lease is held once", async () => {
    const { wrapped, faults, retries } = layered(catalog, "catalog", CATALOG_CALLS);
    failOnce(faults, "tryLease", "CATALOG_UNAVAILABLE");
    expect(await wrapped.tryLease({ name: "job", owner: "me", now: 10, ttlMs: 1000 })).toBe(true);
    expect(retries).toEqual(["catalog.tryLease"]);
    expect(await catalog.tryLease({ name: "job", owner: "other", now: 20, ttlMs: 1000 })).toBe(false);
  });

  it("never repeats a commit: the same failure reaches the caller, nothing is written", async () => {
    const { wrapped, faults, retries } = layered(catalog, "catalog", CATALOG_CALLS);
    failOnce(faults, "commit", "CATALOG_UNAVAILABLE");
    await expect(wrapped.commit([{ ops: [{ op: "putObject", row: row("b") }] }])).rejects.toMatchObject({
      code: "CATALOG_UNAVAILABLE",
    });
    expect(retries).toEqual([]);
    expect(await catalog.getObject(tenantId, "b")).toBeUndefined();
  });

  it("does not repeat a failure that is not retryable", async () => {
    const { wrapped, faults, retries } = layered(catalog, "catalog", CATALOG_CALLS);
    failOnce(faults, "getObject", "INVALID_ARGUMENT");
    await expect(wrapped.getObject(tenantId, "a")).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
    expect(retries).toEqual([]);
  });

  it("gives up after its retries with the backend's error and the attempts made", async () => {
    const { wrapped, faults, retries } = layered(catalog, "catalog", CATALOG_CALLS);
    faults.arm({
      mode: "reject",
      methods: ["ping"],
      make: () => new KuraError("CATALOG_UNAVAILABLE", "down"),
    });
    const error = await wrapped.ping().catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "CATALOG_UNAVAILABLE", context: { attempts: 4 } });
    expect(retries).toHaveLength(3);
  });

  it("search (PostgreSQL): a failed search is repeated, a document upsert too", async () => {
    const index = await postgresFtsSearchIndex.create(postgresFtsSearchIndex.parseOptions({ url, schema }));
    try {
      const { wrapped, faults, retries } = layered(index, "search", SEARCH_CALLS);
      failOnce(faults, "upsert", "SEARCH_UNAVAILABLE");
      const doc = { tenantId, id: "m1", chatId: "c", role: "user", createdAt: 1, text: "hello layers" };
      await wrapped.upsert([doc]);
      failOnce(faults, "search", "SEARCH_UNAVAILABLE");
      const page = await (wrapped as SearchIndex).search({ tenantId, q: "layers", limit: 10 });
      expect(page.hits.map((h) => h.id)).toEqual(["m1"]);
      expect(retries).toEqual(["search.upsert", "search.search"]);
    } finally {
      await index.close();
    }
  });
});

describe.skipIf(!redisAvailable)("KV (Redis)", () => {
  const prefix = `kura-test-${randomUUID().slice(0, 8)}:`;
  let store: KvStore;
  beforeAll(async () => {
    store = await redisKvStore.create(redisKvStore.parseOptions({ url: REDIS_URL, key_prefix: prefix }));
  });
  afterAll(async () => {
    await store?.close();
    await dropPrefix(prefix);
  });

  it("repeats a failed read; never a write, whose repeat would count twice", async () => {
    await store.set("k", "v1");
    const { wrapped, faults, retries } = layered(store, "kv", KV_CALLS);
    failOnce(faults, "getEntry", "KV_UNAVAILABLE");
    expect(await wrapped.getEntry("k")).toMatchObject({ value: "v1", version: 1 });
    failOnce(faults, "incr", "KV_UNAVAILABLE");
    await expect(wrapped.incr("n")).rejects.toMatchObject({ code: "KV_UNAVAILABLE" });
    failOnce(faults, "set", "KV_UNAVAILABLE");
    await expect(wrapped.set("k", "v2")).rejects.toMatchObject({ code: "KV_UNAVAILABLE" });
    expect(retries).toEqual(["kv.getEntry"]);
    expect(await store.getEntry("k")).toMatchObject({ value: "v1", version: 1 });
    expect(await store.get("n")).toBeUndefined();
  });
});

describe("vector index (exact)", () => {
  it("repeats a failed query and upsert; never a drop", async () => {
    const indexes = await exactVectorIndex.create(exactVectorIndex.parseOptions({}));
    const index = await indexes.open({ name: "memories", dimensions: 2, metric: "l2" });
    const { wrapped, faults, retries } = layered<VectorIndex>(index, "vector", VECTOR_CALLS);
    failOnce(faults, "upsert", "VECTOR_UNAVAILABLE");
    await wrapped.upsert([{ tenantId: "t", id: "a", vector: [1, 0] }]);
    failOnce(faults, "query", "VECTOR_UNAVAILABLE");
    expect((await wrapped.query({ tenantId: "t", vector: [1, 0], k: 1 })).map((h) => h.id)).toEqual(["a"]);
    failOnce(faults, "drop", "VECTOR_UNAVAILABLE");
    await expect(wrapped.drop()).rejects.toMatchObject({ code: "VECTOR_UNAVAILABLE" });
    expect(retries).toEqual(["vector.upsert", "vector.query"]);
    await index.close();
    await indexes.close();
  });
});
