/**
 * Vectors (SPEC §5 "vectors": on 100,000 × 768, fast p95 ≤ 1 ms at recall@10 ≥ 0.98, index
 * memory ≤ 120 MB with int8, build ≤ 40 s). Data: a fixed-seed Gaussian mixture with held-out
 * queries and exact f32 cosine top-10 as the truth (`bench/vector-data.ts`).
 *
 * For each quantization (f32, f16, i8), Kura's embedded adapter (`openUsearchVectorIndex`, with
 * its directory: graph in memory, items and f32 vectors in LMDB, and for i8 the 16-bit copy of
 * the vectors its re-ranking reads, in memory) is measured beside
 *   - usearch alone, built with the same parameters and asked for the same number of candidates
 *     per mode (the adapter's exported `candidates()`), f16/i8 candidates re-ranked by exact f32
 *     distance from memory (the adapter reads LMDB, or its 16-bit copy), `accurate` = usearch's `exactSearch`
 *     on one thread (the limit: what the adapter's bookkeeping costs). Index memory is the
 *     serialized size as the library writes it (the JS binding exposes no `memory_usage()`), for
 *     the raw index and for the graph file the adapter saves;
 *   - LanceDB with an IVF_HNSW_SQ index (8-bit scalar quantization, cosine) on the same rows,
 *     `fast` ↔ `ef(32)`, `balanced` ↔ `ef(128)`, `accurate` ↔ `bypassVectorIndex()` (flat).
 * Then a sweep of candidate counts on usearch alone at the adapter's graph degree and half of it (which reaches
 * recall@10 ≥ 0.98, at what p95), and hnswlib-node against usearch at the same graph parameters
 * (ADR 0013).
 *
 * Then Kura's faiss adapter, IVF-PQ and IVF-Flat, beside Kura's usearch f32 (`vectors-faiss.ts`).
 *
 * Options: `--no-faiss` skips the FAISS rows; `--quantizations=f16,i8` measures only those (default all three); `--no-sweep` skips
 * the sweep and hnswlib-node (the comparison of Kura with usearch alone stays);
 * `--rerank-copy=f16|bf16|none` sets the adapter's re-ranking copy (default: the adapter's).
 */
