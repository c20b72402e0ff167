/**
 * What the vector adapters share: the port's distance convention, query and place checks, filter
 * matching and the option every adapter takes (see `src/ports/vector-index.ts` for the contract).
 */
import { z } from "zod";
import { KuraError } from "../../core/errors.js";
import type {
  VectorFilter,
  VectorIndexPlace,
  VectorMetric,
  VectorMode,
  VectorQuery,
} from "../../ports/vector-index.js";

const VECTOR_MODES = ["fast", "balanced", "accurate"] as const satisfies readonly VectorMode[];

/** `mode`: the default mode of queries that name none (`vector.mode`); default `balanced`. */
export const modeOption = z.enum(VECTOR_MODES).default("balanced");

/** Where an adapter's options are reported in configuration problems. */
export const OPTIONS_PATH = "vector";

const OWN_INDEX_NAME = /^[a-z0-9][a-z0-9_-]{0,63}$/;

/** Checks the name of one of Kura's own indexes (a collection's name is the domain's to check). */
export function checkPlace(place: VectorIndexPlace, operation: string): void {
  if (place.tenantId === undefined && !OWN_INDEX_NAME.test(place.name))
    throw new KuraError("INVALID_ARGUMENT", `invalid vector index name: ${place.name}`, { operation });
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

/**
 * A `scan` cursor as an adapter wrote it (a JSON array of strings and integers), or undefined at
 * the start; anything `valid` refuses is `CURSOR_INVALID`.
 */
export function parseScanCursor<T extends readonly unknown[]>(
  after: string | undefined,
  valid: (v: readonly unknown[]) => v is T,
): T | undefined {
  if (after === undefined) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(after);
  } catch {
    v = undefined;
  }
  if (Array.isArray(v) && valid(v)) return v;
  throw new KuraError("CURSOR_INVALID", "not a cursor this vector index's scan returned", {
    operation: "vector.scan",
  });
}

/** A scan's page size: an integer in 1..10,000. */
export function checkScanLimit(limit: number): number {
  if (!Number.isInteger(limit) || limit < 1 || limit > 10_000)
    throw new KuraError("INVALID_ARGUMENT", "limit must be an integer in 1..10000", {
      operation: "vector.scan",
      context: { limit },
    });
  return limit;
}
