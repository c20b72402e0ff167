/**
 * `lmdb`: the embedded KV store (lmdb-js). One LMDB environment under `path` with three
 * databases:
 * - `kv`: key → MessagePack `[version, expiresAt (0 = never), value]`, LZ4-compressed by
 *   lmdb-js's native compression when larger than its threshold;
 * - `expiry`: `[expiresAt, key]` → empty, so the sweep job visits only keys that expire;
 * - `meta`: the high-water mark of versions.
 *
 * Atomicity: lmdb-js applies plain `put`/`remove` calls in the order they are issued, in
 * batched write transactions. Every decision (compare-and-set, increment) is taken
 * synchronously against the latest *issued* state — committed data overlaid with the writes
 * still in flight — and issued right away, so within this process no two writers can act on the
 * same version. (lmdb-js's transaction callbacks are not used: they run after the plain writes of
 * their batch, which would reorder writes.) One Kura process owns an environment; see ADR 0008.
 */
import { mkdirSync } from "node:fs";
import type { Database, RootDatabase } from "lmdb";
import { Packr } from "msgpackr";
import { z } from "zod";
import { KuraError } from "../../../core/errors.js";
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
import { commitFailure, guardCommitError, LMDB_ENV_OPTIONS } from "../../lmdb.js";
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
  corrupt,
  decodeScanCursor,
  encodeScanCursor,
  packr,
  scanLimit,
  tooLarge,
  versionConflict,
  versionScope,
} from "../common.js";

export const lmdbKvOptionsSchema = z
  .object({
    /** Directory of the LMDB environment (absolute after config loading); default `<data_dir>/kv`. */
    path: z.string().min(1),
    /** Largest encoded value in bytes; default 1 MiB. */
    max_value_bytes: z.number().int().min(1).default(DEFAULT_MAX_VALUE_BYTES),
  })
  .strict();
export type LmdbKvOptions = z.infer<typeof lmdbKvOptionsSchema>;

const CAPABILITIES: KvCapabilities = Object.freeze({ orderedScan: true, nativeTtl: false, persistent: true });

/** Versions are reserved in blocks, so a restart never reuses one (the mark is written first). */
const VERSION_BLOCK = 10_000;
const EMPTY = Buffer.alloc(0);
const SWEEP_CHUNK = 1000;
const noop = () => undefined;

/** A decoded record; `expiresAt` 0 = never. */
interface Record {
  version: number;
  expiresAt: number;
  value: unknown;
}

/**
 * Overlay entries: the latest issued record of a key whose write is not committed yet, or a
 * tombstone (a fresh object per delete, `expiresAt` −1) for a delete. Entries are compared by
 * identity when their batch commits, so a newer write of the same key is never dropped early.
 */
const TOMBSTONE_EXPIRY = -1;

function tombstone(): Record {
  return { version: 0, expiresAt: TOMBSTONE_EXPIRY, value: undefined };
}

/** A write to issue: a record with its encoding, or a delete (`record` undefined). */
interface Write {
  key: string;
  record: Record | undefined;
  bytes: Buffer | undefined;
}

/**
 * Decodes values read with `getBinaryFast`, whose buffer lmdb-js reuses on the next read: binary
 * values inside the record must be copied out (the shared codec would hand out views).
 */
const readPackr = new Packr({ useRecords: false, copyBuffers: true });

/** Bytes MessagePack uses for a non-negative integer (the record header fields). */
function uintBytes(n: number): number {
  if (n < 128) return 1;
  if (n < 256) return 2;
  if (n < 65_536) return 3;
  if (n < 4_294_967_296) return 5;
  return 9;
}

class LmdbKvStore implements KvStore {
  readonly scheme = "lmdb";
  readonly capabilities = CAPABILITIES;
  readonly maxValueBytes: number;
  private readonly now: () => number;
  private readonly pending = new Map<string, Record>();
  /** The lmdb-js promise of the batch being filled, and the overlay entries written into it. */
  private batch: PromiseLike<unknown> | undefined;
  /** Keys and overlay entries of that batch, flattened: key, entry, key, entry, … */
  private batchEntries: (string | Record)[] = [];
  /** Version counters by scope (see `versionScope`), each reserving blocks in `meta`. */
  private readonly counters = new Map<string, { seq: number; reserved: number; scope: string }>();
  /** The store-wide counter of earlier releases: every scope's versions start above it. */
  private readonly floor: number;
  private closed = false;
  private readonly path: string;

  constructor(
    private readonly env: RootDatabase,
    private readonly db: Database<Buffer, string>,
    private readonly expiry: Database<Buffer, [number, string]>,
    private readonly meta: Database<number, string>,
    options: LmdbKvOptions,
    deps: KvStoreDeps,
  ) {
    this.maxValueBytes = options.max_value_bytes;
    this.path = options.path;
    this.now = deps.now ?? Date.now;
    this.floor = meta.get("version") ?? 0;
  }

