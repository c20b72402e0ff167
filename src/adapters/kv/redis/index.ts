/**
 * `redis`: the shared KV store for several Kura nodes (ioredis). Every key is
 * `{key_prefix}{key}`; TTLs are Redis's own (`PX`), so nothing needs sweeping; scans use
 * `SCAN … MATCH` (never `KEYS`); writes, deletes, compare-and-set and increment are Lua scripts
 * (run with EVALSHA, EVAL on a cold script cache), atomic against every client. The writes of
 * one turn of the event loop go to Redis as one script call, and its reads as one MGET
 * (ADR 0023). Versions are per key; a deleted or expired key's version outlives it in a floor
 * key that expires after the tombstone retention (scripts.ts, ADR 0025). Kura's own keys
 * (floors, the earlier release's counters) are `{key_prefix}\0…`, which no Kura key can be.
 *
 * At start it reads `CONFIG GET maxmemory-policy` and warns unless it is `noeviction`: any
 * eviction policy may drop drafts and CAS state under memory pressure (KV-1).
 *
 * Over 450 lines and whole: every operation joins the same per-turn write and read groups; the Lua
 * scripts are in `scripts.ts`.
 */
import type { Redis as RedisClient } from "ioredis";
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
  type KvTokenBucket,
  type KvWriteResult,
} from "../../../ports/kv-store.js";
import {
  checkIncrBy,
  checkIncrTtl,
  checkKey,
  checkPrefix,
  checkSet,
  checkSetMany,
  checkVersion,
  closedError,
  compressedFrame,
  corrupt,
  decodeFramed,
  decodeScanCursor,
  encodeScanCursor,
  integerFrame,
  NO_OPTIONS,
  notACounter,
  packValue,
  plainFrame,
  scanLimit,
  tombstoneRetentionOption,
  versionConflict,
  versionScope,
} from "../common.js";
import { DELETE, GET_WITH_TTL, INCR, TAKE_TOKEN, WRITE } from "./scripts.js";

