/**
 * The tiered body cache (seed 004's hot/warm/cold): hot = the in-memory LRU bounded by bytes,
 * warm = a directory on local disk bounded by bytes (worth it only in front of a remote blob
 * store; the caller decides whether to configure it), cold = the store itself, read by the
 * caller or through `getOrLoad`. A warm hit is promoted to hot; a load fills both.
 *
 * Warm files are `{dir}/{h[0..2]}/{h}` with h = SHA-256 of the key, holding a header (magic,
 * key, SHA-256 of the data) and the data. Reads verify the data's hash, so a damaged file is a
 * miss (and is removed), never a wrong body. The directory survives restarts: `open` rebuilds
 * the index from the headers, oldest files first in LRU order.
 */
import { createHash, randomBytes } from "node:crypto";
import { mkdir, open as openFile, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Cache, CacheStats, TierStats } from "../ports/cache.js";
import { LruCache } from "./lru-cache.js";

export interface TieredCacheOptions {
  /** Hot tier size: total bytes of values kept in memory. */
  hotBytes: number;
  /** Larger values skip the hot tier; default hotBytes / 8. */
  hotMaxEntryBytes?: number;
  /** Warm tier on local disk; omit for none (local stores gain nothing from it). */
  warm?: {
    dir: string;
    maxBytes: number;
    /** Larger values skip the warm tier; default maxBytes / 8. */
    maxEntryBytes?: number;
  };
}

const MAGIC = Buffer.from("KWC1");
/** magic (4) + key length (u32) + SHA-256 of data (32). */
const FIXED_HEADER = 40;

interface WarmEntry {
  path: string;
  size: number;
}

function sha256(data: Uint8Array | string): Buffer {
  return createHash("sha256").update(data).digest();
}

/** The warm tier: files on disk with an in-memory index in least-recently-used order. */
class DiskTier {
  private readonly index = new Map<string, WarmEntry>();
  private bytes = 0;
  hits = 0;
  misses = 0;

  constructor(
    private readonly dir: string,
    private readonly maxBytes: number,
    private readonly maxEntryBytes: number,
  ) {}

  private pathOf(key: string): string {
    const h = sha256(key).toString("hex");
    return join(this.dir, h.slice(0, 2), h);
  }

  /** Rebuild the index from the files present (oldest first); unreadable files are removed. */
  async load(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    const found: { key: string; path: string; size: number; mtime: number }[] = [];
    for (const sub of await readdir(this.dir)) {
      const subdir = join(this.dir, sub);
      let names: string[];
      try {
        names = await readdir(subdir);
      } catch {
        continue;
      }
      for (const name of names) {
        const path = join(subdir, name);
        if (name.includes(".tmp-")) {
          await rm(path, { force: true });
          continue;
        }
        const header = await readHeader(path);
        if (!header) {
          await rm(path, { force: true });
          continue;
        }
        found.push({ key: header.key, path, size: header.size, mtime: header.mtime });
      }
    }
    found.sort((a, b) => a.mtime - b.mtime);
    for (const f of found) {
      this.index.set(f.key, { path: f.path, size: f.size });
      this.bytes += f.size;
    }
    await this.evict();
  }

  async get(key: string): Promise<Buffer | undefined> {
    const entry = this.index.get(key);
    if (!entry) {
      this.misses++;
      return undefined;
    }
    let file: Buffer;
    try {
      file = await readFile(entry.path);
    } catch {
      this.forget(key);
      this.misses++;
      return undefined;
    }
    const data = parseFile(file, key);
    if (!data) {
      this.forget(key);
      await rm(entry.path, { force: true });
      this.misses++;
      return undefined;
    }
    this.hits++;
    this.index.delete(key);
    this.index.set(key, entry);
    return data;
  }

  async set(key: string, value: Buffer): Promise<void> {
    if (value.length > this.maxEntryBytes) return;
    const path = this.pathOf(key);
    const keyBytes = Buffer.from(key, "utf8");
    const header = Buffer.alloc(FIXED_HEADER);
    MAGIC.copy(header, 0);
    header.writeUInt32LE(keyBytes.length, 4);
    sha256(value).copy(header, 8);
    await mkdir(join(path, ".."), { recursive: true });
    const tmp = `${path}.tmp-${randomBytes(6).toString("hex")}`;
    await writeFile(tmp, Buffer.concat([header, keyBytes, value]));
    await rename(tmp, path);
    this.forget(key);
    this.index.set(key, { path, size: value.length });
    this.bytes += value.length;
    await this.evict();
  }

  private forget(key: string): WarmEntry | undefined {
    const entry = this.index.get(key);
    if (entry) {
      this.index.delete(key);
      this.bytes -= entry.size;
    }
    return entry;
  }

  async delete(key: string): Promise<void> {
    const entry = this.forget(key);
    if (entry) await rm(entry.path, { force: true });
  }

  async deletePrefix(prefix: string): Promise<void> {
    for (const key of [...this.index.keys()]) if (key.startsWith(prefix)) await this.delete(key);
  }

