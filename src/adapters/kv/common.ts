/**
 * Helpers every KV adapter shares: argument checks, the value codec (MessagePack, LZ4 where it
 * pays), cursors, and the errors of the port's contract. Adapters import this file, the port
 * and `core/`, never each other.
 */
import { createHash } from "node:crypto";
import { Packr } from "msgpackr";
import { z } from "zod";
import { decodeCursor, encodeCursor } from "../../core/cursor.js";
import { KuraError } from "../../core/errors.js";
import { closedError as closed } from "../../core/lifecycle.js";
import { assertStorableValue, MAX_VALUE_DEPTH, MAX_VALUE_NODES } from "../../core/values.js";
import type { KvScanOptions, KvSetManyItem, KvSetOptions } from "../../ports/kv-store.js";
import { DEFAULT_TOMBSTONE_RETENTION_MS, kvKeyProblem } from "../../ports/kv-store.js";
import { lz4Compress, lz4Decompress } from "./lz4.js";

export const DEFAULT_SCAN_LIMIT = 100;
export const MAX_SCAN_LIMIT = 1000;
/** Longest TTL accepted (about 10 years): keeps `now + ttl` far inside the safe integer range. */
export const MAX_TTL_MS = 10 * 366 * 86_400_000;
/** Values smaller than this are never compressed: LZ4 cannot win much on them. */
export const COMPRESS_MIN_BYTES = 512;

/**
 * One MessagePack configuration for every adapter, so a value reads back the same whatever the
 * backend (records off: no shared structure table to keep beside the data).
 */
export const packr = new Packr({ useRecords: false });

export function checkKey(key: unknown, operation: string): asserts key is string {
  const problem = kvKeyProblem(key);
  if (problem !== undefined) {
    throw new KuraError("KV_KEY_INVALID", `invalid KV key: ${problem}`, {
      operation,
      context: { key: typeof key === "string" ? key.slice(0, 200) : typeof key },
    });
  }
}

/** A prefix may be empty; otherwise the key rule applies (minus emptiness). */
export function checkPrefix(prefix: unknown, operation: string): asserts prefix is string {
  if (prefix === "") return;
  checkKey(prefix, operation);
}

function checkTtl(ttlMs: unknown, operation: string, key: string): void {
  if (ttlMs === undefined) return;
  if (typeof ttlMs !== "number" || !Number.isSafeInteger(ttlMs) || ttlMs < 1 || ttlMs > MAX_TTL_MS) {
    throw new KuraError("INVALID_ARGUMENT", `ttlMs must be an integer from 1 to ${MAX_TTL_MS}`, {
      operation,
      context: { key, ttlMs: String(ttlMs) },
    });
  }
}

export function checkVersion(version: unknown, operation: string, key: string): void {
  if (version === undefined) return;
  if (typeof version !== "number" || !Number.isSafeInteger(version) || version < 0) {
    throw new KuraError("INVALID_ARGUMENT", "ifVersion must be a non-negative integer", {
      operation,
      context: { key, ifVersion: String(version) },
    });
  }
}

export function checkSet(
  key: unknown,
  value: unknown,
  options: KvSetOptions,
  operation: string,
): asserts key is string {
  checkKey(key, operation);
  if (value === undefined) {
    throw new KuraError(
      "INVALID_ARGUMENT",
      "undefined cannot be stored (it means a missing key); use delete",
      {
        operation,
        context: { key },
      },
    );
  }
  if (options !== NO_OPTIONS) {
    checkTtl(options.ttlMs, operation, key);
    checkVersion(options.ifVersion, operation, key);
  }
  checkValue(value, operation);
}

/** The options of a call made without any: adapters default to it, so no object is made per call. */
export const NO_OPTIONS: KvSetOptions = Object.freeze({});

let nodesLeft = 0;

/**
 * Whether `value` plainly keeps the stored-value rule of `core/values.ts` (well-formed strings,
 * depth and node budget), by a recursive walk that allocates nothing. Conservative: `false` only
 * means "let the full check decide" (it is also the answer for a `Map`). Recursion stops at
 * {@link MAX_VALUE_DEPTH}, so hostile depth cannot overflow the stack here either.
 */