  private open(operation: string): void {
    if (this.closed) throw closedError(operation);
  }

  private counter(key: string): { seq: number; reserved: number; scope: string } {
    const scope = versionScope(key);
    let c = this.counters.get(scope);
    if (c === undefined) {
      const seq = Math.max(this.meta.get(`version:${scope}`) ?? 0, this.floor);
      c = { seq, reserved: seq, scope };
      this.counters.set(scope, c);
    }
    return c;
  }

  /** The version the next write of `key` will get, without spending it. */
  private peekVersion(key: string): number {
    return this.counter(key).seq + 1;
  }

  private nextVersion(key: string): number {
    const c = this.counter(key);
    c.seq++;
    if (c.seq > c.reserved) {
      c.reserved = c.seq + VERSION_BLOCK;
      const mark = this.meta.put(`version:${c.scope}`, c.reserved);
      // If the mark does not commit (disk full), write it again with the next version.
      mark.then(undefined, (e: unknown) => {
        guardCommitError(e);
        c.reserved = Math.min(c.reserved, c.seq);
      });
    }
    return c.seq;
  }

  private decode(key: string, bytes: Uint8Array, operation: string): Record {
    let decoded: unknown;
    try {
      decoded = readPackr.unpack(bytes);
    } catch (e) {
      throw corrupt(key, e, operation);
    }
    if (!Array.isArray(decoded) || decoded.length !== 3 || typeof decoded[0] !== "number") {
      throw corrupt(key, new Error("not a Kura record"), operation);
    }
    return { version: decoded[0], expiresAt: decoded[1] as number, value: decoded[2] };
  }

  /** The latest issued record of `key` (in-flight writes first), expired or not. */
  private current(key: string, operation: string): Record | undefined {
    const pending = this.pending.get(key);
    if (pending !== undefined) return pending.expiresAt === TOMBSTONE_EXPIRY ? undefined : pending;
    const bytes = this.db.getBinaryFast(key);
    return bytes === undefined ? undefined : this.decode(key, bytes, operation);
  }

  private isLive(record: Record | undefined, now: number): record is Record {
    return record !== undefined && (record.expiresAt === 0 || record.expiresAt > now);
  }

  /**
   * Reads see committed data after waiting for a write of the same key still in flight, so a
   * reader never sees a value that might not become durable, and sees its own acknowledged
   * writes (a read-modify-write loop also yields to the commit this way).
   */
  private async settled(keys: readonly string[]): Promise<void> {
    // Batches commit in order: once the latest one settled, every earlier write has too.
    if (this.batch && keys.some((key) => this.pending.has(key)))
      await Promise.resolve(this.batch).then(noop, noop);
  }

  /** Whether a read of these keys must wait for writes in flight (cheap when nothing is). */
  private mustSettle(keys: readonly string[]): boolean {
    if (this.pending.size === 0) return false;
    for (const key of keys) if (this.pending.has(key)) return true;
    return false;
  }

  /** Committed state only. */
  private committedLive(key: string, now: number, operation: string): Record | undefined {
    const bytes = this.db.getBinaryFast(key);
    if (bytes === undefined) return undefined;
    const record = this.decode(key, bytes, operation);
    return this.isLive(record, now) ? record : undefined;
  }

  private encode(key: string, version: number, expiresAt: number, value: unknown, operation: string): Buffer {
    const bytes = packr.pack([version, expiresAt, value]);
    const valueBytes = bytes.length - 1 - uintBytes(version) - uintBytes(expiresAt);
    if (valueBytes > this.maxValueBytes) throw tooLarge(key, valueBytes, this.maxValueBytes, operation);
    return bytes;
  }

  /**
   * Issue writes now, in order; the promise settles when all are committed. Until then the
   * overlay holds them, so decisions see them. lmdb-js commits in issue order and settles every
   * write of a batch with one shared promise, so the last write settling means all of them did,
   * and one callback per batch clears the batch's overlay entries (unless a later write of the
   * same key replaced them).
   */
  private issue(writes: readonly Write[]): PromiseLike<unknown> {
    let last: PromiseLike<unknown> | undefined;
    for (const { key, record, bytes } of writes) {
      last = record === undefined || bytes === undefined ? this.db.remove(key) : this.db.put(key, bytes);
      if (record !== undefined && record.expiresAt !== 0)
        this.expiry.put([record.expiresAt, key], EMPTY).then(undefined, guardCommitError);
      const entry = record ?? tombstone();
      this.pending.set(key, entry);
      if (last !== this.batch) {
        const entries: (string | Record)[] = [];
        const settle = () => {
          for (let i = 0; i < entries.length; i += 2) {
            const k = entries[i] as string;
            if (this.pending.get(k) === entries[i + 1]) this.pending.delete(k);
          }
        };
        last.then(settle, (e: unknown) => {
          guardCommitError(e);
          settle();
        });
        this.batch = last;
        this.batchEntries = entries;
      }
      this.batchEntries.push(key, entry);
    }
    return last ?? Promise.resolve();
  }