import { mkdir, readdir, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import hnswlib from "hnswlib-node";
import { exactSearch, Index, MetricKind, ScalarKind } from "usearch";
import {
  candidates,
  DEFAULT_CONNECTIVITY,
  defaultRerankCopy,
  openUsearchVectorIndex,
  type Quantization,
  type RerankCopy,
  rerankWidth,
} from "../../src/adapters/vector/usearch/index.js";
import type { VectorMode } from "../../src/ports/vector-index.js";
import { type BenchContext, ratioOf, type Scenario } from "../lib.js";
import {
  exactTopK,
  gaussianMixture,
  type MixtureOptions,
  recallAtK,
  row,
  type VectorDataset,
} from "../vector-data.js";
import { faissRows } from "./vectors-faiss.js";

const K = 10;
const MODES: VectorMode[] = ["fast", "balanced", "accurate"];
const QUANTIZATIONS: Quantization[] = ["f32", "f16", "i8"];
const SCALARS: Record<Quantization, ScalarKind> = {
  f32: ScalarKind.F32,
  f16: ScalarKind.F16,
  i8: ScalarKind.I8,
};
/** The adapter's graph parameters (src/adapters/vector/usearch/index.ts), mirrored for the raw index. */
const CONNECTIVITY = DEFAULT_CONNECTIVITY;
const EXPANSION_ADD = 128;
const EXPANSION_SEARCH = 32;
const SWEEP = [32, 48, 64, 96, 128, 192, 256];
/** Graph degrees swept on usearch alone: the adapter's default, and half of it. */
const SWEEP_CONNECTIVITY = [CONNECTIVITY, CONNECTIVITY / 2];
const LANCE_SETTINGS: Record<VectorMode, string> = {
  fast: "ef 32",
  balanced: "ef 128",
  accurate: "flat (bypassVectorIndex)",
};
const RERANK_COPIES: RerankCopy[] = ["f16", "bf16", "none"];
const TARGET = { p95: 1, recall: 0.98, memoryMb: 120, buildS: 40 };

interface Sizes {
  mixture: MixtureOptions;
  /** Queries for `accurate` (each compares the query with every vector). */
  accurateQueries: number;
  lanceFlatQueries: number;
  batch: number;
}

const FULL: Sizes = {
  mixture: { count: 100_000, queries: 1_000, dimensions: 768, centroids: 100, spread: 1, seed: 5 },
  accurateQueries: 20,
  lanceFlatQueries: 10,
  batch: 10_000,
};
const QUICK: Sizes = {
  mixture: { count: 5_000, queries: 100, dimensions: 128, centroids: 100, spread: 1, seed: 5 },
  accurateQueries: 50,
  lanceFlatQueries: 20,
  batch: 1_000,
};

interface Measured {
  p50: number;
  p95: number;
  recall: number;
  /**
   * Mean CPU time of the process per query (ms): on a shared machine the wall-clock latency
   * includes the time the process waits for a core, this does not.
   */
  cpu: number;
}

type Search = (q: number) => number[] | Promise<number[]>;

/** Latency percentiles (ms) of `search` over the first `total` queries after `warmup` untimed ones, and recall@10. */
async function measure(
  truth: readonly number[][],
  total: number,
  warmup: number,
  search: Search,
): Promise<Measured> {
  for (let i = 0; i < warmup; i++) await search(i % total);
  const samples: number[] = [];
  const results: number[][] = [];
  const cpuBefore = process.cpuUsage();
  for (let q = 0; q < total; q++) {
    const started = performance.now();
    results.push(await search(q));
    samples.push(performance.now() - started);
  }
  const cpu = process.cpuUsage(cpuBefore);
  samples.sort((a, b) => a - b);
  const at = (p: number) => samples[Math.min(samples.length - 1, Math.floor(p * samples.length))] as number;
  return {
    p50: at(0.5),
    p95: at(0.95),
    recall: recallAtK(truth.slice(0, total), results, K),
    cpu: (cpu.user + cpu.system) / 1000 / total,
  };
}

const fmtMs = (m: Measured) =>
  `p50 ${m.p50.toFixed(3)} ms, p95 ${m.p95.toFixed(3)} ms, recall@10 ${m.recall.toFixed(4)}, ` +
  `CPU ${m.cpu.toFixed(3)} ms/query`;
const mb = (bytes: number) => bytes / 1e6;
const seconds = (since: number) => (performance.now() - since) / 1000;
const verdict = (ok: boolean) => (ok ? "met" : "NOT met");

function rawIndex(dimensions: number, quantization: Quantization, connectivity = CONNECTIVITY): Index {
  return new Index({
    dimensions,
    metric: MetricKind.Cos,
    quantization: SCALARS[quantization],
    connectivity,
    expansion_add: EXPANSION_ADD,
    expansion_search: EXPANSION_SEARCH,
    multi: false,
  });
}

function sequentialKeys(n: number): BigUint64Array {
  const keys = new BigUint64Array(n);
  for (let i = 0; i < n; i++) keys[i] = BigInt(i);
  return keys;
}

async function serializedBytes(save: (path: string) => void, dir: string, name: string): Promise<number> {
  const path = join(dir, name);
  await mkdir(dir, { recursive: true });
  save(path);
  const { size } = await stat(path);
  await rm(path, { force: true });
  return size;
}

interface UsearchRun {
  build: number;
  /** Serialized size of the graph (and its quantized vectors). */
  bytes: number;
  modes: Record<VectorMode, Measured>;
}

interface KuraRun extends UsearchRun {
  /** The adapter's LMDB item store (ids, filter fields, f32 vectors) on disk. */
  storeBytes: number;
  save: number;
  /** Growth of the process's resident set from before the adapter opened to after its queries. */
  rssBytes: number;
  /** The in-memory 16-bit copy of the vectors its re-ranking reads (0: it reads LMDB). */
  copyBytes: number;
}

async function measureModes(
  sizes: Sizes,
  data: VectorDataset,
  truth: readonly number[][],
  search: (mode: VectorMode) => Search,
): Promise<Record<VectorMode, Measured>> {
  const out = {} as Record<VectorMode, Measured>;
  for (const mode of MODES) {
    const total = mode === "accurate" ? Math.min(sizes.accurateQueries, data.queryCount) : data.queryCount;
    const warmup = mode === "accurate" ? 3 : Math.max(20, Math.floor(total / 10));
    out[mode] = await measure(truth, total, warmup, search(mode));
  }
  return out;
}

/** Rows gathered for re-ranking (grown as needed); exactSearch reads it from its buffer's start. */
let gathered = new Float32Array(0);
const queryCopy = { row: new Float32Array(0) };

/**
 * The first `K` of `found` by exact f32 cosine distance (the rows are unit vectors): the adapter's
 * re-ranking of f16/i8 candidates — the first `rerankWidth` candidates gathered into one matrix
 * and ranked by usearch's native `exactSearch` on one thread — with the vectors in memory instead
 * of LMDB.
 */
function rerank(
  query: Float32Array,
  found: ArrayLike<bigint>,
  data: VectorDataset,
  quantization: Quantization,
): number[] {
  const { dimensions, vectors } = data;
  const rows = rerankWidth(quantization, K, found.length);
  if (gathered.length < rows * dimensions) gathered = new Float32Array(rows * dimensions);
  if (queryCopy.row.length !== dimensions) queryCopy.row = new Float32Array(dimensions);
  queryCopy.row.set(query);
  for (let i = 0; i < rows; i++) {
    const id = Number(found[i]);
    gathered.set(vectors.subarray(id * dimensions, (id + 1) * dimensions), i * dimensions);
  }
  const ranked = exactSearch(
    gathered.subarray(0, rows * dimensions),
    queryCopy.row,
    dimensions,
    Math.min(K, rows),
    MetricKind.IP,
    1,
  );
  return Array.from(ranked.keys, (row) => Number(found[Number(row)]));
}

/** usearch alone asked for `width` candidates; re-ranked by f32 as the adapter does for `rerankAs`, else its own top K. */
function searchRaw(
  index: Index,
  data: VectorDataset,
  q: number,
  width: number,
  rerankAs: Quantization | undefined,
): number[] {
  const query = row(data.queries, data.dimensions, q);
  const found = index.search(query, width, 1).keys;
  return rerankAs ? rerank(query, found, data, rerankAs) : Array.from(found.subarray(0, K), Number);
}

/** usearch alone: build, serialized size, then the adapter's candidate counts per mode. */
async function rawUsearch(
  ctx: BenchContext,
  sizes: Sizes,
  data: VectorDataset,
  truth: readonly number[][],
  quantization: Quantization,
): Promise<UsearchRun & { index: Index }> {
  const { dimensions, count } = data;
  const index = rawIndex(dimensions, quantization);
  const rssBefore = process.memoryUsage().rss;
  const started = performance.now();
  index.add(sequentialKeys(count), data.vectors, 0);
  const build = seconds(started);
  const rssDelta = process.memoryUsage().rss - rssBefore;
  const bytes = await serializedBytes((p) => index.save(p), ctx.dir, `raw-${quantization}.usearch`);
  ctx.log(
    `usearch alone ${quantization}: build ${build.toFixed(1)} s, serialized ${mb(bytes).toFixed(1)} MB ` +
      `(process RSS grew ${mb(rssDelta).toFixed(0)} MB during the build)`,
  );
  const rerankAs = quantization === "f32" ? undefined : quantization;
  const modes = await measureModes(sizes, data, truth, (mode) => {
    // exactSearch reads a query from the start of its buffer: it gets a copy, not a subarray.
    if (mode === "accurate")
      return (q) =>
        Array.from(
          exactSearch(
            data.vectors,
            row(data.queries, dimensions, q).slice(),
            dimensions,
            K,
            MetricKind.Cos,
            1,
          ).keys,
          Number,
        );
    const width = candidates(mode, K, quantization);
    return (q) => searchRaw(index, data, q, width, rerankAs);
  });
  for (const mode of MODES) ctx.log(`  ${mode} (${describeMode(mode, quantization)}): ${fmtMs(modes[mode])}`);
  return { index, build, bytes, modes };
}

/** `by`: what re-ranking reads (f32 vectors, or the adapter's 16-bit copy). */
function describeMode(mode: VectorMode, quantization: Quantization, by = "f32"): string {
  if (mode === "accurate") return "exact";
  const width = candidates(mode, K, quantization);
  if (quantization === "f32") return `${width} candidates`;
  const reranked = rerankWidth(quantization, K, width);
  return reranked === width
    ? `${width} candidates re-ranked by ${by}`
    : `${width} candidates, the first ${reranked} re-ranked by ${by}`;
}

/**
 * Candidate counts on usearch alone, at each graph degree of {@link SWEEP_CONNECTIVITY}: which
 * first reaches the recall target, at what p95 and build time. f16/i8 are re-ranked by f32 as the
 * adapter answers, with the graph's own ranking shown beside. `built` is the index already built
 * at the adapter's degree.
 */
async function sweep(
  ctx: BenchContext,
  data: VectorDataset,
  truth: readonly number[][],
  built: { index: Index; build: number; bytes: number },
  quantization: Quantization,
): Promise<void> {
  const rerankAs = quantization === "f32" ? undefined : quantization;
  for (const connectivity of SWEEP_CONNECTIVITY) {
    let graph = built;
    if (connectivity !== CONNECTIVITY) {
      const index = rawIndex(data.dimensions, quantization, connectivity);
      const started = performance.now();
      index.add(sequentialKeys(data.count), data.vectors, 0);
      const build = seconds(started);
      const bytes = await serializedBytes((p) => index.save(p), ctx.dir, `sweep-${quantization}.usearch`);
      graph = { index, build, bytes };
    }
    const label = `${quantization} connectivity ${connectivity}`;
    ctx.log(`  sweep ${label}: build ${graph.build.toFixed(1)} s, ${mb(graph.bytes).toFixed(1)} MB`);
    let reached: { width: number; m: Measured } | undefined;
    let best = 0;
    for (const w of SWEEP) {
      const m = await measure(truth, data.queryCount, 50, (q) =>
        searchRaw(graph.index, data, q, w, rerankAs),
      );
      let alone = "";
      if (rerankAs) {
        const g = await measure(truth, data.queryCount, 0, (q) =>
          searchRaw(graph.index, data, q, w, undefined),
        );
        alone = ` | graph alone recall@10 ${g.recall.toFixed(4)}`;
      }
      best = Math.max(best, m.recall);
      ctx.log(`    ${w} candidates${rerankAs ? " re-ranked" : ""}: ${fmtMs(m)}${alone}`);
      if (!reached && m.recall >= TARGET.recall) reached = { width: w, m };
    }
    if (!reached) {
      ctx.log(
        `    recall@10 never reaches ${TARGET.recall} up to ${SWEEP.at(-1)} candidates (best ${best.toFixed(4)})`,
      );
      continue;
    }
    ctx.log(
      `    recall@10 ≥ ${TARGET.recall} first at ${reached.width} candidates, p95 ${reached.m.p95.toFixed(3)} ms ` +
        `(${reached.m.p95 <= TARGET.p95 ? "within" : "over"} ${TARGET.p95} ms); ` +
        `the adapter's fast mode asks for ${candidates("fast", K, quantization)}`,
    );
    ctx.record({
      scenario: `vectors ${quantization}`,
      metric: `connectivity ${connectivity}: candidates for recall@10 ≥ ${TARGET.recall}`,
      value: reached.width,
      unit: "",
      baseline: "adapter fast candidates",
      baseline_value: candidates("fast", K, quantization),
      ratio: null,
    });
    ctx.record({
      scenario: `vectors ${quantization}`,
      metric: `connectivity ${connectivity}: p95 there`,
      value: reached.m.p95,
      unit: "ms",
      baseline: null,
      baseline_value: null,
      ratio: null,
    });
    if (connectivity !== CONNECTIVITY)
      ctx.record({
        scenario: `vectors ${quantization}`,
        metric: `connectivity ${connectivity}: build (usearch alone)`,
        value: graph.build,
        unit: "s",
        baseline: null,
        baseline_value: null,
        ratio: null,
      });
  }
}

/** Kura's adapter in its own directory: upsert in batches (its build), save, then queries per mode. */
async function kuraUsearch(
  ctx: BenchContext,
  sizes: Sizes,
  data: VectorDataset,
  truth: readonly number[][],
  quantization: Quantization,
  rerankCopy: RerankCopy | undefined,
): Promise<KuraRun> {
  const { dimensions, count } = data;
  const dir = join(ctx.dir, `kura-${quantization}`);
  const rssBefore = process.memoryUsage().rss;
  const index = await openUsearchVectorIndex({
    dimensions,
    metric: "cosine",
    quantization,
    dir,
    ...(rerankCopy ? { rerankCopy } : {}),
  });
  const items = Array.from({ length: count }, (_, i) => ({
    tenantId: "bench",
    id: String(i),
    vector: row(data.vectors, dimensions, i),
  }));
  let started = performance.now();
  for (let i = 0; i < count; i += sizes.batch) await index.upsert(items.slice(i, i + sizes.batch));
  const build = seconds(started);
  started = performance.now();
  await index.save();
  const save = seconds(started);
  const bytes = (await stat(join(dir, "index.usearch"))).size;
  const storeBytes = await dirBytes(join(dir, "items"));
  const modes = await measureModes(sizes, data, truth, (mode) => async (q) => {
    const hits = await index.query({
      tenantId: "bench",
      vector: row(data.queries, dimensions, q),
      k: K,
      mode,
    });
    return hits.map((h) => Number(h.id));
  });
  // Includes the LMDB pages the queries touched (mapped from the item store) and whatever the
  // garbage collector has not yet returned.
  const rssBytes = process.memoryUsage().rss - rssBefore;
  const copyBytes = index.rerankCopyBytes();
  await index.drop();
  ctx.log(
    `Kura usearch ${quantization}: build ${build.toFixed(1)} s, save ${save.toFixed(1)} s, ` +
      `graph file ${mb(bytes).toFixed(1)} MB, ` +
      (copyBytes
        ? `${rerankCopy ?? defaultRerankCopy(quantization)} re-ranking copy ${mb(copyBytes).toFixed(1)} MB in memory, `
        : "") +
      `LMDB item store ${mb(storeBytes).toFixed(1)} MB on disk, ` +
      `process RSS grew ${mb(rssBytes).toFixed(0)} MB (build and queries)`,
  );
  const copyFormat = rerankCopy ?? defaultRerankCopy(quantization);
  const by = copyBytes ? `the ${copyFormat} copy` : "f32 from LMDB";
  for (const mode of MODES)
    ctx.log(`  ${mode} (${describeMode(mode, quantization, by)}): ${fmtMs(modes[mode])}`);
  return { build, bytes, storeBytes, save, rssBytes, copyBytes, modes };
}

async function dirBytes(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dir, { withFileTypes: true }))
    if (entry.isFile()) total += (await stat(join(dir, entry.name))).size;
  return total;
}

