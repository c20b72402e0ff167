/**
 * `memory`: the reference KV store. Everything the port promises, held in a Map of encoded
 * values (so a value reads back exactly as it would from lmdb or redis, and callers cannot
 * mutate what is stored). Used by tests and as the model the conformance suite is checked on.
 */
import { z } from "zod";
import { compareUtf8 } from "../../../core/keys.js";
import {
  DEFAULT_MAX_VALUE_BYTES,
  type KvCapabilities,
  type KvEntry,
  type KvIncrOptions,
  type KvScanOptions,
  type KvScanPage,
  type KvSetManyItem,
  type KvSetOptions,
  type KvStore,
  type KvStoreDefinition,
  type KvStoreDeps,
  type KvWriteResult,
} from "../../../ports/kv-store.js";
import { parseOptions } from "../../options.js";
import {
  addToCounter,
  checkIncrBy,
  checkIncrTtl,
  checkKey,
  checkPrefix,
  checkSet,
  checkSetMany,
  checkVersion,
  closedError,
  decodeFramed,
  decodeScanCursor,
  encodeFramed,
  encodeScanCursor,
  scanLimit,
  versionConflict,
  versionScope,
} from "../common.js";

export const memoryKvOptionsSchema = z
  .object({
    /** Largest encoded value in bytes; default 1 MiB. */
    max_value_bytes: z.number().int().min(1).default(DEFAULT_MAX_VALUE_BYTES),
  })
  .strict();
export type MemoryKvOptions = z.infer<typeof memoryKvOptionsSchema>;

const CAPABILITIES: KvCapabilities = Object.freeze({
  orderedScan: true,
  nativeTtl: false,
  persistent: false,
});

interface Slot {
  frame: Buffer;
  version: number;
  expiresAt: number | undefined;
}

class MemoryKvStore implements KvStore {
  readonly scheme = "memory";
  readonly capabilities = CAPABILITIES;
  readonly maxValueBytes: number;
  private readonly slots = new Map<string, Slot>();
  private readonly now: () => number;
  /** Version counters by scope (see `versionScope`). */
  private readonly seqs = new Map<string, number>();
  private closed = false;

  constructor(options: MemoryKvOptions, deps: KvStoreDeps) {
    this.maxValueBytes = options.max_value_bytes;
    this.now = deps.now ?? Date.now;
  }

  private open(operation: string): void {
    if (this.closed) throw closedError(operation);
  }

  /** The live slot under `key`, or undefined when absent or expired. */
  private live(key: string, now = this.now()): Slot | undefined {
    const slot = this.slots.get(key);
    if (slot === undefined || (slot.expiresAt !== undefined && slot.expiresAt <= now)) return undefined;
    return slot;
  }

  private nextVersion(key: string): number {
    const scope = versionScope(key);
    const version = (this.seqs.get(scope) ?? 0) + 1;
    this.seqs.set(scope, version);
    return version;
  }

  private write(key: string, frame: Buffer, ttlMs: number | undefined): number {
    const version = this.nextVersion(key);
    this.slots.set(key, { frame, version, expiresAt: ttlMs === undefined ? undefined : this.now() + ttlMs });
    return version;
  }

  async get<T>(key: string): Promise<T | undefined> {
    this.open("kv.get");
    checkKey(key, "kv.get");
    const slot = this.live(key);
    return slot === undefined ? undefined : (decodeFramed(key, slot.frame, "kv.get") as T);
  }

  async getEntry<T>(key: string): Promise<KvEntry<T> | undefined> {
    this.open("kv.get");
    checkKey(key, "kv.get");
    const slot = this.live(key);
    if (slot === undefined) return undefined;
    return {
      key,
      value: decodeFramed(key, slot.frame, "kv.get") as T,
      version: slot.version,
      expiresAt: slot.expiresAt,
    };
  }

  async set(key: string, value: unknown, options: KvSetOptions = {}): Promise<KvWriteResult> {
    this.open("kv.set");
    checkSet(key, value, options, "kv.set");
    const frame = encodeFramed(key, value, this.maxValueBytes, "kv.set");
    if (options.ifVersion !== undefined) {
      const current = this.live(key)?.version ?? 0;
      if (current !== options.ifVersion) throw versionConflict(key, options.ifVersion, current, "kv.set");
    }
    return { version: this.write(key, frame, options.ttlMs) };
  }

