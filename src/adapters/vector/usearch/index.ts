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
 * Files: `../item-store.ts` (the LMDB store of record, shared with faiss), `graph.ts` (the graph, its file, its rebuild),
 * `exact.ts` (exact distances), `widths.ts` (search and re-ranking widths), `vector-copy.ts`
 * (the re-ranking copy); this one holds the definition and the index over them. It stays
 * whole: the index's maps, write chain and query loop are one class sharing one state.
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
import { rm } from "node:fs/promises";
import type { Index } from "usearch";
import { z } from "zod";
import { KuraError } from "../../../core/errors.js";
import { closedError } from "../../../core/lifecycle.js";
import { parseOptions } from "../../../core/options.js";
import { checkVector } from "../../../core/vectors.js";
import type {
  VectorCapabilities,
  VectorFilter,
  VectorHit,
  VectorIndex,
  VectorIndexDefinition,
  VectorIndexOptions,
  VectorIndexPlace,
  VectorItem,
  VectorMetric,
  VectorMode,
  VectorQuery,
} from "../../../ports/vector-index.js";
import { checkPlace, checkQuery, filterFields, matchesFilter, modeOption, OPTIONS_PATH } from "../common.js";
import {
  fromBytes,
  ItemStore,
  placeDir,
  type Quantization,
  type State,
  scanItemStore,
} from "../item-store.js";
import { ExactMatrix, type Ranked } from "./exact.js";
import { type GraphConfig, newGraph, openGraph, writeGraph } from "./graph.js";
import { VectorCopy } from "./vector-copy.js";
import {
  candidates,
  DEFAULT_CONNECTIVITY,
  defaultRerankCopy,
  type RerankCopy,
  rerankWidth,
} from "./widths.js";

const QUANTIZATIONS = ["f32", "f16", "i8"] as const satisfies readonly Quantization[];

export type { Quantization } from "../item-store.js";
export {
  candidates,
  DEFAULT_CONNECTIVITY,
  defaultRerankCopy,
  type RerankCopy,
  rerankWidth,
} from "./widths.js";

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
  remote: false,
});

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

export async function openUsearchVectorIndex(options: UsearchOptions): Promise<UsearchVectorIndex> {
  const { metric } = options;
  const quantization = options.quantization ?? "f32";
  // usearch's i8 scales components by 127 and clips them to [-1, 1]: it is only faithful for
  // normalized vectors, which is what the cosine metric compares.
  if (quantization === "i8" && metric !== "cosine")
    throw new KuraError(
      "VECTOR_QUANTIZATION_UNSUPPORTED",
      `i8 quantization needs the cosine metric (got ${metric}); use f16 or f32 for ${metric}`,
      { operation: "vector.open", context: { quantization, metric } },
    );
  const index = new UsearchIndex(options, quantization);
  await index.load();
  return index;
}

class UsearchIndex implements UsearchVectorIndex {
  readonly backend = "usearch";
  readonly dimensions: number;
  readonly metric: VectorMetric;
  private readonly dir: string | undefined;
  private readonly durability: "os" | "fsync" | undefined;
  private readonly graph: GraphConfig;
  private readonly defaultMode: VectorMode;
  private readonly rerank: boolean;
  /** The in-memory copy re-ranking reads, if any. */
  private readonly copy: VectorCopy | undefined;
  private readonly exact: ExactMatrix;
  private index: Index;
  private readonly entries = new Map<number, Entry>();
  private readonly keys = new Map<string, number>();
  private readonly byTenant = new Map<string, Set<number>>();
  /** Full vectors when in memory only (LMDB holds them otherwise). */
  private readonly memoryVectors = new Map<number, Float32Array>();
  private store: ItemStore | undefined;
  private nextKey = 1;
  private graphDirty = false;
  private closed = false;
  /** Writes and saves run one at a time: a save must not interleave with a write. */
  private chain: Promise<unknown> = Promise.resolve();