interface LanceRun {
  build: number;
  bytes: number;
  modes: Record<VectorMode, Measured>;
}

/**
 * The part of `@lancedb/lancedb` the bench uses, described structurally: LanceDB is an optional
 * comparator, not a dependency (its builds for other platforms are not in every registry, which
 * would keep `npm ci` from installing the project). `npm i --no-save @lancedb/lancedb` adds it.
 */
interface LanceQuery {
  distanceType(type: string): LanceQuery;
  limit(n: number): LanceQuery;
  select(columns: string[]): LanceQuery;
  ef(n: number): LanceQuery;
  refineFactor(n: number): LanceQuery;
  bypassVectorIndex(): LanceQuery;
  toArray(): Promise<unknown[]>;
}
interface LanceTable {
  add(rows: Record<string, unknown>[]): Promise<unknown>;
  stats(): Promise<{ totalBytes: number }>;
  createIndex(column: string, options: { config: unknown }): Promise<void>;
  vectorSearch(vector: Float32Array): LanceQuery;
  close(): void;
}
interface LanceModule {
  connect(uri: string): Promise<{
    createTable(name: string, rows: Record<string, unknown>[]): Promise<LanceTable>;
    close(): void;
  }>;
  Index: { hnswSq(options: { distanceType: string }): unknown };
}

