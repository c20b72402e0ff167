/**
 * The FAISS vector index (seed 004's engine): an inverted-file index from libfaiss through
 * faiss-node — IVF-PQ (`IVF4096,PQ64` by default, as seed 004 names it) or IVF-Flat — over the
 * same LMDB store of record as the usearch adapter (`../item-store.ts`).
 *
 * - Writes: an upsert or remove resolves once its LMDB transaction committed (the state marked
 *   `dirty` with the first write after a save), then applies to the index in memory.
 * - Training: until `train_size` items are held (default 39 × `nlist`, FAISS's minimum for its
 *   k-means) there is no index and every query is exact over the store of record. The upsert that
 *   reaches it trains the index on the first `train_size` vectors (by key: the oldest first) and
 *   adds every item; that upsert takes as long as the training (seconds to minutes at 768
 *   dimensions). PQ is trained without polysemous codes (`np`): they are not used for search here
 *   and made training a hundred times slower. Kind `flat` never trains: always exact.
 * - Queries: `accurate` is exact; `fast` and `balanced` search `nprobe_fast` / `nprobe_balanced`
 *   lists for {@link candidates} candidates, and re-rank those of the tenant that pass the
 *   filter by their exact distance from the store of record. Fewer than k matches: the candidates
 *   are multiplied by 4 and the search repeated; once the probed lists hold no more, or the
 *   candidates cover the index, the exact scan answers, so k hits come back whenever k matching
 *   items exist.
 * - Removal masks the item's label (see `ann.ts`): the index is rebuilt without retraining once
 *   masked labels outnumber live ones.
 * - Persistence: `save` (and `close`) writes `index.faiss` (the trained index, its empty template
 *   and its labels) and marks the state `saved`; opening loads it when the state says it is
 *   current and it holds exactly the items of record, else rebuilds it from LMDB (reusing the
 *   file's trained template when its configuration matches, retraining otherwise).
 *
 * Vectors are stored as the index compares them: unit length for `cosine` (so cosine is 1 − a·b
 * like `ip`). The PQ sub-quantizers are the largest divisor of the dimensions not above `m`
 * (a collection of 3 dimensions cannot have 64).
 */
import { rm } from "node:fs/promises";
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
  VectorItem,
  VectorMetric,
  VectorMode,
  VectorQuery,
} from "../../../ports/vector-index.js";
import {
  checkPlace,
  checkQuery,
  distance,
  filterFields,
  matchesFilter,
  modeOption,
  OPTIONS_PATH,
} from "../common.js";
import { fromBytes, ItemStore, placeDir, type State, scanItemStore } from "../item-store.js";
import { Ann, type AnnConfig, type FaissKind } from "./ann.js";
import { type FaissModule, HOW_TO_INSTALL, loadFaiss } from "./binding.js";

export type { FaissKind } from "./ann.js";

const KINDS = ["ivf_pq", "ivf_flat", "flat"] as const satisfies readonly FaissKind[];

/** The options of the `faiss` definition. */
export const faissOptionsSchema = z
  .object({
    /** The directory of every index (as usearch's). Absent: the indexes live in memory only. */
    dir: z.string().min(1).optional(),
    /** The faiss-node module's directory; absent: `faiss-node` as Node resolves it. */
    module_path: z.string().min(1).optional(),
    /** `ivf_pq` (default), `ivf_flat`, or `flat` (no index: always exact). */
    index: z.enum(KINDS).default("ivf_pq"),
    /** Inverted lists (k-means centroids); default 4096. */
    nlist: z.number().int().min(1).max(1_048_576).default(4096),
    /** PQ sub-quantizers of 8 bits each (`ivf_pq`); default 64. */
    m: z.number().int().min(1).max(65_536).default(64),
    /** Items held before the index is trained (on the first of them); default 39 × nlist. */
    train_size: z.number().int().min(1).optional(),
    /** Lists searched by `fast` queries; default 16. */
    nprobe_fast: z.number().int().min(1).max(1_048_576).default(16),
    /** Lists searched by `balanced` queries; default 64. */
    nprobe_balanced: z.number().int().min(1).max(1_048_576).default(64),
    mode: modeOption,
  })
  .strict();
export type FaissDefinitionOptions = z.infer<typeof faissOptionsSchema>;

const CAPABILITIES: VectorCapabilities = Object.freeze({
  shared: false,
  persistent: true,
  quantization: false,
  remote: false,
});

export interface FaissOptions extends VectorIndexOptions {
  faiss: FaissModule;
  kind?: FaissKind;
  nlist?: number;
  m?: number;
  trainSize?: number;
  nprobeFast?: number;
  nprobeBalanced?: number;
  /** Directory of the persisted index; absent = in memory only. */
  dir?: string;
  durability?: "os" | "fsync";
}

