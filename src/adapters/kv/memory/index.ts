/**
 * `memory`: the reference KV store. Everything the port promises, held in a Map of encoded
 * values (so a value reads back exactly as it would from lmdb or redis, and callers cannot
 * mutate what is stored). Used by tests and as the model the conformance suite is checked on.
 * A deleted or expired key's slot stays as a tombstone (no value, its last version) until the
 * sweep drops it, `tombstone_retention_ms` after the delete or expiry (ADR 0025).
 */
import { z } from "zod";
import { compareUtf8 } from "../../../core/keys.js";
import { parseOptions } from "../../../core/options.js";
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
  tombstoneRetentionOption,
  versionConflict,
} from "../common.js";

export const memoryKvOptionsSchema = z
  .object({
    /** Largest encoded value in bytes; default 1 MiB. */
    max_value_bytes: z.number().int().min(1).default(DEFAULT_MAX_VALUE_BYTES),
    /** How long a deleted or expired key's last version is kept, in ms; default 7 days. */
    tombstone_retention_ms: tombstoneRetentionOption,
  })
  .strict();
export type MemoryKvOptions = z.infer<typeof memoryKvOptionsSchema>;

const CAPABILITIES: KvCapabilities = Object.freeze({
  orderedScan: true,
  nativeTtl: false,
  remote: false,
  persistent: false,
});

/**
 * A key's slot: its value, or a tombstone (`frame` undefined) that keeps the key's last version
 * until `pruneAt`. An expired slot still holding its value is dead too, and keeps its version.
 */
interface Slot {
  frame: Buffer | undefined;
  version: number;
  expiresAt: number | undefined;
  /** Tombstones only: when the sweep may drop it. */
  pruneAt: number;
}

type LiveSlot = Slot & { frame: Buffer };

/** A slot holding a value that has not expired. */
function isLive(slot: Slot, now: number): slot is LiveSlot {
  return slot.frame !== undefined && (slot.expiresAt === undefined || slot.expiresAt > now);
}

class MemoryKvStore implements KvStore {
  readonly scheme = "memory";
  readonly capabilities = CAPABILITIES;
  readonly maxValueBytes: number;
  readonly tombstoneRetentionMs: number;
  private readonly slots = new Map<string, Slot>();
  private readonly now: () => number;
  private closed = false;

  constructor(options: MemoryKvOptions, deps: KvStoreDeps) {
    this.maxValueBytes = options.max_value_bytes;
    this.tombstoneRetentionMs = options.tombstone_retention_ms;
    this.now = deps.now ?? Date.now;
  }

  private open(operation: string): void {
    if (this.closed) throw closedError(operation);
  }

  /** The live slot under `key`, or undefined when absent, deleted or expired. */
  private live(key: string, now = this.now()): LiveSlot | undefined {
    const slot = this.slots.get(key);
    return slot === undefined || !isLive(slot, now) ? undefined : slot;
  }

  /** The next version of `key`: above its value's, or its tombstone's (ADR 0025). */
  private nextVersion(key: string): number {
    return (this.slots.get(key)?.version ?? 0) + 1;
  }

  private write(key: string, frame: Buffer, ttlMs: number | undefined): number {
    const version = this.nextVersion(key);
    const expiresAt = ttlMs === undefined ? undefined : this.now() + ttlMs;
    this.slots.set(key, { frame, version, expiresAt, pruneAt: 0 });
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
    const last = this.slots.get(key);
    if (last !== undefined && last.frame !== undefined) {
      // A value (live or expired) becomes a tombstone; a tombstone stays as it is.
      this.slots.set(key, {
        frame: undefined,
        version: last.version,
        expiresAt: undefined,
        pruneAt: this.now() + this.tombstoneRetentionMs,
      });
    }
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
    this.slots.set(key, { frame, version, expiresAt, pruneAt: 0 });
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
        value: (options.keysOnly ? undefined : decodeFramed(key, slot.frame as Buffer, "kv.scan")) as T,
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
      if (slot.frame === undefined) {
        if (slot.pruneAt <= now) this.slots.delete(key);
      } else if (slot.expiresAt !== undefined && slot.expiresAt <= now && removed < limit) {
        // The tombstone of an expiry is kept for the retention from the expiry on.
        const pruneAt = slot.expiresAt + this.tombstoneRetentionMs;
        if (pruneAt <= now) this.slots.delete(key);
        else this.slots.set(key, { frame: undefined, version: slot.version, expiresAt: undefined, pruneAt });
        removed++;
      }
    }
    return removed;
  }

  async forgetPrefix(prefix: string): Promise<number> {
    this.open("kv.forget");
    checkKey(prefix, "kv.forget");
    const now = this.now();
    let removed = 0;
    for (const [key, slot] of this.slots) {
      if (!key.startsWith(prefix)) continue;
      if (slot.frame !== undefined && (slot.expiresAt === undefined || slot.expiresAt > now)) removed++;
      this.slots.delete(key);
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
