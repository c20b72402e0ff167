/**
 * The `VectorIndex` port (VEC-1…3): nearest-neighbour search over embeddings, one index per
 * collection, holding every tenant's items and scoping each query to one tenant.
 *
 * Behavior every adapter guarantees (checked by `test/conformance/vector-index.suite.ts`):
 * - Items are keyed by (tenantId, id); `upsert` replaces an item wholesale (vector and filter
 *   fields), so applying the same item twice leaves one entry. `remove` of an absent id is a no-op;
 *   a removed item is never returned again.
 * - Every vector has exactly `dimensions` finite numbers; anything else is rejected with
 *   `VECTOR_DIMENSIONS_MISMATCH` / `VECTOR_INVALID` (kind `InvalidArgument`) before anything is
 *   written.
 * - Tenant scoping is enforced in the index: a query names its tenant and only ever sees that
 *   tenant's items. Filters (`userId`, `chatId`, `category`, each an exact match) are applied so
 *   that `k` hits are returned whenever `k` matching items exist: approximate adapters over-fetch
 *   and widen the search until enough matches are found, and fall back to an exhaustive scan.
 * - Hits are ordered by `distance`, smallest first. Distances follow one convention on every
 *   adapter: `l2` is the squared Euclidean distance, `cosine` is `1 − cos(a, b)`, `ip` is
 *   `1 − a·b`.
 * - Modes: `accurate` is exact (every candidate compared); `fast` and `balanced` are approximate
 *   on ANN adapters, with recall@10 against exact measured by the conformance suite (VEC-2).
 * - Persistent adapters acknowledge `upsert`/`remove` only once the write is durable: it
 *   survives a crash of the process. `save` writes derived structures (an ANN graph) so that
 *   reopening needs no rebuild (VEC-3); `close` saves and releases the index; `drop` deletes it
 *   and everything it persisted.
 */

import type { PortCalls } from "./calls.js";

export type VectorMetric = "l2" | "cosine" | "ip";
export type VectorMode = "fast" | "balanced" | "accurate";

/** The exact-match filter fields an item may carry. */
export interface VectorFilter {
  userId?: string;
  chatId?: string;
  category?: string;
}

export interface VectorItem extends VectorFilter {
  tenantId: string;
  id: string;
  vector: Float32Array | readonly number[];
}

export interface VectorQuery {
  tenantId: string;
  vector: Float32Array | readonly number[];
  k: number;
  filter?: VectorFilter;
  /** Defaults to the index's configured mode. */
  mode?: VectorMode;
}

export interface VectorHit extends VectorFilter {
  id: string;
  /** Smaller is nearer (see the distance convention above). */
  distance: number;
}

export interface VectorIndex {
  /** The scheme of its definition: `exact`, `usearch` or `pgvector`. */
  readonly backend: string;
  readonly dimensions: number;
  readonly metric: VectorMetric;
  upsert(items: readonly VectorItem[]): Promise<void>;
  remove(tenantId: string, ids: readonly string[]): Promise<void>;
  query(query: VectorQuery): Promise<VectorHit[]>;
  /** Items held (for one tenant, or all). */
  count(tenantId?: string): Promise<number>;
  /** Which of `ids` the index holds for `tenantId` (fsck); absent ids are simply not in the set. */
  existing(tenantId: string, ids: readonly string[]): Promise<Set<string>>;
  save(): Promise<void>;
  close(): Promise<void>;
  /** Delete the index and all it persisted; the object is closed afterwards. */
  drop(): Promise<void>;
}

export interface VectorIndexOptions {
  dimensions: number;
  metric: VectorMetric;
  /** Default mode of queries that name none. */
  mode?: VectorMode;
}

/**
 * What a layer may do with each vector index method (`ports/calls.ts`): `upsert` (wholesale
 * replace), `remove` (absent ids are a no-op) and `save` may be repeated, `query` and `count`
 * are reads; `drop` is not repeated (the index is closed once dropped).
 */