  constructor(options: UsearchOptions, quantization: Quantization) {
    const { dimensions, metric, dir } = options;
    this.dimensions = dimensions;
    this.metric = metric;
    this.dir = dir;
    this.durability = options.durability;
    this.graph = {
      dimensions,
      metric,
      quantization,
      connectivity: options.connectivity ?? DEFAULT_CONNECTIVITY,
    };
    this.defaultMode = options.mode ?? "balanced";
    this.rerank = quantization !== "f32";
    const copyFormat = options.rerankCopy ?? defaultRerankCopy(quantization);
    // Without a directory the f32 vectors are in memory already: no copy.
    this.copy =
      this.rerank && dir && copyFormat !== "none"
        ? new VectorCopy(copyFormat, dimensions, { shift: metric === "cosine" })
        : undefined;
    this.exact = new ExactMatrix(dimensions, metric);
    this.index = newGraph(this.graph);
  }

  /** With a directory: the items from LMDB, the graph loaded or rebuilt, the copy rebuilt. */
  async load(): Promise<void> {
    const dir = this.dir;
    if (!dir) return;
    const store = await ItemStore.open(dir, this.durability, this.graph);
    this.store = store;
    const saved = store.state();
    if (saved) this.nextKey = saved.nextKey;
    else await store.initState(this.state("saved"));
    for (const { key, value } of store.allItems()) {
      // The state's next key is only as new as the last save or dirty mark: keys handed out
      // since are in the items themselves.
      if (key >= this.nextKey) this.nextKey = key + 1;
      this.track(key, { tenantId: value.t, id: value.i, ...filterFields(value.f ?? {}) });
    }
    const { index, rebuilt } = openGraph(
      this.graph,
      dir,
      saved?.graph === "saved",
      [...this.entries.keys()],
      (key) => store.vector(key),
    );
    this.index = index;
    if (rebuilt) this.graphDirty = true;
    if (this.copy) {
      // The re-ranking copy is derived: rebuilt from the vectors of record on every open.
      const rowBytes = this.dimensions * 4;
      for (const { key, value } of store.allVectors())
        if (this.entries.has(key) && value.length === rowBytes) this.copy.put(key, fromBytes(value));
    }
  }

  private state(graph: State["graph"]): State {
    const { dimensions, metric, quantization } = this.graph;
    return { version: 2, dimensions, metric, quantization, nextKey: this.nextKey, graph };
  }

  private prepare(v: Float32Array): Float32Array {
    return this.metric === "cosine" ? normalized(v) : v;
  }

  private track(key: number, entry: Entry): void {
    this.entries.set(key, entry);
    this.keys.set(tenantKey(entry.tenantId, entry.id), key);
    let set = this.byTenant.get(entry.tenantId);
    if (!set) {
      set = new Set();
      this.byTenant.set(entry.tenantId, set);
    }
    set.add(key);
  }

  private forget(key: number): void {
    const entry = this.entries.get(key);
    if (!entry) return;
    this.index.remove(BigInt(key));
    this.entries.delete(key);
    this.memoryVectors.delete(key);
    this.copy?.delete(key);
    this.keys.delete(tenantKey(entry.tenantId, entry.id));
    const set = this.byTenant.get(entry.tenantId);
    set?.delete(key);
    if (set?.size === 0) this.byTenant.delete(entry.tenantId);
  }

  /** Copies the stored vector of `key` into row `row` of the matrix; false if it has none. */
  private gather(key: number, row: number): boolean {
    if (this.store) return this.exact.setBytes(row, key, this.store.vectorWindow(key));
    return this.exact.setVector(row, key, this.memoryVectors.get(key));
  }

  /** Row `row` of the matrix from the re-ranking copy when there is one, else as {@link gather}. */
  private gatherCandidate(key: number, row: number): boolean {
    if (!this.copy) return this.gather(key, row);
    return this.exact.setFromCopy(row, key, this.copy);
  }

  /** Sorts `ranked` by distance, then id, and keeps its first `k`. */
  private firstK(ranked: Ranked[], k: number): void {
    const idOf = (key: number) => (this.entries.get(key) as Entry).id;
    ranked.sort((a, b) => {
      if (a.distance !== b.distance) return a.distance - b.distance;
      const x = idOf(a.key);
      const y = idOf(b.key);
      return x < y ? -1 : x > y ? 1 : 0;
    });
    if (ranked.length > k) ranked.length = k;
  }

  /** The first `k` of `ranked` by distance, then id, as hits. */
  private hitsOf(ranked: Ranked[], k: number): VectorHit[] {
    this.firstK(ranked, k);
    return ranked.map(({ key, distance }) => {
      const entry = this.entries.get(key) as Entry;
      return { id: entry.id, distance, ...filterFields(entry) };
    });
  }

