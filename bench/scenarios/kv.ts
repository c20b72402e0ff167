/**
 * KV plane (SPEC §5 "sessions KV": ≥ 0.8 × raw lmdb-js and raw ioredis on the same operations):
 * get/set ops/s, single (16 concurrent callers) and batched (×100, 4 concurrent), through the
 * tenant KV namespace (`domains/kv.ts`, what the public API hands out) over Kura's lmdb and redis
 * adapters, beside the fastest plain use of each library with the same MessagePack values:
 * - lmdb-js: the faster of `put` (its own write batching) and `putSync` (a commit per call);
 *   `get`; batched, the faster of 100 `put`s awaited together and one `transactionSync` of 100
 *   `putSync`s; `get` ×100;
 * - ioredis: the faster of `SET`/`GET` on a plain client and on an auto-pipelining one; batched,
 *   the faster of a pipeline of 100 `SET`s and one `MSET`; one `MGET`.
 * Kura does more on each write — validation, a version for compare-and-set, framing — and keeps
 * doing it here. Each row runs in rounds, Kura and the library alternating (who goes first
 * alternates too), and reports the median of each, so machine noise hits both alike. Then the
 * tiered cache: hit latency per tier and a miss that loads from disk, beside reading the file.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Redis as RedisClient } from "ioredis";
import { pack, unpack } from "msgpackr";
import { lmdbKvStore } from "../../src/adapters/kv/lmdb/index.js";
import { globEscape, redisKvStore } from "../../src/adapters/kv/redis/index.js";
import { type KvNamespace, tenantKv } from "../../src/domains/kv.js";
import { TieredCache } from "../../src/engine/tiered-cache.js";
import { type BenchContext, latencies, ratioOf, type Scenario, throughput } from "../lib.js";

const REDIS_URL = "redis://127.0.0.1:6379/0";
const BATCH = 100;
const CONCURRENCY = 16;
const BATCH_CONCURRENCY = 4;

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
  rounds: number;
}

type Op = (i: number) => Promise<unknown>;

interface KuraOps {
  set: Op;
  get: Op;
  setBatch: Op;
  getBatch: Op;
}

/** Plain library calls; where there are several ways, variants by name (the fastest is the baseline). */
interface RawOps {
  set: Record<string, Op>;
  get: Record<string, Op>;
  setBatch: Record<string, Op>;
  getBatch: Op;
}