  private async evict(): Promise<void> {
    while (this.bytes > this.maxBytes) {
      const oldest = this.index.keys().next();
      if (oldest.done) break;
      await this.delete(oldest.value);
    }
  }

  stats(): TierStats {
    return { hits: this.hits, misses: this.misses, entries: this.index.size, bytes: this.bytes };
  }
}

async function readHeader(path: string): Promise<{ key: string; size: number; mtime: number } | undefined> {
  const handle = await openFile(path, "r").catch(() => undefined);
  if (!handle) return undefined;
  try {
    const fixed = Buffer.alloc(FIXED_HEADER);
    const { bytesRead } = await handle.read(fixed, 0, FIXED_HEADER, 0);
    if (bytesRead < FIXED_HEADER || !fixed.subarray(0, 4).equals(MAGIC)) return undefined;
    const keyLength = fixed.readUInt32LE(4);
    if (keyLength > 64 * 1024) return undefined;
    const keyBytes = Buffer.alloc(keyLength);
    const read = await handle.read(keyBytes, 0, keyLength, FIXED_HEADER);
    if (read.bytesRead < keyLength) return undefined;
    const info = await stat(path);
    const size = info.size - FIXED_HEADER - keyLength;
    if (size < 0) return undefined;
    return { key: keyBytes.toString("utf8"), size, mtime: info.mtimeMs };
  } finally {
    await handle.close();
  }
}

/** The data of a warm file when its header names `key` and the data matches its hash. */
function parseFile(file: Buffer, key: string): Buffer | undefined {
  if (file.length < FIXED_HEADER || !file.subarray(0, 4).equals(MAGIC)) return undefined;
  const keyLength = file.readUInt32LE(4);
  if (FIXED_HEADER + keyLength > file.length) return undefined;
  if (file.toString("utf8", FIXED_HEADER, FIXED_HEADER + keyLength) !== key) return undefined;
  const data = file.subarray(FIXED_HEADER + keyLength);
  if (!sha256(data).equals(file.subarray(8, 40))) return undefined;
  return data;
}

export class TieredCache implements Cache {
  private readonly hot: LruCache;
  private readonly warm: DiskTier | undefined;
  private readonly loading = new Map<string, Promise<Buffer>>();
  private hits = 0;
  private misses = 0;
  private loads = 0;

  private constructor(options: TieredCacheOptions) {
    this.hot = new LruCache(options.hotBytes, options.hotMaxEntryBytes);
    this.warm = options.warm
      ? new DiskTier(
          options.warm.dir,
          options.warm.maxBytes,
          options.warm.maxEntryBytes ?? Math.max(1, Math.floor(options.warm.maxBytes / 8)),
        )
      : undefined;
  }

  /** Open the cache; with a warm tier, index the files already in its directory. */
  static async open(options: TieredCacheOptions): Promise<TieredCache> {
    const cache = new TieredCache(options);
    await cache.warm?.load();
    return cache;
  }

  async get(key: string): Promise<Buffer | undefined> {
    const hot = this.hot.get(key);
    if (hot !== undefined) {
      this.hits++;
      return hot;
    }
    const warm = await this.warm?.get(key);
    if (warm !== undefined) {
      this.hits++;
      this.hot.set(key, warm);
      return warm;
    }
    this.misses++;
    return undefined;
  }

  async set(key: string, value: Buffer): Promise<void> {
    this.hot.set(key, value);
    await this.warm?.set(key, value);
  }

  /**
   * The value from the first tier that has it, or from `load` (the cold tier: the store), which
   * then fills the tiers. Concurrent calls for one key share a single load.
   */
  async getOrLoad(key: string, load: () => Promise<Buffer>): Promise<Buffer> {
    const cached = await this.get(key);
    if (cached !== undefined) return cached;
    const inFlight = this.loading.get(key);
    if (inFlight) return inFlight;
    const loading = (async () => {
      this.loads++;
      const value = await load();
      await this.set(key, value);
      return value;
    })();
    this.loading.set(key, loading);
    try {
      return await loading;
    } finally {
      this.loading.delete(key);
    }
  }

  async delete(key: string): Promise<void> {
    this.hot.delete(key);
    await this.warm?.delete(key);
  }

  async deletePrefix(prefix: string): Promise<void> {
    this.hot.deletePrefix(prefix);
    await this.warm?.deletePrefix(prefix);
  }

  /**
   * Hits at any tier and full misses at the top; per tier under `tiers` (a warm hit counts as a
   * hot miss; `cold.hits` = loads through `getOrLoad`).
   */
  stats(): CacheStats {
    const hot = this.hot.stats();
    const warm = this.warm?.stats();
    const tiers: Record<string, TierStats> = {
      hot: { hits: hot.hits, misses: hot.misses, entries: hot.entries, bytes: hot.bytes },
    };
    if (warm) tiers.warm = warm;
    tiers.cold = { hits: this.loads, misses: 0, entries: 0, bytes: 0 };
    return {
      hits: this.hits,
      misses: this.misses,
      entries: hot.entries + (warm?.entries ?? 0),
      bytes: hot.bytes + (warm?.bytes ?? 0),
      tiers,
    };
  }
}
