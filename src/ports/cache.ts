/**
 * A read-through cache of immutable bodies, keyed by strings the engine builds (tenant, id and
 * version are always part of the key, so entries never cross tenants and never go stale on an
 * edit). The embedded default is the in-memory LRU (`engine/lru-cache.ts`); the tiered cache
 * (memory → local disk → store) implements the same interface.
 *
 * Behavior: `get` of a missing key is undefined; `set` may drop entries (bounded); values are
 * returned as stored (callers must not mutate them).
 */
export interface Cache {
  get(key: string): Buffer | undefined | Promise<Buffer | undefined>;
  set(key: string, value: Buffer): void | Promise<void>;
  delete(key: string): void | Promise<void>;
  /** Drop every entry whose key starts with `prefix` (erasure, tenant deletion). */
  deletePrefix(prefix: string): void | Promise<void>;
  stats(): CacheStats;
}

export interface CacheStats {
  hits: number;
  misses: number;
  entries: number;
  bytes: number;
  /** Per tier of a tiered cache (`hot`, `warm`, `cold`), for hit ratios by tier. */
  tiers?: Readonly<Record<string, TierStats>>;
}

export interface TierStats {
  hits: number;
  misses: number;
  entries: number;
  bytes: number;
}