  async delete(key: string, options: { ifVersion?: number } = {}): Promise<boolean> {
    this.open("kv.delete");
    checkKey(key, "kv.delete");
    checkVersion(options.ifVersion, "kv.delete", key);
    const slot = this.live(key);
    if (options.ifVersion !== undefined && (slot?.version ?? 0) !== options.ifVersion) {
      throw versionConflict(key, options.ifVersion, slot?.version ?? 0, "kv.delete");
    }
    this.slots.delete(key);
    return slot !== undefined;
  }

  async incr(key: string, options: KvIncrOptions = {}): Promise<{ value: number; version: number }> {
    this.open("kv.incr");
    checkKey(key, "kv.incr");
    const by = checkIncrBy(options.by, "kv.incr", key);
    checkIncrTtl(options.ttlMs, "kv.incr", key);
    const slot = this.live(key);
    const value = addToCounter(
      slot === undefined ? undefined : decodeFramed(key, slot.frame, "kv.incr"),
      by,
      key,
    );
    const frame = encodeFramed(key, value, this.maxValueBytes, "kv.incr");
    const version = this.nextVersion(key);
    const expiresAt =
      slot === undefined
        ? options.ttlMs === undefined
          ? undefined
          : this.now() + options.ttlMs
        : slot.expiresAt;
    this.slots.set(key, { frame, version, expiresAt });
    return { value, version };
  }

  async getMany<T>(keys: readonly string[]): Promise<(T | undefined)[]> {
    this.open("kv.getMany");
    for (const key of keys) checkKey(key, "kv.getMany");
    const now = this.now();
    return keys.map((key) => {
      const slot = this.live(key, now);
      return slot === undefined ? undefined : (decodeFramed(key, slot.frame, "kv.getMany") as T);
    });
  }

  async setMany(items: readonly KvSetManyItem[]): Promise<KvWriteResult[]> {
    this.open("kv.setMany");
    checkSetMany(items, "kv.setMany");
    const frames = items.map((item) => encodeFramed(item.key, item.value, this.maxValueBytes, "kv.setMany"));
    return items.map((item, i) => ({ version: this.write(item.key, frames[i] as Buffer, item.ttlMs) }));
  }

  async scan<T>(prefix: string, options: KvScanOptions = {}): Promise<KvScanPage<T>> {
    this.open("kv.scan");
    checkPrefix(prefix, "kv.scan");
    const limit = scanLimit(options);
    const after = decodeScanCursor(this.scheme, prefix, options.cursor);
    const now = this.now();
    const keys = [...this.slots.keys()]
      .filter((k) => k.startsWith(prefix) && (after === undefined || compareUtf8(k, after) > 0))
      .filter((k) => this.live(k, now) !== undefined)
      .sort(compareUtf8);
    const page = keys.slice(0, limit);
    const items = page.map((key) => {
      const slot = this.slots.get(key) as Slot;
      return {
        key,
        value: (options.keysOnly ? undefined : decodeFramed(key, slot.frame, "kv.scan")) as T,
        version: slot.version,
        expiresAt: slot.expiresAt,
      };
    });
    const last = page.at(-1);
    return {
      items,
      cursor:
        keys.length > limit && last !== undefined ? encodeScanCursor(this.scheme, prefix, last) : undefined,
    };
  }

  async sweepExpired(options: { now?: number; limit?: number } = {}): Promise<number> {
    this.open("kv.sweep");
    const now = options.now ?? this.now();
    const limit = options.limit ?? Number.POSITIVE_INFINITY;
    let removed = 0;
    for (const [key, slot] of this.slots) {
      if (removed >= limit) break;
      if (slot.expiresAt !== undefined && slot.expiresAt <= now) {
        this.slots.delete(key);
        removed++;
      }
    }
    return removed;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.slots.clear();
  }
}

export const memoryKvStore: KvStoreDefinition<MemoryKvOptions> = {
  scheme: "memory",
  capabilities: CAPABILITIES,
  parseOptions: (raw) => parseOptions(memoryKvOptionsSchema, raw, "kv"),
  create: async (options, deps = {}) => new MemoryKvStore(options, deps),
};
