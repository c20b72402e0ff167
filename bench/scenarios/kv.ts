/**
 * KV plane (SPEC §5 "sessions KV": ≥ 0.8 × raw lmdb-js and raw ioredis on the same operations):
 * get/set ops/s, single and batched, through Kura's lmdb and redis adapters beside the same
 * operations done by hand — lmdb-js `open()` + `put`/`get`, ioredis `SET`/`GET`, pipelined
 * `SET`s and `MGET` where Kura batches — with the same MessagePack-encoded value. Then the
 * tiered cache: hit latency per tier and a miss that loads from disk, beside reading the file.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Redis as RedisClient } from "ioredis";
import { pack, unpack } from "msgpackr";
import { lmdbKvStore } from "../../src/adapters/kv/lmdb/index.js";
import { globEscape, redisKvStore } from "../../src/adapters/kv/redis/index.js";
import { TieredCache } from "../../src/engine/tiered-cache.js";
import type { KvStore } from "../../src/ports/kv-store.js";
import { type BenchContext, latencies, ratioOf, type Scenario, throughput } from "../lib.js";

const REDIS_URL = "redis://127.0.0.1:6379/0";
const BATCH = 100;
const CONCURRENCY = 16;

/** A session-sized value (~150 bytes encoded). */
function sessionValue(i: number) {
  return {
    user: `u${i}`,
    lang: "ja",
    roles: ["reader", "writer"],
    seen: 1_700_000_000_000 + i,
    cart: [i, i + 1],
  };
}

interface Sizes {
  single: number;
  batched: number;
}

interface Ops {
  set(i: number): Promise<unknown>;
  get(i: number): Promise<unknown>;
  setBatch(start: number): Promise<unknown>;
  getBatch(start: number): Promise<unknown>;
}

async function compare(
  ctx: BenchContext,
  backend: string,
  baseline: string,
  sizes: Sizes,
  kura: Ops,
  raw: Ops,
) {
  const batches = sizes.batched / BATCH;
  // Writes first (so the reads find every key), alternating Kura and raw to share any drift.
  const rows: [string, string, number, number][] = [];
  const kSet = await throughput(sizes.single, CONCURRENCY, kura.set);
  const rSet = await throughput(sizes.single, CONCURRENCY, raw.set);
  rows.push(["set", `${baseline} set`, kSet, rSet]);
  const kGet = await throughput(sizes.single, CONCURRENCY, kura.get);
  const rGet = await throughput(sizes.single, CONCURRENCY, raw.get);
  rows.push(["get", `${baseline} get`, kGet, rGet]);
  const kSetB = (await throughput(batches, 4, (b) => kura.setBatch(b * BATCH), 2)) * BATCH;
  const rSetB = (await throughput(batches, 4, (b) => raw.setBatch(b * BATCH), 2)) * BATCH;
  rows.push([`set batched ×${BATCH}`, `${baseline} batched set`, kSetB, rSetB]);
  const kGetB = (await throughput(batches, 4, (b) => kura.getBatch(b * BATCH), 2)) * BATCH;
  const rGetB = (await throughput(batches, 4, (b) => raw.getBatch(b * BATCH), 2)) * BATCH;
  rows.push([`get batched ×${BATCH}`, `${baseline} batched get`, kGetB, rGetB]);
  for (const [metric, base, value, baseValue] of rows) {
    ctx.record({
      scenario: `kv ${backend}`,
      metric,
      value,
      unit: "ops/s",
      baseline: base,
      baseline_value: baseValue,
      ratio: ratioOf(value, baseValue),
    });
  }
}

function kuraOps(kv: KvStore, prefix: string, keys: number): Ops {
  const key = (i: number) => `${prefix}${i % keys}`;
  return {
    set: (i) => kv.set(key(i), sessionValue(i)),
    get: (i) => kv.get(key(i)),
    setBatch: (start) =>
      kv.setMany(
        Array.from({ length: BATCH }, (_, j) => ({ key: key(start + j), value: sessionValue(start + j) })),
      ),
    getBatch: (start) => kv.getMany(Array.from({ length: BATCH }, (_, j) => key(start + j))),
  };
}

async function lmdbRows(ctx: BenchContext, sizes: Sizes): Promise<void> {
  const { open } = await import("lmdb");
  const keys = Math.max(sizes.single, sizes.batched);
  const kv = await lmdbKvStore.create(lmdbKvStore.parseOptions({ path: join(ctx.dir, "lmdb-kura") }), {
    durability: "os",
  });
  // The same durability (no fsync per commit) and the library's own MessagePack encoding.
  const env = open({ path: join(ctx.dir, "lmdb-raw"), noSync: true });
  const key = (i: number) => `acme:session:${i % keys}`;
  const raw: Ops = {
    set: (i) => env.put(key(i), sessionValue(i)),
    get: async (i) => env.get(key(i)),
    setBatch: async (start) => {
      let last: Promise<boolean> | undefined;
      for (let j = 0; j < BATCH; j++) last = env.put(key(start + j), sessionValue(start + j));
      await last;
    },
    getBatch: async (start) => Array.from({ length: BATCH }, (_, j) => env.get(key(start + j))),
  };
  try {
    await compare(ctx, "lmdb", "lmdb-js", sizes, kuraOps(kv, "acme:session:", keys), raw);
  } finally {
    await kv.close();
    await env.close();
  }
}

