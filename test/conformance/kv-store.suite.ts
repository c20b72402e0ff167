/**
 * The one behaviour suite for every KvStore adapter (KV-1). A short test file per adapter calls
 * `kvStoreConformance` with a harness; tests are selected by the store's declared capabilities,
 * never by its name. Each statement of the port's Behavior lists is tested here.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isKuraError, type KuraError } from "../../src/core/errors.js";
import { tenantKv } from "../../src/domains/kv.js";
import type { KvEntry, KvStore } from "../../src/ports/kv-store.js";

export interface KvHarness {
  /** The store under test, isolated from other runs (random key prefix or directory). */
  store: KvStore;
  /** Let `ms` pass for expiry: a fake clock moves, or (Redis) real time is waited out. */
  advance(ms: number): Promise<void>;
  /** A TTL short enough to wait out (real servers) yet long enough to read the key first. */
  ttlMs: number;
  /** Close the store and open it again over the same data (persistent stores). */
  reopen?(): Promise<KvStore>;
  cleanup(): Promise<void>;
}

export async function expectKuraError(p: Promise<unknown>, code: string): Promise<KuraError> {
  try {
    await p;
  } catch (e) {
    if (!isKuraError(e)) throw new Error(`expected KuraError ${code}, got ${String(e)}`, { cause: e });
    expect(e.code).toBe(code);
    return e;
  }
  throw new Error(`expected KuraError ${code}, but it succeeded`);
}

async function scanAll(store: KvStore, prefix: string, limit: number, keysOnly = false) {
  const pages: KvEntry[][] = [];
  let cursor: string | undefined;
  do {
    const page = await store.scan(prefix, { limit, keysOnly, ...(cursor ? { cursor } : {}) });
    pages.push(page.items);
    cursor = page.cursor;
  } while (cursor);
  return pages;
}