  private assertOpen(operation: string): void {
    if (this.closed) throw closedError("the vector index", operation);
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn);
    this.chain = run.catch(() => undefined);
    return run;
  }

  /** Commit to LMDB (marking the graph dirty), then apply to the graph in memory. */
  private async commit(write: (store: ItemStore) => void, apply: () => void): Promise<void> {
    const store = this.store;
    if (store) await store.commit(() => write(store), this.graphDirty ? undefined : this.state("dirty"));
    this.graphDirty = true;
    apply();
  }

  /** Every vector of the tenant compared with the query, in chunks of {@link SCAN_CHUNK} rows. */
  private exactScan(query: VectorQuery): VectorHit[] {
    this.exact.reserve(SCAN_CHUNK);
    const ranked: Ranked[] = [];
    let rows = 0;
    const flush = () => {
      this.exact.rank(rows, query.k, ranked);
      rows = 0;
      // The first k by (distance, id) of a superset contain the final k: keep the pool small.
      if (ranked.length > 4 * query.k) this.firstK(ranked, query.k);
    };
    for (const key of this.byTenant.get(query.tenantId) ?? []) {
      const entry = this.entries.get(key) as Entry;
      if (!matchesFilter(entry, query.filter)) continue;
      if (!this.gather(key, rows)) continue;
      if (++rows === SCAN_CHUNK) flush();
    }
    flush();
    return this.hitsOf(ranked, query.k);
  }

  private async saveNow(): Promise<void> {
    const { dir, store } = this;
    if (!dir || !store || !this.graphDirty) return;
    await writeGraph(this.index, dir, this.entries.size);
    await store.putState(this.state("saved"));
    if (this.durability === "fsync") await store.flushed;
    this.graphDirty = false;
  }

  async upsert(batch: readonly VectorItem[]): Promise<void> {
    this.assertOpen("vector.upsert");
    const checked = batch.map((item) => checkVector(item.vector, this.dimensions, "vector.upsert"));
    if (batch.length === 0) return;
    return this.serial(async () => {
      this.assertOpen("vector.upsert");
      // The last of duplicate ids in one batch wins, as if applied one after another.
      const last = new Map<string, number>();
      for (const [i, item] of batch.entries()) last.set(tenantKey(item.tenantId, item.id), i);
      const rows: Array<{ key: number; old: number | undefined; item: VectorItem; vector: Float32Array }> =
        [];
      for (const i of last.values()) {
        const item = batch[i] as VectorItem;
        // A fresh key per version: usearch never sees a key re-added after removal.
        rows.push({
          key: this.nextKey++,
          old: this.keys.get(tenantKey(item.tenantId, item.id)),
          item,
          // Stored as the graph sees it (unit length for cosine), so exact distances need no norms.
          vector: Float32Array.from(this.prepare(checked[i] as Float32Array)),
        });
      }
      await this.commit(
        (store) => {
          for (const r of rows) {
            if (r.old !== undefined) store.removeItem(r.old);
            const f = filterFields(r.item);
            store.putItem(
              r.key,
              { t: r.item.tenantId, i: r.item.id, ...(Object.keys(f).length ? { f } : {}) },
              r.vector,
            );
          }
        },
        () => {
          for (const r of rows) {
            if (r.old !== undefined) this.forget(r.old);
            this.track(r.key, { tenantId: r.item.tenantId, id: r.item.id, ...filterFields(r.item) });
            if (!this.store) this.memoryVectors.set(r.key, r.vector);
            this.copy?.put(r.key, r.vector);
          }
          this.index.add(
            BigUint64Array.from(rows.map((r) => BigInt(r.key))),
            rows.map((r) => r.vector),
          );
        },
      );
    });
  }

  async remove(tenantId: string, ids: readonly string[]): Promise<void> {
    this.assertOpen("vector.remove");
    return this.serial(async () => {
      const gone = ids.map((id) => this.keys.get(tenantKey(tenantId, id))).filter((k) => k !== undefined);
      if (gone.length === 0) return;
      await this.commit(
        (store) => {
          for (const key of gone) store.removeItem(key);
        },
        () => {
          for (const key of gone) this.forget(key);
        },
      );
    });
  }

  async query(query: VectorQuery): Promise<VectorHit[]> {
    this.assertOpen("vector.query");
    checkQuery(query, "vector.query");
    const q = this.prepare(checkVector(query.vector, this.dimensions, "vector.query"));
    const size = this.entries.size;
    if (!this.byTenant.has(query.tenantId)) return [];
    this.exact.queryRow.set(q);
    const mode = query.mode ?? this.defaultMode;
    if (mode === "accurate") return this.exactScan(query);
    const quantization = this.graph.quantization;
    let want = Math.min(size, candidates(mode, query.k, quantization));
    for (;;) {
      const found = this.index.search(q, want, 1);
      if (this.rerank) {
        // Candidates of the tenant that pass the filter, in the graph's order, gathered for
        // exact distances.
        const width = rerankWidth(quantization, query.k, found.keys.length);
        this.exact.reserve(width);
        let rows = 0;
        let matched = 0;
        for (let i = 0; i < found.keys.length && rows < width; i++) {
          const key = Number(found.keys[i]);
          const entry = this.entries.get(key);
          if (!entry || entry.tenantId !== query.tenantId || !matchesFilter(entry, query.filter)) continue;
          matched++;
          if (this.gatherCandidate(key, rows)) rows++;
        }
        if (matched >= query.k) {
          const ranked: Ranked[] = [];
          this.exact.rank(rows, query.k, ranked);
          if (ranked.length >= query.k) return this.hitsOf(ranked, query.k);
        }
      } else {
        const hits: VectorHit[] = [];
        for (let i = 0; i < found.keys.length && hits.length < query.k; i++) {
          const key = Number(found.keys[i]);
          const entry = this.entries.get(key);
          if (!entry || entry.tenantId !== query.tenantId || !matchesFilter(entry, query.filter)) continue;
          hits.push({ id: entry.id, distance: found.distances[i] as number, ...filterFields(entry) });
        }
        if (hits.length >= query.k) return hits;
      }
      if (want >= size) return this.exactScan(query);
      want = Math.min(size, want * 4);
    }
  }

  rerankCopyBytes(): number {
    return this.copy?.bytes ?? 0;
  }

  async count(tenantId?: string): Promise<number> {
    this.assertOpen("vector.count");
    return tenantId === undefined ? this.entries.size : (this.byTenant.get(tenantId)?.size ?? 0);
  }

  async existing(tenantId: string, ids: readonly string[]): Promise<Set<string>> {
    this.assertOpen("vector.existing");
    return new Set(ids.filter((id) => this.keys.has(tenantKey(tenantId, id))));
  }

  async save(): Promise<void> {
    this.assertOpen("vector.save");
    return this.serial(() => this.saveNow());
  }

  async drop(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      await this.chain;
      await this.store?.close();
      this.index = newGraph(this.graph);
      this.copy?.clear();
    }
    if (this.dir) await rm(this.dir, { recursive: true, force: true });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.serial(() => this.saveNow());
    this.closed = true;
    await this.store?.close();
    this.index = newGraph(this.graph);
    this.copy?.clear();
  }
}

