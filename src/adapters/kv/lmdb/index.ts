/**
 * `lmdb`: the embedded KV store (lmdb-js). One LMDB environment under `path` with three
 * databases:
 * - `kv`: key → MessagePack `[version, expiresAt (0 = never), value]`, LZ4-compressed by
 *   lmdb-js's native compression when larger than its threshold; a deleted or expired (and
 *   swept) key leaves a tombstone `[version, −1, pruneAt]` that keeps its last version until
 *   `pruneAt` (ADR 0025) — to every read it is an expired record, also to earlier releases;
 * - `expiry`: `[time, key]` → empty, so the sweep job visits only keys that expire and
 *   tombstones due for pruning;
 * - `meta`: while a store written by an earlier release upgrades, that release's version
 *   counters (`version`, `version:{scope}`) and when the upgrade began.
 *
 * Versions are per key: a write reads the key's record (or tombstone) for its version first —
 * the committed one, or the one queued and not committed yet (see below).
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
 * writes.) One Kura process owns an environment; see ADR 0008. The record format is in
 * `record.ts`, the write batches in `batch.ts`.
 *
 * Over 450 lines and whole: the write queue, issued versions and commit batches are one state that
 * every operation, the sweep and the upgrade read and update.
 */
import { mkdirSync } from "node:fs";
import type { Database, Key, RootDatabase } from "lmdb";
import { z } from "zod";
import { KuraError } from "../../../core/errors.js";
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
import { commitFailure, guardCommitError, LMDB_ENV_OPTIONS } from "../../lmdb.js";
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
  tombstoneRetentionOption,
  tooLarge,
  versionConflict,
  versionScope,
} from "../common.js";
import { Batch, REMOVE } from "./batch.js";
import { headerVersion, type Record, readPackr, TOMBSTONE, uintBytes } from "./record.js";

export const lmdbKvOptionsSchema = z
  .object({
    /** Directory of the LMDB environment (absolute after config loading); default `<data_dir>/kv`. */
    path: z.string().min(1),
    /** Largest encoded value in bytes; default 1 MiB. */
    max_value_bytes: z.number().int().min(1).default(DEFAULT_MAX_VALUE_BYTES),
    /** How long a deleted or expired key's last version is kept, in ms; default 7 days. */
    tombstone_retention_ms: tombstoneRetentionOption,
  })
  .strict();
export type LmdbKvOptions = z.infer<typeof lmdbKvOptionsSchema>;

const CAPABILITIES: KvCapabilities = Object.freeze({
  orderedScan: true,
  nativeTtl: false,
  persistent: true,
  remote: false,
});

/** `meta` key of the time (ms) this store first opened with per-key versions, while it upgrades. */
const UPGRADE_MARK = "per-key-versions-since";
/** `meta` keys of the earlier releases' counters: `version` and `version:{scope}`. */
const LEGACY_COUNTERS = { start: "version", end: "version;" } as const;
const EMPTY = Buffer.alloc(0);
const SWEEP_CHUNK = 1000;
/** Any of the three databases, as the write queue holds them. */
type AnyDatabase = Database<unknown, Key>;