export const redisKvOptionsSchema = z
  .object({
    /** `redis://[:password@]host:port/db` or `rediss://…` (the password is a secret). */
    url: z.string().regex(/^rediss?:\/\//, "must be a redis:// or rediss:// URL"),
    /** Prefix of every key Kura writes; default `kura:`. */
    key_prefix: z.string().default("kura:"),
    /** Largest encoded value in bytes; default 1 MiB. */
    max_value_bytes: z.number().int().min(1).default(DEFAULT_MAX_VALUE_BYTES),
    /** Time to establish the connection, in ms; default 5000. */
    connect_timeout_ms: z.number().int().min(1).default(5000),
    /**
     * Time one command may take before it fails with `OPERATION_TIMEOUT`, in ms; default 5000.
     * Redis has no server-side limit: a write given up on may still run, so its failure says
     * `outcome: "unknown"` (each write is one atomic script: applied whole or not at all).
     */
    command_timeout_ms: z.number().int().min(1).default(5000),
    /** How long a deleted or expired key's last version is kept, in ms; default 7 days. */
    tombstone_retention_ms: tombstoneRetentionOption,
  })
  .strict();
export type RedisKvOptions = z.infer<typeof redisKvOptionsSchema>;

const CAPABILITIES: KvCapabilities = Object.freeze({
  orderedScan: false,
  nativeTtl: true,
  persistent: true,
  remote: true,
});

/** Items of one `setMany` script call: bounds how long one call blocks the server. */
const WRITE_GROUP_ITEMS = 500;
/** Frame bytes of one `setMany` script call. */
const WRITE_GROUP_BYTES = 8 * 1024 * 1024;
/**
 * Calls of one turn (`set`s, `get`s) sent as one command. A few per command amortize the cost
 * of a command on both ends; several commands in flight keep the client and the server busy at
 * the same time. On the bench (16 concurrent callers) 4 beat 1, 2, 8 and "all of the turn".
 */
const TURN_GROUP = 4;
const HEADER = 16;

type Script = (...args: (string | Buffer | number)[]) => Promise<unknown>;

interface ScriptedClient {
  kvWrite: Script;
  kvDelete: Script;
  kvIncr: Script;
  kvGetWithTtlBuffer: Script;
  kvTakeToken: Script;
}

/** Escape glob characters of `SCAN … MATCH`. */
export function globEscape(text: string): string {
  return text.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}

/**
 * What a write sends: MessagePack bytes alone (`bare`) when the stored frame is plain MessagePack
 * — the script adds the `m` flag of a plain item, which saves copying the bytes — else the frame.
 */
type Payload = [bytes: Buffer, bare: boolean];

function payload(key: string, value: unknown, maxBytes: number, operation: string): Payload {
  const integer = integerFrame(value);
  if (integer !== undefined) return [integer, false];
  const packed = packValue(key, value, maxBytes, operation);
  const compressed = compressedFrame(packed);
  return compressed === undefined ? [packed, true] : [compressed, false];
}

/** A reply the callers of a group wait for: settled when the group's one command answers. */
class Group<T> {
  readonly done: Promise<T>;
  resolve!: (reply: T) => void;
  reject!: (e: unknown) => void;

  constructor() {
    this.done = new Promise<T>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
    // Every caller awaits `done`; this keeps a failed group from an unhandled rejection.
    this.done.catch(() => undefined);
  }
}

/** Writes sent as one `WRITE` script call (see scripts.ts): the `set`s of one turn, or a `setMany`. */
class WriteGroup extends Group<number[]> {
  /** During an upgrade, the earlier release's scope counters the items use (see scripts.ts). */
  readonly counters: string[] = [];
  readonly keys: string[] = [];
  readonly frames: Buffer[] = [];
  /** Items that are not plain: 1-based index, spec, … */
  readonly specials: (number | string)[] = [];
  bytes = 0;

  /** Queue one write (`counter`: its scope's, during an upgrade); returns its index in the reply. */
  add(
    key: string,
    counter: string | undefined,
    [bytes, bare]: Payload,
    ttlMs: number | undefined,
    ifVersion: number | undefined,
  ): number {
    let c = 0;
    if (counter !== undefined) {
      c = this.counters.indexOf(counter);
      if (c < 0) c = this.counters.push(counter) - 1;
    }
    const i = this.keys.push(key) - 1;
    let frame = bytes;
    if (c !== 0 || ttlMs !== undefined || ifVersion !== undefined || !bare) {
      this.specials.push(
        i + 1,
        `${c + 1},${ttlMs === undefined ? "" : ttlMs},${ifVersion === undefined ? "" : ifVersion}`,
      );
      if (bare) frame = plainFrame(bytes);
    }
    this.frames.push(frame);
    this.bytes += frame.length;
    return i;
  }

  get full(): boolean {
    return this.keys.length >= WRITE_GROUP_ITEMS || this.bytes >= WRITE_GROUP_BYTES;
  }
}

/** Reads (`get`, `getMany`) of one turn, sent as one MGET. */
class ReadGroup extends Group<(Buffer | null)[]> {
  readonly keys: string[] = [];
}

class RedisKvStore implements KvStore {
  readonly scheme = "redis";
  readonly capabilities = CAPABILITIES;
  readonly maxValueBytes: number;
  readonly tombstoneRetentionMs: number;
  private readonly prefix: string;
  /** UTF-8 bytes of the prefix, as the scripts count them. */
  private readonly prefixBytes: number;
  /** `{key_prefix}\0floor\0`: a key's floor is this followed by the key (see scripts.ts). */
  private readonly floorPrefix: string;
  /** `{key_prefix}\0bucket\0`: token buckets of `takeToken`, apart from every key. */
  private readonly bucketPrefix: string;
  /**
   * The store-wide version counter of still earlier releases; the scope counters of the release
   * before this one are `{versionKey}\u0000{scope}`. Read only during an upgrade (see scripts.ts).
   */
  private readonly versionKey: string;
  /** Until when (ms) the earlier release's counters are read (0: no longer). */
  private legacyUntil: number;
  private readonly scripts: ScriptedClient;
  private closed = false;
  /**
   * The group filling during this turn of the event loop: at most one is open, and opening one
   * sends the other, so commands reach Redis in the order they were called (ADR 0023). Any
   * other command sends the open group first.
   */
  private writes: WriteGroup | undefined;
  private reads: ReadGroup | undefined;
  private readonly sendNow = () => this.send();
  /** The counter of the last scope used: most calls in a row write under the same tenant. */
  private lastScope = "\u0000";
  private lastCounter = "";
  /** The script arguments every write starts with: floor prefix, prefix bytes, retention. */
  private readonly head: [string, number, number];

  constructor(
    private readonly client: RedisClient,
    options: RedisKvOptions,
    upgradeUntil: number,
  ) {
    this.maxValueBytes = options.max_value_bytes;
    this.tombstoneRetentionMs = options.tombstone_retention_ms;
    this.prefix = options.key_prefix;
    this.prefixBytes = Buffer.byteLength(options.key_prefix, "utf8");
    this.floorPrefix = `${options.key_prefix}\u0000floor\u0000`;
    this.bucketPrefix = `${options.key_prefix}\u0000bucket\u0000`;
    this.versionKey = `${options.key_prefix}\u0000version`;
    this.legacyUntil = upgradeUntil;
    this.head = [this.floorPrefix, this.prefixBytes, this.tombstoneRetentionMs];
    this.scripts = client as unknown as ScriptedClient;
  }

  /** Whether a store written by an earlier release is still upgrading (see scripts.ts). */
  private upgrading(): boolean {
    if (this.legacyUntil === 0) return false;
    if (Date.now() < this.legacyUntil) return true;
    this.legacyUntil = 0;
    return false;
  }

  /** The earlier release's version counter of `key`'s scope, during an upgrade (see `versionScope`). */
  private counterOf(key: string): string | undefined {
    if (!this.upgrading()) return undefined;
    const colon = key.indexOf(":");
    if (colon === this.lastScope.length - 1 && key.startsWith(this.lastScope)) return this.lastCounter;
    this.lastScope = versionScope(key);
    this.lastCounter = `${this.versionKey}\u0000${this.lastScope}`;
    return this.lastCounter;
  }

  private open(operation: string): void {
    if (this.closed) throw closedError(operation);
  }

  /** The write group of this turn (sending an open read group first). */
  private writeGroup(): WriteGroup {
    if (this.writes !== undefined) return this.writes;
    if (this.reads !== undefined) this.sendReads();
    this.writes = new WriteGroup();
    process.nextTick(this.sendNow);
    return this.writes;
  }

  /** The read group of this turn (sending an open write group first). */
  private readGroup(): ReadGroup {
    if (this.reads !== undefined) return this.reads;
    if (this.writes !== undefined) this.sendWrites();
    this.reads = new ReadGroup();
    process.nextTick(this.sendNow);
    return this.reads;
  }

  /** Send the open group, if any: before any other command, and when the turn ends. */
  private send(): void {
    if (this.writes !== undefined) this.sendWrites();
    if (this.reads !== undefined) this.sendReads();
  }

  private sendWrites(): void {
    const group = this.writes as WriteGroup;
    this.writes = undefined;
    this.write(group);
  }

  private write(group: WriteGroup): void {
    const { counters, keys, specials, frames } = group;
    const m = counters.length;
    const n = keys.length;
    const legacy = m === 0 ? 0 : 1 + m;
    const all: (string | Buffer | number)[] = new Array(6 + n + legacy + specials.length + n);
    let i = 0;
    all[i++] = n + legacy;
    for (const key of keys) all[i++] = key;
    if (m > 0) {
      all[i++] = this.versionKey;
      for (const counter of counters) all[i++] = counter;
    }
    for (const arg of this.head) all[i++] = arg;
    all[i++] = m;
    all[i++] = specials.length / 2;
    for (const special of specials) all[i++] = special;
    for (const frame of frames) all[i++] = frame;
    this.scripts.kvWrite(...all).then((reply) => group.resolve(reply as number[]), group.reject);
  }

  private sendReads(): void {
    const group = this.reads as ReadGroup;
    this.reads = undefined;
    this.client.mgetBuffer(...group.keys).then(group.resolve, group.reject);
  }

  private async call<T>(operation: string, run: () => Promise<T>, key?: string): Promise<T> {
    this.send();
    try {
      return await run();
    } catch (e) {
      throw redisError(e, operation, key);
    }
  }

  private parse(key: string, stored: Buffer, operation: string): { version: number; value: unknown } {
    if (stored.length <= HEADER) throw corrupt(key, new Error("value shorter than its header"), operation);
    const version = Number.parseInt(stored.toString("latin1", 0, HEADER), 16);
    if (!Number.isSafeInteger(version)) throw corrupt(key, new Error("bad version header"), operation);
    return { version, value: decodeFramed(key, stored, operation, HEADER) };
  }

  /** The value alone (the version header is skipped, not parsed). */
  private value(key: string, stored: Buffer, operation: string): unknown {
    if (stored.length <= HEADER) throw corrupt(key, new Error("value shorter than its header"), operation);
    return decodeFramed(key, stored, operation, HEADER);
  }

  async get<T>(key: string): Promise<T | undefined> {
    this.open("kv.get");
    checkKey(key, "kv.get");
    const group = this.readGroup();
    const i = group.keys.push(this.prefix + key) - 1;
    if (group.keys.length >= TURN_GROUP) this.sendReads();
    let stored: Buffer | null | undefined;
    try {
      stored = (await group.done)[i];
    } catch (e) {
      throw redisError(e, "kv.get", key);
    }
    return stored == null ? undefined : (this.value(key, stored, "kv.get") as T);
  }

  async getEntry<T>(key: string): Promise<KvEntry<T> | undefined> {
    this.open("kv.get");
    checkKey(key, "kv.get");
    const [stored, ttl] = (await this.call(
      "kv.get",
      () => this.scripts.kvGetWithTtlBuffer(1, this.prefix + key),
      key,
    )) as [Buffer | null, number];
    if (stored === null) return undefined;
    const { version, value } = this.parse(key, stored, "kv.get");
    return { key, value: value as T, version, expiresAt: ttl >= 0 ? Date.now() + ttl : undefined };
  }

  async set(key: string, value: unknown, options: KvSetOptions = NO_OPTIONS): Promise<KvWriteResult> {
    this.open("kv.set");
    checkSet(key, value, options, "kv.set");
    const frame = payload(key, value, this.maxValueBytes, "kv.set");
    const group = this.writeGroup();
    const i = group.add(this.prefix + key, this.counterOf(key), frame, options.ttlMs, options.ifVersion);
    if (group.keys.length >= TURN_GROUP || group.full) this.sendWrites();
    let version: number;
    try {
      version = (await group.done)[i] as number;
    } catch (e) {
      throw redisError(e, "kv.set", key);
    }
    if (version < 0) throw versionConflict(key, options.ifVersion ?? 0, -1 - version, "kv.set");
    return { version };
  }

  async delete(key: string, options: { ifVersion?: number } = NO_OPTIONS): Promise<boolean> {
    this.open("kv.delete");
    checkKey(key, "kv.delete");
    checkVersion(options.ifVersion, "kv.delete", key);
    const expected = options.ifVersion;
    const [ok, result] = (await this.call(
      "kv.delete",
      () => this.scripts.kvDelete(this.prefix + key, ...this.head, expected === undefined ? "" : expected),
      key,
    )) as [number, number];
    if (ok !== 1) throw versionConflict(key, expected ?? 0, result, "kv.delete");
    return result > 0;
  }

  async forgetPrefix(prefix: string): Promise<number> {
    this.open("kv.forget");
    checkKey(prefix, "kv.forget");
    let removed = 0;
    // The values first (each removal counted), then the floors that keep deleted keys' versions.
    for (const [pattern, counted] of [
      [`${globEscape(this.prefix + prefix)}*`, true],
      [`${globEscape(this.floorPrefix + prefix)}*`, false],
    ] as const) {
      let position = "0";
      do {
        const [next, keys] = await this.call("kv.forget", () =>
          this.client.scan(position, "MATCH", pattern, "COUNT", 1000),
        );
        position = next;
        // A key of Kura's own (`{key_prefix}\0…`) never matches a value pattern: prefixes hold no NUL.
        if (keys.length > 0) {
          const n = await this.call("kv.forget", () => this.client.del(...keys));
          if (counted) removed += n;
        }
      } while (position !== "0");
    }
    return removed;
  }

  async takeToken(name: string, bucket: KvTokenBucket): Promise<{ taken: boolean; retryAfterMs: number }> {
    this.open("kv.takeToken");
    checkKey(name, "kv.takeToken");
    const { perSecond, burst } = bucket;
    if (!(perSecond > 0) || !(burst >= 1) || !Number.isFinite(perSecond) || !Number.isFinite(burst)) {
      throw new KuraError("INVALID_ARGUMENT", "a token bucket needs perSecond > 0 and burst ≥ 1", {
        operation: "kv.takeToken",
      });
    }
    const [taken, wait] = (await this.call(
      "kv.takeToken",
      () => this.scripts.kvTakeToken(this.bucketPrefix + name, String(perSecond), String(burst)),
      name,
    )) as [number, number];
    return { taken: taken === 1, retryAfterMs: wait };
  }

  async incr(key: string, options: KvIncrOptions = NO_OPTIONS): Promise<{ value: number; version: number }> {
    this.open("kv.incr");
    checkKey(key, "kv.incr");
    const by = checkIncrBy(options.by, "kv.incr", key);
    checkIncrTtl(options.ttlMs, "kv.incr", key);
    const counter = this.counterOf(key);
    const keys = counter === undefined ? [this.prefix + key] : [this.prefix + key, this.versionKey, counter];
    const reply = (await this.call(
      "kv.incr",
      () =>
        this.scripts.kvIncr(
          keys.length,
          ...keys,
          ...this.head,
          String(by),
          options.ttlMs === undefined ? "" : String(options.ttlMs),
        ),
      key,
    )) as [number, number | string, string?];
    if (reply[0] !== 1) {
      throw notACounter(
        key,
        reply[1] === "range"
          ? "the result would leave the safe integer range"
          : "the stored value is not a safe integer",
      );
    }
    return { value: Number(reply[2]), version: reply[1] as number };
  }

  async getMany<T>(keys: readonly string[]): Promise<(T | undefined)[]> {
    this.open("kv.getMany");
    const full: string[] = new Array(keys.length);
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i];
      checkKey(key, "kv.getMany");
      full[i] = this.prefix + key;
    }
    if (keys.length === 0) return [];
    // A batch is one MGET of its own (after the open group): concurrent batches stay pipelined.
    this.send();
    let stored: (Buffer | null)[];
    try {
      stored = await this.client.mgetBuffer(...full);
    } catch (e) {
      throw redisError(e, "kv.getMany");
    }
    const values: (T | undefined)[] = new Array(keys.length);
    for (let i = 0; i < keys.length; i++) {
      const s = stored[i];
      values[i] = s == null ? undefined : (this.value(keys[i] as string, s, "kv.getMany") as T);
    }
    return values;
  }

  async setMany(items: readonly KvSetManyItem[]): Promise<KvWriteResult[]> {
    this.open("kv.setMany");
    checkSetMany(items, "kv.setMany");
    const frames: Payload[] = new Array(items.length);
    for (let i = 0; i < items.length; i++) {
      const item = items[i] as KvSetManyItem;
      frames[i] = payload(item.key, item.value, this.maxValueBytes, "kv.setMany");
    }
    // A batch is one script call of its own (a chunk of it, for a long one), sent after the
    // open group: concurrent batches stay pipelined.
    this.send();
    const segments: { group: WriteGroup; from: number; at: number }[] = [];
    let group: WriteGroup | undefined;
    for (let i = 0; i < items.length; i++) {
      if (group === undefined || group.full) {
        if (group !== undefined) this.write(group);
        group = new WriteGroup();
        segments.push({ group, from: i, at: 0 });
      }
      const item = items[i] as KvSetManyItem;
      group.add(
        this.prefix + item.key,
        this.counterOf(item.key),
        frames[i] as Payload,
        item.ttlMs,
        undefined,
      );
    }
    if (group !== undefined) this.write(group);
    const results: KvWriteResult[] = new Array(items.length);
    for (let s = 0; s < segments.length; s++) {
      const { group: g, from, at } = segments[s] as { group: WriteGroup; from: number; at: number };
      const to = segments[s + 1]?.from ?? items.length;
      let reply: number[];
      try {
        reply = await g.done;
      } catch (e) {
        throw redisError(e, "kv.setMany");
      }
      for (let i = from; i < to; i++) results[i] = { version: reply[at + i - from] as number };
    }
    return results;
  }

  async scan<T>(prefix: string, options: KvScanOptions = {}): Promise<KvScanPage<T>> {
    this.open("kv.scan");
    checkPrefix(prefix, "kv.scan");
    const limit = scanLimit(options);
    let position = decodeScanCursor(this.scheme, prefix, options.cursor) ?? "0";
    if (!/^\d+$/.test(position)) {
      throw new KuraError("CURSOR_INVALID", "the scan cursor was not made by this store", {
        operation: "kv.scan",
      });
    }
    const pattern = `${globEscape(this.prefix + prefix)}*`;
    const items: KvEntry<T>[] = [];
    // SCAN may return empty batches mid-way, and keys may vanish before they are read: keep
    // going until something is found or the scan ends, so only the last page can be empty.
    do {
      const [next, batch] = await this.call("kv.scan", () =>
        this.client.scan(position, "MATCH", pattern, "COUNT", Math.max(limit, 100)),
      );
      position = next;
      // Kura's own keys (`{key_prefix}\0…`) match an empty prefix: they are not entries.
      const keys = batch.filter((k) => k.charCodeAt(this.prefix.length) !== 0);
      if (keys.length > 0) items.push(...(await this.fetch<T>(keys, options.keysOnly === true)));
    } while (items.length === 0 && position !== "0");
    return { items, cursor: position === "0" ? undefined : encodeScanCursor(this.scheme, prefix, position) };
  }

  /** Values, versions and TTLs of full keys in one round trip; keys gone since SCAN are left out. */
  private async fetch<T>(keys: string[], keysOnly: boolean): Promise<KvEntry<T>[]> {
    const reply = (await this.call("kv.scan", () =>
      this.scripts.kvGetWithTtlBuffer(keys.length, ...keys),
    )) as (Buffer | number | null)[];
    const now = Date.now();
    const items: KvEntry<T>[] = [];
    keys.forEach((full, i) => {
      const stored = reply[2 * i] as Buffer | null;
      const ttl = reply[2 * i + 1] as number;
      if (stored === null) return;
      const key = full.slice(this.prefix.length);
      const { version, value } = this.parse(key, stored, "kv.scan");
      items.push({
        key,
        value: (keysOnly ? undefined : value) as T,
        version,
        expiresAt: ttl >= 0 ? now + ttl : undefined,
      });
    });
    return items;
  }

  async sweepExpired(): Promise<number> {
    this.open("kv.sweep");
    return 0;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.send();
    await this.client.quit().catch(() => this.client.disconnect());
  }
}