export const VECTOR_CALLS: PortCalls<VectorIndex> = Object.freeze({
  upsert: "idempotent",
  remove: "idempotent",
  query: "read",
  count: "read",
  existing: "read",
  save: "idempotent",
  drop: "once",
});

/** What a vector adapter declares. The engine and the tests branch on these, never on its name. */
export interface VectorCapabilities {
  /**
   * The indexes live in a server (pgvector): every thread or process may open its own instance
   * of one index, reached through the options `url`, `schema` and `max_connections`. Otherwise
   * an index lives in this process — a graph over a local directory, or memory — and two live
   * instances of one index would each hold (and write) their own copy: one thread owns it and
   * the others reach it through that thread.
   */
  readonly shared: boolean;
  /**
   * What an index holds outlives the instance that wrote it (a new `exact` instance starts
   * empty). Persistent indexes that are not `shared` keep it under the option `dir`.
   */
  readonly persistent: boolean;
  /** Vectors may be stored quantized, as the option `quantization` says (`f32`, `f16`, `i8`). */
  readonly quantization: boolean;
  /**
   * The indexes are reached over a network (a server): their calls get the retry layer and a
   * client-side limit on reads (`layers/port-layers.ts`).
   */
  readonly remote: boolean;
}

/** Where one index lives: one of Kura's own (every tenant's items) or a tenant's collection. */
export interface VectorIndexPlace {
  /** Kura's own index (`memories`, `messages`: `[a-z0-9][a-z0-9_-]{0,63}`) or the collection's name. */
  name: string;
  /** Set for a tenant's collection. */
  tenantId?: string;
  dimensions: number;
  metric: VectorMetric;
}

/** The indexes of one configuration, and what they share (a connection pool). */
export interface VectorIndexes {
  /**
   * Opens the index of `place`, creating it when missing.
   * Behavior: an invalid name of Kura's own index is `INVALID_ARGUMENT`; an index that cannot be
   * reached is `VECTOR_UNAVAILABLE`; one persisted with other dimensions or another metric is
   * `VECTOR_INDEX_CONFIG_CHANGED`.
   */
  open(place: VectorIndexPlace): Promise<VectorIndex>;
  /**
   * The items of record of the index at `place`, a page at a time (backup).
   * Behavior: reads only — nothing is created, loaded or written, and a live index elsewhere
   * (another process) keeps serving; an index never created has no items. Each item once over
   * the pages, in a stable order; `next` is set while more may follow and is given back as
   * `after` (anything else is `CURSOR_INVALID`). Vectors come back as stored: a cosine index
   * may hold them at unit length. Adapters that are not `persistent` hold nothing of record:
   * no items.
   */
  scan(place: VectorIndexPlace, options: { after?: string; limit: number }): Promise<VectorScanPage>;
  /** Releases what the indexes share; close the indexes opened first. Idempotent. */
  close(): Promise<void>;
}

/** One page of `VectorIndexes.scan`. */
export interface VectorScanPage {
  items: Array<VectorItem & { vector: Float32Array }>;
  next?: string;
}

/** Opening an index (creating it when missing) may be repeated, a scan is a read (`ports/calls.ts`). */
export const VECTOR_INDEXES_CALLS: PortCalls<VectorIndexes> = Object.freeze({
  open: "idempotent",
  scan: "read",
});

/** Build-time description of a vector adapter: registers nothing on import. */
export interface VectorIndexDefinition<Options> {
  /** What its indexes report as `VectorIndex.backend`. */
  readonly scheme: string;
  readonly capabilities: VectorCapabilities;
  /** Parses and validates the adapter's options; throws `CONFIG_INVALID` with every problem. */
  parseOptions(raw: unknown): Options;
  /** Nothing is opened until the first `open`. */
  create(options: Options, deps?: VectorIndexDeps): Promise<VectorIndexes>;
}

export interface VectorIndexDeps {
  /** Durability of acknowledged writes (SPEC DUR-1): with `fsync` each write reaches the disk. */
  durability?: "os" | "fsync";
}