function plainlyStorable(v: unknown, depth: number): boolean {
  if (--nodesLeft < 0) return false;
  if (typeof v === "string") return v.isWellFormed();
  if (v === null || typeof v !== "object" || ArrayBuffer.isView(v) || v instanceof Date) return true;
  if (depth > MAX_VALUE_DEPTH) return false;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) if (!plainlyStorable(v[i], depth + 1)) return false;
    return true;
  }
  if (v instanceof Map) return false;
  // for…in also visits inherited enumerable keys: a superset of what the full check visits.
  for (const k in v) {
    if (!k.isWellFormed() || !plainlyStorable((v as Record<string, unknown>)[k], depth + 1)) return false;
  }
  return true;
}

/** `assertStorableValue` for KV values, with a fast path for the values that plainly pass. */
export function checkValue(value: unknown, operation: string): void {
  nodesLeft = MAX_VALUE_NODES;
  if (!plainlyStorable(value, 1)) assertStorableValue(value, "the KV value", operation);
}

export function checkSetMany(items: readonly KvSetManyItem[], operation: string): void {
  if (!Array.isArray(items)) throw new KuraError("INVALID_ARGUMENT", "items must be an array", { operation });
  for (const item of items) checkSet(item?.key, item?.value, item ?? NO_OPTIONS, operation);
}

export function checkIncrBy(by: unknown, operation: string, key: string): number {
  if (by === undefined) return 1;
  if (typeof by !== "number" || !Number.isSafeInteger(by)) {
    throw new KuraError("INVALID_ARGUMENT", "by must be a safe integer", { operation, context: { key } });
  }
  return by;
}

export function checkIncrTtl(ttlMs: unknown, operation: string, key: string): void {
  checkTtl(ttlMs, operation, key);
}

export function scanLimit(options: KvScanOptions): number {
  const limit = options.limit ?? DEFAULT_SCAN_LIMIT;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_SCAN_LIMIT) {
    throw new KuraError("INVALID_ARGUMENT", `limit must be an integer from 1 to ${MAX_SCAN_LIMIT}`, {
      operation: "kv.scan",
    });
  }
  return limit;
}

/** The sum of an increment, or `KV_NOT_A_COUNTER` when the current value or the result is not a safe integer. */
export function addToCounter(current: unknown, by: number, key: string): number {
  const base = current === undefined ? 0 : current;
  if (typeof base !== "number" || !Number.isSafeInteger(base)) {
    throw notACounter(key, "the stored value is not a safe integer");
  }
  const sum = base + by;
  if (!Number.isSafeInteger(sum)) throw notACounter(key, "the result would leave the safe integer range");
  return sum;
}

export function notACounter(key: string, why: string): KuraError {
  return new KuraError("KV_NOT_A_COUNTER", `cannot increment ${JSON.stringify(key)}: ${why}`, {
    operation: "kv.incr",
    context: { key },
  });
}

/**
 * The scope of a key under the per-tenant version counters of earlier releases (ADR 0020): the
 * key up to and including its first `:` (Kura's tenant prefix, `{tenant}:`), or `""` for a key
 * without one. Versions are per key now (ADR 0025); a scope's old counter is only read while a
 * store upgrades, as the floor of keys that may have existed under it.
 */
export function versionScope(key: string): string {
  const i = key.indexOf(":");
  return i < 0 ? "" : key.slice(0, i + 1);
}

/** The `tombstone_retention_ms` option every adapter takes (see `KvStore.tombstoneRetentionMs`). */
export const tombstoneRetentionOption = z
  .number()
  .int()
  .min(1)
  .max(MAX_TTL_MS)
  .default(DEFAULT_TOMBSTONE_RETENTION_MS);

export function versionConflict(key: string, expected: number, actual: number, operation: string): KuraError {
  return new KuraError(
    "KV_VERSION_CONFLICT",
    `version of ${JSON.stringify(key)} is ${actual}, not the expected ${expected}`,
    { operation, context: { key, expected, actual } },
  );
}

export function tooLarge(key: string, bytes: number, max: number, operation: string): KuraError {
  return new KuraError(
    "KV_VALUE_TOO_LARGE",
    `value of ${JSON.stringify(key)} is ${bytes} bytes encoded, over ${max}`,
    {
      operation,
      context: { key, bytes, max },
    },
  );
}

export function closedError(operation: string): KuraError {
  return closed("the KV store", operation);
}

export function corrupt(key: string, cause: unknown, operation: string): KuraError {
  return new KuraError("KV_VALUE_CORRUPT", `value of ${JSON.stringify(key)} cannot be decoded`, {
    operation,
    context: { key },
    cause,
  });
}