class LmdbKvStore implements KvStore {
  readonly scheme = "lmdb";
  readonly capabilities = CAPABILITIES;
  readonly maxValueBytes: number;
  readonly tombstoneRetentionMs: number;
  private readonly now: () => number;
  private readonly pending = new Map<string, Record>();
  /**
   * Versions of the blind writes in the open batch (synchronous commits only: they are not in
   * the overlay), so a later write of the same key in this turn counts on from them.
   */
  private readonly issued = new Map<string, number>();
  /** The batch filling during this turn, committed when the turn ends. */
  private filling: Batch | undefined;
  /** The newest batch handed to LMDB and not settled yet (batches commit in order). */
  private latest: Batch | undefined;
  /** Commit each batch in one synchronous transaction (`durability: os`), else asynchronously. */
  private readonly syncCommits: boolean;
  /**
   * Until when (ms) a key without a record starts above its scope's counter of the earlier
   * release (it may have existed then, see `legacyFloor`); 0 once the upgrade is over.
   */
  private legacyUntil: number;
  /** The earlier release's counters by scope, read as needed during the upgrade. */
  private readonly legacyFloors = new Map<string, number>();
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
    this.tombstoneRetentionMs = options.tombstone_retention_ms;
    this.legacyUntil = this.upgrade();
  }

  private open(operation: string): void {
    if (this.closed) throw closedError(operation);
  }

  /**
   * Upgrade from per-scope counters (ADR 0025): records keep their versions, and a key deleted
   * under the earlier release left no tombstone, so for one retention period from the first open
   * a key without a record starts above its scope's old counter (every version that release
   * issued in the scope is at most that). Then the counters are removed. Returns when the
   * upgrade ends (0: nothing to upgrade).
   */
  private upgrade(): number {
    const meta = this.meta;
    const counters = [...meta.getKeys(LEGACY_COUNTERS)];
    const now = this.now();
    let since = meta.get(UPGRADE_MARK);
    if (counters.length === 0) {
      if (since !== undefined) meta.removeSync(UPGRADE_MARK);
      return 0;
    }
    if (since === undefined) {
      since = now;
      meta.putSync(UPGRADE_MARK, since);
    }
    const until = since + this.tombstoneRetentionMs;
    if (now < until) return until;
    this.env.transactionSync(() => {
      for (const key of counters) meta.removeSync(key);
      meta.removeSync(UPGRADE_MARK);
    });
    return 0;
  }

  /** The version a key without a record counts from: 0, or during an upgrade its old scope counter. */
  private legacyFloor(key: string): number {
    if (this.legacyUntil === 0) return 0;
    if (this.now() >= this.legacyUntil) {
      this.legacyUntil = 0;
      this.legacyFloors.clear();
      return 0;
    }
    const scope = versionScope(key);
    let floor = this.legacyFloors.get(scope);
    if (floor === undefined) {
      // A scope without its own counter counted on from the store-wide one of still earlier releases.
      floor = Math.max(this.meta.get(`version:${scope}`) ?? 0, this.meta.get("version") ?? 0);
      this.legacyFloors.set(scope, floor);
    }
    return floor;
  }

  /**
   * The latest version `key` was given — its queued write, its record or its tombstone — for a
   * blind write (no decision: nothing is committed first). See `legacyFloor` for a key without.
   */
  private lastVersion(key: string, operation: string): number {
    if (this.issued.size !== 0) {
      // Newer than an overlay entry: a decision would have committed the blind writes first.
      const issued = this.issued.get(key);
      if (issued !== undefined) return issued;
    }
    if (this.pending.size !== 0) {
      const pending = this.pending.get(key);
      if (pending !== undefined) return pending.version === 0 ? this.legacyFloor(key) : pending.version;
    }
    const bytes = this.db.getBinaryFast(key);
    if (bytes === undefined) return this.legacyFloor(key);
    return headerVersion(bytes) ?? this.decode(key, bytes, operation).version;
  }

  /**
   * The version of a blind write of `key` queued since `lastVersion` was asked (blind writes go
   * to `issued` with synchronous commits, to the overlay otherwise), if there is one.
   */
  private queuedVersion(key: string): number | undefined {
    return this.syncCommits ? this.issued.get(key) : this.pending.get(key)?.version;
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
   * Queue a put of `key` (a record, or a tombstone when `expiresAt` is {@link TOMBSTONE}; the
   * removal of a pruned tombstone when `bytes` is undefined). Until it commits, the overlay
   * holds it — with synchronous commits only when a later decision may need it (`decided`:
   * compare-and-set, delete, incr, sweep), since a blind write is committed before any decision
   * or read looks (see `beforeDecision`, `beforeRead`); its version is kept in `issued`.
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
      // Records that expire, and tombstones (at their prune time), are visited by the sweep.
      const due = expiresAt === TOMBSTONE ? (value as number) : expiresAt;
      if (due !== 0) batch.side.push(this.expiry, [due, key], EMPTY);
    }
    if (this.syncCommits && !decided) {
      batch.blind = true;
      this.issued.set(key, version);
      return batch;
    }
    const entry: Record =
      bytes === undefined
        ? { version: 0, expiresAt: TOMBSTONE, value: 0 }
        : this.syncCommits
          ? { version, expiresAt, value }
          : { version, expiresAt, value, bytes };
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
      this.issued.clear();
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

  /**
   * The latest queued record of `key` (uncommitted writes first), expired or not, or its
   * tombstone; undefined when there is neither.
   */
  private current(key: string, operation: string): Record | undefined {
    this.beforeDecision();
    const pending = this.pending.get(key);
    if (pending !== undefined) return pending.version === 0 ? undefined : pending;
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

  /**
   * With asynchronous commits, what a read of `keys` issued now must answer: the records queued
   * for them and not committed yet (call order), once their batch has committed (durability);
   * undefined when none is queued (the committed state answers). A key queued as removed maps
   * to undefined.
   */
  private queuedAnswer(keys: readonly string[]): Promise<Map<string, Record | undefined>> | undefined {
    if (this.syncCommits || this.pending.size === 0) return undefined;
    let queued: Map<string, Record | undefined> | undefined;
    for (const key of keys) {
      const entry = this.pending.get(key);
      if (entry === undefined) continue;
      queued ??= new Map();
      queued.set(key, entry.version === 0 || entry.bytes === undefined ? undefined : entry);
    }
    if (queued === undefined) return undefined;
    const answer = queued;
    const settled = (this.filling ?? this.latest)?.settled();
    return settled === undefined ? Promise.resolve(answer) : settled.then(() => answer);
  }

  /** A queued record as a read answers it: live, decoded afresh from its bytes (a copy). */
  private queuedLive(
    key: string,
    entry: Record | undefined,
    now: number,
    operation: string,
  ): Record | undefined {
    if (entry?.bytes === undefined) return undefined;
    const record = this.decode(key, entry.bytes, operation);
    return this.isLive(record, now) ? record : undefined;
  }

  async get<T>(key: string): Promise<T | undefined> {
    this.open("kv.get");
    checkKey(key, "kv.get");
    const answer = this.queuedAnswer([key]);
    if (answer !== undefined) {
      const queued = await answer;
      return this.queuedLive(key, queued.get(key), this.now(), "kv.get")?.value as T;
    }
    const wait = this.filling === undefined && this.pending.size === 0 ? undefined : this.beforeRead([key]);
    if (wait !== undefined) await wait;
    return this.committedValue(key, 0, "kv.get") as T | undefined;
  }

  async getEntry<T>(key: string): Promise<KvEntry<T> | undefined> {
    this.open("kv.get");
    checkKey(key, "kv.get");
    const answer = this.queuedAnswer([key]);
    let record: Record | undefined;
    if (answer !== undefined) record = this.queuedLive(key, (await answer).get(key), this.now(), "kv.get");
    else {
      const wait = this.filling === undefined && this.pending.size === 0 ? undefined : this.beforeRead([key]);
      if (wait !== undefined) await wait;
      record = this.committedLive(key, this.now(), "kv.get");
    }
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
    let version: number;
    if (ifVersion !== undefined) {
      const current = this.current(key, "kv.set");
      const actual = this.isLive(current, now) ? current.version : 0;
      if (actual !== ifVersion) throw versionConflict(key, ifVersion, actual, "kv.set");
      version = (current === undefined ? this.legacyFloor(key) : current.version) + 1;
    } else {
      version = this.lastVersion(key, "kv.set") + 1;
    }
    const expiresAt = ttlMs === undefined ? 0 : now + ttlMs;
    const bytes = this.encode(key, version, expiresAt, value, "kv.set");
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
    const now = this.now();
    const live = this.isLive(current, now);
    const actual = live ? current.version : 0;
    if (options.ifVersion !== undefined && actual !== options.ifVersion) {
      throw versionConflict(key, options.ifVersion, actual, "kv.delete");
    }
    if (current === undefined || current.expiresAt === TOMBSTONE) return false;
    // The record (live, or expired and not swept yet) becomes a tombstone with its version.
    const pruneAt = now + this.tombstoneRetentionMs;
    const bytes = this.encode(key, current.version, TOMBSTONE, pruneAt, "kv.delete");
    const batch = this.write(key, bytes, current.version, TOMBSTONE, pruneAt, true);
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
    const version = (current === undefined ? this.legacyFloor(key) : current.version) + 1;
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
    const answer = this.queuedAnswer(keys);
    const queued = answer === undefined ? undefined : await answer;
    if (queued === undefined) {
      const wait = this.beforeRead(keys);
      if (wait !== undefined) await wait;
    }
    const now = this.now();
    const values: (T | undefined)[] = new Array(keys.length);
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i] as string;
      values[i] = (
        queued?.has(key)
          ? this.queuedLive(key, queued.get(key), now, "kv.getMany")?.value
          : this.committedValue(key, now, "kv.getMany")
      ) as T | undefined;
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
    // Encode (and size-check) everything before the first write is queued, with each key's next
    // version; an item repeating an earlier item's key is encoded again below with the version
    // after that item's (the value's size does not depend on the version).
    const encoded: Buffer[] = new Array(items.length);
    const versions: number[] = new Array(items.length);
    for (let i = 0; i < items.length; i++) {
      const item = items[i] as KvSetManyItem;
      const version = this.lastVersion(item.key, "kv.setMany") + 1;
      versions[i] = version;
      const expiresAt = item.ttlMs === undefined ? 0 : now + item.ttlMs;
      encoded[i] = this.encode(item.key, version, expiresAt, item.value, "kv.setMany");
    }
    let batch: Batch | undefined;
    const results: KvWriteResult[] = new Array(items.length);
    for (let i = 0; i < items.length; i++) {
      const item = items[i] as KvSetManyItem;
      const expiresAt = item.ttlMs === undefined ? 0 : now + item.ttlMs;
      let version = versions[i] as number;
      const queued = i === 0 ? undefined : this.queuedVersion(item.key);
      if (queued !== undefined && queued >= version) {
        version = queued + 1;
        encoded[i] = this.encode(item.key, version, expiresAt, item.value, "kv.setMany");
      }
      results[i] = { version };
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
      let stopped = false;
      for (const indexKey of due) {
        const [at, key] = indexKey;
        const current = this.current(key, "kv.sweep");
        if (current !== undefined && current.expiresAt === TOMBSTONE) {
          // A tombstone due for pruning (not one written since with a later prune time).
          if (current.value === at) this.write(key, undefined, 0, TOMBSTONE, 0, true);
        } else if (current !== undefined && current.expiresAt === at) {
          // An expired record (a key rewritten since keeps living): its tombstone is kept for
          // the retention from the expiry on.
          if (removed >= limit) {
            stopped = true;
            break;
          }
          const pruneAt = at + this.tombstoneRetentionMs;
          if (pruneAt <= now) {
            this.write(key, undefined, 0, TOMBSTONE, 0, true);
          } else {
            const bytes = this.encode(key, current.version, TOMBSTONE, pruneAt, "kv.sweep");
            this.write(key, bytes, current.version, TOMBSTONE, pruneAt, true);
          }
          removed++;
        }
        batch.side.push(this.expiry, indexKey, REMOVE);
      }
      try {
        await batch.done;
      } catch (e) {
        throw await this.failure(e, "kv.sweep");
      }
      if (stopped || removed >= limit) return removed;
    }
  }

  async forgetPrefix(prefix: string): Promise<number> {
    this.open("kv.forget");
    checkKey(prefix, "kv.forget");
    // Whatever was queued before the call is committed first, so the range below holds it.
    this.flush();
    await this.latest?.settled();
    const now = this.now();
    let removed = 0;
    for (;;) {
      this.beforeDecision();
      const keys: string[] = [];
      for (const key of this.db.getKeys({ start: prefix })) {
        if (typeof key !== "string" || !key.startsWith(prefix)) break;
        keys.push(key);
        if (keys.length >= SWEEP_CHUNK) break;
      }
      if (keys.length === 0) return removed;
      const batch = this.batch();
      for (const key of keys) {
        if (this.isLive(this.current(key, "kv.forget"), now)) removed++;
        // The record or tombstone goes, not replaced by a tombstone: no version is kept. Its
        // entry in the expiry index, if any, is dropped by the sweep when due.
        this.write(key, undefined, 0, TOMBSTONE, 0, true);
      }
      try {
        await batch.done;
      } catch (e) {
        throw await this.failure(e, "kv.forget");
      }
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
