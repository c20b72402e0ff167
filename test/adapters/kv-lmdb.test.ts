/**
 * What the lmdb adapter does beyond the port's contract: the upgrade from the earlier release's
 * per-tenant counters, and versions with durability fsync.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Packr } from "msgpackr";
import { describe, expect, it } from "vitest";
import { lmdbKvStore } from "../../src/adapters/kv/lmdb/index.js";
import {
  EARLIER_RELEASE,
  expectUpgradedVersions,
  expectUpgradePeriodKept,
  expectUpgradePeriodOver,
} from "../support/kv-upgrade.js";

describe("lmdb adapter: upgrade from the per-tenant version counters of the earlier release", () => {
  it("records keep their versions and count on; a key without one starts above its tenant's old counter for one retention period", async () => {
    const dir = await mkdtemp(join(tmpdir(), "kura-kv-lmdb-upgrade-"));
    const path = join(dir, "kv");
    try {
      // The earlier release's layout, written with lmdb-js directly: records
      // `[version, expiresAt, value]` in `kv`, the counters' reservation marks in `meta`.
      const { open } = await import("lmdb");
      const env = open({ path, maxDbs: 8 });
      const db = env.openDB<Buffer, string>("kv", { encoding: "binary", compression: true });
      const meta = env.openDB<number, string>("meta", { encoding: "msgpack" });
      const pack = (record: unknown[]) => new Packr({ useRecords: false }).pack(record);
      for (const r of EARLIER_RELEASE.records)
        await db.put(r.key, pack([r.version, 0, "counter" in r ? r.counter : r.value]));
      for (const c of EARLIER_RELEASE.counters) await meta.put(`version:${c.scope}`, c.version);
      await meta.put("version", EARLIER_RELEASE.storeWide);
      await env.close();

      const retention = 60_000;
      let now = Date.now();
      const openStore = () =>
        lmdbKvStore.create(lmdbKvStore.parseOptions({ path, tombstone_retention_ms: retention }), {
          now: () => now,
        });
      let store = await openStore();
      await expectUpgradedVersions(store);

      // A restart within the upgrade period keeps it.
      await store.close();
      now += retention / 2;
      store = await openStore();
      await expectUpgradePeriodKept(store);
      // Once it is over, new keys start at 1 (the open store sees it end), and the old counters are gone.
      now += retention / 2;
      expect((await store.set("acme:kv:fresh", 1)).version).toBe(1);
      await store.close();
      store = await openStore();
      await expectUpgradePeriodOver(store, "acme:kv:after");
      await store.close();
      const check = open({ path, maxDbs: 8 });
      const keys = [...check.openDB<number, string>("meta", { encoding: "msgpack" }).getKeys()];
      await check.close();
      expect(keys).toEqual([]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("lmdb adapter: versions with durability fsync (asynchronous commits, every queued write in the overlay)", () => {
  it("count per key from 1 across writes of one turn, deletes, sweeps and a reopen", async () => {
    const dir = await mkdtemp(join(tmpdir(), "kura-kv-lmdb-fsync-"));
    let now = Date.now();
    const open = () =>
      lmdbKvStore.create(lmdbKvStore.parseOptions({ path: join(dir, "kv") }), {
        now: () => now,
        durability: "fsync",
      });
    let store = await open();
    try {
      // One turn: blind and conditional writes, a batch repeating a key, an increment.
      const turn = await Promise.all([
        store.set("t:a", 1),
        store.set("t:a", 2),
        store.setMany([
          { key: "t:a", value: 3 },
          { key: "t:b", value: 1 },
          { key: "t:a", value: 4 },
        ]),
        store.set("t:a", 5, { ifVersion: 4 }),
        store.incr("t:n"),
      ]);
      expect(turn).toEqual([
        { version: 1 },
        { version: 2 },
        [{ version: 3 }, { version: 1 }, { version: 4 }],
        { version: 5 },
        { value: 1, version: 1 },
      ]);
      const racing = await Promise.allSettled(
        Array.from({ length: 6 }, (_, i) => store.set("t:a", i, { ifVersion: 5 })),
      );
      expect(racing.filter((r) => r.status === "fulfilled")).toHaveLength(1);
      const [deleted, recreated] = await Promise.all([store.delete("t:a"), store.set("t:a", "again")]);
      expect(deleted).toBe(true);
      expect(recreated.version).toBe(7);
      await store.set("t:ttl", 1, { ttlMs: 1000 });
      now += 1300;
      expect(await store.sweepExpired()).toBe(1);
      await store.delete("t:b");
      await store.close();
      store = await open();
      expect((await store.set("t:ttl", 2)).version).toBe(2);
      expect((await store.setMany([{ key: "t:b", value: 2 }]))[0]?.version).toBe(2);
      expect((await store.set("t:a", "later")).version).toBe(8);
    } finally {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
