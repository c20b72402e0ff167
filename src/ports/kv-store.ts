/**
 * The state plane: small values by key with TTL, versions and compare-and-set (KV-1).
 *
 * Every adapter implements {@link KvStore} and passes `test/conformance/kv-store.suite.ts`, which
 * tests the "Behavior" statements below, selected by {@link KvCapabilities}. Keys are full keys:
 * the port knows nothing of tenants. The tenant namespace (`{tenant}:…`) is applied by one
 * helper, `tenantKvKey` in `domains/kv.ts`, from the tenant Kura resolved — never from input.
 * Every method validates keys by {@link kvKeyProblem} before touching the backend and throws
 * `KuraError`s only: backend client errors are translated inside the adapter.
 *
 * Values are anything MessagePack encodes (msgpackr): objects, arrays, strings, numbers, booleans,
 * null, `Uint8Array`/`Buffer`, `Date`. `undefined` cannot be stored (it means "missing"); a
 * `Map` reads back as a plain object. Encoded values larger than the store's `maxValueBytes`
 * fail with `KV_VALUE_TOO_LARGE`; values that compress well are stored LZ4-compressed.
 *
 * Versions (ADR 0025) are counted per key: a key's first write gives it version 1, and every later
 * write (set, incr, each item of setMany) its previous version + 1. Version `0` means "absent".
 * A delete, and an expiry, leave a *tombstone* holding the key's last version for
 * `tombstoneRetentionMs`; a key written again meanwhile continues above it, so a version read
 * before the delete or expiry never matches a later value (no ABA). Only a key that stayed absent
 * for longer than the retention may start again at 1. Tombstones are never seen: every read,
 * scan and condition treats the key as absent. Versions of different keys are unrelated, so
 * nothing one tenant writes changes the versions another sees.
 */
import type { PortCalls } from "./calls.js";

/** What a store can do. Tests and the engine branch on these, never on the adapter's name. */
export interface KvCapabilities {
  /** `scan` returns keys in UTF-8 byte order, each exactly once. Otherwise in any order, and a key may repeat. */
  readonly orderedScan: boolean;
  /** Expiry is enforced by the backend itself; `sweepExpired` has nothing to do. */
  readonly nativeTtl: boolean;
  /** Data outlives the process (and is shared by every process using the same backend). */
  readonly persistent: boolean;
  /**
   * The store is reached over a network (a server): its reads get the retry layer
   * (`layers/port-layers.ts`), and each command is limited by the adapter's own command timeout.
   */
  readonly remote: boolean;
}

export interface KvSetOptions {
  /** Time to live in milliseconds (≥ 1). Omitted: the key never expires (an earlier TTL is removed). */
  ttlMs?: number;
  /**
   * Compare-and-set: write only if the key's current version equals this one (`0` = only if
   * the key is absent). Otherwise fails with `KV_VERSION_CONFLICT` (ConditionFailed).
   */
  ifVersion?: number;
}

export interface KvEntry<T = unknown> {
  key: string;
  value: T;
  version: number;
  /** When the key expires (ms since epoch by the store's clock), or undefined if never. */
  expiresAt: number | undefined;
}

export interface KvWriteResult {
  version: number;
}

export interface KvIncrOptions {
  /** Safe integer to add (may be negative); default 1. */
  by?: number;
  /** TTL in ms applied only when the increment creates the key; an existing key keeps its expiry. */
  ttlMs?: number;
}

export interface KvScanOptions {
  /** Opaque cursor from a previous page of the same prefix. */
  cursor?: string;
  /** Page size hint, 1…1000, default 100 (see `scan` for how exact it is). */
  limit?: number;
  /** Leave `value` undefined in the items (saves reading values). */
  keysOnly?: boolean;
}

export interface KvScanPage<T = unknown> {
  items: KvEntry<T>[];
  /** Present when more keys may follow. */
  cursor: string | undefined;
}

export interface KvSetManyItem {
  key: string;
  value: unknown;
  ttlMs?: number;
}

/** A token bucket of `takeToken`: refilled at `perSecond` tokens a second, holding at most `burst`. */
export interface KvTokenBucket {
  perSecond: number;
  burst: number;
}

export interface KvStore {
  /** Adapter scheme: `memory`, `lmdb`, `redis`. */
  readonly scheme: string;
  readonly capabilities: KvCapabilities;
  /** Largest encoded value accepted, in bytes. */
  readonly maxValueBytes: number;
  /**
   * How long a deleted or expired key's tombstone (its last version) is kept, in ms, counted from
   * the delete or the expiry: a key written again within it continues above its last version.
   */
  readonly tombstoneRetentionMs: number;

