/**
 * The embedded ANN vector index: an HNSW graph from `usearch`, with `f32`, `f16` or `i8`
 * quantization (VEC-3; `i8` with the cosine metric only), persisted as two files in its directory — `index.usearch` (the graph and
 * the quantized vectors, written by usearch) and `items.json` (key → tenant, id and filter
 * fields) — and reloaded without rebuilding the graph.
 *
 * usearch's JS binding fixes `expansion_search` when the index is built, and widens the beam to
 * the number of results asked for, so the modes are mapped to a search width: `fast` asks for
 * max(k, 32) candidates, `balanced` for max(4k, 128), `accurate` for every item (an exhaustive
 * walk of the graph, exact up to quantization). Tenant scope and filters are checked on the
 * candidates; when fewer than k match, the width is multiplied by 4 and the search repeated, up
 * to the whole index, so k hits come back whenever k matching items exist.
 */
import { existsSync } from "node:fs";
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Index, MetricKind, ScalarKind } from "usearch";
import { KuraError } from "../../../core/errors.js";
import {
  checkQuery,
  checkVector,
  filterFields,
  matchesFilter,
  type VectorFilter,
  type VectorHit,
  type VectorIndex,
  type VectorIndexOptions,
  type VectorItem,
  type VectorMetric,
  type VectorMode,
  type VectorQuery,
} from "../../../ports/vector-index.js";

export type Quantization = "f32" | "f16" | "i8";

export interface UsearchOptions extends VectorIndexOptions {
  quantization?: Quantization;
  /** Directory of the persisted index; absent = in memory only. */
  dir?: string;
  /** HNSW graph degree (usearch `connectivity`); default 16. */
  connectivity?: number;
}

interface Entry extends VectorFilter {
  tenantId: string;
  id: string;
}