/** Indexes of one configuration; nothing is shared between them but the options. */
export const usearchVectorIndex: VectorIndexDefinition<UsearchDefinitionOptions> = {
  scheme: "usearch",
  capabilities: CAPABILITIES,
  parseOptions: (raw) => parseOptions(usearchOptionsSchema, raw, OPTIONS_PATH),
  create: async (options, deps = {}) => {
    const quantizationOf = (place: VectorIndexPlace): Quantization =>
      options.quantization === "i8" && place.metric !== "cosine" ? "f16" : options.quantization;
    const dirOf = (place: VectorIndexPlace) => placeDir(options.dir, place);
    return {
      open: async (place) => {
        checkPlace(place, "vector.open");
        const { dimensions, metric } = place;
        const dir = dirOf(place);
        return openUsearchVectorIndex({
          dimensions,
          metric,
          mode: options.mode,
          quantization: quantizationOf(place),
          ...(deps.durability ? { durability: deps.durability } : {}),
          ...(dir === undefined ? {} : { dir }),
        });
      },
      scan: async (place, o) => {
        checkPlace(place, "vector.scan");
        const { dimensions, metric } = place;
        return scanItemStore(
          dirOf(place),
          deps.durability,
          { dimensions, metric, quantization: quantizationOf(place) },
          o,
        );
      },
      close: async () => {},
    };
  },
};