async function loadLance(): Promise<LanceModule | undefined> {
  const name = "@lancedb/lancedb";
  try {
    return (await import(name)) as LanceModule;
  } catch {
    return undefined;
  }
}

/** Rows `{id, vector}` of `[start, end)`, as LanceDB infers a `vector` column (Float32 list). */
function lanceRows(data: VectorDataset, start: number, end: number): Record<string, unknown>[] {
  const rows: Record<string, unknown>[] = [];
  for (let i = start; i < end; i++)
    rows.push({ id: i, vector: Array.from(row(data.vectors, data.dimensions, i)) });
  return rows;
}

async function lance(
  ctx: BenchContext,
  sizes: Sizes,
  data: VectorDataset,
  truth: readonly number[][],
): Promise<LanceRun | undefined> {
  const lancedb = await loadLance();
  if (!lancedb) {
    ctx.log("LanceDB: not installed (npm i --no-save @lancedb/lancedb to compare), skipped");
    return undefined;
  }
  const db = await lancedb.connect(join(ctx.dir, "lancedb"));
  let started = performance.now();
  const CHUNK = 10_000;
  const table = await db.createTable("vectors", lanceRows(data, 0, Math.min(CHUNK, data.count)));
  for (let i = CHUNK; i < data.count; i += CHUNK)
    await table.add(lanceRows(data, i, Math.min(i + CHUNK, data.count)));
  const ingest = seconds(started);
  const before = (await table.stats()).totalBytes;
  started = performance.now();
  await table.createIndex("vector", { config: lancedb.Index.hnswSq({ distanceType: "cosine" }) });
  const build = seconds(started);
  const bytes = (await table.stats()).totalBytes - before;
  ctx.log(
    `LanceDB: ingest ${ingest.toFixed(1)} s, IVF_HNSW_SQ index (defaults: 1 partition, m 20, ef_construction 300) ` +
      `${build.toFixed(1)} s, ${mb(bytes).toFixed(1)} MB on disk`,
  );
  const { dimensions } = data;
  const run = async (q: number, tune: (v: LanceQuery) => LanceQuery) => {
    const query = tune(
      table
        .vectorSearch(row(data.queries, dimensions, q))
        .distanceType("cosine")
        .limit(K)
        .select(["id", "_distance"]),
    );
    const rows = (await query.toArray()) as Array<{ id: number }>;
    return rows.map((r) => r.id);
  };
  const modes = {} as Record<VectorMode, Measured>;
  modes.fast = await measure(truth, data.queryCount, 50, (q) => run(q, (v) => v.ef(32)));
  modes.balanced = await measure(truth, data.queryCount, 50, (q) => run(q, (v) => v.ef(128)));
  const flat = Math.min(sizes.lanceFlatQueries, data.queryCount);
  modes.accurate = await measure(truth, flat, 2, (q) => run(q, (v) => v.bypassVectorIndex()));
  for (const mode of MODES) ctx.log(`  ${mode} (${LANCE_SETTINGS[mode]}): ${fmtMs(modes[mode])}`);
  const refined = await measure(truth, data.queryCount, 50, (q) => run(q, (v) => v.ef(128).refineFactor(2)));
  ctx.log(`  ef 128 + refineFactor 2 (re-ranked with the full vectors): ${fmtMs(refined)}`);
  ctx.record({
    scenario: "vectors lancedb",
    metric: "ef 128 + refineFactor 2 p95",
    value: refined.p95,
    unit: "ms",
    baseline: null,
    baseline_value: null,
    ratio: null,
  });
  ctx.record({
    scenario: "vectors lancedb",
    metric: "ef 128 + refineFactor 2 recall@10",
    value: refined.recall,
    unit: "",
    baseline: null,
    baseline_value: null,
    ratio: null,
  });
  table.close();
  db.close();
  await rm(join(ctx.dir, "lancedb"), { recursive: true, force: true });
  return { build, bytes, modes };
}

