/**
 * The upgrade from the earlier release's per-tenant version counters, which the lmdb and redis
 * KV adapters both make (`test/adapters/kv-lmdb.test.ts`, `kv-redis.test.ts`): each test writes
 * {@link EARLIER_RELEASE} in its adapter's old layout, then checks the same versions.
 */
import { expect } from "vitest";
import type { KvStore } from "../../src/ports/kv-store.js";

/** What the earlier release left: records with their versions, the counters per tenant scope. */
export const EARLIER_RELEASE = {
  /** `value` for a stored value, `counter` for an incr counter. */
  records: [
    { key: "acme:kv:a", version: 5000, value: "old" },
    { key: "acme:kv:n", version: 7, counter: 3 },
    { key: "globex:x", version: 100, value: "g" },
  ],
  /** The last version each tenant's counter handed out (the scope is the key prefix). */
  counters: [
    { scope: "acme:", version: 20_000 },
    { scope: "globex:", version: 10_100 },
  ],
  /** The store-wide counter of still earlier releases. */
  storeWide: 150,
} as const;

/**
 * Just after the upgrade: records keep their versions and count on; a key without one may have
 * existed (and been deleted) under the earlier release with any version up to its tenant's
 * counter, so it starts above it (above the store-wide one for a tenant without a counter).
 */
export async function expectUpgradedVersions(store: KvStore): Promise<void> {
  expect(await store.getEntry("acme:kv:a")).toMatchObject({ value: "old", version: 5000 });
  expect((await store.set("acme:kv:a", "new")).version).toBe(5001);
  expect(await store.incr("acme:kv:n")).toEqual({ value: 4, version: 8 });
  expect((await store.setMany([{ key: "globex:x", value: "g2" }]))[0]?.version).toBe(101);
  expect((await store.set("acme:kv:gone", 1)).version).toBe(20_001);
  expect(await store.incr("globex:n")).toEqual({ value: 1, version: 10_101 });
  expect((await store.set("initech:y", 1, { ttlMs: 60_000 })).version).toBe(151);
  expect(await store.delete("acme:kv:a")).toBe(true);
  expect((await store.set("acme:kv:a", "again")).version).toBe(5002);
}

/** Within the upgrade period (one tombstone retention), after a restart: still above the counter. */
export async function expectUpgradePeriodKept(store: KvStore): Promise<void> {
  expect((await store.set("acme:kv:other", 1, { ifVersion: 0 })).version).toBe(20_001);
}

/** Once the period is over: new keys start at 1, old ones count on. */
export async function expectUpgradePeriodOver(store: KvStore, fresh = "acme:kv:fresh"): Promise<void> {
  expect((await store.set(fresh, 1)).version).toBe(1);
  expect((await store.setMany([{ key: `${fresh}2`, value: 1 }]))[0]?.version).toBe(1);
  expect((await store.set("acme:kv:a", "later")).version).toBe(5003);
}