async function redisClient(): Promise<RedisClient | undefined> {
  const { Redis } = await import("ioredis");
  const client = new Redis(REDIS_URL, {
    lazyConnect: true,
    connectTimeout: 1000,
    maxRetriesPerRequest: 1,
    retryStrategy: () => null,
  });
  client.on("error", () => undefined);
  try {
    await client.connect();
    return client;
  } catch {
    client.disconnect();
    return undefined;
  }
}

async function dropPrefix(client: RedisClient, prefix: string): Promise<void> {
  let cursor = "0";
  do {
    const [next, keys] = await client.scan(cursor, "MATCH", `${globEscape(prefix)}*`, "COUNT", 1000);
    cursor = next;
    if (keys.length > 0) await client.del(...keys);
  } while (cursor !== "0");
}

async function redisRows(ctx: BenchContext, sizes: Sizes): Promise<void> {
  const client = await redisClient();
  if (!client) {
    ctx.log(`redis not reachable at ${REDIS_URL}: skipping the kv redis rows`);
    return;
  }
  const run = randomUUID().slice(0, 8);
  const kuraPrefix = `kura-bench-${run}:`;
  const rawPrefix = `raw-bench-${run}:`;
  const keys = Math.max(sizes.single, sizes.batched);
  const kv = await redisKvStore.create(redisKvStore.parseOptions({ url: REDIS_URL, key_prefix: kuraPrefix }));
  const key = (i: number) => `${rawPrefix}acme:session:${i % keys}`;
  const raw: Ops = {
    set: (i) => client.set(key(i), pack(sessionValue(i))),
    get: async (i) => {
      const b = await client.getBuffer(key(i));
      return b && unpack(b);
    },
    setBatch: (start) => {
      const pipeline = client.pipeline();
      for (let j = 0; j < BATCH; j++) pipeline.set(key(start + j), pack(sessionValue(start + j)));
      return pipeline.exec();
    },
    getBatch: async (start) => {
      const values = await client.mgetBuffer(...Array.from({ length: BATCH }, (_, j) => key(start + j)));
      return values.map((b) => b && unpack(b));
    },
  };
  try {
    await compare(ctx, "redis", "ioredis", sizes, kuraOps(kv, "acme:session:", keys), raw);
  } finally {
    await kv.close();
    await dropPrefix(client, kuraPrefix);
    await dropPrefix(client, rawPrefix);
    client.disconnect();
  }
}

async function cacheRows(ctx: BenchContext, quick: boolean): Promise<void> {
  const n = quick ? 500 : 5000;
  const size = 16 * 1024;
  const files = join(ctx.dir, "bodies");
  await mkdir(files, { recursive: true });
  const bodies = Array.from({ length: 64 }, () => randomBytes(size));
  await Promise.all(bodies.map((b, i) => writeFile(join(files, `${i}.bin`), b)));
  const load = (i: number) => () => readFile(join(files, `${i % 64}.bin`));
  const hot = await TieredCache.open({ hotBytes: 64 * 1024 * 1024 });
  const warm = await TieredCache.open({
    hotBytes: 1,
    warm: { dir: join(ctx.dir, "warm"), maxBytes: 64 * 1024 * 1024 },
  });
  for (let i = 0; i < 64; i++) {
    await hot.set(`k${i}`, bodies[i] as Buffer);
    await warm.set(`k${i}`, bodies[i] as Buffer);
  }
  const direct = await latencies(n, (i) => load(i)());
  const hotHit = await latencies(n, (i) => hot.getOrLoad(`k${i % 64}`, load(i)));
  const warmHit = await latencies(n, (i) => warm.getOrLoad(`k${i % 64}`, load(i)));
  let miss = 0;
  const missLoad = await latencies(n, async (i) => {
    await hot.getOrLoad(`miss${miss++}`, load(i));
  });
  for (const [metric, value] of [
    ["hot hit p50 (16 KiB)", hotHit.p50],
    ["warm (disk) hit p50 (16 KiB)", warmHit.p50],
    ["miss + load p50 (16 KiB)", missLoad.p50],
  ] as const) {
    ctx.record({
      scenario: "tiered cache",
      metric,
      value,
      unit: "ms",
      baseline: "fs.readFile p50",
      baseline_value: direct.p50,
      ratio: ratioOf(value, direct.p50, false),
    });
  }
  const stats = hot.stats();
  ctx.log(`cache hot tier: ${stats.tiers?.hot?.hits} hits, ${stats.tiers?.hot?.misses} misses`);
}

export const kv: Scenario = {
  name: "kv",
  async run(ctx: BenchContext) {
    await mkdir(ctx.dir, { recursive: true });
    const sizes: Sizes = ctx.quick
      ? { single: 5_000, batched: 20_000 }
      : { single: 50_000, batched: 200_000 };
    await lmdbRows(ctx, sizes);
    await redisRows(ctx, sizes);
    await cacheRows(ctx, ctx.quick);
  },
};