/** hnswlib-node at the adapter's graph parameters, beside usearch f32 at the same beam widths. */
async function hnswlibVsUsearch(
  ctx: BenchContext,
  data: VectorDataset,
  truth: readonly number[][],
  usearch: { build: number; bytes: number; index: Index },
): Promise<void> {
  const { dimensions, count } = data;
  const index = new hnswlib.HierarchicalNSW("cosine", dimensions);
  index.initIndex({ maxElements: count, m: CONNECTIVITY, efConstruction: EXPANSION_ADD, randomSeed: 100 });
  const started = performance.now();
  // The binding takes plain arrays, one point per call, on one thread.
  for (let i = 0; i < count; i++) index.addPoint(Array.from(row(data.vectors, dimensions, i)), i);
  const build = seconds(started);
  const path = join(ctx.dir, "hnswlib.bin");
  index.writeIndexSync(path);
  const bytes = (await stat(path)).size;
  await rm(path, { force: true });
  ctx.log(
    `hnswlib-node f32 (M ${CONNECTIVITY}, ef_construction ${EXPANSION_ADD}): build ${build.toFixed(1)} s, ${mb(bytes).toFixed(1)} MB`,
  );
  const scenario = "vectors usearch vs hnswlib-node";
  ctx.record({
    scenario,
    metric: "build f32",
    value: usearch.build,
    unit: "s",
    baseline: "hnswlib-node",
    baseline_value: build,
    ratio: ratioOf(usearch.build, build, false),
  });
  ctx.record({
    scenario,
    metric: "serialized size f32",
    value: mb(usearch.bytes),
    unit: "MB",
    baseline: "hnswlib-node",
    baseline_value: mb(bytes),
    ratio: ratioOf(usearch.bytes, bytes, false),
  });
  for (const ef of [32, 128]) {
    index.setEf(ef);
    const h = await measure(
      truth,
      data.queryCount,
      50,
      (q) => index.searchKnn(Array.from(row(data.queries, dimensions, q)), K).neighbors,
    );
    const u = await measure(truth, data.queryCount, 50, (q) =>
      Array.from(usearch.index.search(row(data.queries, dimensions, q), ef, 1).keys, Number),
    );
    ctx.log(`  ef ${ef}: hnswlib-node ${fmtMs(h)} | usearch ${fmtMs(u)}`);
    ctx.record({
      scenario,
      metric: `p95 at ef ${ef}`,
      value: u.p95,
      unit: "ms",
      baseline: "hnswlib-node",
      baseline_value: h.p95,
      ratio: ratioOf(u.p95, h.p95, false),
    });
    ctx.record({
      scenario,
      metric: `recall@10 at ef ${ef}`,
      value: u.recall,
      unit: "",
      baseline: "hnswlib-node",
      baseline_value: h.recall,
      ratio: ratioOf(u.recall, h.recall),
    });
  }
}