/** The faiss adapter's index, with what the bench reports. */
export interface FaissVectorIndex extends VectorIndex {
  /** Whether the inverted-file index is trained (else every query is exact). */
  trained(): boolean;
  /** Bytes of `index.faiss` as it would be written (0 while untrained). */
  indexBytes(): number;
}

/** The first number of candidates a mode asks the index for, before re-ranking. */
export function candidates(mode: Exclude<VectorMode, "accurate">, k: number): number {
  return mode === "fast" ? Math.max(4 * k, 64) : Math.max(8 * k, 256);
}

/** The largest divisor of `dimensions` not above `m`. */
export function subQuantizers(dimensions: number, m: number): number {
  for (let q = Math.min(m, dimensions); q > 1; q--) if (dimensions % q === 0) return q;
  return 1;
}

interface Entry extends VectorFilter {
  tenantId: string;
  id: string;
}

interface Ranked {
  key: number;
  distance: number;
}

function normalized(v: Float32Array): Float32Array {
  let norm = 0;
  for (let i = 0; i < v.length; i++) norm += (v[i] as number) ** 2;
  if (norm === 0) return v;
  const scale = 1 / Math.sqrt(norm);
  return v.map((x) => x * scale);
}

const tenantKey = (tenantId: string, id: string) => `${tenantId}\u0000${id}`;

export async function openFaissVectorIndex(options: FaissOptions): Promise<FaissVectorIndex> {
  const kind = options.kind ?? "ivf_pq";
  const nlist = options.nlist ?? 4096;
  if (kind !== "flat" && typeof options.faiss.Index.fromFactory(1, "Flat").setNprobe !== "function")
    throw new KuraError(
      "VECTOR_UNAVAILABLE",
      `vector.backend faiss: this faiss-node cannot set nprobe (it lacks setNprobe): ${HOW_TO_INSTALL}`,
      { operation: "vector.open" },
    );
  const trainSize = options.trainSize ?? 39 * nlist;
  // k-means needs a point per list, 8-bit PQ one per code.
  const least = Math.max(nlist, kind === "ivf_pq" ? 256 : 1);
  if (kind !== "flat" && trainSize < least)
    throw new KuraError("CONFIG_INVALID", `vector.train_size must be at least ${least} (nlist ${nlist})`, {
      operation: "vector.open",
      context: { train_size: trainSize, nlist },
    });
  const index = new FaissIndexImpl(options, kind, nlist, trainSize);
  await index.load();
  return index;
}

class FaissIndexImpl implements FaissVectorIndex {
  readonly backend = "faiss";
  readonly dimensions: number;
  readonly metric: VectorMetric;
  private readonly faiss: FaissModule;
  private readonly dir: string | undefined;
  private readonly durability: "os" | "fsync" | undefined;
  private readonly annConfig: AnnConfig | undefined;
  private readonly nprobe: Record<"fast" | "balanced", number>;
  private readonly defaultMode: VectorMode;
  private ann: Ann | undefined;
  private readonly entries = new Map<number, Entry>();
  private readonly keys = new Map<string, number>();
  private readonly byTenant = new Map<string, Set<number>>();
  /** Vectors when in memory only (LMDB holds them otherwise). */
  private readonly memoryVectors = new Map<number, Float32Array>();
  private store: ItemStore | undefined;
  private nextKey = 1;
  private indexDirty = false;
  private closed = false;
  private chain: Promise<unknown> = Promise.resolve();

  constructor(
    options: FaissOptions,
    kind: FaissKind,
    nlist: number,
    private readonly trainSize: number,
  ) {
    const { dimensions, metric } = options;
    this.dimensions = dimensions;
    this.metric = metric;
    this.faiss = options.faiss;
    this.dir = options.dir;
    this.durability = options.durability;
    this.annConfig =
      kind === "flat"
        ? undefined
        : {
            dimensions,
            metric,
            kind,
            nlist,
            m: kind === "ivf_pq" ? subQuantizers(dimensions, options.m ?? 64) : 0,
          };
    this.nprobe = { fast: options.nprobeFast ?? 16, balanced: options.nprobeBalanced ?? 64 };
    this.defaultMode = options.mode ?? "balanced";
  }

