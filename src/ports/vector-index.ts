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
import { KuraError } from "../core/errors.js";

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
  /** `exact`, `usearch` or `pgvector`. */
  readonly backend: string;
  readonly dimensions: number;
  readonly metric: VectorMetric;
  upsert(items: readonly VectorItem[]): Promise<void>;
  remove(tenantId: string, ids: readonly string[]): Promise<void>;
  query(query: VectorQuery): Promise<VectorHit[]>;
  /** Items held (for one tenant, or all). */
  count(tenantId?: string): Promise<number>;
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

/** Checks one vector and returns it as a `Float32Array`. */
export function checkVector(
  vector: Float32Array | readonly number[],
  dimensions: number,
  operation: string,
): Float32Array {
  if (vector.length !== dimensions)
    throw new KuraError(
      "VECTOR_DIMENSIONS_MISMATCH",
      `vector has ${vector.length} dimensions, the index has ${dimensions}`,
      { operation, context: { got: vector.length, expected: dimensions } },
    );
  const out = vector instanceof Float32Array ? vector : Float32Array.from(vector);
  for (let i = 0; i < out.length; i++)
    if (!Number.isFinite(out[i]))
      throw new KuraError("VECTOR_INVALID", `vector component ${i} is not a finite number`, {
        operation,
        context: { index: i },
      });
  return out;
}

/** Checks `k` and the tenant of a query. */
export function checkQuery(query: VectorQuery, operation: string): void {
  if (!Number.isInteger(query.k) || query.k < 1 || query.k > 10_000)
    throw new KuraError("INVALID_ARGUMENT", `k must be an integer in [1, 10000], got ${query.k}`, {
      operation,
    });
  if (typeof query.tenantId !== "string" || query.tenantId === "")
    throw new KuraError("INVALID_ARGUMENT", "a vector query needs a tenantId", { operation });
}

/** The distance of the port's convention (see the module doc). */
export function distance(metric: VectorMetric, a: Float32Array, b: Float32Array): number {
  let dot = 0;
  if (metric === "l2") {
    let sum = 0;
    for (let i = 0; i < a.length; i++) {
      const d = (a[i] as number) - (b[i] as number);
      sum += d * d;
    }
    return sum;
  }
  if (metric === "ip") {
    for (let i = 0; i < a.length; i++) dot += (a[i] as number) * (b[i] as number);
    return 1 - dot;
  }
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] as number;
    const y = b[i] as number;
    dot += x * y;
    na += x * x;
    nb += y * y;
  }
  if (na === 0 || nb === 0) return 1;
  return 1 - dot / Math.sqrt(na * nb);
}

/** Whether an item's fields satisfy a filter (every given field equal). */
export function matchesFilter(item: VectorFilter, filter: VectorFilter | undefined): boolean {
  if (!filter) return true;
  if (filter.userId !== undefined && item.userId !== filter.userId) return false;
  if (filter.chatId !== undefined && item.chatId !== filter.chatId) return false;
  if (filter.category !== undefined && item.category !== filter.category) return false;
  return true;
}

/** The filter fields of an item, without absent keys. */
export function filterFields(item: VectorFilter): VectorFilter {
  const out: VectorFilter = {};
  if (item.userId !== undefined) out.userId = item.userId;
  if (item.chatId !== undefined) out.chatId = item.chatId;
  if (item.category !== undefined) out.category = item.category;
  return out;
}