function variants(ops: Record<string, Op>, run: (op: Op) => () => Promise<number>) {
  return Object.fromEntries(Object.entries(ops).map(([name, op]) => [name, run(op)]));
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

/** Median ops/s of Kura and of each baseline over alternating rounds. */
async function rounds(
  count: number,
  kura: () => Promise<number>,
  raw: Record<string, () => Promise<number>>,
): Promise<{ kura: number; raw: Record<string, number> }> {
  const k: number[] = [];
  const r: Record<string, number[]> = Object.fromEntries(Object.keys(raw).map((name) => [name, []]));
  for (let round = 0; round < count; round++) {
    if (round % 2 === 1) for (const [name, run] of Object.entries(raw)) r[name]?.push(await run());
    k.push(await kura());
    if (round % 2 === 0) for (const [name, run] of Object.entries(raw)) r[name]?.push(await run());
  }
  return {
    kura: median(k),
    raw: Object.fromEntries(Object.entries(r).map(([name, xs]) => [name, median(xs)])),
  };
}

async function compare(
  ctx: BenchContext,
  backend: string,
  library: string,
  sizes: Sizes,
  kura: KuraOps,
  raw: RawOps,
) {
  const batches = sizes.batched / BATCH;
  const single = (op: Op) => () => throughput(sizes.single, CONCURRENCY, op);
  const batched = (op: Op) => async () =>
    (await throughput(batches, BATCH_CONCURRENCY, (b) => op(b * BATCH), 2)) * BATCH;
  // Writes first (so the reads find every key).
  const rows: [string, string, { kura: number; raw: Record<string, number> }][] = [
    ["set", "set", await rounds(sizes.rounds, single(kura.set), variants(raw.set, single))],
    ["get", "get", await rounds(sizes.rounds, single(kura.get), variants(raw.get, single))],
    [
      `set batched ×${BATCH}`,
      "batched set",
      await rounds(sizes.rounds, batched(kura.setBatch), variants(raw.setBatch, batched)),
    ],
    [
      `get batched ×${BATCH}`,
      "batched get",
      await rounds(sizes.rounds, batched(kura.getBatch), { mget: batched(raw.getBatch) }),
    ],
  ];
  for (const [metric, what, result] of rows) {
    const [name, baseValue] = Object.entries(result.raw).sort((a, b) => b[1] - a[1])[0] as [string, number];
    const variants = Object.keys(result.raw).length;
    ctx.record({
      scenario: `kv ${backend}`,
      metric,
      value: result.kura,
      unit: "ops/s",
      baseline: variants > 1 ? `${library} ${what} (${name})` : `${library} ${what}`,
      baseline_value: baseValue,
      ratio: ratioOf(result.kura, baseValue),
    });
  }
}

/** Kura's side: the tenant's KV namespace, keys `acme:session:{i}` like the raw side's. */
function kuraOps(ns: KvNamespace, keys: number): KuraOps {
  const key = (i: number) => `${i % keys}`;
  return {
    set: (i) => ns.set(key(i), sessionValue(i)),
    get: (i) => ns.get(key(i)),
    setBatch: (start) =>
      ns.setMany(
        Array.from({ length: BATCH }, (_, j) => ({ key: key(start + j), value: sessionValue(start + j) })),
      ),
    getBatch: (start) => ns.getMany(Array.from({ length: BATCH }, (_, j) => key(start + j))),
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
  const raw: RawOps = {
    set: {
      put: (i) => env.put(key(i), sessionValue(i)),
      putSync: async (i) => env.putSync(key(i), sessionValue(i)),
    },
    get: { get: async (i) => env.get(key(i)) },
    setBatch: {
      put: async (start) => {
        let last: Promise<boolean> | undefined;
        for (let j = 0; j < BATCH; j++) last = env.put(key(start + j), sessionValue(start + j));
        await last;
      },
      transactionSync: async (start) =>
        env.transactionSync(() => {
          for (let j = 0; j < BATCH; j++) env.putSync(key(start + j), sessionValue(start + j));
        }),
    },
    getBatch: async (start) => Array.from({ length: BATCH }, (_, j) => env.get(key(start + j))),
  };
  try {
    await compare(ctx, "lmdb", "lmdb-js", sizes, kuraOps(tenantKv(kv, "acme").sub("session:"), keys), raw);
  } finally {
    await kv.close();
    await env.close();
  }
}

async function redisClient(enableAutoPipelining = false): Promise<RedisClient | undefined> {
  const { Redis } = await import("ioredis");
  const client = new Redis(REDIS_URL, {
    enableAutoPipelining,
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
  const piped = await redisClient(true);
  if (!client || !piped) {
    client?.disconnect();
    piped?.disconnect();
    ctx.log(`redis not reachable at ${REDIS_URL}: skipping the kv redis rows`);
    return;
  }
  const run = randomUUID().slice(0, 8);
  const kuraPrefix = `kura-bench-${run}:`;
  const rawPrefix = `raw-bench-${run}:`;
  const keys = Math.max(sizes.single, sizes.batched);
  const kv = await redisKvStore.create(redisKvStore.parseOptions({ url: REDIS_URL, key_prefix: kuraPrefix }));
  const key = (i: number) => `${rawPrefix}acme:session:${i % keys}`;
  const raw: RawOps = {
    set: {
      SET: (i) => client.set(key(i), pack(sessionValue(i))),
      "SET, auto-pipelined": (i) => piped.set(key(i), pack(sessionValue(i))),
    },
    get: {
      GET: async (i) => {
        const b = await client.getBuffer(key(i));
        return b && unpack(b);
      },
      "GET, auto-pipelined": async (i) => {
        const b = await piped.getBuffer(key(i));
        return b && unpack(b);
      },
    },
    setBatch: {
      pipeline: (start) => {
        const pipeline = client.pipeline();
        for (let j = 0; j < BATCH; j++) pipeline.set(key(start + j), pack(sessionValue(start + j)));
        return pipeline.exec();
      },
      MSET: (start) => {
        const args: (string | Buffer)[] = [];
        for (let j = 0; j < BATCH; j++) args.push(key(start + j), pack(sessionValue(start + j)));
        return client.mset(...args);
      },
    },
    getBatch: async (start) => {
      const values = await client.mgetBuffer(...Array.from({ length: BATCH }, (_, j) => key(start + j)));
      return values.map((b) => b && unpack(b));
    },
  };
  try {
    await compare(ctx, "redis", "ioredis", sizes, kuraOps(tenantKv(kv, "acme").sub("session:"), keys), raw);
  } finally {
    await kv.close();
    await dropPrefix(client, kuraPrefix);
    await dropPrefix(client, rawPrefix);
    client.disconnect();
    piped.disconnect();
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
      ? { single: 10_000, batched: 20_000, rounds: 3 }
      : { single: 50_000, batched: 200_000, rounds: 5 };
    await lmdbRows(ctx, sizes);
    await redisRows(ctx, sizes);
    await cacheRows(ctx, ctx.quick);
  },
};