  /** With a directory: the items from LMDB, then the index loaded, rebuilt or trained. */
  async load(): Promise<void> {
    const dir = this.dir;
    if (!dir) return;
    const store = await ItemStore.open(dir, this.durability, {
      dimensions: this.dimensions,
      metric: this.metric,
      quantization: "f32",
    });
    this.store = store;
    const saved = store.state();
    if (saved) this.nextKey = saved.nextKey;
    else await store.initState(this.state("saved"));
    for (const { key, value } of store.allItems()) {
      if (key >= this.nextKey) this.nextKey = key + 1;
      this.track(key, { tenantId: value.t, id: value.i, ...filterFields(value.f ?? {}) });
    }
    if (!this.annConfig || this.entries.size === 0) return;
    const opened = Ann.open(
      this.faiss,
      this.annConfig,
      dir,
      saved?.graph === "saved",
      [...this.entries.keys()],
      (key) => this.vectorOf(key),
    );
    if (opened) {
      this.ann = opened.ann;
      if (opened.rebuilt) this.indexDirty = true;
    } else if (this.entries.size >= this.trainSize) this.train();
  }

  private state(graph: State["graph"]): State {
    const { dimensions, metric } = this;
    return { version: 2, dimensions, metric, quantization: "f32", nextKey: this.nextKey, graph };
  }

  private prepare(v: Float32Array): Float32Array {
    return this.metric === "cosine" ? normalized(v) : v;
  }

  /** The stored vector of `key` (a copy). */
  private vectorOf(key: number): Float32Array | undefined {
    return this.store ? this.store.vector(key) : this.memoryVectors.get(key);
  }

  /** The exact distance of the stored vector of `key` to the prepared query. */
  private distanceTo(q: Float32Array, key: number): number | undefined {
    let v: Float32Array | undefined;
    if (this.store) {
      const bytes = this.store.vectorWindow(key);
      if (!bytes || bytes.length !== this.dimensions * 4) return undefined;
      v =
        bytes.byteOffset % 4 === 0
          ? new Float32Array(bytes.buffer, bytes.byteOffset, this.dimensions)
          : fromBytes(bytes);
    } else v = this.memoryVectors.get(key);
    if (!v) return undefined;
    // Both are unit length for cosine: 1 − a·b.
    return distance(this.metric === "cosine" ? "ip" : this.metric, q, v);
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
    this.ann?.remove(key);
    this.entries.delete(key);
    this.memoryVectors.delete(key);
    this.keys.delete(tenantKey(entry.tenantId, entry.id));
    const set = this.byTenant.get(entry.tenantId);
    set?.delete(key);
    if (set?.size === 0) this.byTenant.delete(entry.tenantId);
  }

  /** Trains the index on the first `trainSize` items and adds every item. */
  private train(): void {
    const config = this.annConfig;
    if (!config) return;
    const sample: Float32Array[] = [];
    for (const key of this.entries.keys()) {
      if (sample.length >= this.trainSize) break;
      const v = this.vectorOf(key);
      if (v) sample.push(v);
    }
    let ann: Ann;
    try {
      ann = Ann.train(this.faiss, config, sample);
    } catch (cause) {
      throw new KuraError("VECTOR_UNAVAILABLE", "faiss could not train the vector index", {
        operation: "vector.train",
        cause,
      });
    }
    ann.rebuild([...this.entries.keys()], (key) => this.vectorOf(key));
    this.ann = ann;
    this.indexDirty = true;
  }