export function kvStoreConformance(
  name: string,
  setup: () => Promise<KvHarness>,
  options: { skip?: boolean } = {},
) {
  describe.skipIf(options.skip === true)(`KvStore conformance: ${name}`, () => {
    let h: KvHarness;
    let kv: KvStore;
    const run = randomUUID().slice(0, 8);
    const k = (key: string) => `c${run}:${key}`;

    beforeAll(async () => {
      h = await setup();
      kv = h.store;
    });
    afterAll(async () => {
      await h?.cleanup();
    });

    it("reads back every MessagePack type as it was stored; a missing key is undefined", async () => {
      expect(await kv.get(k("missing"))).toBeUndefined();
      expect(await kv.getEntry(k("missing"))).toBeUndefined();
      const date = new Date("2026-01-02T03:04:05.678Z");
      const values: [string, unknown][] = [
        ["object", { a: 1, nested: { list: [1, "two", null, true], empty: {} }, unicode: "東京 ✓" }],
        ["array", [1, 2.5, -3, "x"]],
        ["string", "plain text"],
        ["empty-string", ""],
        ["float", Math.PI],
        ["negative", -42],
        ["big", Number.MAX_SAFE_INTEGER],
        ["zero", 0],
        ["true", true],
        ["false", false],
        ["null", null],
        ["date", date],
      ];
      for (const [key, value] of values) await kv.set(k(`type:${key}`), value);
      for (const [key, value] of values) expect(await kv.get(k(`type:${key}`)), key).toEqual(value);
      await kv.set(k("type:bytes"), Buffer.from([0, 1, 2, 255]));
      const bytes = (await kv.get(k("type:bytes"))) as Uint8Array;
      expect(Buffer.from(bytes).equals(Buffer.from([0, 1, 2, 255]))).toBe(true);
    });

    it("stores copies: mutating a value after set or after get changes nothing stored", async () => {
      const value = { list: [1, 2], name: "a" };
      await kv.set(k("copy"), value);
      value.list.push(3);
      const read = (await kv.get(k("copy"))) as { list: number[] };
      expect(read).toEqual({ list: [1, 2], name: "a" });
      read.list.push(99);
      expect(await kv.get(k("copy"))).toEqual({ list: [1, 2], name: "a" });
    });

    it("round-trips a large compressible value and a large random one; over the limit fails with nothing written", async () => {
      const text = "session state that repeats itself ".repeat(6000);
      await kv.set(k("large:text"), { text });
      expect(await kv.get(k("large:text"))).toEqual({ text });
      const random = Buffer.from(
        Array.from({ length: 64 * 1024 }, (_, i) => (i * 7919 + (i >> 3) * 31) & 0xff),
      );
      await kv.set(k("large:bytes"), random);
      expect(Buffer.from((await kv.get(k("large:bytes"))) as Uint8Array).equals(random)).toBe(true);
      const tooBig = "x".repeat(kv.maxValueBytes + 10);
      await expectKuraError(kv.set(k("large:over"), tooBig), "KV_VALUE_TOO_LARGE");
      await expectKuraError(kv.setMany([{ key: k("large:over"), value: tooBig }]), "KV_VALUE_TOO_LARGE");
      // Not storable: lone surrogates (no UTF-8 form) and values deeper than encoders recurse.
      let deep: unknown = 1;
      for (let i = 0; i < 100_000; i++) deep = [deep];
      await expectKuraError(kv.set(k("bad:deep"), deep), "VALUE_TOO_DEEP");
      await expectKuraError(kv.set(k("bad:utf"), { text: "a\ud800" }), "INVALID_UTF8");
      await expectKuraError(kv.setMany([{ key: k("bad:utf"), value: ["\udc00"] }]), "INVALID_UTF8");
      expect(await kv.getMany([k("bad:deep"), k("bad:utf")])).toEqual([undefined, undefined]);
      expect(await kv.get(k("large:over"))).toBeUndefined();
    });

    it("rejects undefined values and invalid keys before touching the backend", async () => {
      await expectKuraError(kv.set(k("undef"), undefined), "INVALID_ARGUMENT");
      expect(await kv.get(k("undef"))).toBeUndefined();
      const bad = ["", "a\u0000b", "line\nbreak", "x".repeat(1025), "lone\ud800surrogate"];
      for (const key of bad) {
        await expectKuraError(kv.get(key), "KV_KEY_INVALID");
        await expectKuraError(kv.set(key, 1), "KV_KEY_INVALID");
        await expectKuraError(kv.delete(key), "KV_KEY_INVALID");
        await expectKuraError(kv.incr(key), "KV_KEY_INVALID");
      }
      await expectKuraError(kv.getMany([k("ok"), "a\u0000"]), "KV_KEY_INVALID");
      await expectKuraError(kv.scan("a\u0000"), "KV_KEY_INVALID");
      await expectKuraError(kv.set(k("ttl"), 1, { ttlMs: 0 }), "INVALID_ARGUMENT");
      await expectKuraError(kv.set(k("ttl"), 1, { ttlMs: 1.5 }), "INVALID_ARGUMENT");
      await expectKuraError(kv.set(k("ver"), 1, { ifVersion: -1 }), "INVALID_ARGUMENT");
      await expectKuraError(kv.incr(k("by"), { by: 0.5 }), "INVALID_ARGUMENT");
      // Anything else is a fine key: separators, glob characters, spaces, 1,024 bytes.
      const odd = k("a/b:c*d?[e] f\\g");
      await kv.set(odd, "odd");
      expect(await kv.get(odd)).toBe("odd");
      const key1024 = `${k("").padEnd(1022, "x")}é`;
      expect(Buffer.byteLength(key1024)).toBe(1024);
      await kv.set(key1024, "long");
      expect(await kv.get(key1024)).toBe("long");
    });

    const versionOf = async (key: string) => (await kv.getEntry(key))?.version;

    it("versions are per key: a new key is 1 and every write adds 1 (set, incr, setMany)", async () => {
      // Other keys of the same scope written first move nothing.
      for (let i = 0; i < 3; i++) await kv.set(k("ver:other"), i);
      expect((await kv.set(k("ver:a"), 1)).version).toBe(1);
      expect(await kv.getEntry(k("ver:a"))).toMatchObject({ key: k("ver:a"), value: 1, version: 1 });
      expect((await kv.set(k("ver:a"), 2)).version).toBe(2);
      expect(await kv.incr(k("ver:a"))).toEqual({ value: 3, version: 3 });
      expect(await kv.incr(k("ver:counter"))).toEqual({ value: 1, version: 1 });
      const many = await kv.setMany([
        { key: k("ver:a"), value: 4 },
        { key: k("ver:b"), value: 1 },
        { key: k("ver:c"), value: 1, ttlMs: h.ttlMs * 100 },
        { key: k("ver:b"), value: 2 },
      ]);
      expect(many.map((r) => r.version)).toEqual([4, 1, 1, 2]);
      expect(await versionOf(k("ver:a"))).toBe(4);
      expect(await versionOf(k("ver:b"))).toBe(2);
      expect(await versionOf(k("ver:other"))).toBe(3);
      // Conditional writes count the same way.
      expect((await kv.set(k("ver:d"), 1, { ifVersion: 0 })).version).toBe(1);
      expect((await kv.set(k("ver:d"), 2, { ifVersion: 1 })).version).toBe(2);
      // Writes issued in one turn, some to the same key, count in call order.
      const turn = await Promise.all([
        kv.set(k("ver:e"), 1),
        kv.set(k("ver:f"), 1, { ttlMs: h.ttlMs * 100 }),
        kv.set(k("ver:e"), 2),
        kv.set(k("ver:e"), 3, { ifVersion: 2 }),
      ]);
      expect(turn.map((r) => r.version)).toEqual([1, 1, 2, 3]);
    });

    it("delete then re-create continues above the deleted version; an old version never matches again", async () => {
      const key = k("tomb:a");
      await kv.set(key, "first");
      const held = await kv.set(key, "second");
      expect(held.version).toBe(2);
      expect(await kv.delete(key)).toBe(true);
      expect(await kv.getEntry(key)).toBeUndefined();
      expect((await kv.set(key, "again")).version).toBe(3);
      await expectKuraError(kv.set(key, "stale", { ifVersion: held.version }), "KV_VERSION_CONFLICT");
      await expectKuraError(kv.delete(key, { ifVersion: held.version }), "KV_VERSION_CONFLICT");
      expect(await kv.delete(key, { ifVersion: 3 })).toBe(true);
      expect(await kv.incr(key)).toEqual({ value: 1, version: 4 });
      expect(await kv.delete(key)).toBe(true);
      expect((await kv.setMany([{ key, value: 1 }]))[0]?.version).toBe(5);
      expect(await kv.delete(key)).toBe(true);
      expect((await kv.set(key, "created", { ifVersion: 0 })).version).toBe(6);
      // A tombstone is never seen: absent to every read, scan and condition.
      const gone = k("tomb:gone");
      await kv.set(gone, 1);
      await kv.set(gone, 2);
      await kv.delete(gone);
      expect(await kv.get(gone)).toBeUndefined();
      expect(await kv.getMany([gone])).toEqual([undefined]);
      expect((await scanAll(kv, gone, 10)).flat()).toEqual([]);
      expect(await kv.delete(gone)).toBe(false);
      await expectKuraError(kv.set(gone, 3, { ifVersion: 2 }), "KV_VERSION_CONFLICT");
      expect((await kv.set(gone, 3, { ifVersion: 0 })).version).toBe(3);
      // Deleting an absent key leaves nothing behind.
      expect(await kv.delete(k("tomb:never"))).toBe(false);
      expect((await kv.set(k("tomb:never"), 1)).version).toBe(1);
    });

    it("expiry then re-create continues above the expired version (before and after a sweep)", async () => {
      const ttl = h.ttlMs;
      await kv.set(k("exp:a"), 1, { ttlMs: ttl });
      const held = await kv.set(k("exp:a"), 2, { ttlMs: ttl });
      await kv.set(k("exp:b"), 1, { ttlMs: ttl });
      await kv.setMany([{ key: k("exp:c"), value: 1, ttlMs: ttl }]);
      await kv.incr(k("exp:n"), { ttlMs: ttl });
      await kv.incr(k("exp:n"));
      await kv.set(k("exp:d"), 1);
      await kv.incr(k("exp:d"), { ttlMs: ttl }); // an existing key keeps "never"
      await h.advance(ttl + 300);
      expect(await kv.getEntry(k("exp:a"))).toBeUndefined();
      expect((await kv.set(k("exp:a"), 3)).version).toBe(3);
      await expectKuraError(kv.set(k("exp:a"), 4, { ifVersion: held.version }), "KV_VERSION_CONFLICT");
      await kv.sweepExpired();
      expect((await kv.set(k("exp:b"), 2, { ifVersion: 0 })).version).toBe(2);
      expect((await kv.setMany([{ key: k("exp:c"), value: 2 }]))[0]?.version).toBe(2);
      expect(await kv.incr(k("exp:n"))).toEqual({ value: 1, version: 3 });
      expect(await versionOf(k("exp:d"))).toBe(2);
    });

    it("concurrent conditional writes on one key holding its version: exactly one wins, with the next version", async () => {
      const key = k("cas:one");
      for (let i = 1; i <= 3; i++) await kv.set(key, i);
      const outcomes = await Promise.allSettled(
        Array.from({ length: 12 }, (_, i) =>
          i % 3 === 2 ? kv.delete(key, { ifVersion: 3 }) : kv.set(key, `w${i}`, { ifVersion: 3 }),
        ),
      );
      const won = outcomes.filter((o) => o.status === "fulfilled");
      expect(won).toHaveLength(1);
      for (const o of outcomes) {
        if (o.status === "rejected") {
          expect((o.reason as KuraError).code).toBe("KV_VERSION_CONFLICT");
          expect((o.reason as KuraError).context.expected).toBe(3);
        }
      }
      const winner = (won[0] as PromiseFulfilledResult<unknown>).value;
      if (winner === true) {
        // The delete won: the key is absent, and its next write continues above.
        expect(await kv.getEntry(key)).toBeUndefined();
        expect((await kv.set(key, "next")).version).toBe(4);
      } else {
        expect(winner).toEqual({ version: 4 });
        expect(await versionOf(key)).toBe(4);
      }
    });

    it("scopes (tenants) count independently: the same key starts at 1 in each", async () => {
      const a = tenantKv(kv, `s${run}a`);
      const b = tenantKv(kv, `s${run}b`);
      await b.set("first", 1);
      for (let i = 0; i < 5; i++) await a.set("x", i);
      await a.incr("n");
      await a.delete("n");
      expect((await b.set("x", "b")).version).toBe(1);
      expect((await a.set("x", 5)).version).toBe(6);
      expect((await b.set("x", "b2")).version).toBe(2);
      expect(await b.incr("n")).toEqual({ value: 1, version: 1 });
      expect((await a.getEntry("x"))?.version).toBe(6);
    });

    it("tombstones are dropped after the retention (by the sweep without native TTL): the key may start again at 1", async () => {
      const retention = kv.tombstoneRetentionMs;
      expect(retention).toBeGreaterThan(0);
      await kv.set(k("prune:deleted"), 1);
      await kv.set(k("prune:deleted"), 2);
      await kv.delete(k("prune:deleted"));
      await kv.set(k("prune:kept"), 1);
      await kv.delete(k("prune:kept"));
      await kv.set(k("prune:expired"), 1, { ttlMs: h.ttlMs });
      await h.advance(h.ttlMs + 300);
      // Within the retention the tombstones stay, sweep or not.
      await kv.sweepExpired();
      expect((await kv.set(k("prune:kept"), 2)).version).toBe(2);
      await h.advance(retention + 300);
      await kv.sweepExpired();
      expect((await kv.set(k("prune:deleted"), "new")).version).toBe(1);
      expect((await kv.set(k("prune:expired"), "new")).version).toBe(1);
      expect((await kv.set(k("prune:kept"), 3)).version).toBe(3);
    });

    it("compare-and-set: a matching version writes, a stale one fails and changes nothing; 0 = create only", async () => {
      const key = k("cas");
      const created = await kv.set(key, "v1", { ifVersion: 0 });
      await expectKuraError(kv.set(key, "again", { ifVersion: 0 }), "KV_VERSION_CONFLICT");
      const next = await kv.set(key, "v2", { ifVersion: created.version });
      const err = await expectKuraError(
        kv.set(key, "stale", { ifVersion: created.version }),
        "KV_VERSION_CONFLICT",
      );
      expect(err.kind).toBe("ConditionFailed");
      expect(err.context).toMatchObject({ expected: created.version, actual: next.version });
      expect(await kv.getEntry(key)).toMatchObject({ value: "v2", version: next.version });
      await expectKuraError(kv.set(k("cas:absent"), "x", { ifVersion: 7 }), "KV_VERSION_CONFLICT");
      expect(await kv.get(k("cas:absent"))).toBeUndefined();
    });

    it("delete: true for a live key, false for an absent one; a conditional delete checks the version", async () => {
      const key = k("del");
      expect(await kv.delete(key)).toBe(false);
      const { version } = await kv.set(key, 1);
      await expectKuraError(kv.delete(key, { ifVersion: version + 1000 }), "KV_VERSION_CONFLICT");
      expect(await kv.get(key)).toBe(1);
      expect(await kv.delete(key, { ifVersion: version })).toBe(true);
      expect(await kv.get(key)).toBeUndefined();
      expect(await kv.delete(key, { ifVersion: 0 })).toBe(false);
    });

    it("incr: absent counts from 0, adds any safe integer, refuses non-counters and overflow unchanged", async () => {
      const key = k("incr");
      expect((await kv.incr(key)).value).toBe(1);
      expect((await kv.incr(key, { by: 5 })).value).toBe(6);
      expect((await kv.incr(key, { by: -10 })).value).toBe(-4);
      expect(await kv.get(key)).toBe(-4);
      await kv.set(k("incr:set"), 41);
      expect((await kv.incr(k("incr:set"))).value).toBe(42);
      await kv.set(k("incr:text"), "not a number");
      await expectKuraError(kv.incr(k("incr:text")), "KV_NOT_A_COUNTER");
      expect(await kv.get(k("incr:text"))).toBe("not a number");
      await kv.set(k("incr:float"), 1.5);
      await expectKuraError(kv.incr(k("incr:float")), "KV_NOT_A_COUNTER");
      await kv.set(k("incr:max"), Number.MAX_SAFE_INTEGER - 1);
      expect((await kv.incr(k("incr:max"))).value).toBe(Number.MAX_SAFE_INTEGER);
      await expectKuraError(kv.incr(k("incr:max")), "KV_NOT_A_COUNTER");
      expect(await kv.get(k("incr:max"))).toBe(Number.MAX_SAFE_INTEGER);
    });

    it("takeToken (stores that share it): of concurrent takes no more succeed than the burst; it refills", async () => {
      if (!kv.takeToken) return;
      const bucket = k("bucket");
      const takes = await Promise.all(
        Array.from({ length: 30 }, () => kv.takeToken?.(bucket, { perSecond: 5, burst: 10 })),
      );
      const taken = takes.filter((t) => t?.taken).length;
      // 10 at once, plus at most what refilled while the takes ran.
      expect(taken).toBeGreaterThanOrEqual(10);
      expect(taken).toBeLessThanOrEqual(11);
      const refused = takes.find((t) => t && !t.taken);
      expect(refused?.retryAfterMs).toBeGreaterThanOrEqual(1);
      expect(refused?.retryAfterMs).toBeLessThanOrEqual(200);
      // Buckets are not keys: nothing under the bucket's name is visible.
      expect(await kv.get(bucket)).toBeUndefined();
      await new Promise((r) => setTimeout(r, 450));
      expect((await kv.takeToken(bucket, { perSecond: 5, burst: 10 })).taken).toBe(true);
      await expect(kv.takeToken("", { perSecond: 5, burst: 10 })).rejects.toMatchObject({
        code: "KV_KEY_INVALID",
      });
    });

    it("concurrent increments never lose an update", async () => {
      const key = k("incr:race");
      const results = await Promise.all(Array.from({ length: 50 }, () => kv.incr(key)));
      expect(results.map((r) => r.value).sort((a, b) => a - b)).toEqual(
        Array.from({ length: 50 }, (_, i) => i + 1),
      );
      expect(new Set(results.map((r) => r.version)).size).toBe(50);
      expect(await kv.get(key)).toBe(50);
    });

    it("N concurrent CAS increments with retries: exactly N succeed, none is lost", async () => {
      const key = k("cas:race");
      await kv.set(key, 0);
      const workers = 20;
      let conflicts = 0;
      let successes = 0;
      await Promise.all(
        Array.from({ length: workers }, async () => {
          for (;;) {
            const entry = (await kv.getEntry<number>(key)) as KvEntry<number>;
            try {
              await kv.set(key, entry.value + 1, { ifVersion: entry.version });
              successes++;
              return;
            } catch (e) {
              if (!isKuraError(e, "ConditionFailed")) throw e;
              conflicts++;
            }
          }
        }),
      );
      expect(successes).toBe(workers);
      expect(await kv.get(key)).toBe(workers);
      // Everyone read the same version first, so at least the first round collided.
      expect(conflicts).toBeGreaterThan(0);
    });

    it("of racing creates (ifVersion 0) exactly one wins", async () => {
      const key = k("create:race");
      const outcomes = await Promise.allSettled(
        Array.from({ length: 10 }, (_, i) => kv.set(key, i, { ifVersion: 0 })),
      );
      const won = outcomes.flatMap((o, i) => (o.status === "fulfilled" ? [i] : []));
      expect(won).toHaveLength(1);
      for (const o of outcomes)
        if (o.status === "rejected") expect((o.reason as KuraError).code).toBe("KV_VERSION_CONFLICT");
      expect(await kv.get(key)).toBe(won[0]);
    });

    it("getMany and setMany keep order; setMany validates every item before writing any", async () => {
      const items = Array.from({ length: 30 }, (_, i) => ({ key: k(`many:${i}`), value: { i } }));
      const versions = await kv.setMany(items);
      expect(versions).toEqual(items.map(() => ({ version: 1 })));
      const read = await kv.getMany([k("many:3"), k("many:missing"), k("many:29"), k("many:0")]);
      expect(read).toEqual([{ i: 3 }, undefined, { i: 29 }, { i: 0 }]);
      expect(await kv.getMany([])).toEqual([]);
      await expectKuraError(
        kv.setMany([
          { key: k("many:new"), value: 1 },
          { key: "bad\u0000", value: 2 },
        ]),
        "KV_KEY_INVALID",
      );
      await expectKuraError(
        kv.setMany([
          { key: k("many:new"), value: 1 },
          { key: k("many:undef"), value: undefined },
        ]),
        "INVALID_ARGUMENT",
      );
      expect(await kv.get(k("many:new"))).toBeUndefined();
    });

    it("TTL: expired keys vanish from every read, count as absent, and are swept; a set without TTL removes it", async () => {
      const ttl = h.ttlMs;
      await kv.set(k("ttl:a"), "a", { ttlMs: ttl });
      await kv.setMany([{ key: k("ttl:b"), value: "b", ttlMs: ttl }]);
      await kv.set(k("ttl:keep"), "keep", { ttlMs: ttl });
      await kv.set(k("ttl:keep"), "keep"); // no TTL now
      await kv.set(k("ttl:long"), "long", { ttlMs: ttl * 100 });
      await kv.incr(k("ttl:counter"), { ttlMs: ttl });
      await kv.set(k("ttl:plain"), 1);
      await kv.incr(k("ttl:plain"), { ttlMs: ttl }); // existing key: keeps "never"
      const entry = await kv.getEntry(k("ttl:a"));
      expect(entry?.value).toBe("a");
      expect(entry?.expiresAt).toBeGreaterThan(Date.now() - 60_000);
      expect((await kv.getEntry(k("ttl:counter")))?.expiresAt).toBeDefined();
      expect((await kv.getEntry(k("ttl:keep")))?.expiresAt).toBeUndefined();
      expect((await kv.getEntry(k("ttl:plain")))?.expiresAt).toBeUndefined();
      expect(await kv.get(k("ttl:b"))).toBe("b");

      await h.advance(ttl + 300);

      for (const key of ["ttl:a", "ttl:b", "ttl:counter"]) {
        expect(await kv.get(k(key)), key).toBeUndefined();
        expect(await kv.getEntry(k(key)), key).toBeUndefined();
      }
      expect(await kv.getMany([k("ttl:a"), k("ttl:keep")])).toEqual([undefined, "keep"]);
      expect(await kv.get(k("ttl:long"))).toBe("long");
      expect(await kv.get(k("ttl:plain"))).toBe(2);
      const scanned = (await scanAll(kv, k("ttl:"), 100)).flat().map((e) => e.key);
      expect(scanned.sort()).toEqual([k("ttl:keep"), k("ttl:long"), k("ttl:plain")]);
      // Expired = absent: create-only succeeds, delete reports nothing deleted, incr restarts.
      expect(await kv.delete(k("ttl:b"))).toBe(false);
      await kv.set(k("ttl:a"), "again", { ifVersion: 0 });
      expect((await kv.incr(k("ttl:counter"))).value).toBe(1);

      const swept = await kv.sweepExpired();
      if (kv.capabilities.nativeTtl) expect(swept).toBe(0);
      expect(await kv.get(k("ttl:a"))).toBe("again");
      expect(await kv.get(k("ttl:keep"))).toBe("keep");
      expect(await kv.get(k("ttl:long"))).toBe("long");
      expect(await kv.get(k("ttl:counter"))).toBe(1);
    });

    it("sweepExpired removes only keys that are still expired (never a live or rewritten one)", async () => {
      if (kv.capabilities.nativeTtl) {
        expect(await kv.sweepExpired()).toBe(0);
        return;
      }
      const ttl = h.ttlMs;
      await kv.setMany(
        Array.from({ length: 25 }, (_, i) => ({ key: k(`sweep:${i}`), value: i, ttlMs: ttl })),
      );
      await kv.set(k("sweep:rewritten"), "old", { ttlMs: ttl });
      await kv.set(k("sweep:rewritten"), "new", { ttlMs: ttl * 100 });
      await kv.set(k("sweep:live"), "live");
      await h.advance(ttl + 300);
      expect(await kv.sweepExpired()).toBeGreaterThanOrEqual(25);
      expect(await kv.sweepExpired()).toBe(0);
      expect(await kv.get(k("sweep:rewritten"))).toBe("new");
      expect(await kv.get(k("sweep:live"))).toBe("live");
      expect(
        (await scanAll(kv, k("sweep:"), 100))
          .flat()
          .map((e) => e.key)
          .sort(),
      ).toEqual([k("sweep:live"), k("sweep:rewritten")]);
    });

    it("a sweep with a limit removes that many and leaves the rest for the next sweep", async () => {
      if (kv.capabilities.nativeTtl) return;
      await kv.sweepExpired();
      await kv.setMany(
        Array.from({ length: 25 }, (_, i) => ({ key: k(`limit:${i}`), value: i, ttlMs: h.ttlMs })),
      );
      await h.advance(h.ttlMs + 300);
      expect(await kv.sweepExpired({ limit: 10 })).toBe(10);
      expect(await kv.sweepExpired({ limit: 10 })).toBe(10);
      expect(await kv.sweepExpired()).toBe(5);
      expect(await kv.sweepExpired()).toBe(0);
    });

    it("calls issued without awaiting take effect in call order (reads, decisions and sweeps see earlier writes)", async () => {
      // Stores may group the writes of one turn (ADR 0023); none of this may tell.
      const w1 = kv.set(k("order:a"), "first");
      const read = kv.get(k("order:a"));
      const cas = kv.set(k("order:a"), "second", { ifVersion: 0 });
      // Refusals may come before the awaits below reach them (a store that commits
      // asynchronously answers reads later): they are checked there, not unhandled meanwhile.
      cas.catch(() => undefined);
      const w2 = kv.setMany([
        { key: k("order:a"), value: "third" },
        { key: k("order:b"), value: 1 },
      ]);
      const entry = kv.getEntry(k("order:a"));
      const inc = kv.incr(k("order:b"));
      const many = kv.getMany([k("order:a"), k("order:b"), k("order:none")]);
      const del = kv.delete(k("order:a"));
      const gone = kv.get(k("order:a"));
      const v1 = (await w1).version;
      expect(await read).toBe("first");
      await expectKuraError(cas, "KV_VERSION_CONFLICT");
      const [va] = (await w2).map((r) => r.version);
      expect(va).toBeGreaterThan(v1);
      expect(await entry).toMatchObject({ value: "third", version: va });
      expect((await inc).value).toBe(2);
      expect(await many).toEqual(["third", 2, undefined]);
      expect(await del).toBe(true);
      expect(await gone).toBeUndefined();
      // A compare-and-set right after an unawaited write holds that write's version.
      const w3 = kv.set(k("order:c"), 1);
      const w4 = kv.set(k("order:c"), 2, { ifVersion: 0 });
      w4.catch(() => undefined);
      await w3;
      await expectKuraError(w4, "KV_VERSION_CONFLICT");
      const { version } = (await kv.getEntry(k("order:c"))) as KvEntry;
      const winner = kv.set(k("order:c"), 3, { ifVersion: version });
      const loser = kv.set(k("order:c"), 4, { ifVersion: version });
      loser.catch(() => undefined);
      expect((await winner).version).toBeGreaterThan(version);
      await expectKuraError(loser, "KV_VERSION_CONFLICT");
      expect(await kv.get(k("order:c"))).toBe(3);
      if (!kv.capabilities.nativeTtl) {
        await kv.set(k("order:ttl"), "short", { ttlMs: h.ttlMs });
        await h.advance(h.ttlMs + 300);
        const blind = kv.set(k("order:other"), "written in the same turn");
        const swept = kv.sweepExpired();
        await blind;
        expect(await swept).toBeGreaterThanOrEqual(1);
        expect(await kv.get(k("order:ttl"))).toBeUndefined();
        expect(await kv.get(k("order:other"))).toBe("written in the same turn");
      }
    });

    it("scan pages over 10,000 keys visit each key; ordered stores give byte order, no repeats, at most limit per page", async () => {
      const total = 10_000;
      const prefix = k("big:");
      for (let start = 0; start < total; start += 1000) {
        await kv.setMany(
          Array.from({ length: 1000 }, (_, j) => ({
            key: `${prefix}${String(start + j).padStart(5, "0")}`,
            value: start + j,
          })),
        );
      }
      // Neighbours that must not be included.
      await kv.setMany([
        { key: k("big"), value: "no" },
        { key: k("big;"), value: "no" },
        { key: k("bigger:1"), value: "no" },
        { key: k("bi"), value: "no" },
      ]);
      const pages = await scanAll(kv, prefix, 1000);
      const keys = pages.flat().map((e) => e.key);
      expect(new Set(keys).size).toBe(total);
      expect(keys.every((key) => key.startsWith(prefix))).toBe(true);
      expect(pages.slice(0, -1).every((p) => p.length > 0)).toBe(true);
      const values = pages.flat();
      expect(values.every((e) => e.value === Number(e.key.slice(prefix.length)))).toBe(true);
      if (kv.capabilities.orderedScan) {
        expect(keys).toHaveLength(total);
        expect(pages.every((p) => p.length <= 1000)).toBe(true);
        expect(pages.length).toBe(10);
        expect([...keys].sort()).toEqual(keys);
      }
      const keysOnly = (await kv.scan(prefix, { limit: 10, keysOnly: true })).items;
      expect(keysOnly.length).toBeGreaterThan(0);
      expect(keysOnly.every((e) => e.value === undefined && e.version > 0)).toBe(true);
    });

    it("scan: cursors are bound to their prefix; glob characters in a prefix are literal; absent prefix is empty", async () => {
      await kv.setMany(
        Array.from({ length: 5 }, (_, i) => ({ key: k(`cur:${i}`), value: i })).concat([
          { key: k("glob[1]*?\\:a"), value: 1 },
          { key: k("glob[1]*?\\:b"), value: 2 },
          { key: k("glob1x:a"), value: 3 },
          { key: k("globX:a"), value: 4 },
        ]),
      );
      const first = await kv.scan(k("cur:"), { limit: 2 });
      if (first.cursor) {
        await expectKuraError(kv.scan(k("other:"), { cursor: first.cursor }), "CURSOR_INVALID");
      }
      await expectKuraError(kv.scan(k("cur:"), { cursor: "not-a-cursor" }), "CURSOR_INVALID");
      await expectKuraError(kv.scan(k("cur:"), { limit: 0 }), "INVALID_ARGUMENT");
      const glob = (await scanAll(kv, k("glob[1]*?\\:"), 100)).flat().map((e) => e.key);
      expect(glob.sort()).toEqual([k("glob[1]*?\\:a"), k("glob[1]*?\\:b")]);
      const none = await kv.scan(k("nothing-here:"));
      expect(none).toEqual({ items: [], cursor: undefined });
    });

    it("forgetPrefix removes values and tombstones under a prefix, and nothing beside it: keys start again at 1", async () => {
      const gone = k("forget:t1:");
      const beside = k("forget:t10:");
      await kv.set(`${gone}a`, "a1");
      await kv.set(`${gone}a`, "a2");
      await kv.set(`${gone}b`, "b1");
      await kv.delete(`${gone}b`); // a tombstone
      await kv.incr(`${gone}c`);
      await kv.set(`${gone}d`, "short", { ttlMs: 60_000 });
      await kv.set(`${beside}a`, "kept");
      await kv.delete(`${beside}t`);
      await kv.set(`${beside}t`, "t1");
      await kv.delete(`${beside}t`);
      // Unawaited writes issued just before are forgotten too.
      void kv.set(`${gone}e`, "late");
      expect(await kv.forgetPrefix(gone)).toBe(4);
      expect((await scanAll(kv, gone, 10)).flat()).toEqual([]);
      expect(await kv.getMany([`${gone}a`, `${gone}b`, `${gone}c`, `${gone}d`, `${gone}e`])).toEqual([
        undefined,
        undefined,
        undefined,
        undefined,
        undefined,
      ]);
      // No version is kept: every key starts again at 1, a deleted one too.
      expect((await kv.set(`${gone}a`, "again")).version).toBe(1);
      expect((await kv.set(`${gone}b`, "again", { ifVersion: 0 })).version).toBe(1);
      expect(await kv.incr(`${gone}c`)).toEqual({ value: 1, version: 1 });
      // The neighbouring prefix keeps its value and its tombstone's version.
      expect(await kv.getEntry(`${beside}a`)).toMatchObject({ value: "kept", version: 1 });
      expect((await kv.set(`${beside}t`, "t2")).version).toBe(2);
      expect(await kv.forgetPrefix(gone)).toBe(3);
      await expectKuraError(kv.forgetPrefix(""), "KV_KEY_INVALID");
      expect(await kv.get(`${beside}a`)).toBe("kept");
    });

    it("tenant namespaces never see each other's keys (a vs ab vs a.b)", async () => {
      const tenants = [`t${run}a`, `t${run}ab`, `t${run}a.b`];
      const views = tenants.map((t) => tenantKv(kv, t));
      for (const [i, view] of views.entries()) {
        await view.set("session:s1:meta:lang", `lang-${i}`);
        await view.setMany([{ key: "config:flag", value: i }]);
        await view.incr("counter");
      }
      for (const [i, view] of views.entries()) {
        expect(await view.get("session:s1:meta:lang")).toBe(`lang-${i}`);
        expect(await view.getMany(["config:flag"])).toEqual([i]);
        expect(await view.get("counter")).toBe(1);
        const all = await view.scanAll();
        expect(all.map((e) => e.key).sort()).toEqual(["config:flag", "counter", "session:s1:meta:lang"]);
      }
      await (views[0] as (typeof views)[0]).delete("counter");
      expect(await (views[1] as (typeof views)[0]).get("counter")).toBe(1);
      await expectKuraError((views[0] as (typeof views)[0]).get(""), "KV_KEY_INVALID");
      expect(() => tenantKv(kv, "a:b")).toThrow(/tenant id/);
      expect(() => tenantKv(kv, "../x")).toThrow(/tenant id/);
    });

    it("persistent stores keep values, versions and tombstones across a reopen", async () => {
      if (!kv.capabilities.persistent || !h.reopen) return;
      await kv.set(k("persist"), { kept: true });
      const { version } = await kv.set(k("persist"), { kept: true });
      expect(version).toBe(2);
      await kv.set(k("persist:deleted"), 1);
      await kv.set(k("persist:deleted"), 2);
      await kv.delete(k("persist:deleted"));
      await kv.set(k("persist:expiring"), 1, { ttlMs: h.ttlMs });
      kv = await h.reopen();
      h.store = kv;
      expect(await kv.getEntry(k("persist"))).toMatchObject({ value: { kept: true }, version });
      expect((await kv.set(k("persist"), 2)).version).toBe(3);
      expect((await kv.set(k("persist:deleted"), 3)).version).toBe(3);
      await h.advance(h.ttlMs + 300);
      await kv.sweepExpired();
      kv = await h.reopen();
      h.store = kv;
      expect((await kv.set(k("persist:expiring"), 2)).version).toBe(2);
    });

    it("a closed store refuses every operation", async () => {
      await kv.close();
      await expectKuraError(kv.get(k("closed")), "CLOSED");
      await expectKuraError(kv.set(k("closed"), 1), "CLOSED");
      await kv.close(); // idempotent
    });
  });
}