/** MessagePack bytes of a value, checked against the size limit. */
export function packValue(key: string, value: unknown, maxBytes: number, operation: string): Buffer {
  const bytes = packr.pack(value);
  if (bytes.length > maxBytes) throw tooLarge(key, bytes.length, maxBytes, operation);
  return bytes;
}

// --- the framed value of the memory and redis adapters --------------------------------------
// One flag byte, then the payload:
//   'm' MessagePack;
//   'z' u32le uncompressed length + LZ4 block of the MessagePack bytes;
//   'n' a safe integer as ASCII decimal (so a Redis Lua script can increment it in place).
const FLAG_MSGPACK = 0x6d;
const FLAG_LZ4 = 0x7a;
const FLAG_INTEGER = 0x6e;

/** Encode a value as a framed payload: compressed when that saves at least an eighth. */
export function encodeFramed(key: string, value: unknown, maxBytes: number, operation: string): Buffer {
  const integer = integerFrame(value);
  if (integer !== undefined) return integer;
  const packed = packValue(key, value, maxBytes, operation);
  return compressedFrame(packed) ?? plainFrame(packed);
}

/** The `n` frame of a safe integer (not −0), else undefined. */
export function integerFrame(value: unknown): Buffer | undefined {
  if (typeof value === "number" && Number.isSafeInteger(value) && !Object.is(value, -0)) {
    return Buffer.from(`n${value}`, "latin1");
  }
  return undefined;
}

/** The `z` frame of MessagePack bytes when LZ4 saves at least an eighth of them, else undefined. */
export function compressedFrame(packed: Buffer): Buffer | undefined {
  if (packed.length < COMPRESS_MIN_BYTES) return undefined;
  const compressed = lz4Compress(packed);
  if (compressed.length + 5 > packed.length - (packed.length >>> 3)) return undefined;
  const out = Buffer.allocUnsafe(5 + compressed.length);
  out[0] = FLAG_LZ4;
  out.writeUInt32LE(packed.length, 1);
  out.set(compressed, 5);
  return out;
}

/** The `m` frame of MessagePack bytes (stored as they are). */
export function plainFrame(packed: Buffer): Buffer {
  const out = Buffer.allocUnsafe(1 + packed.length);
  out[0] = FLAG_MSGPACK;
  out.set(packed, 1);
  return out;
}

/** The byte range `unpack` reads, refilled per call (it is read before `unpack` returns). */
const UNPACK_RANGE = { start: 0, end: 0 };

/**
 * Decode the framed payload stored in `frame` from byte `start` on (a view of a larger buffer is
 * fine): the payload is read in place, without a sub-view per value.
 */
export function decodeFramed(key: string, frame: Buffer, operation: string, start = 0): unknown {
  try {
    switch (frame[start]) {
      case FLAG_MSGPACK:
        if (frame.length <= start + 1) throw new Error("empty MessagePack payload");
        UNPACK_RANGE.start = start + 1;
        UNPACK_RANGE.end = frame.length;
        return packr.unpack(frame, UNPACK_RANGE);
      case FLAG_LZ4:
        return packr.unpack(lz4Decompress(frame.subarray(start + 5), frame.readUInt32LE(start + 1)));
      case FLAG_INTEGER: {
        const n = Number(frame.toString("latin1", start + 1));
        if (!Number.isSafeInteger(n)) throw new Error("bad integer");
        return n;
      }
      default:
        throw new Error(`unknown value flag ${frame[start]}`);
    }
  } catch (e) {
    throw corrupt(key, e, operation);
  }
}

// --- cursors ---------------------------------------------------------------------------------

/** A short fingerprint binding a cursor to the prefix it was made for. */
function prefixTag(prefix: string): string {
  return createHash("sha256").update(prefix, "utf8").digest("base64url").slice(0, 12);
}

export function encodeScanCursor(scheme: string, prefix: string, position: string): string {
  return encodeCursor({ s: scheme, p: prefixTag(prefix), c: position });
}

export function decodeScanCursor(
  scheme: string,
  prefix: string,
  cursor: string | undefined,
): string | undefined {
  if (cursor === undefined) return undefined;
  const position = decodeCursor(cursor, { s: scheme, p: prefixTag(prefix) })?.c;
  if (typeof position !== "string")
    throw new KuraError("CURSOR_INVALID", "the scan cursor was not made by this store for this prefix", {
      operation: "kv.scan",
    });
  return position;
}