  private assertOpen(operation: string): void {
    if (this.closed) throw closedError("the vector index", operation);
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn);
    this.chain = run.catch(() => undefined);
    return run;
  }

  /** Commit to LMDB (marking the index dirty), then apply in memory. */
  private async commit(write: (store: ItemStore) => void, apply: () => void): Promise<void> {
    const store = this.store;
    if (store) await store.commit(() => write(store), this.indexDirty ? undefined : this.state("dirty"));
    this.indexDirty = true;
    apply();
  }

  /** The first `k` of `ranked` by distance, then id, as hits. */
  private hitsOf(ranked: Ranked[], k: number): VectorHit[] {
    this.firstK(ranked, k);
    return ranked.map(({ key, distance }) => {
      const entry = this.entries.get(key) as Entry;
      return { id: entry.id, distance, ...filterFields(entry) };
    });
  }

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

  /** Every vector of the tenant that passes the filter, compared with the query. */
  private exactScan(q: Float32Array, query: VectorQuery): VectorHit[] {
    const ranked: Ranked[] = [];
    for (const key of this.byTenant.get(query.tenantId) ?? []) {
      const entry = this.entries.get(key) as Entry;
      if (!matchesFilter(entry, query.filter)) continue;
      const d = this.distanceTo(q, key);
      if (d === undefined) continue;
      ranked.push({ key, distance: d });
      // The first k by (distance, id) of a superset contain the final k: keep the pool small.
      if (ranked.length > 4 * query.k + 1024) this.firstK(ranked, query.k);
    }
    return this.hitsOf(ranked, query.k);
  }

  private async saveNow(): Promise<void> {
    const { dir, store } = this;
    if (!dir || !store || !this.indexDirty) return;
    if (this.ann) await this.ann.write(dir);
    else await Ann.erase(dir);
    await store.putState(this.state("saved"));
    if (this.durability === "fsync") await store.flushed;
    this.indexDirty = false;
  }

  trained(): boolean {
    return this.ann !== undefined;
  }

  indexBytes(): number {
    return this.ann?.serializedBytes() ?? 0;
  }

  async upsert(batch: readonly VectorItem[]): Promise<void> {
    this.assertOpen("vector.upsert");
    const checked = batch.map((item) => checkVector(item.vector, this.dimensions, "vector.upsert"));
    if (batch.length === 0) return;
    return this.serial(async () => {
      this.assertOpen("vector.upsert");
      const last = new Map<string, number>();
      for (const [i, item] of batch.entries()) last.set(tenantKey(item.tenantId, item.id), i);
      const rows: Array<{ key: number; old: number | undefined; item: VectorItem; vector: Float32Array }> =
        [];
      for (const i of last.values()) {
        const item = batch[i] as VectorItem;
        rows.push({
          key: this.nextKey++,
          old: this.keys.get(tenantKey(item.tenantId, item.id)),
          item,
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
          }
          this.ann?.add(
            rows.map((r) => r.key),
            rows.map((r) => r.vector),
          );
        },
      );
      if (this.ann?.wasteful) this.ann.rebuild([...this.entries.keys()], (key) => this.vectorOf(key));
      if (!this.ann && this.annConfig && this.entries.size >= this.trainSize) this.train();
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
      if (this.ann?.wasteful) this.ann.rebuild([...this.entries.keys()], (key) => this.vectorOf(key));
    });
  }

  async query(query: VectorQuery): Promise<VectorHit[]> {
    this.assertOpen("vector.query");
    checkQuery(query, "vector.query");
    const q = this.prepare(checkVector(query.vector, this.dimensions, "vector.query"));
    if (!this.byTenant.has(query.tenantId)) return [];
    const mode = query.mode ?? this.defaultMode;
    const ann = this.ann;
    if (mode === "accurate" || !ann) return this.exactScan(q, query);
    let want = candidates(mode, query.k);
    for (;;) {
      const { keys, exhausted } = ann.search(q, want, this.nprobe[mode]);
      const ranked: Ranked[] = [];
      for (const key of keys) {
        const entry = this.entries.get(key);
        if (!entry || entry.tenantId !== query.tenantId || !matchesFilter(entry, query.filter)) continue;
        const d = this.distanceTo(q, key);
        if (d !== undefined) ranked.push({ key, distance: d });
      }
      if (ranked.length >= query.k) return this.hitsOf(ranked, query.k);
      // The probed lists hold no more, or the candidates cover the index: exact.
      if (exhausted || want >= ann.total) return this.exactScan(q, query);
      want *= 4;
    }
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
      this.ann = undefined;
    }
    if (this.dir) await rm(this.dir, { recursive: true, force: true });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.serial(() => this.saveNow());
    this.closed = true;
    await this.store?.close();
    this.ann = undefined;
  }
}

/** Indexes of one configuration; the faiss-node module is loaded when the first one opens. */
export const faissVectorIndex: VectorIndexDefinition<FaissDefinitionOptions> = {
  scheme: "faiss",
  capabilities: CAPABILITIES,
  parseOptions: (raw) => parseOptions(faissOptionsSchema, raw, OPTIONS_PATH),
  create: async (options, deps = {}) => ({
    open: async (place) => {
      checkPlace(place, "vector.open");
      const dir = placeDir(options.dir, place);
      return openFaissVectorIndex({
        dimensions: place.dimensions,
        metric: place.metric,
        mode: options.mode,
        faiss: loadFaiss(options.module_path),
        kind: options.index,
        nlist: options.nlist,
        m: options.m,
        nprobeFast: options.nprobe_fast,
        nprobeBalanced: options.nprobe_balanced,
        ...(options.train_size === undefined ? {} : { trainSize: options.train_size }),
        ...(deps.durability ? { durability: deps.durability } : {}),
        ...(dir === undefined ? {} : { dir }),
      });
    },
    // The store of record alone: no faiss-node needed to read it.
    scan: async (place, o) => {
      checkPlace(place, "vector.scan");
      const { dimensions, metric } = place;
      return scanItemStore(
        placeDir(options.dir, place),
        deps.durability,
        { dimensions, metric, quantization: "f32" },
        o,
      );
    },
    close: async () => {},
  }),
};