const TRANSIENT_REPLY = /^(LOADING|BUSY|TRYAGAIN|CLUSTERDOWN|MASTERDOWN|OOM|READONLY)\b/;

/** Operations that write: after a timeout or a lost connection their outcome is unknown. */
const WRITES = new Set(["kv.set", "kv.setMany", "kv.incr", "kv.delete"]);

function redisError(e: unknown, operation: string, key?: string): KuraError {
  if (e instanceof KuraError) return e;
  const message = e instanceof Error ? e.message : String(e);
  const name = e instanceof Error ? e.name : "";
  const context = key === undefined ? {} : { key };
  // ioredis's `commandTimeout`: the client stopped waiting; the command may still run.
  if (message === "Command timed out") {
    return new KuraError("OPERATION_TIMEOUT", `${operation} timed out: Redis did not answer in time`, {
      operation,
      cause: e,
      context: { ...context, side: "client", ...(WRITES.has(operation) ? { outcome: "unknown" } : {}) },
    });
  }
  if (name === "ReplyError" && !TRANSIENT_REPLY.test(message)) {
    return new KuraError("KV_BACKEND_ERROR", `redis: ${message}`, { operation, context, cause: e });
  }
  return new KuraError("KV_UNAVAILABLE", `redis unavailable: ${message}`, { operation, context, cause: e });
}