  /** Issue writes and wait for their commit, with errors translated. */
  private async commit(writes: readonly Write[], operation: string): Promise<void> {
    try {
      await this.issue(writes);
    } catch (e) {
      const { cause, full } = await commitFailure(e, this.path);
      throw lmdbError(e, operation, writes.length === 1 ? writes[0]?.key : undefined, cause, full);
    }
  }

  async get<T>(key: string): Promise<T | undefined> {
    this.open("kv.get");
    checkKey(key, "kv.get");
    if (this.mustSettle([key])) await this.settled([key]);
    return this.committedLive(key, this.now(), "kv.get")?.value as T | undefined;
  }

  async getEntry<T>(key: string): Promise<KvEntry<T> | undefined> {
    this.open("kv.get");
    checkKey(key, "kv.get");
    if (this.mustSettle([key])) await this.settled([key]);
    const record = this.committedLive(key, this.now(), "kv.get");
    if (!record) return undefined;
    return {
      key,
      value: record.value as T,
      version: record.version,
      expiresAt: record.expiresAt === 0 ? undefined : record.expiresAt,
    };
  }

  async set(key: string, value: unknown, options: KvSetOptions = {}): Promise<KvWriteResult> {
    this.open("kv.set");
    checkSet(key, value, options, "kv.set");
    const now = this.now();
    if (options.ifVersion !== undefined) {
      const current = this.current(key, "kv.set");
      const actual = this.isLive(current, now) ? current.version : 0;
      if (actual !== options.ifVersion) throw versionConflict(key, options.ifVersion, actual, "kv.set");
    }
    const expiresAt = options.ttlMs === undefined ? 0 : now + options.ttlMs;
    // Encode with a provisional version to check the size before a version is spent.
    const version = this.peekVersion(key);
    const bytes = this.encode(key, version, expiresAt, value, "kv.set");
    this.nextVersion(key);
    await this.commit([{ key, record: { version, expiresAt, value }, bytes }], "kv.set");
    return { version };
  }

  async delete(key: string, options: { ifVersion?: number } = {}): Promise<boolean> {
    this.open("kv.delete");
    checkKey(key, "kv.delete");
    checkVersion(options.ifVersion, "kv.delete", key);
    const current = this.current(key, "kv.delete");
    const live = this.isLive(current, this.now());
    const actual = live ? current.version : 0;
    if (options.ifVersion !== undefined && actual !== options.ifVersion) {
      throw versionConflict(key, options.ifVersion, actual, "kv.delete");
    }
    if (current !== undefined) await this.commit([{ key, record: undefined, bytes: undefined }], "kv.delete");
    return live;
  }

  async incr(key: string, options: KvIncrOptions = {}): Promise<{ value: number; version: number }> {
    this.open("kv.incr");
    checkKey(key, "kv.incr");
    const by = checkIncrBy(options.by, "kv.incr", key);
    checkIncrTtl(options.ttlMs, "kv.incr", key);
    const now = this.now();
    const current = this.current(key, "kv.incr");
    const live = this.isLive(current, now);
    const value = addToCounter(live ? current.value : undefined, by, key);
    const expiresAt = live ? current.expiresAt : options.ttlMs === undefined ? 0 : now + options.ttlMs;
    const version = this.nextVersion(key);
    const bytes = this.encode(key, version, expiresAt, value, "kv.incr");
    await this.commit([{ key, record: { version, expiresAt, value }, bytes }], "kv.incr");
    return { value, version };
  }

  async getMany<T>(keys: readonly string[]): Promise<(T | undefined)[]> {
    this.open("kv.getMany");
    for (const key of keys) checkKey(key, "kv.getMany");
    if (this.mustSettle(keys)) await this.settled(keys);
    const now = this.now();
    return keys.map((key) => this.committedLive(key, now, "kv.getMany")?.value as T | undefined);
  }

