/**
 * The usearch index's HNSW graph and its file, `index.usearch`: built empty, loaded when the
 * store of record says the file is current, rebuilt from the vectors of record otherwise, and
 * written (through a temp file and a rename) by a save.
 */
import { existsSync } from "node:fs";
import { rename, rm } from "node:fs/promises";
import { join } from "node:path";
import { Index, MetricKind, ScalarKind } from "usearch";
import type { VectorMetric } from "../../../ports/vector-index.js";
import { corrupt, type Quantization } from "../item-store.js";

export interface GraphConfig {
  dimensions: number;
  metric: VectorMetric;
  quantization: Quantization;
  connectivity: number;
}

const METRICS: Record<VectorMetric, MetricKind> = {
  l2: MetricKind.L2sq,
  cosine: MetricKind.Cos,
  ip: MetricKind.IP,
};
const SCALARS: Record<Quantization, ScalarKind> = {
  f32: ScalarKind.F32,
  f16: ScalarKind.F16,
  i8: ScalarKind.I8,
};
const INDEX_FILE = "index.usearch";
/** Vectors added to a rebuilt graph per call. */
const REBUILD_BATCH = 1024;

/** An empty graph. */
export function newGraph(c: GraphConfig): Index {
  return new Index({
    dimensions: c.dimensions,
    metric: METRICS[c.metric],
    quantization: SCALARS[c.quantization],
    connectivity: c.connectivity,
    expansion_add: 128,
    expansion_search: 32,
    multi: false,
  });
}

/**
 * The graph of the items `keys`: the file's when `current` says it holds exactly them and it
 * loads with as many nodes, else rebuilt from `vectorOf` (`rebuilt: true`; the caller marks
 * the graph dirty).
 */
export function openGraph(
  c: GraphConfig,
  dir: string,
  current: boolean,
  keys: readonly number[],
  vectorOf: (key: number) => Float32Array | undefined,
): { index: Index; rebuilt: boolean } {
  let index = newGraph(c);
  const file = join(dir, INDEX_FILE);
  let loaded = false;
  if (current && keys.length > 0 && existsSync(file)) {
    try {
      index.load(file);
      loaded = index.size() === keys.length;
    } catch {
      loaded = false;
    }
    if (!loaded) index = newGraph(c);
  }
  if (loaded || keys.length === 0) return { index, rebuilt: false };
  // A crash left the graph behind its items (or the file is gone): rebuild it from LMDB.
  for (let start = 0; start < keys.length; start += REBUILD_BATCH) {
    const slice = keys.slice(start, start + REBUILD_BATCH);
    const rows: Float32Array[] = [];
    for (const key of slice) {
      const v = vectorOf(key);
      if (!v || v.length !== c.dimensions)
        throw corrupt(`item ${key} of the vector index has no vector of ${c.dimensions} dimensions`, dir);
      rows.push(v);
    }
    index.add(BigUint64Array.from(slice.map(BigInt)), rows);
  }
  return { index, rebuilt: true };
}

/** Writes the graph's file (removes it when the graph is empty). */
export async function writeGraph(index: Index, dir: string, size: number): Promise<void> {
  const file = join(dir, INDEX_FILE);
  if (size > 0) {
    index.save(`${file}.tmp`);
    await rename(`${file}.tmp`, file);
  } else await rm(file, { force: true });
}