export const redisKvStore: KvStoreDefinition<RedisKvOptions> = {
  scheme: "redis",
  capabilities: CAPABILITIES,
  parseOptions: (raw) => parseOptions(redisKvOptionsSchema, raw, "kv"),
  create: async (options, deps = {}) => {
    const { Redis } = await import("ioredis");
    const client = new Redis(options.url, {
      lazyConnect: true,
      connectTimeout: options.connect_timeout_ms,
      commandTimeout: options.command_timeout_ms,
      maxRetriesPerRequest: 2,
      // A command that was sent when the connection dropped may have run: it fails (its outcome
      // unknown) instead of being sent again after the reconnect, which would apply a write
      // twice. Commands that were never sent are still queued and sent once connected.
      autoResendUnfulfilledCommands: false,
      retryStrategy: (times) => Math.min(times * 200, 2000),
      scripts: {
        kvWrite: { lua: WRITE },
        kvDelete: { numberOfKeys: 1, lua: DELETE },
        kvIncr: { lua: INCR },
        kvGetWithTtl: { lua: GET_WITH_TTL },
        kvTakeToken: { numberOfKeys: 1, lua: TAKE_TOKEN },
      },
    });
    // Connection problems surface as failed commands (KV_UNAVAILABLE); the event is only noise.
    client.on("error", () => undefined);
    try {
      await client.connect();
    } catch (e) {
      client.disconnect();
      throw redisError(e, "kv.open");
    }
    await checkEvictionPolicy(client, deps.warn);
    let upgradeUntil: number;
    try {
      upgradeUntil = await upgradeWindow(client, options);
    } catch (e) {
      client.disconnect();
      throw redisError(e, "kv.open");
    }
    return new RedisKvStore(client, options, upgradeUntil);
  },
};