  async setMany(items: readonly KvSetManyItem[]): Promise<KvWriteResult[]> {
    this.open("kv.setMany");
    checkSetMany(items, "kv.setMany");
    const now = this.now();
    // Encode (and size-check) everything before the first write is issued.
    const provisional = new Map<string, number>();
    const writes: Write[] = items.map((item) => {
      const scope = versionScope(item.key);
      const version = (provisional.get(scope) ?? this.peekVersion(item.key) - 1) + 1;
      provisional.set(scope, version);
      const expiresAt = item.ttlMs === undefined ? 0 : now + item.ttlMs;
      const bytes = this.encode(item.key, version, expiresAt, item.value, "kv.setMany");
      return { key: item.key, record: { version, expiresAt, value: item.value }, bytes };
    });
    for (const item of items) this.nextVersion(item.key);
    await this.commit(writes, "kv.setMany");
    return writes.map((w) => ({ version: (w.record as Record).version }));
  }

  async scan<T>(prefix: string, options: KvScanOptions = {}): Promise<KvScanPage<T>> {
    this.open("kv.scan");
    checkPrefix(prefix, "kv.scan");
    const limit = scanLimit(options);
    const after = decodeScanCursor(this.scheme, prefix, options.cursor);
    const now = this.now();
    const items: KvEntry<T>[] = [];
    let more = false;
    for (const { key, value } of this.db.getRange({ start: after ?? prefix })) {
      if (typeof key !== "string" || !key.startsWith(prefix)) break;
      if (key === after) continue;
      if (items.length === limit) {
        more = true;
        break;
      }
      const record = this.decode(key, value, "kv.scan");
      if (!this.isLive(record, now)) continue;
      items.push({
        key,
        value: (options.keysOnly ? undefined : record.value) as T,
        version: record.version,
        expiresAt: record.expiresAt === 0 ? undefined : record.expiresAt,
      });
    }
    const last = items.at(-1);
    return { items, cursor: more && last ? encodeScanCursor(this.scheme, prefix, last.key) : undefined };
  }

  async sweepExpired(options: { now?: number; limit?: number } = {}): Promise<number> {
    this.open("kv.sweep");
    const now = options.now ?? this.now();
    const limit = options.limit ?? Number.POSITIVE_INFINITY;
    let removed = 0;
    for (;;) {
      const due: [number, string][] = [];
      for (const { key } of this.expiry.getRange({ start: [0, ""], end: [now + 1, ""] })) {
        due.push(key);
        if (due.length >= SWEEP_CHUNK) break;
      }
      if (due.length === 0) return removed;
      const removals: Write[] = [];
      let indexRemoved: PromiseLike<unknown> | undefined;
      for (const indexKey of due) {
        const [expiresAt, key] = indexKey;
        // Remove only what still carries this expiry: a key rewritten since keeps living.
        const current = this.current(key, "kv.sweep");
        if (current !== undefined && current.expiresAt === expiresAt && removed < limit) {
          removals.push({ key, record: undefined, bytes: undefined });
          removed++;
        }
        indexRemoved = this.expiry.remove(indexKey);
        indexRemoved.then(undefined, guardCommitError);
      }
      await this.commit(removals, "kv.sweep");
      await indexRemoved;
      if (removed >= limit) return removed;
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.env.close();
  }
}

function lmdbError(e: unknown, operation: string, key?: string, cause?: unknown, full = false): KuraError {
  if (e instanceof KuraError) return e;
  const message = e instanceof Error ? e.message : String(e);
  const context = key === undefined ? {} : { context: { key } };
  if (full) {
    return new KuraError(
      "STORAGE_FULL",
      `lmdb: the disk is full (${cause instanceof Error ? cause.message : message})`,
      {
        operation,
        cause: cause ?? e,
        ...context,
      },
    );
  }
  return new KuraError("KV_BACKEND_ERROR", `lmdb: ${message}`, {
    operation,
    cause: cause ?? e,
    ...context,
  });
}

export const lmdbKvStore: KvStoreDefinition<LmdbKvOptions> = {
  scheme: "lmdb",
  capabilities: CAPABILITIES,
  parseOptions: (raw) => parseOptions(lmdbKvOptionsSchema, raw, "kv"),
  create: async (options, deps = {}) => {
    const { open } = await import("lmdb");
    try {
      mkdirSync(options.path, { recursive: true });
      const env = open({
        path: options.path,
        // DUR-1: `os` = committed to the OS (survives a process crash), `fsync` = to the disk.
        noSync: deps.durability !== "fsync",
        maxDbs: 8,
        ...LMDB_ENV_OPTIONS,
      });
      const db = env.openDB<Buffer, string>("kv", { encoding: "binary", compression: true });
      const expiry = env.openDB<Buffer, [number, string]>("expiry", { encoding: "binary" });
      const meta = env.openDB<number, string>("meta", { encoding: "msgpack" });
      return new LmdbKvStore(env, db, expiry, meta, options, deps);
    } catch (e) {
      throw lmdbError(e, "kv.open");
    }
  },
};
