/**
 * `lmdb`: the embedded KV store (lmdb-js). One LMDB environment under `path` with three
 * databases:
 * - `kv`: key → MessagePack `[version, expiresAt (0 = never), value]`, LZ4-compressed by
 *   lmdb-js's native compression when larger than its threshold;
 * - `expiry`: `[expiresAt, key]` → empty, so the sweep job visits only keys that expire;
 * - `meta`: the high-water mark of versions.
 *
 * Atomicity: every decision (compare-and-set, increment) is taken synchronously against the
 * latest *issued* state — committed data overlaid with the writes not committed yet — and its
 * writes are queued right away, so within this process no two writers can act on the same
 * version. The writes queued during one turn of the event loop are committed together, in the
 * order they were queued, when the turn ends (ADR 0023): with `durability: os` in one synchronous
 * write transaction on the calling thread (a commit that does not fsync costs microseconds, less
 * than handing the writes to lmdb-js's write thread), with `durability: fsync` through lmdb-js's
 * asynchronous writes, so the fsync never blocks the event loop. (lmdb-js's transaction
 * callbacks are not used: they run after the plain writes of their batch, which would reorder
 * writes.) One Kura process owns an environment; see ADR 0008.
 */
import { mkdirSync } from "node:fs";
import type { Database, Key, RootDatabase } from "lmdb";
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
  NO_OPTIONS,
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
/** The queued value of a delete. */
const REMOVE = Symbol("remove");

/** Any of the three databases, as the write queue holds them. */
type AnyDatabase = Database<unknown, Key>;

/** A decoded record; `expiresAt` 0 = never. */
interface Record {
  version: number;
  expiresAt: number;
  value: unknown;
}

/** The version counter of one scope (see `versionScope`), reserving blocks in `meta`. */
interface Counter {
  readonly scope: string;
  seq: number;
  reserved: number;
}

/**
 * Overlay entries: the latest queued record of a key whose write is not committed yet, or a
 * tombstone (a fresh object per delete, `expiresAt` −1) for a delete. Entries are compared by
 * identity when their batch commits, so a newer write of the same key is never dropped early.
 */
const TOMBSTONE_EXPIRY = -1;

function tombstone(): Record {
  return { version: 0, expiresAt: TOMBSTONE_EXPIRY, value: undefined };
}

/**
 * The writes queued during one turn of the event loop, committed together. Kept in flat arrays
 * so queuing a write allocates no object.
 */
class Batch {
  /** Writes of the `kv` database, in order: keys and values ({@link REMOVE} for a delete). */
  readonly keys: string[] = [];
  readonly values: unknown[] = [];
  /**
   * Writes of `expiry` and `meta`: database, key, value, … — committed before the `kv` writes
   * (a version reservation mark is then never later than a write that uses it; index entries do
   * not depend on the order).
   */
  readonly side: unknown[] = [];
  /**
   * Whether the batch holds writes that are not in the overlay ("blind" writes: set without
   * `ifVersion`, setMany). With synchronous commits they are left out of it, and a decision or a
   * read commits the batch first instead.
   */
  blind = false;
  /** Overlay entries of this batch (asynchronous commits only): key, entry, key, entry, … */
  readonly entries: (string | Record)[] = [];
  /** Counters whose reservation mark this batch writes. */
  readonly marks: Counter[] = [];
  readonly done: Promise<void>;
  resolve!: () => void;
  reject!: (e: unknown) => void;
  private quiet: Promise<void> | undefined;

  constructor() {
    this.done = new Promise<void>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
    // Every writer awaits `done`; this keeps a batch nobody awaits from an unhandled rejection.
    this.done.catch(noop);
  }

