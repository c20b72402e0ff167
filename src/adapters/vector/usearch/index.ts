/**
 * The embedded ANN vector index: an HNSW graph from `usearch` with `f32`, `f16` or `i8`
 * quantization (VEC-3; `i8` with the cosine metric only), over a store of record kept in LMDB.
 *
 * Layout of its directory:
 * - `items/` — an LMDB environment: every item (key → tenant, id, filter fields) and its full
 *   `f32` vector, plus a `state` record (configuration, next key, whether the graph file is
 *   current). An upsert or remove resolves once its LMDB transaction committed (to the OS, or
 *   to the disk with `durability: fsync`): an acknowledged write survives a crash.
 * - `index.usearch` — the graph (and its quantized vectors) as usearch serializes it, written by
 *   `save` (and `close`). The first write after a save marks the state `dirty` in the same LMDB
 *   transaction; a save marks it `saved` after the file is in place.
 * Opening loads the graph file when the state says it is current (no rebuild, VEC-3); after a
 * crash (state `dirty`), or when the file is missing or unreadable, it rebuilds the graph from
 * the vectors in LMDB — nothing acknowledged is lost and nothing needs re-embedding.
 *
 * Search widths: usearch's JS binding fixes `expansion_search` when the index is built and
 * widens the beam to the number of results asked for, so each mode asks for a number of
 * candidates (see {@link candidates}). `accurate` is exact: it compares the query with every
 * vector of the tenant — a graph walk, even one as wide as the index, can miss nodes the graph
 * no longer reaches (measured: 2 in 1,457 after interleaved adds and removes).
 * With `f16` and `i8` the candidates are re-ranked by their `f32` distance (read from LMDB, or
 * from the 16-bit copy below): 8-bit components alone cap recall@10 near 0.6 at 768 dimensions, re-ranking restores it
 * while the graph stays at one byte per component (`f16` re-ranks only the first candidates in
 * the graph's order, see {@link rerankWidth}). Tenant scope and filters are checked on the
 * candidates; when fewer than k match, the width is multiplied by 4 and the search repeated, and
 * past the size of the index the exact scan answers, so k hits come back whenever k matching
 * items exist.
 *
 * Exact distances (re-ranking, `accurate`) are computed natively: the vectors compared are copied
 * into one reused matrix and handed with the query to usearch's `exactSearch` (SIMD, one thread).
 * `accurate` copies them from LMDB. Re-ranking an `i8` graph's candidates reads, by default, an
 * in-memory 16-bit copy of every vector (`rerankCopy`, see `vector-copy.ts`) instead: reading
 * each candidate from LMDB (~1.4 µs per vector when its pages are mapped, several µs on first
 * touch) was most of a re-ranked query (ADR 0013). The copy costs 2 bytes per component, is
 * written with each upsert, cleared with each remove and rebuilt from LMDB on open; hits
 * re-ranked from it carry the distance of the copy's values (within its rounding of the exact
 * one).
 */
import { existsSync, mkdirSync } from "node:fs";
import { rename, rm } from "node:fs/promises";
import { join } from "node:path";
import type { Database, RootDatabase } from "lmdb";
import { exactSearch, Index, MetricKind, ScalarKind } from "usearch";
import { z } from "zod";
import { KuraError } from "../../../core/errors.js";
import { parseOptions } from "../../../core/options.js";
import { checkVector } from "../../../core/vectors.js";
import type {
  VectorCapabilities,
  VectorFilter,
  VectorHit,
  VectorIndex,
  VectorIndexDefinition,
  VectorIndexOptions,
  VectorItem,
  VectorMetric,
  VectorMode,
  VectorQuery,
} from "../../../ports/vector-index.js";
import { commitFailure, guardCommitError, LMDB_ENV_OPTIONS } from "../../lmdb.js";
import { checkPlace, checkQuery, filterFields, matchesFilter, modeOption, OPTIONS_PATH } from "../common.js";
import { VectorCopy } from "./vector-copy.js";