  /**
   * Behavior: the value stored under `key`, or undefined when the key is absent or expired
   * (an expired key is never returned, whether or not it was swept yet).
   */
  get<T = unknown>(key: string): Promise<T | undefined>;

  /** Behavior: like `get`, with the key's version and expiry; undefined when absent or expired. */
  getEntry<T = unknown>(key: string): Promise<KvEntry<T> | undefined>;

  /**
   * Store `value` under `key`.
   *
   * Behavior:
   * - returns the new version: 1 for a key never written, else the key's previous version + 1 —
   *   also when the key was deleted or expired less than `tombstoneRetentionMs` ago (a key absent
   *   for longer may start again at 1);
   * - without `ttlMs` the key does not expire, even if it had a TTL before;
   * - `ifVersion` makes the write conditional and atomic: of concurrent writers holding the same
   *   version exactly one succeeds, the others fail with `KV_VERSION_CONFLICT` and change nothing;
   *   `ifVersion: 0` succeeds only if the key is absent (an expired key is absent);
   * - `undefined` fails with `INVALID_ARGUMENT`; an encoded value over `maxValueBytes` fails with
   *   `KV_VALUE_TOO_LARGE`; an invalid key fails with `KV_KEY_INVALID`; nothing is written then.
   */
  set(key: string, value: unknown, options?: KvSetOptions): Promise<KvWriteResult>;

  /**
   * Delete a key.
   *
   * Behavior: returns whether a (live) key was deleted; deleting an absent key succeeds with
   * `false`. With `ifVersion` the delete happens only if the version matches, else
   * `KV_VERSION_CONFLICT` (an absent key has version 0). The key's last version stays behind as a
   * tombstone for `tombstoneRetentionMs` (see `set`); no read, scan or condition sees it.
   */
  delete(key: string, options?: { ifVersion?: number }): Promise<boolean>;

  /**
   * Atomically add `by` to the integer stored under `key` (absent = 0) and return the result.
   *
   * Behavior: concurrent increments never lose an update; the key gets its next version (as with
   * `set`); a value
   * that is not a safe integer, or a result beyond ±(2^53−1), fails with `KV_NOT_A_COUNTER` and
   * changes nothing.
   */
  incr(key: string, options?: KvIncrOptions): Promise<{ value: number; version: number }>;

  /**
   * Values of many keys, in the order asked; undefined where absent or expired.
   *
   * Behavior: like `get` for each key; all keys are validated before any is read.
   */
  getMany<T = unknown>(keys: readonly string[]): Promise<(T | undefined)[]>;

  /**
   * Store many values; returns their new versions in order.
   *
   * Behavior: like `set` without `ifVersion` for each item, in order (an item repeating an
   * earlier item's key gets the version after that item's); all items are validated (key, value,
   * size) before any is written. The batch is not one transaction across backends: a failure
   * midway may leave earlier items written.
   */
  setMany(items: readonly KvSetManyItem[]): Promise<KvWriteResult[]>;

  /**
   * Keys starting with `prefix` (a string, possibly empty), a page at a time.
   *
   * Behavior:
   * - following cursors visits every key present for the whole scan; expired keys are left out;
   * - with `orderedScan` keys come in UTF-8 byte order, each once, and a page holds at most
   *   `limit` items; without it (Redis SCAN) the order is arbitrary, a key may appear twice and
   *   `limit` is a hint;
   * - a page may be empty only when it is the last; an unparseable cursor, or one from a scan of
   *   another prefix, fails with `CURSOR_INVALID`.
   */
  scan<T = unknown>(prefix: string, options?: KvScanOptions): Promise<KvScanPage<T>>;

  /**
   * Remove expired keys now (backends without native TTL keep them on disk until swept), each
   * leaving its tombstone, and drop tombstones older than `tombstoneRetentionMs`.
   *
   * Behavior: returns how many keys were removed (dropped tombstones are not counted); never
   * removes a live key, even one rewritten while the sweep runs, nor a tombstone younger than
   * the retention. With `nativeTtl` it returns 0 (the backend expires keys and tombstones).
   */
  sweepExpired(options?: { now?: number; limit?: number }): Promise<number>;

  /**
   * Forget every key under `prefix` (non-empty) as if it had never been written: values and
   * tombstones alike, so the store keeps neither a value nor a key name under it (erasing a
   * tenant, TEN-2).
   *
   * Behavior: returns how many live keys were removed; afterwards no read, scan or condition
   * finds a key under the prefix, and a key written there again starts at version 1. Writes to
   * the prefix racing with the call may survive it. An empty or invalid prefix fails with
   * `KV_KEY_INVALID`.
   */
  forgetPrefix(prefix: string): Promise<number>;

