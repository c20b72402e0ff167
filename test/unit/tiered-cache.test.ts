import { randomBytes } from "node:crypto";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { TieredCache } from "../../src/engine/tiered-cache.js";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "kura-tiered-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function warmFiles(root: string): Promise<string[]> {
  const out: string[] = [];
  for (const sub of await readdir(root))
    for (const f of await readdir(join(root, sub))) out.push(join(root, sub, f));
  return out;
}

describe("TieredCache", () => {
  it("hot only: hits and misses counted, bounded by bytes with LRU eviction", async () => {
    const cache = await TieredCache.open({ hotBytes: 300, hotMaxEntryBytes: 200 });
    expect(await cache.get("a")).toBeUndefined();
    await cache.set("a", Buffer.alloc(100, 1));
    await cache.set("b", Buffer.alloc(100, 2));
    expect((await cache.get("a"))?.[0]).toBe(1); // a is now most recent
    await cache.set("c", Buffer.alloc(150, 3)); // over 300: evicts b (least recent)
    expect(await cache.get("b")).toBeUndefined();
    expect((await cache.get("a"))?.[0]).toBe(1);
    await cache.set("big", Buffer.alloc(250)); // above the entry limit: not cached
    expect(await cache.get("big")).toBeUndefined();
    const stats = cache.stats();
    expect(stats).toMatchObject({ hits: 2, misses: 3, entries: 2, bytes: 250 });
    expect(stats.tiers?.hot).toMatchObject({ hits: 2, misses: 3 });
    expect(stats.tiers?.warm).toBeUndefined();
  });

  it("warm tier: a value evicted from memory is served from disk and promoted back", async () => {
    const cache = await TieredCache.open({
      hotBytes: 1000,
      hotMaxEntryBytes: 1000,
      warm: { dir, maxBytes: 10_000 },
    });
    const a = randomBytes(600);
    const b = randomBytes(600);
    await cache.set("t\u0000a", a);
    await cache.set("t\u0000b", b); // hot holds 1000 bytes: a is evicted from memory, kept on disk
    expect((await cache.get("t\u0000a"))?.equals(a)).toBe(true); // warm hit, promoted
    expect((await cache.get("t\u0000a"))?.equals(a)).toBe(true); // hot hit now
    const s = cache.stats();
    expect(s.tiers?.hot).toMatchObject({ hits: 1, misses: 1 });
    expect(s.tiers?.warm).toMatchObject({ hits: 1, misses: 0, entries: 2, bytes: 1200 });
    expect(s).toMatchObject({ hits: 2, misses: 0 });
  });

  it("warm tier is bounded by bytes and evicts least recently used files from disk", async () => {
    const cache = await TieredCache.open({ hotBytes: 1, warm: { dir, maxBytes: 2500, maxEntryBytes: 2000 } });
    for (const k of ["k1", "k2", "k3"]) await cache.set(k, Buffer.alloc(1000, k.charCodeAt(1)));
    expect(cache.stats().tiers?.warm).toMatchObject({ entries: 2, bytes: 2000 });
    expect(await cache.get("k1")).toBeUndefined();
    expect((await cache.get("k2"))?.[0]).toBe("2".charCodeAt(0));
    expect((await warmFiles(dir)).length).toBe(2);
    await cache.set("huge", Buffer.alloc(2100)); // above maxEntryBytes: skipped
    expect((await warmFiles(dir)).length).toBe(2);
  });

  it("getOrLoad reads the cold tier once per key, even for concurrent callers", async () => {
    const cache = await TieredCache.open({ hotBytes: 10_000, warm: { dir, maxBytes: 10_000 } });
    let loads = 0;
    const load = async () => {
      loads++;
      await new Promise((r) => setTimeout(r, 10));
      return Buffer.from("body from the store");
    };
    const results = await Promise.all(Array.from({ length: 5 }, () => cache.getOrLoad("m1", load)));
    expect(results.every((r) => r.toString() === "body from the store")).toBe(true);
    expect(loads).toBe(1);
    expect((await cache.getOrLoad("m1", load)).toString()).toBe("body from the store");
    expect(loads).toBe(1);
    expect(cache.stats().tiers?.cold?.hits).toBe(1);
    await expect(cache.getOrLoad("m2", async () => Promise.reject(new Error("store down")))).rejects.toThrow(
      "store down",
    );
    expect(await cache.get("m2")).toBeUndefined();
  });

  it("the warm directory survives a reopen; damaged files are misses and are removed", async () => {
    const first = await TieredCache.open({ hotBytes: 1, warm: { dir, maxBytes: 100_000 } });
    await first.set("keep", Buffer.from("kept across restarts"));
    await first.set("damage", Buffer.from("will be damaged"));
    const files = await warmFiles(dir);
    for (const f of files) {
      const bytes = await readFile(f);
      if (bytes.includes(Buffer.from("will be damaged"))) {
        bytes.writeUInt8((bytes.at(-1) as number) ^ 0xff, bytes.length - 1);
        await writeFile(f, bytes);
      }
    }
    await writeFile(join(dir, "00", "junk.tmp-abc"), "partial write").catch(async () => {
      // 00/ may not exist; a stray temp file anywhere in a subdirectory will do
      const sub = (await readdir(dir))[0] as string;
      await writeFile(join(dir, sub, "x.tmp-abc"), "partial write");
    });
    const second = await TieredCache.open({ hotBytes: 1, warm: { dir, maxBytes: 100_000 } });
    expect((await second.get("keep"))?.toString()).toBe("kept across restarts");
    expect(await second.get("damage")).toBeUndefined();
    expect((await warmFiles(dir)).length).toBe(1);
  });

  it("delete and deletePrefix remove entries from every tier", async () => {
    const cache = await TieredCache.open({ hotBytes: 10_000, warm: { dir, maxBytes: 10_000 } });
    await cache.set("t1\u0000m1", Buffer.from("a"));
    await cache.set("t1\u0000m2", Buffer.from("b"));
    await cache.set("t2\u0000m1", Buffer.from("c"));
    await cache.deletePrefix("t1\u0000");
    await cache.delete("nope");
    expect(await cache.get("t1\u0000m1")).toBeUndefined();
    expect(await cache.get("t1\u0000m2")).toBeUndefined();
    expect((await cache.get("t2\u0000m1"))?.toString()).toBe("c");
    expect((await warmFiles(dir)).length).toBe(1);
    await cache.delete("t2\u0000m1");
    expect((await warmFiles(dir)).length).toBe(0);
  });
});