const QUANTIZATIONS = ["f32", "f16", "i8"] as const;
export type Quantization = (typeof QUANTIZATIONS)[number];

/** The options of the `usearch` definition: where its indexes live and how they store vectors. */
export const usearchOptionsSchema = z
  .object({
    /**
     * The directory of every index: Kura's own under `<dir>/<name>/`, a tenant's collection under
     * `<dir>/tenants/<tenant>/<collection>/`. Absent: the indexes live in memory only.
     */
    dir: z.string().min(1).optional(),
    /** Scalar type of the graph's vectors; `i8` applies to cosine indexes, the others get `f16`. */
    quantization: z.enum(QUANTIZATIONS).default("f32"),
    mode: modeOption,
  })
  .strict();
export type UsearchDefinitionOptions = z.infer<typeof usearchOptionsSchema>;

const CAPABILITIES: VectorCapabilities = Object.freeze({
  shared: false,
  persistent: true,
  quantization: true,
});

/**
 * The in-memory copy re-ranking reads: `f16` (IEEE half), `bf16` (the upper half of the f32) or
 * `none` (each candidate's f32 vector read from LMDB).
 */
export type RerankCopy = "f16" | "bf16" | "none";

/**
 * The copy kept unless `rerankCopy` says otherwise: `f16` for an `i8` graph (re-ranking reads all
 * its candidates; ADR 0013), none for `f16` (its graph already ranks at 16 bits and re-ranks 20
 * exact vectors) and `f32` (nothing is re-ranked).
 */
export function defaultRerankCopy(quantization: Quantization): RerankCopy {
  return quantization === "i8" ? "f16" : "none";
}

export interface UsearchOptions extends VectorIndexOptions {
  quantization?: Quantization;
  /** Directory of the persisted index; absent = in memory only. */
  dir?: string;
  /** `fsync`: each write reaches the disk before it resolves; `os` (default): the OS. */
  durability?: "os" | "fsync";
  /** HNSW graph degree (usearch `connectivity`); default 32. */
  connectivity?: number;
  /**
   * The copy of the vectors re-ranking reads (kept when the index has a directory and its
   * quantization re-ranks); default {@link defaultRerankCopy}.
   */
  rerankCopy?: RerankCopy;
}

/** The usearch adapter's index, with the memory of its re-ranking copy. */
export interface UsearchVectorIndex extends VectorIndex {
  /** Bytes held by the in-memory copy re-ranking reads (0 without one). */
  rerankCopyBytes(): number;
}

interface Entry extends VectorFilter {
  tenantId: string;
  id: string;
}

/** A vector of the matrix with its exact distance to the query. */
interface Ranked {
  key: number;
  distance: number;
}

/** An item as LMDB keeps it. */
interface StoredItem {
  t: string;
  i: string;
  f?: VectorFilter;
}

