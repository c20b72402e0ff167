/**
 * Vector benchmark data: a fixed-seed Gaussian mixture (SPEC §5 "vectors") with held-out queries
 * and exact top-k neighbours as ground truth.
 *
 * Every point is `centroid + spread · noise`, with centroids and noise drawn from N(0, 1) per
 * component by a seeded PRNG (mulberry32 + Box–Muller), then scaled to unit length: the metric is
 * cosine, so the unit vectors are what every index compares. Queries are further draws from the
 * same mixture, generated after the corpus and never inserted. The same seed gives the same bytes
 * on every machine, so runs are comparable.
 */
import { BatchMatches, exactSearch, MetricKind } from "usearch";

export interface MixtureOptions {
  count: number;
  queries: number;
  dimensions: number;
  centroids: number;
  /** Standard deviation of a point around its centroid (the centroids themselves have 1). */
  spread: number;
  seed: number;
}

export interface VectorDataset {
  dimensions: number;
  /** `count × dimensions`, row-major, unit rows. */
  vectors: Float32Array;
  /** `queries × dimensions`, row-major, unit rows, not in `vectors`. */
  queries: Float32Array;
  count: number;
  queryCount: number;
}

/** mulberry32: a 32-bit PRNG with a full 2^32 period, good enough for benchmark data. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Fills `out` with N(0, 1) samples (Box–Muller, both outputs of each pair used). */
function fillGaussian(out: Float32Array, random: () => number): void {
  for (let i = 0; i < out.length; i += 2) {
    const u = 1 - random(); // (0, 1]: log stays finite
    const r = Math.sqrt(-2 * Math.log(u));
    const theta = 2 * Math.PI * random();
    out[i] = r * Math.cos(theta);
    if (i + 1 < out.length) out[i + 1] = r * Math.sin(theta);
  }
}

function normalizeRows(m: Float32Array, dimensions: number): void {
  for (let off = 0; off < m.length; off += dimensions) {
    let norm = 0;
    for (let j = 0; j < dimensions; j++) norm += (m[off + j] as number) ** 2;
    const scale = norm > 0 ? 1 / Math.sqrt(norm) : 0;
    for (let j = 0; j < dimensions; j++) m[off + j] = (m[off + j] as number) * scale;
  }
}

export function gaussianMixture(options: MixtureOptions): VectorDataset {
  const { count, queries, dimensions, centroids, spread, seed } = options;
  const random = mulberry32(seed);
  const centres = new Float32Array(centroids * dimensions);
  fillGaussian(centres, random);
  const draw = (rows: number) => {
    const m = new Float32Array(rows * dimensions);
    fillGaussian(m, random);
    for (let r = 0; r < rows; r++) {
      const c = Math.floor(random() * centroids) * dimensions;
      const off = r * dimensions;
      for (let j = 0; j < dimensions; j++)
        m[off + j] = (centres[c + j] as number) + spread * (m[off + j] as number);
    }
    normalizeRows(m, dimensions);
    return m;
  };
  const vectors = draw(count);
  const held = draw(queries);
  return { dimensions, vectors, queries: held, count, queryCount: queries };
}

/** Row `i` of a row-major matrix, without copying. */
export function row(m: Float32Array, dimensions: number, i: number): Float32Array {
  return m.subarray(i * dimensions, (i + 1) * dimensions);
}

/**
 * Exact f32 cosine top-`k` of every query (row numbers into `vectors`), by usearch's brute-force
 * `exactSearch` (SIMD, all cores).
 */
export function exactTopK(data: VectorDataset, k: number): number[][] {
  const found = exactSearch(data.vectors, data.queries, data.dimensions, k, MetricKind.Cos, 0);
  const truth: number[][] = [];
  for (let q = 0; q < data.queryCount; q++) {
    const keys = found instanceof BatchMatches ? found.get(q).keys : found.keys;
    truth.push(Array.from(keys, Number));
  }
  return truth;
}

/** Mean fraction of each query's true top-k found among its first k results. */
export function recallAtK(
  truth: readonly number[][],
  results: readonly (readonly number[])[],
  k: number,
): number {
  let hit = 0;
  for (const [q, expected] of truth.entries()) {
    const got = new Set((results[q] ?? []).slice(0, k));
    for (const id of expected.slice(0, k)) if (got.has(id)) hit++;
  }
  return hit / (truth.length * k);
}
