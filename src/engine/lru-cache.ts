/**
 * In-memory LRU bounded by bytes (hot tier). A Map keeps insertion order, so re-inserting on
 * a hit makes the first key the least recently used.
 */
import type { Cache, CacheStats } from "../ports/cache.js";

export class LruCache implements Cache {
  private readonly map = new Map<string, Buffer>();
  private bytes = 0;
  private hits = 0;
  private misses = 0;

  /** `maxBytes`: total size of values kept; `maxEntryBytes`: larger values are not cached. */
  constructor(
    private readonly maxBytes: number,
    private readonly maxEntryBytes = Math.max(1, Math.floor(maxBytes / 8)),
  ) {}

  get(key: string): Buffer | undefined {
    const value = this.map.get(key);
    if (value === undefined) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    this.map.delete(key);
    this.map.set(key, value);
    return value;
  }

  set(key: string, value: Buffer): void {
    if (value.length > this.maxEntryBytes) return;
    this.delete(key);
    this.map.set(key, value);
    this.bytes += value.length;
    while (this.bytes > this.maxBytes) {
      const oldest = this.map.keys().next();
      if (oldest.done) break;
      this.delete(oldest.value);
    }
  }

  delete(key: string): void {
    const value = this.map.get(key);
    if (value === undefined) return;
    this.bytes -= value.length;
    this.map.delete(key);
  }

  deletePrefix(prefix: string): void {
    for (const key of [...this.map.keys()]) if (key.startsWith(prefix)) this.delete(key);
  }

  stats(): CacheStats {
    return { hits: this.hits, misses: this.misses, entries: this.map.size, bytes: this.bytes };
  }
}