interface State {
  version: 2;
  dimensions: number;
  metric: VectorMetric;
  quantization: Quantization;
  nextKey: number;
  /** `saved`: `index.usearch` holds exactly the items; `dirty`: written since. */
  graph: "saved" | "dirty";
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
const ITEMS_DIR = "items";
const STATE = "state";

/** HNSW graph degree unless `connectivity` says otherwise (ADR 0013). */
export const DEFAULT_CONNECTIVITY = 32;

/**
 * The first number of candidates a mode asks the graph for (measured on 100k × 768 with
 * connectivity 32: `fast` recall@10 0.986–0.987 for f32/f16/i8, `balanced` 0.999; ADR 0013).
 */
export function candidates(
  mode: Exclude<VectorMode, "accurate">,
  k: number,
  _quantization: Quantization,
): number {
  if (mode === "fast") return Math.max(k, 64);
  return Math.max(4 * k, 128);
}

/**
 * How many candidates, in the graph's order, are re-ranked by their exact f32 distance. An `f16`
 * graph ranks nearly as f32 does (its components keep 11 significant bits): re-ranking its first
 * max(2k, 16) gives the recall of re-ranking all 64 (100k × 768: 0.9870 both). An `i8` graph's own
 * order is too coarse (recall@10 0.78): all its candidates are re-ranked.
 */
export function rerankWidth(quantization: Quantization, k: number, found: number): number {
  if (quantization === "f16") return Math.min(found, Math.max(2 * k, 16));
  return found;
}

/** Rows gathered per native call of the exact scan (`accurate`). */
const SCAN_CHUNK = 1024;

/** Unit length (cosine is scale-free, and i8 needs components in [-1, 1]); zero stays zero. */
function normalized(v: Float32Array): Float32Array {
  let norm = 0;
  for (let i = 0; i < v.length; i++) norm += (v[i] as number) ** 2;
  if (norm === 0) return v;
  const scale = 1 / Math.sqrt(norm);
  return v.map((x) => x * scale);
}

const tenantKey = (tenantId: string, id: string) => `${tenantId}\u0000${id}`;

/** A failed LMDB commit: STORAGE_FULL when the disk is full, else VECTOR_UNAVAILABLE. */
async function storeError(e: unknown, path: string): Promise<KuraError> {
  guardCommitError(e);
  if (e instanceof KuraError) return e;
  const { cause, full } = await commitFailure(e, path);
  const message = (cause ?? e) instanceof Error ? ((cause ?? e) as Error).message : String(cause ?? e);
  return full
    ? new KuraError("STORAGE_FULL", `the vector index's item store: the disk is full (${message})`, {
        operation: "vector.write",
        cause: cause ?? e,
      })
    : new KuraError("VECTOR_UNAVAILABLE", `the vector index's item store failed to commit: ${message}`, {
        operation: "vector.write",
        cause: cause ?? e,
      });
}

function corrupt(message: string, dir: string | undefined, cause?: unknown): KuraError {
  return new KuraError("VECTOR_INDEX_CORRUPT", message, {
    operation: "vector.open",
    context: { dir },
    ...(cause === undefined ? {} : { cause }),
  });
}

function toBytes(v: Float32Array): Buffer {
  return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
}

/** A copy as an aligned `Float32Array` (LMDB buffers need not be 4-byte aligned). */
function fromBytes(b: Buffer): Float32Array {
  const out = new Float32Array(b.byteLength / 4);
  new Uint8Array(out.buffer).set(b);
  return out;
}

export async function openUsearchVectorIndex(options: UsearchOptions): Promise<UsearchVectorIndex> {
  const { dimensions, metric, dir } = options;
  const quantization = options.quantization ?? "f32";
  const defaultMode = options.mode ?? "balanced";
  const connectivity = options.connectivity ?? DEFAULT_CONNECTIVITY;
  const rerank = quantization !== "f32";
  const copyFormat = options.rerankCopy ?? defaultRerankCopy(quantization);
  // Without a directory the f32 vectors are in memory already: no copy.
  const copy =
    rerank && dir && copyFormat !== "none"
      ? new VectorCopy(copyFormat, dimensions, { shift: metric === "cosine" })
      : undefined;
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
  const entries = new Map<number, Entry>();
  const keys = new Map<string, number>();
  const byTenant = new Map<string, Set<number>>();
  /** Full vectors when in memory only (LMDB holds them otherwise). */
  const memoryVectors = new Map<number, Float32Array>();
  let nextKey = 1;
  let graphDirty = false;
  let closed = false;
  let env: RootDatabase | undefined;
  let items: Database<StoredItem, number> | undefined;
  let vectors: Database<Buffer, number> | undefined;
  let meta: Database<State, string> | undefined;

  const track = (key: number, entry: Entry) => {
    entries.set(key, entry);
    keys.set(tenantKey(entry.tenantId, entry.id), key);
    let set = byTenant.get(entry.tenantId);
    if (!set) {
      set = new Set();
      byTenant.set(entry.tenantId, set);
    }
    set.add(key);
  };
  const vectorOf = (key: number): Float32Array | undefined => {
    if (!vectors) return memoryVectors.get(key);
    const bytes = vectors.getBinary(key);
    return bytes ? fromBytes(bytes) : undefined;
  };
  // Exact distances: the vectors compared are copied into one matrix (reused, grown as needed)
  // and ranked against the query by usearch's native exact search on one thread. Its binding
  // reads both from the start of their buffers, so each is a view at offset 0 of its own buffer.
  // Stored and query vectors are both prepared, so cosine is 1 − a·b like ip.
  const exactMetric = metric === "l2" ? MetricKind.L2sq : MetricKind.IP;
  const queryRow = new Float32Array(dimensions);
  let matrix = new Float32Array(dimensions * 64);
  let matrixBytes = new Uint8Array(matrix.buffer);
  let matrixWords = new Uint32Array(matrix.buffer);
  let rowKeys = new Float64Array(64);
  const rowBytes = dimensions * 4;
  const reserve = (rows: number) => {
    if (rows * dimensions <= matrix.length) return;
    let capacity = matrix.length / dimensions;
    while (capacity < rows) capacity *= 2;
    matrix = new Float32Array(capacity * dimensions);
    matrixBytes = new Uint8Array(matrix.buffer);
    matrixWords = new Uint32Array(matrix.buffer);
    rowKeys = new Float64Array(capacity);
  };
  /** Copies the stored vector of `key` into row `row` of the matrix; false if it has none. */
  const gather = (key: number, row: number): boolean => {
    if (vectors) {
      const bytes = vectors.getBinaryFast(key);
      // A fast buffer is a window on lmdb-js's shared buffer, valid until the next read: its
      // `length` is the value's, and it is copied through a plain view of that window.
      if (!bytes || bytes.length !== rowBytes) return false;
      matrixBytes.set(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length), row * rowBytes);
    } else {
      const v = memoryVectors.get(key);
      if (!v) return false;
      matrix.set(v, row * dimensions);
    }
    rowKeys[row] = key;
    return true;
  };
  /** Row `row` of the matrix from the re-ranking copy when there is one, else as {@link gather}. */
  const gatherCandidate = (key: number, row: number): boolean => {
    if (!copy) return gather(key, row);
    if (!copy.decodeInto(key, matrix, matrixWords, row)) return false;
    rowKeys[row] = key;
    return true;
  };
  /**
   * The `rows` gathered rows ranked by exact distance to `against` (the query as the rows hold
   * it), nearest first: those within the first `k`, and any beyond tied with the k-th (ties are
   * broken by id afterwards).
   */
  const rankGathered = (rows: number, k: number, out: Ranked[], against = queryRow) => {
    if (rows === 0) return;
    const found = exactSearch(
      matrix.subarray(0, rows * dimensions),
      against,
      dimensions,
      rows,
      exactMetric,
      1,
    );
    const kth = found.distances[Math.min(k, rows) - 1] as number;
    for (let i = 0; i < rows; i++) {
      const distance = found.distances[i] as number;
      if (i >= k && distance > kth) break;
      out.push({ key: rowKeys[Number(found.keys[i])] as number, distance });
    }
  };
  /** Sorts `ranked` by distance, then id, and keeps its first `k`. */
  const firstK = (ranked: Ranked[], k: number) => {
    const idOf = (key: number) => (entries.get(key) as Entry).id;
    ranked.sort((a, b) => {
      if (a.distance !== b.distance) return a.distance - b.distance;
      const x = idOf(a.key);
      const y = idOf(b.key);
      return x < y ? -1 : x > y ? 1 : 0;
    });
    if (ranked.length > k) ranked.length = k;
  };
  /** The first `k` of `ranked` by distance, then id, as hits. */
  const hitsOf = (ranked: Ranked[], k: number): VectorHit[] => {
    firstK(ranked, k);
    return ranked.map(({ key, distance }) => {
      const entry = entries.get(key) as Entry;
      return { id: entry.id, distance, ...filterFields(entry) };
    });
  };
  const state = (graph: State["graph"]): State => ({
    version: 2,
    dimensions,
    metric,
    quantization,
    nextKey,
    graph,
  });