function recordQuantization(
  ctx: BenchContext,
  quantization: Quantization,
  kura: KuraRun,
  raw: UsearchRun,
  lancedb: LanceRun | undefined,
): void {
  const scenario = `vectors ${quantization}`;
  ctx.record({
    scenario,
    metric: "build",
    value: kura.build,
    unit: "s",
    baseline: "usearch alone",
    baseline_value: raw.build,
    ratio: ratioOf(kura.build, raw.build, false),
  });
  if (lancedb)
    ctx.record({
      scenario,
      metric: "build vs LanceDB",
      value: kura.build,
      unit: "s",
      baseline: "LanceDB IVF_HNSW_SQ index",
      baseline_value: lancedb.build,
      ratio: ratioOf(kura.build, lancedb.build, false),
    });
  ctx.record({
    scenario,
    metric: "index memory (graph as usearch serializes it)",
    value: mb(kura.bytes),
    unit: "MB",
    baseline: "usearch alone",
    baseline_value: mb(raw.bytes),
    ratio: ratioOf(kura.bytes, raw.bytes, false),
  });
  if (lancedb)
    ctx.record({
      scenario,
      metric: "index memory vs LanceDB",
      value: mb(kura.bytes),
      unit: "MB",
      baseline: "LanceDB IVF_HNSW_SQ index (on disk)",
      baseline_value: mb(lancedb.bytes),
      ratio: ratioOf(kura.bytes, lancedb.bytes, false),
    });
  ctx.record({
    scenario,
    metric: "re-ranking copy (in memory)",
    value: mb(kura.copyBytes),
    unit: "MB",
    baseline: null,
    baseline_value: null,
    ratio: null,
  });
  ctx.record({
    scenario,
    metric: "process RSS growth (adapter build and queries)",
    value: mb(kura.rssBytes),
    unit: "MB",
    baseline: null,
    baseline_value: null,
    ratio: null,
  });
  ctx.record({
    scenario,
    metric: "LMDB item store (f32 vectors, on disk)",
    value: mb(kura.storeBytes),
    unit: "MB",
    baseline: null,
    baseline_value: null,
    ratio: null,
  });
  for (const mode of MODES) {
    const k = kura.modes[mode];
    const r = raw.modes[mode];
    ctx.record({
      scenario,
      metric: `${mode} p50`,
      value: k.p50,
      unit: "ms",
      baseline: "usearch alone",
      baseline_value: r.p50,
      ratio: ratioOf(k.p50, r.p50, false),
    });
    ctx.record({
      scenario,
      metric: `${mode} p95`,
      value: k.p95,
      unit: "ms",
      baseline: "usearch alone",
      baseline_value: r.p95,
      ratio: ratioOf(k.p95, r.p95, false),
    });
    ctx.record({
      scenario,
      metric: `${mode} CPU per query`,
      value: k.cpu,
      unit: "ms",
      baseline: "usearch alone",
      baseline_value: r.cpu,
      ratio: ratioOf(k.cpu, r.cpu, false),
    });
    ctx.record({
      scenario,
      metric: `${mode} recall@10`,
      value: k.recall,
      unit: "",
      baseline: "usearch alone",
      baseline_value: r.recall,
      ratio: ratioOf(k.recall, r.recall),
    });
    if (lancedb) {
      const l = lancedb.modes[mode];
      ctx.record({
        scenario,
        metric: `${mode} p95 vs LanceDB`,
        value: k.p95,
        unit: "ms",
        baseline: `LanceDB ${LANCE_SETTINGS[mode]}`,
        baseline_value: l.p95,
        ratio: ratioOf(k.p95, l.p95, false),
      });
      ctx.record({
        scenario,
        metric: `${mode} recall@10 vs LanceDB`,
        value: k.recall,
        unit: "",
        baseline: `LanceDB ${LANCE_SETTINGS[mode]}`,
        baseline_value: l.recall,
        ratio: ratioOf(k.recall, l.recall),
      });
    }
  }
}