/**
 * When the upgrade from per-scope counters ends (ADR 0025): one tombstone retention after the
 * first start of a release with per-key versions against this store, recorded in
 * `{key_prefix}\0per-key-versions-since` by whichever node started first. Until then a key with
 * neither value nor floor counts on from its scope's earlier counter, if it has one; after it
 * those counters are no longer read (they are left in place: one small key per tenant).
 */
async function upgradeWindow(client: RedisClient, options: RedisKvOptions): Promise<number> {
  const mark = `${options.key_prefix}\u0000per-key-versions-since`;
  await client.set(mark, String(Date.now()), "NX");
  const since = Number(await client.get(mark));
  const until = (Number.isSafeInteger(since) ? since : Date.now()) + options.tombstone_retention_ms;
  return Date.now() < until ? until : 0;
}

/** Warn unless `maxmemory-policy` is `noeviction` (eviction would drop drafts and CAS state). */
async function checkEvictionPolicy(client: RedisClient, warn: KvStoreDeps["warn"]): Promise<void> {
  if (!warn) return;
  try {
    const reply = (await client.config("GET", "maxmemory-policy")) as unknown as string[];
    const policy = reply[1];
    if (policy !== "noeviction") {
      warn(
        `redis maxmemory-policy is ${JSON.stringify(policy)}, not "noeviction": under memory pressure Redis may evict sessions, drafts and compare-and-set state`,
        { policy },
      );
    }
  } catch (e) {
    warn("could not read redis maxmemory-policy (CONFIG GET refused); make sure it is noeviction", {
      error: e instanceof Error ? e.message : String(e),
    });
  }
}