  if (dir) {
    const { open } = await import("lmdb");
    try {
      mkdirSync(join(dir, ITEMS_DIR), { recursive: true });
      env = open({
        path: join(dir, ITEMS_DIR),
        noSync: options.durability !== "fsync",
        maxDbs: 4,
        ...LMDB_ENV_OPTIONS,
      });
      items = env.openDB<StoredItem, number>("items", { encoding: "msgpack", keyEncoding: "uint32" });
      vectors = env.openDB<Buffer, number>("vectors", { encoding: "binary", keyEncoding: "uint32" });
      meta = env.openDB<State, string>("meta", { encoding: "msgpack" });
    } catch (cause) {
      throw corrupt("the vector index's item store cannot be opened", dir, cause);
    }
    const saved = meta.get(STATE);
    if (saved) {
      if (saved.dimensions !== dimensions || saved.metric !== metric || saved.quantization !== quantization) {
        await env.close();
        throw new KuraError(
          "VECTOR_INDEX_CONFIG_CHANGED",
          `the vector index was built with ${saved.dimensions} dimensions, metric ${saved.metric}, ` +
            `quantization ${saved.quantization}; the configuration asks for ${dimensions}, ${metric}, ${quantization}`,
          { operation: "vector.open", context: { dir } },
        );
      }
      nextKey = saved.nextKey;
    } else await meta.put(STATE, state("saved"));
    for (const { key, value } of items.getRange()) {
      // The state's next key is only as new as the last save or dirty mark: keys handed out
      // since are in the items themselves.
      if (key >= nextKey) nextKey = key + 1;
      track(key, { tenantId: value.t, id: value.i, ...filterFields(value.f ?? {}) });
    }
    const file = join(dir, INDEX_FILE);
    let loaded = false;
    if (saved?.graph === "saved" && entries.size > 0 && existsSync(file)) {
      try {
        index.load(file);
        loaded = index.size() === entries.size;
      } catch {
        loaded = false;
      }
      if (!loaded) index = build();
    }
    if (!loaded && entries.size > 0) {
      // A crash left the graph behind its items (or the file is gone): rebuild it from LMDB.
      const batch = 1024;
      const all = [...entries.keys()];
      for (let start = 0; start < all.length; start += batch) {
        const slice = all.slice(start, start + batch);
        const rows: Float32Array[] = [];
        for (const key of slice) {
          const v = vectorOf(key);
          if (!v || v.length !== dimensions)
            throw corrupt(`item ${key} of the vector index has no vector of ${dimensions} dimensions`, dir);
          rows.push(v);
        }
        index.add(BigUint64Array.from(slice.map(BigInt)), rows);
      }
      graphDirty = true;
    }
    if (copy && vectors) {
      // The re-ranking copy is derived: rebuilt from the vectors of record on every open.
      for (const { key, value } of vectors.getRange())
        if (entries.has(key) && value.length === rowBytes) copy.put(key, fromBytes(value));
    }
  }