interface ItemsFile {
  version: 1;
  dimensions: number;
  metric: VectorMetric;
  quantization: Quantization;
  nextKey: string;
  items: Array<[string, string, string, VectorFilter]>;
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
const ITEMS_FILE = "items.json";

/** The first search width of a mode. */
function width(mode: VectorMode, k: number, size: number): number {
  if (mode === "accurate") return size;
  if (mode === "fast") return Math.max(k, 32);
  return Math.max(4 * k, 128);
}

/** Unit length (cosine is scale-free, and i8 needs components in [-1, 1]); zero stays zero. */
function normalized(v: Float32Array): Float32Array {
  let norm = 0;
  for (let i = 0; i < v.length; i++) norm += (v[i] as number) ** 2;
  if (norm === 0) return v;
  const scale = 1 / Math.sqrt(norm);
  return v.map((x) => x * scale);
}

const tenantKey = (tenantId: string, id: string) => `${tenantId}\u0000${id}`;

export async function openUsearchVectorIndex(options: UsearchOptions): Promise<VectorIndex> {
  const { dimensions, metric } = options;
  const quantization = options.quantization ?? "f32";
  const defaultMode = options.mode ?? "balanced";
  const connectivity = options.connectivity ?? 16;
  // usearch's i8 scales components by 127 and clips them to [-1, 1]: it is only faithful for
  // normalized vectors, which is what the cosine metric compares.
  if (quantization === "i8" && metric !== "cosine")
    throw new KuraError(
      "VECTOR_QUANTIZATION_UNSUPPORTED",
      `i8 quantization needs the cosine metric (got ${metric}); use f16 or f32 for ${metric}`,
      { operation: "vector.open", context: { quantization, metric } },
    );
  const build = () =>
    new Index({
      dimensions,
      metric: METRICS[metric],
      quantization: SCALARS[quantization],
      connectivity,
      expansion_add: 128,
      expansion_search: 32,
      multi: false,
    });
  let index = build();
  const prepare = (v: Float32Array) => (metric === "cosine" ? normalized(v) : v);
  const entries = new Map<bigint, Entry>();
  const keys = new Map<string, bigint>();
  const perTenant = new Map<string, number>();
  let nextKey = 1n;
  let dirty = false;
  let closed = false;

  const bump = (tenantId: string, by: number) => {
    const n = (perTenant.get(tenantId) ?? 0) + by;
    if (n === 0) perTenant.delete(tenantId);
    else perTenant.set(tenantId, n);
  };

  if (options.dir && existsSync(join(options.dir, ITEMS_FILE))) {
    const where = { operation: "vector.open", context: { dir: options.dir } };
    let file: ItemsFile;
    try {
      file = JSON.parse(await readFile(join(options.dir, ITEMS_FILE), "utf8")) as ItemsFile;
    } catch (cause) {
      throw new KuraError("VECTOR_INDEX_CORRUPT", "the vector index's item file is unreadable", {
        ...where,
        cause,
      });
    }
    if (file.dimensions !== dimensions || file.metric !== metric || file.quantization !== quantization)
      throw new KuraError(
        "VECTOR_INDEX_CONFIG_CHANGED",
        `the vector index was built with ${file.dimensions} dimensions, metric ${file.metric}, ` +
          `quantization ${file.quantization}; the configuration asks for ${dimensions}, ${metric}, ${quantization}`,
        where,
      );
    if (file.items.length > 0) {
      try {
        index.load(join(options.dir, INDEX_FILE));
      } catch (cause) {
        throw new KuraError("VECTOR_INDEX_CORRUPT", "the vector index file is unreadable", {
          ...where,
          cause,
        });
      }
      if (index.size() !== file.items.length)
        throw new KuraError(
          "VECTOR_INDEX_CORRUPT",
          `the vector index holds ${index.size()} vectors, its item file ${file.items.length}`,
          where,
        );
    }
    nextKey = BigInt(file.nextKey);
    for (const [key, tenantId, id, fields] of file.items) {
      const k = BigInt(key);
      entries.set(k, { tenantId, id, ...filterFields(fields) });
      keys.set(tenantKey(tenantId, id), k);
      bump(tenantId, 1);
    }
  }

  const assertOpen = (operation: string) => {
    if (closed) throw new KuraError("INVALID_ARGUMENT", "the vector index is closed", { operation });
  };

  const removeKey = (key: bigint) => {
    const entry = entries.get(key);
    if (!entry) return;
    index.remove(key);
    entries.delete(key);
    keys.delete(tenantKey(entry.tenantId, entry.id));
    bump(entry.tenantId, -1);
  };

  const save = async () => {
    assertOpen("vector.save");
    if (!options.dir || !dirty) return;
    await mkdir(options.dir, { recursive: true });
    const file: ItemsFile = {
      version: 1,
      dimensions,
      metric,
      quantization,
      nextKey: String(nextKey),
      items: [...entries].map(([key, e]) => [String(key), e.tenantId, e.id, filterFields(e)]),
    };
    // The graph first, then the item file that names it: a crash between the two leaves a
    // size mismatch that opening reports as VECTOR_INDEX_CORRUPT (rebuilt from the source).
    const indexPath = join(options.dir, INDEX_FILE);
    if (entries.size > 0) {
      index.save(`${indexPath}.tmp`);
      await rename(`${indexPath}.tmp`, indexPath);
    }
    const itemsPath = join(options.dir, ITEMS_FILE);
    await writeFile(`${itemsPath}.tmp`, JSON.stringify(file));
    await rename(`${itemsPath}.tmp`, itemsPath);
    dirty = false;
  };

  return {
    backend: "usearch",
    dimensions,
    metric,
    async upsert(items: readonly VectorItem[]) {
      assertOpen("vector.upsert");
      const checked = items.map((item) => prepare(checkVector(item.vector, dimensions, "vector.upsert")));
      if (items.length === 0) return;
      // The last of duplicate ids in one batch wins, as if applied one after another.
      const last = new Map<string, number>();
      for (const [i, item] of items.entries()) last.set(tenantKey(item.tenantId, item.id), i);
      const batchKeys: bigint[] = [];
      const batchVectors = new Float32Array(last.size * dimensions);
      let row = 0;
      for (const i of last.values()) {
        const item = items[i] as VectorItem;
        const old = keys.get(tenantKey(item.tenantId, item.id));
        if (old !== undefined) removeKey(old);
        // A fresh key per version: usearch never sees a key re-added after removal.
        const key = nextKey++;
        batchKeys.push(key);
        batchVectors.set(checked[i] as Float32Array, row * dimensions);
        row++;
        entries.set(key, { tenantId: item.tenantId, id: item.id, ...filterFields(item) });
        keys.set(tenantKey(item.tenantId, item.id), key);
        bump(item.tenantId, 1);
      }
      const matrix: Float32Array[] = [];
      for (let r = 0; r < row; r++) matrix.push(batchVectors.subarray(r * dimensions, (r + 1) * dimensions));
      index.add(BigUint64Array.from(batchKeys), matrix);
      dirty = true;
    },
    async remove(tenantId: string, ids: readonly string[]) {
      assertOpen("vector.remove");
      for (const id of ids) {
        const key = keys.get(tenantKey(tenantId, id));
        if (key !== undefined) {
          removeKey(key);
          dirty = true;
        }
      }
    },
    async query(query: VectorQuery): Promise<VectorHit[]> {
      assertOpen("vector.query");
      checkQuery(query, "vector.query");
      const q = prepare(checkVector(query.vector, dimensions, "vector.query"));
      const size = entries.size;
      if ((perTenant.get(query.tenantId) ?? 0) === 0) return [];
      let want = Math.min(size, width(query.mode ?? defaultMode, query.k, size));
      for (;;) {
        const found = index.search(q, want, 1);
        const hits: VectorHit[] = [];
        for (let i = 0; i < found.keys.length && hits.length < query.k; i++) {
          const entry = entries.get(found.keys[i] as bigint);
          if (!entry || entry.tenantId !== query.tenantId || !matchesFilter(entry, query.filter)) continue;
          hits.push({ id: entry.id, distance: found.distances[i] as number, ...filterFields(entry) });
        }
        if (hits.length >= query.k || want >= size) return hits;
        want = Math.min(size, want * 4);
      }
    },
    async count(tenantId?: string) {
      return tenantId === undefined ? entries.size : (perTenant.get(tenantId) ?? 0);
    },
    save,
    async close() {
      if (closed) return;
      await save();
      closed = true;
      index = build();
    },
  };
}