function logTargets(ctx: BenchContext, quantization: Quantization, kura: KuraRun) {
  const fast = kura.modes.fast;
  const fastOk = fast.p95 <= TARGET.p95 && fast.recall >= TARGET.recall;
  ctx.log(
    `target ${quantization} fast p95 ≤ ${TARGET.p95} ms at recall@10 ≥ ${TARGET.recall}: ${verdict(fastOk)} ` +
      `(p95 ${fast.p95.toFixed(3)} ms, recall ${fast.recall.toFixed(4)})`,
  );
  ctx.log(
    `target ${quantization} build ≤ ${TARGET.buildS} s: ${verdict(kura.build <= TARGET.buildS)} (${kura.build.toFixed(1)} s)`,
  );
  if (quantization === "i8")
    ctx.log(
      `target i8 index memory ≤ ${TARGET.memoryMb} MB: ${verdict(mb(kura.bytes) <= TARGET.memoryMb)} ` +
        `(graph ${mb(kura.bytes).toFixed(1)} MB; beside it the re-ranking copy, ${mb(kura.copyBytes).toFixed(1)} MB, ` +
        `and the f32 vectors of record, ${mb(kura.storeBytes).toFixed(1)} MB in LMDB on disk)`,
    );
}

export const vectors: Scenario = {
  name: "vectors",
  async run(ctx) {
    const sizes = ctx.quick ? QUICK : FULL;
    const only = ctx.args.find((a) => a.startsWith("--quantizations="))?.slice("--quantizations=".length);
    const quantizations = only ? QUANTIZATIONS.filter((q) => only.split(",").includes(q)) : QUANTIZATIONS;
    const sweeps = !ctx.args.includes("--no-sweep");
    const copyArg = ctx.args.find((a) => a.startsWith("--rerank-copy="))?.slice("--rerank-copy=".length);
    const rerankCopy = RERANK_COPIES.find((c) => c === copyArg);
    const { mixture } = sizes;
    let started = performance.now();
    const data = gaussianMixture(mixture);
    ctx.log(
      `data: ${mixture.count.toLocaleString("en-US")} × ${mixture.dimensions}, ${mixture.centroids} centroids, ` +
        `spread ${mixture.spread}, seed ${mixture.seed}, ${mixture.queries} held-out queries (${seconds(started).toFixed(1)} s)`,
    );
    started = performance.now();
    const truth = exactTopK(data, K);
    ctx.log(`truth: exact f32 cosine top-${K} (${seconds(started).toFixed(1)} s)`);
    if (ctx.quick) ctx.log("quick mode: the SPEC §5 targets are for 100,000 × 768 and are not judged here");

    const lancedb = await lance(ctx, sizes, data, truth);

    let f32: (UsearchRun & { index: Index }) | undefined;
    let kuraF32: KuraRun | undefined;
    for (const quantization of quantizations) {
      const raw = await rawUsearch(ctx, sizes, data, truth, quantization);
      const kura = await kuraUsearch(ctx, sizes, data, truth, quantization, rerankCopy);
      if (quantization === "f32") kuraF32 = kura;
      recordQuantization(ctx, quantization, kura, raw, lancedb);
      if (!ctx.quick) logTargets(ctx, quantization, kura);
      if (!sweeps) continue;
      await sweep(ctx, data, truth, raw, quantization);
      if (quantization === "f32") f32 = raw;
    }
    if (f32) await hnswlibVsUsearch(ctx, data, truth, f32);
    if (!ctx.args.includes("--no-faiss"))
      await faissRows(
        ctx,
        data,
        (search) => measureModes(sizes, data, truth, search),
        sizes.batch,
        kuraF32,
        lancedb,
      );
  },
};