  /** Settles with the batch, never rejects (for readers that only wait for it). */
  settled(): Promise<void> {
    this.quiet ??= this.done.then(noop, noop);
    return this.quiet;
  }
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
  /** The batch filling during this turn, committed when the turn ends. */
  private filling: Batch | undefined;
  /** The newest batch handed to LMDB and not settled yet (batches commit in order). */
  private latest: Batch | undefined;
  /** Commit each batch in one synchronous transaction (`durability: os`), else asynchronously. */
  private readonly syncCommits: boolean;
  /** Version counters by scope (see `versionScope`). */
  private readonly counters = new Map<string, Counter>();
  /** The counter of the last scope used: most calls in a row write under the same tenant. */
  private lastScope = "\u0000";
  private lastCounter: Counter | undefined;
  /** The store-wide counter of earlier releases: every scope's versions start above it. */
  private readonly floor: number;
  private closed = false;
  private readonly path: string;
  private readonly flushNow = () => this.flush();
  private readonly record: [number, number, unknown] = [0, 0, undefined];

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
    this.syncCommits = deps.durability !== "fsync";
    this.floor = meta.get("version") ?? 0;
  }

  private open(operation: string): void {
    if (this.closed) throw closedError(operation);
  }

  private counter(key: string): Counter {
    const colon = key.indexOf(":");
    if (colon === this.lastScope.length - 1 && key.startsWith(this.lastScope))
      return this.lastCounter as Counter;
    const scope = versionScope(key);
    let c = this.counters.get(scope);
    if (c === undefined) {
      const seq = Math.max(this.meta.get(`version:${scope}`) ?? 0, this.floor);
      c = { seq, reserved: seq, scope };
      this.counters.set(scope, c);
    }
    this.lastScope = scope;
    this.lastCounter = c;
    return c;
  }

  /** Spend the next version of a counter; a new reservation mark is queued before the write. */
  private spend(c: Counter): number {
    c.seq++;
    if (c.seq > c.reserved) {
      c.reserved = c.seq + VERSION_BLOCK;
      const batch = this.batch();
      batch.side.push(this.meta, `version:${c.scope}`, c.reserved);
      batch.marks.push(c);
    }
    return c.seq;
  }

  /** The batch of this turn, opened (and its commit scheduled) by the first write. */
  private batch(): Batch {
    let batch = this.filling;
    if (batch === undefined) {
      batch = new Batch();
      this.filling = batch;
      process.nextTick(this.flushNow);
    }
    return batch;
  }

  /**
   * Queue a put of `key` (a delete when `bytes` is undefined). Until it commits, the overlay
   * holds it — with synchronous commits only when a later decision may need it (`decided`:
   * compare-and-set, delete, incr), since a blind write is committed before any decision or
   * read looks (see `beforeDecision`, `beforeRead`).
   */
  private write(
    key: string,
    bytes: Buffer | undefined,
    version: number,
    expiresAt: number,
    value: unknown,
    decided: boolean,
  ): Batch {
    const batch = this.batch();
    batch.keys.push(key);
    if (bytes === undefined) {
      batch.values.push(REMOVE);
    } else {
      batch.values.push(bytes);
      if (expiresAt !== 0) batch.side.push(this.expiry, [expiresAt, key], EMPTY);
    }
    if (this.syncCommits && !decided) {
      batch.blind = true;
      return batch;
    }
    const entry: Record = bytes === undefined ? tombstone() : { version, expiresAt, value };
    this.pending.set(key, entry);
    // A synchronous commit settles the whole overlay at once (see `settle`).
    if (!this.syncCommits) batch.entries.push(key, entry);
    return batch;
  }

  /** Before a decision on stored state: blind writes of this turn are committed first. */
  private beforeDecision(): void {
    if (this.filling?.blind) this.flush();
  }

  /**
   * Before a read of `keys`: reads see committed data only, after the writes of these keys not
   * committed yet — so a reader never sees a value that might not become durable, and sees its
   * own acknowledged writes. With synchronous commits the batch of this turn is committed now;
   * otherwise the read waits for the newest batch in flight that writes one of the keys
   * (batches commit in order: once the newest one settled, every earlier write has too).
   */
  private beforeRead(keys: readonly string[]): Promise<void> | undefined {
    if (this.syncCommits) {
      if (this.filling !== undefined) this.flush();
      return undefined;
    }
    if (this.pending.size === 0) return undefined;
    for (const key of keys) {
      if (this.pending.has(key)) return (this.filling ?? this.latest)?.settled();
    }
    return undefined;
  }

  /** Commit the batch of this turn (see the file comment). */
  private flush(): void {
    const batch = this.filling;
    if (batch === undefined) return;
    this.filling = undefined;
    this.latest = batch;
    const { keys, values, side } = batch;
    const db = this.db as AnyDatabase;
    if (this.syncCommits) {
      let failure: unknown;
      try {
        this.env.transactionSync(() => {
          for (let i = 0; i < side.length; i += 3) {
            const sideDb = side[i] as AnyDatabase;
            if (side[i + 2] === REMOVE) sideDb.removeSync(side[i + 1] as Key);
            else sideDb.putSync(side[i + 1] as Key, side[i + 2]);
          }
          for (let i = 0; i < keys.length; i++) {
            const value = values[i];
            if (value === REMOVE) db.removeSync(keys[i] as string);
            else db.putSync(keys[i] as string, value);
          }
        });
      } catch (e) {
        failure = e ?? new Error("commit failed");
      }
      this.settle(batch, failure);
      return;
    }
    // lmdb-js commits writes in the order they are issued, settling every write of one of its
    // transactions with one shared promise: waiting for each distinct promise covers them all.
    const commits: PromiseLike<unknown>[] = [];
    let last: PromiseLike<unknown> | undefined;
    const issued = (p: PromiseLike<unknown>) => {
      if (p !== last) {
        p.then(undefined, guardCommitError);
        commits.push(p);
        last = p;
      }
    };
    for (let i = 0; i < side.length; i += 3) {
      const sideDb = side[i] as AnyDatabase;
      const value = side[i + 2];
      issued(value === REMOVE ? sideDb.remove(side[i + 1] as Key) : sideDb.put(side[i + 1] as Key, value));
    }
    for (let i = 0; i < keys.length; i++) {
      const value = values[i];
      issued(value === REMOVE ? db.remove(keys[i] as string) : db.put(keys[i] as string, value));
    }
    Promise.all(commits).then(
      () => this.settle(batch, undefined),
      (e: unknown) => this.settle(batch, e ?? new Error("commit failed")),
    );
  }

  /** A batch committed (or failed): drop its overlay entries, then tell its writers. */
  private settle(batch: Batch, failure: unknown): void {
    if (this.syncCommits) {
      // Committed synchronously, nothing queued meanwhile: the overlay holds this batch only.
      this.pending.clear();
    } else {
      const { entries } = batch;
      for (let i = 0; i < entries.length; i += 2) {
        const key = entries[i] as string;
        if (this.pending.get(key) === entries[i + 1]) this.pending.delete(key);
      }
    }
    if (this.latest === batch) this.latest = undefined;
    if (failure === undefined) {
      batch.resolve();
      return;
    }
    // A reservation that did not commit is written again with the next version.
    for (const c of batch.marks) c.reserved = Math.min(c.reserved, c.seq);
    batch.reject(failure);
  }

  /** Why a batch failed, as the caller's error. */
  private async failure(e: unknown, operation: string, key?: string): Promise<KuraError> {
    const { cause, full } = await commitFailure(e, this.path);
    return lmdbError(e, operation, key, cause, full);
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

  /** The latest queued record of `key` (uncommitted writes first), expired or not. */
  private current(key: string, operation: string): Record | undefined {
    this.beforeDecision();
    const pending = this.pending.get(key);
    if (pending !== undefined) return pending.expiresAt === TOMBSTONE_EXPIRY ? undefined : pending;
    const bytes = this.db.getBinaryFast(key);
    return bytes === undefined ? undefined : this.decode(key, bytes, operation);
  }

  private isLive(record: Record | undefined, now: number): record is Record {
    return record !== undefined && (record.expiresAt === 0 || record.expiresAt > now);
  }

  /** Committed state only. */
  /** The committed value of a live key (no record object: the read path of `get`/`getMany`). */
  private committedValue(key: string, now: number, operation: string): unknown {
    const bytes = this.db.getBinaryFast(key);
    if (bytes === undefined) return undefined;
    let decoded: unknown;
    try {
      decoded = readPackr.unpack(bytes);
    } catch (e) {
      throw corrupt(key, e, operation);
    }
    if (!Array.isArray(decoded) || decoded.length !== 3 || typeof decoded[0] !== "number") {
      throw corrupt(key, new Error("not a Kura record"), operation);
    }
    const expiresAt = decoded[1] as number;
    return expiresAt === 0 || expiresAt > (now === 0 ? this.now() : now) ? decoded[2] : undefined;
  }

  private committedLive(key: string, now: number, operation: string): Record | undefined {
    const bytes = this.db.getBinaryFast(key);
    if (bytes === undefined) return undefined;
    const record = this.decode(key, bytes, operation);
    return this.isLive(record, now) ? record : undefined;
  }

  private encode(key: string, version: number, expiresAt: number, value: unknown, operation: string): Buffer {
    // One record array, refilled per call (`pack` is synchronous and keeps no reference to it).
    const record = this.record;
    record[0] = version;
    record[1] = expiresAt;
    record[2] = value;
    const bytes = packr.pack(record);
    record[2] = undefined;
    const valueBytes = bytes.length - 1 - uintBytes(version) - uintBytes(expiresAt);
    if (valueBytes > this.maxValueBytes) throw tooLarge(key, valueBytes, this.maxValueBytes, operation);
    return bytes;
  }

  async get<T>(key: string): Promise<T | undefined> {
    this.open("kv.get");
    checkKey(key, "kv.get");
    const wait = this.filling === undefined && this.pending.size === 0 ? undefined : this.beforeRead([key]);
    if (wait !== undefined) await wait;
    return this.committedValue(key, 0, "kv.get") as T | undefined;
  }

  async getEntry<T>(key: string): Promise<KvEntry<T> | undefined> {
    this.open("kv.get");
    checkKey(key, "kv.get");
    const wait = this.filling === undefined && this.pending.size === 0 ? undefined : this.beforeRead([key]);
    if (wait !== undefined) await wait;
    const record = this.committedLive(key, this.now(), "kv.get");
    if (!record) return undefined;
    return {
      key,
      value: record.value as T,
      version: record.version,
      expiresAt: record.expiresAt === 0 ? undefined : record.expiresAt,
    };
  }

  async set(key: string, value: unknown, options: KvSetOptions = NO_OPTIONS): Promise<KvWriteResult> {
    this.open("kv.set");
    checkSet(key, value, options, "kv.set");
    const { ttlMs, ifVersion } = options;
    const now = ttlMs === undefined && ifVersion === undefined ? 0 : this.now();
    if (ifVersion !== undefined) {
      const current = this.current(key, "kv.set");
      const actual = this.isLive(current, now) ? current.version : 0;
      if (actual !== ifVersion) throw versionConflict(key, ifVersion, actual, "kv.set");
    }
    const expiresAt = ttlMs === undefined ? 0 : now + ttlMs;
    const c = this.counter(key);
    // Encode with the version to come, so the size is checked before a version is spent.
    const bytes = this.encode(key, c.seq + 1, expiresAt, value, "kv.set");
    const version = this.spend(c);
    const batch = this.write(key, bytes, version, expiresAt, value, ifVersion !== undefined);
    try {
      await batch.done;
    } catch (e) {
      throw await this.failure(e, "kv.set", key);
    }
    return { version };
  }

  async delete(key: string, options: { ifVersion?: number } = NO_OPTIONS): Promise<boolean> {
    this.open("kv.delete");
    checkKey(key, "kv.delete");
    checkVersion(options.ifVersion, "kv.delete", key);
    const current = this.current(key, "kv.delete");
    const live = this.isLive(current, this.now());
    const actual = live ? current.version : 0;
    if (options.ifVersion !== undefined && actual !== options.ifVersion) {
      throw versionConflict(key, options.ifVersion, actual, "kv.delete");
    }
    if (current === undefined) return false;
    const batch = this.write(key, undefined, 0, 0, undefined, true);
    try {
      await batch.done;
    } catch (e) {
      throw await this.failure(e, "kv.delete", key);
    }
    return live;
  }

  async incr(key: string, options: KvIncrOptions = NO_OPTIONS): Promise<{ value: number; version: number }> {
    this.open("kv.incr");
    checkKey(key, "kv.incr");
    const by = checkIncrBy(options.by, "kv.incr", key);
    checkIncrTtl(options.ttlMs, "kv.incr", key);
    const now = this.now();
    const current = this.current(key, "kv.incr");
    const live = this.isLive(current, now);
    const value = addToCounter(live ? current.value : undefined, by, key);
    const expiresAt = live ? current.expiresAt : options.ttlMs === undefined ? 0 : now + options.ttlMs;
    const version = this.spend(this.counter(key));
    const bytes = this.encode(key, version, expiresAt, value, "kv.incr");
    const batch = this.write(key, bytes, version, expiresAt, value, true);
    try {
      await batch.done;
    } catch (e) {
      throw await this.failure(e, "kv.incr", key);
    }
    return { value, version };
  }

  async getMany<T>(keys: readonly string[]): Promise<(T | undefined)[]> {
    this.open("kv.getMany");
    for (const key of keys) checkKey(key, "kv.getMany");
    const wait = this.beforeRead(keys);
    if (wait !== undefined) await wait;
    const now = this.now();
    const values: (T | undefined)[] = new Array(keys.length);
    for (let i = 0; i < keys.length; i++) {
      values[i] = this.committedValue(keys[i] as string, now, "kv.getMany") as T | undefined;
    }
    return values;
  }

  async setMany(items: readonly KvSetManyItem[]): Promise<KvWriteResult[]> {
    this.open("kv.setMany");
    checkSetMany(items, "kv.setMany");
    let now = 0;
    for (const item of items) {
      if (item.ttlMs !== undefined) {
        now = this.now();
        break;
      }
    }
    // Encode (and size-check) everything before the first write is queued: the versions to come
    // are counted per counter, and spent only once every item fits.
    const encoded: Buffer[] = new Array(items.length);
    const counters: Counter[] = new Array(items.length);
    let single: Counter | undefined;
    let ahead: Map<Counter, number> | undefined;
    for (let i = 0; i < items.length; i++) {
      const item = items[i] as KvSetManyItem;
      const c = this.counter(item.key);
      counters[i] = c;
      let offset: number;
      if (ahead === undefined && (single === undefined || single === c)) {
        single = c;
        offset = i + 1;
      } else {
        ahead ??= new Map([[single as Counter, i]]);
        offset = (ahead.get(c) ?? 0) + 1;
        ahead.set(c, offset);
      }
      const expiresAt = item.ttlMs === undefined ? 0 : now + item.ttlMs;
      encoded[i] = this.encode(item.key, c.seq + offset, expiresAt, item.value, "kv.setMany");
    }
    let batch: Batch | undefined;
    const results: KvWriteResult[] = new Array(items.length);
    for (let i = 0; i < items.length; i++) {
      const item = items[i] as KvSetManyItem;
      const version = this.spend(counters[i] as Counter);
      results[i] = { version };
      const expiresAt = item.ttlMs === undefined ? 0 : now + item.ttlMs;
      batch = this.write(item.key, encoded[i], version, expiresAt, item.value, false);
    }
    if (batch !== undefined) {
      try {
        await batch.done;
      } catch (e) {
        throw await this.failure(e, "kv.setMany");
      }
    }
    return results;
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
      // Blind writes of this turn are committed first, so neither the index nor a record read
      // below is stale, and no decision below commits the batch this chunk is queued in.
      this.beforeDecision();
      const due: [number, string][] = [];
      for (const { key } of this.expiry.getRange({ start: [0, ""], end: [now + 1, ""] })) {
        due.push(key);
        if (due.length >= SWEEP_CHUNK) break;
      }
      if (due.length === 0) return removed;
      const batch = this.batch();
      for (const indexKey of due) {
        const [expiresAt, key] = indexKey;
        // Remove only what still carries this expiry: a key rewritten since keeps living.
        const current = this.current(key, "kv.sweep");
        if (current !== undefined && current.expiresAt === expiresAt && removed < limit) {
          this.write(key, undefined, 0, 0, undefined, true);
          removed++;
        }
        batch.side.push(this.expiry, indexKey, REMOVE);
      }
      try {
        await batch.done;
      } catch (e) {
        throw await this.failure(e, "kv.sweep");
      }
      if (removed >= limit) return removed;
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.flush();
    const last = this.latest;
    if (last !== undefined) await last.settled();
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