  /**
   * Takes one token from the bucket `name` (a namespace of its own, apart from the keys), for a
   * limit that holds across every node sharing the store (TEN-3 `max_requests_per_second`).
   * Stores shared over a network (Redis) implement it; an embedded store, whose nodes do not
   * share it, does not, and callers keep a bucket per process instead.
   *
   * Behavior: a bucket never used, or idle long enough to refill, holds `burst` tokens; tokens
   * come back at `perSecond` per second by the store's own clock, up to `burst`; of concurrent
   * takes from every client, no more succeed than the tokens there are (the take is atomic).
   * Returns `taken: true`, or `taken: false` with `retryAfterMs`, the wait until a token is
   * back (≥ 1). An invalid name fails with `KV_KEY_INVALID`. A bucket left alone expires.
   */
  takeToken?(name: string, bucket: KvTokenBucket): Promise<{ taken: boolean; retryAfterMs: number }>;

  /**
   * Release handles and connections.
   * Behavior: idempotent; afterwards every operation fails with `CLOSED` (not retryable).
   */
  close(): Promise<void>;
}

/**
 * What a layer may do with each KV method (`ports/calls.ts`). Reads may be repeated. No write
 * is: each gives the key its next version, so a `set` repeated after an attempt that applied
 * counts twice (and one with `ifVersion` would then fail as a conflict), an `incr` adds twice, a
 * `delete` answers false the second time, and `sweepExpired` counts what it removed. A remote
 * write that times out fails with `OPERATION_TIMEOUT` and `context.outcome: "unknown"`: it is
 * one atomic script, so it either applied whole or not at all, and a read tells which.
 */
export const KV_CALLS: PortCalls<KvStore> = Object.freeze({
  get: "read",
  getEntry: "read",
  getMany: "read",
  scan: "read",
  set: "once",
  delete: "once",
  incr: "once",
  setMany: "once",
  sweepExpired: "once",
});

/** Build-time description of an adapter (see STYLE.md): registers nothing on import. */
export interface KvStoreDefinition<Options> {
  readonly scheme: string;
  /** Parses and validates the adapter's options; throws `CONFIG_INVALID` with every problem. */
  parseOptions(raw: unknown): Options;
  readonly capabilities: KvCapabilities;
  create(options: Options, deps?: KvStoreDeps): Promise<KvStore>;
}

export interface KvStoreDeps {
  /** Durability of acknowledged writes (DUR-1); lmdb syncs each commit only with `fsync`. */
  durability?: "os" | "fsync";
  /** Clock for expiry (ms since epoch); tests inject one. Redis expires by its own clock. */
  now?: () => number;
  /** Where an adapter reports a problem that does not stop it (e.g. Redis `maxmemory-policy`). */
  warn?: (message: string, context?: Readonly<Record<string, unknown>>) => void;
}

/** Longest key in UTF-8 bytes: under LMDB's 1,978-byte key limit with room for Redis prefixes. */
export const MAX_KV_KEY_BYTES = 1024;
/** Default largest encoded value (1 MiB): the KV plane holds state, not bodies. */
export const DEFAULT_MAX_VALUE_BYTES = 1024 * 1024;
/** Default tombstone retention (7 days; `retention.kv_tombstone_days`). */
export const DEFAULT_TOMBSTONE_RETENTION_MS = 7 * 86_400_000;

// C0 controls, DEL and C1 controls.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const KV_CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
const PRINTABLE_ASCII = /^[\x20-\x7e]{1,1024}$/;

/**
 * The KV key rule: a non-empty string of well-formed UTF-8, at most {@link MAX_KV_KEY_BYTES}
 * bytes, without NUL or other control characters. Any other character (`:`, `/`, `*`, spaces)
 * is allowed. Returns why a key breaks the rule, or undefined when it is valid.
 */
export function kvKeyProblem(key: unknown): string | undefined {
  // Fast path for the common case: printable ASCII is well-formed and one byte per character.
  if (typeof key === "string" && PRINTABLE_ASCII.test(key)) return undefined;
  if (typeof key !== "string") return "key must be a string";
  if (key.length === 0) return "key must not be empty";
  if (!key.isWellFormed()) return "key must be valid UTF-8 (no lone surrogates)";
  if (Buffer.byteLength(key, "utf8") > MAX_KV_KEY_BYTES)
    return `key must be at most ${MAX_KV_KEY_BYTES} bytes of UTF-8`;
  if (KV_CONTROL.test(key)) return "key must not contain NUL or control characters";
  return undefined;
}