  const assertOpen = (operation: string) => {
    if (closed) throw new KuraError("INVALID_ARGUMENT", "the vector index is closed", { operation });
  };

  // Writes and saves run one at a time: a save must not interleave with a write.
  let chain: Promise<unknown> = Promise.resolve();
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = chain.then(fn);
    chain = run.catch(() => undefined);
    return run;
  };

  /** Commit to LMDB (marking the graph dirty), then apply to the graph in memory. */
  const commit = async (write: () => void, apply: () => void) => {
    if (env) {
      try {
        await env.transaction(() => {
          write();
          if (!graphDirty) meta?.put(STATE, state("dirty"));
        });
      } catch (e) {
        throw await storeError(e, join(dir as string, ITEMS_DIR));
      }
    }
    graphDirty = true;
    apply();
  };

  const forget = (key: number) => {
    const entry = entries.get(key);
    if (!entry) return;
    index.remove(BigInt(key));
    entries.delete(key);
    memoryVectors.delete(key);
    copy?.delete(key);
    keys.delete(tenantKey(entry.tenantId, entry.id));
    const set = byTenant.get(entry.tenantId);
    set?.delete(key);
    if (set?.size === 0) byTenant.delete(entry.tenantId);
  };

  /** Every vector of the tenant compared with the query, in chunks of {@link SCAN_CHUNK} rows. */
  const exactScan = (query: VectorQuery): VectorHit[] => {
    reserve(SCAN_CHUNK);
    const ranked: Ranked[] = [];
    let rows = 0;
    const flush = () => {
      rankGathered(rows, query.k, ranked);
      rows = 0;
      // The first k by (distance, id) of a superset contain the final k: keep the pool small.
      if (ranked.length > 4 * query.k) firstK(ranked, query.k);
    };
    for (const key of byTenant.get(query.tenantId) ?? []) {
      const entry = entries.get(key) as Entry;
      if (!matchesFilter(entry, query.filter)) continue;
      if (!gather(key, rows)) continue;
      if (++rows === SCAN_CHUNK) flush();
    }
    flush();
    return hitsOf(ranked, query.k);
  };

  const saveNow = async () => {
    if (!dir || !env || !graphDirty) return;
    const file = join(dir, INDEX_FILE);
    if (entries.size > 0) {
      index.save(`${file}.tmp`);
      await rename(`${file}.tmp`, file);
    } else await rm(file, { force: true });
    await meta?.put(STATE, state("saved")).then(undefined, async (e: unknown) => {
      throw await storeError(e, join(dir, ITEMS_DIR));
    });
    if (options.durability === "fsync") await env.flushed;
    graphDirty = false;
  };

  return {
    backend: "usearch",
    dimensions,
    metric,
    async upsert(batch: readonly VectorItem[]) {
      assertOpen("vector.upsert");
      const checked = batch.map((item) => checkVector(item.vector, dimensions, "vector.upsert"));
      if (batch.length === 0) return;
      return serial(async () => {
        assertOpen("vector.upsert");
        // The last of duplicate ids in one batch wins, as if applied one after another.
        const last = new Map<string, number>();
        for (const [i, item] of batch.entries()) last.set(tenantKey(item.tenantId, item.id), i);
        const rows: Array<{ key: number; old: number | undefined; item: VectorItem; vector: Float32Array }> =
          [];
        for (const i of last.values()) {
          const item = batch[i] as VectorItem;
          // A fresh key per version: usearch never sees a key re-added after removal.
          rows.push({
            key: nextKey++,
            old: keys.get(tenantKey(item.tenantId, item.id)),
            item,
            // Stored as the graph sees it (unit length for cosine), so exact distances need no norms.
            vector: Float32Array.from(prepare(checked[i] as Float32Array)),
          });
        }
        await commit(
          () => {
            for (const r of rows) {
              if (r.old !== undefined) {
                items?.remove(r.old);
                vectors?.remove(r.old);
              }
              const f = filterFields(r.item);
              items?.put(r.key, {
                t: r.item.tenantId,
                i: r.item.id,
                ...(Object.keys(f).length ? { f } : {}),
              });
              vectors?.put(r.key, toBytes(r.vector));
            }
          },
          () => {
            for (const r of rows) {
              if (r.old !== undefined) forget(r.old);
              track(r.key, { tenantId: r.item.tenantId, id: r.item.id, ...filterFields(r.item) });
              if (!vectors) memoryVectors.set(r.key, r.vector);
              copy?.put(r.key, r.vector);
            }
            index.add(
              BigUint64Array.from(rows.map((r) => BigInt(r.key))),
              rows.map((r) => r.vector),
            );
          },
        );
      });
    },
    async remove(tenantId: string, ids: readonly string[]) {
      assertOpen("vector.remove");
      return serial(async () => {
        const gone = ids.map((id) => keys.get(tenantKey(tenantId, id))).filter((k) => k !== undefined);
        if (gone.length === 0) return;
        await commit(
          () => {
            for (const key of gone) {
              items?.remove(key);
              vectors?.remove(key);
            }
          },
          () => {
            for (const key of gone) forget(key);
          },
        );
      });
    },
    async query(query: VectorQuery): Promise<VectorHit[]> {
      assertOpen("vector.query");
      checkQuery(query, "vector.query");
      const q = prepare(checkVector(query.vector, dimensions, "vector.query"));
      const size = entries.size;
      if (!byTenant.has(query.tenantId)) return [];
      queryRow.set(q);
      const mode = query.mode ?? defaultMode;
      if (mode === "accurate") return exactScan(query);
      let want = Math.min(size, candidates(mode, query.k, quantization));
      for (;;) {
        const found = index.search(q, want, 1);
        if (rerank) {
          // Candidates of the tenant that pass the filter, in the graph's order, gathered for
          // exact distances.
          const width = rerankWidth(quantization, query.k, found.keys.length);
          reserve(width);
          let rows = 0;
          let matched = 0;
          for (let i = 0; i < found.keys.length && rows < width; i++) {
            const key = Number(found.keys[i]);
            const entry = entries.get(key);
            if (!entry || entry.tenantId !== query.tenantId || !matchesFilter(entry, query.filter)) continue;
            matched++;
            if (gatherCandidate(key, rows)) rows++;
          }
          if (matched >= query.k) {
            const ranked: Ranked[] = [];
            rankGathered(rows, query.k, ranked, queryRow);
            if (ranked.length >= query.k) return hitsOf(ranked, query.k);
          }
        } else {
          const hits: VectorHit[] = [];
          for (let i = 0; i < found.keys.length && hits.length < query.k; i++) {
            const key = Number(found.keys[i]);
            const entry = entries.get(key);
            if (!entry || entry.tenantId !== query.tenantId || !matchesFilter(entry, query.filter)) continue;
            hits.push({ id: entry.id, distance: found.distances[i] as number, ...filterFields(entry) });
          }
          if (hits.length >= query.k) return hits;
        }
        if (want >= size) return exactScan(query);
        want = Math.min(size, want * 4);
      }
    },
    rerankCopyBytes() {
      return copy?.bytes ?? 0;
    },
    async count(tenantId?: string) {
      return tenantId === undefined ? entries.size : (byTenant.get(tenantId)?.size ?? 0);
    },
    async save() {
      assertOpen("vector.save");
      return serial(saveNow);
    },
    async drop() {
      if (!closed) {
        closed = true;
        await chain;
        await env?.close();
        index = build();
        copy?.clear();
      }
      if (dir) await rm(dir, { recursive: true, force: true });
    },
    async close() {
      if (closed) return;
      await serial(saveNow);
      closed = true;
      await env?.close();
      index = build();
      copy?.clear();
    },
  };
}

/** Indexes of one configuration; nothing is shared between them but the options. */
export const usearchVectorIndex: VectorIndexDefinition<UsearchDefinitionOptions> = {
  scheme: "usearch",
  capabilities: CAPABILITIES,
  parseOptions: (raw) => parseOptions(usearchOptionsSchema, raw, OPTIONS_PATH),
  create: async (options, deps = {}) => ({
    open: async (place) => {
      checkPlace(place, "vector.open");
      const { dimensions, metric, name, tenantId } = place;
      return openUsearchVectorIndex({
        dimensions,
        metric,
        mode: options.mode,
        quantization: options.quantization === "i8" && metric !== "cosine" ? "f16" : options.quantization,
        ...(deps.durability ? { durability: deps.durability } : {}),
        ...(options.dir === undefined
          ? {}
          : {
              dir:
                tenantId === undefined
                  ? join(options.dir, name)
                  : join(options.dir, "tenants", tenantId, name),
            }),
      });
    },
    close: async () => {},
  }),
};
