/**
 * Helpers every blob adapter shares: option checks, cursors, metadata conventions.
 * Adapters import this file and `core/`, never each other.
 */

import { decodeCursor as decodeTagged, encodeCursor as encodeTagged } from "../../core/cursor.js";
import { KuraError } from "../../core/errors.js";
import { assertValidKey } from "../../core/keys.js";
import type {
  BlobCapabilities,
  ByteRange,
  GetOptions,
  ListOptions,
  PresignOptions,
  PutOptions,
} from "../../ports/blob-store.js";

/** The metadata entry where adapters keep the object's SHA-256 (BLOB-3). */
export const SHA256_METADATA_KEY = "kura_sha256";
export const DEFAULT_CONTENT_TYPE = "application/octet-stream";
export const MAX_LIST_LIMIT = 1000;
export const MAX_PRESIGN_SECONDS = 7 * 24 * 3600;

// Names every backend accepts: S3 headers, Azure (C# identifiers), GCS.
const METADATA_NAME = /^[a-z][a-z0-9_]{0,63}$/;
// Printable ASCII: S3 sends metadata in HTTP headers.
const METADATA_VALUE = /^[\x20-\x7e]{0,1024}$/;

export function checkPutOptions(key: string, options: PutOptions | undefined, operation = "blob.put"): void {
  assertValidKey(key, operation);
  if (!options) return;
  if (options.ifNoneMatch !== undefined && options.ifNoneMatch !== "*") {
    throw new KuraError("INVALID_ARGUMENT", 'ifNoneMatch must be "*"', { operation, context: { key } });
  }
  if (options.contentType !== undefined && !/^[\x21-\x7e]+\/[\x20-\x7e]+$/.test(options.contentType)) {
    throw new KuraError("INVALID_ARGUMENT", "contentType must be a MIME type like text/plain", {
      operation,
      context: { key },
    });
  }
  for (const [name, value] of Object.entries(options.metadata ?? {})) {
    if (!METADATA_NAME.test(name) || name === SHA256_METADATA_KEY) {
      throw new KuraError(
        "INVALID_ARGUMENT",
        `metadata name ${JSON.stringify(name)} must match ${METADATA_NAME.source}`,
        {
          operation,
          context: { key, name },
        },
      );
    }
    if (typeof value !== "string" || !METADATA_VALUE.test(value)) {
      throw new KuraError(
        "INVALID_ARGUMENT",
        `metadata value for ${name} must be printable ASCII up to 1024 chars`,
        {
          operation,
          context: { key, name },
        },
      );
    }
  }
}

export function checkRange(key: string, range: ByteRange | undefined, operation = "blob.get"): void {
  if (!range) return;
  const { start, end } = range;
  if (
    !Number.isSafeInteger(start) ||
    start < 0 ||
    (end !== undefined && (!Number.isSafeInteger(end) || end < start))
  ) {
    throw new KuraError("RANGE_INVALID", "range must have 0 <= start <= end (integers)", {
      operation,
      context: { key, start, end },
    });
  }
}

/** Clamp a valid range to an object's size; a start at or beyond the end is `RANGE_INVALID`. */
export function resolveRange(key: string, range: ByteRange, size: number): { start: number; end: number } {
  if (range.start >= size && !(size === 0 && range.start === 0)) {
    throw new KuraError("RANGE_INVALID", `range starts at ${range.start} but the object has ${size} bytes`, {
      operation: "blob.get",
      context: { key, start: range.start, size },
    });
  }
  return { start: range.start, end: Math.min(range.end ?? size - 1, size - 1) };
}

export function checkGetOptions(key: string, options: GetOptions | undefined, operation = "blob.get"): void {
  assertValidKey(key, operation);
  checkRange(key, options?.range, operation);
  if (options?.expectedSha256 !== undefined && !/^[0-9a-f]{64}$/.test(options.expectedSha256)) {
    throw new KuraError("INVALID_ARGUMENT", "expectedSha256 must be 64 lowercase hex characters", {
      operation,
      context: { key },
    });
  }
}

export function listLimit(options: ListOptions | undefined): number {
  const limit = options?.limit ?? MAX_LIST_LIMIT;
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT) {
    throw new KuraError("INVALID_ARGUMENT", `limit must be an integer between 1 and ${MAX_LIST_LIMIT}`, {
      operation: "blob.list",
      context: { limit },
    });
  }
  return limit;
}

export function checkPresign(
  key: string,
  options: PresignOptions,
  capabilities: BlobCapabilities,
  scheme: string,
): void {
  assertValidKey(key, "blob.presign");
  if (!capabilities.presign) {
    throw new KuraError("UNSUPPORTED_OPERATION", `the ${scheme} store cannot presign URLs`, {
      operation: "blob.presign",
      context: { scheme },
    });
  }
  if (options.method !== "GET" && options.method !== "PUT") {
    throw new KuraError("INVALID_ARGUMENT", "method must be GET or PUT", { operation: "blob.presign" });
  }
  if (
    !Number.isSafeInteger(options.expiresIn) ||
    options.expiresIn < 1 ||
    options.expiresIn > MAX_PRESIGN_SECONDS
  ) {
    throw new KuraError("INVALID_ARGUMENT", `expiresIn must be 1…${MAX_PRESIGN_SECONDS} seconds`, {
      operation: "blob.presign",
      context: { expiresIn: options.expiresIn },
    });
  }
}

/**
 * Opaque cursors: base64url of a small JSON document tagged with the scheme, so a cursor from
 * another store or an edited one is refused with `CURSOR_INVALID`.
 */
export function encodeCursor(scheme: string, state: Record<string, string>): string {
  return encodeTagged({ s: scheme, ...state });
}

export function decodeCursor(scheme: string, cursor: string | undefined): Record<string, string> | undefined {
  if (cursor === undefined) return undefined;
  const parsed = decodeTagged(cursor, { s: scheme });
  const state: Record<string, string> = {};
  for (const [k, v] of Object.entries(parsed ?? {})) if (k !== "s" && typeof v === "string") state[k] = v;
  if (parsed === undefined || Object.keys(state).length !== Object.keys(parsed).length - 1)
    throw new KuraError("CURSOR_INVALID", "the cursor was not produced by this store", {
      operation: "blob.list",
    });
  return state;
}

/** Split stored metadata into Kura's checksum and the user's own entries. */
export function splitMetadata(raw: Record<string, string> | undefined): {
  sha256: string | undefined;
  metadata: Record<string, string>;
} {
  const metadata: Record<string, string> = {};
  let sha256: string | undefined;
  for (const [k, v] of Object.entries(raw ?? {})) {
    const name = k.toLowerCase();
    if (name === SHA256_METADATA_KEY) sha256 = v;
    else metadata[name] = v;
  }
  return { sha256, metadata };
}

export function notFound(key: string, operation: string, cause?: unknown): KuraError {
  return new KuraError("BLOB_NOT_FOUND", `no object under ${key}`, { operation, context: { key }, cause });
}

export function alreadyExists(key: string, operation = "blob.put", cause?: unknown): KuraError {
  return new KuraError("BLOB_ALREADY_EXISTS", `an object already exists under ${key}`, {
    operation,
    context: { key },
    cause,
  });
}

/** Throws `OPERATION_ABORTED` if the signal has fired. */
export function throwIfAborted(signal: AbortSignal | undefined, operation: string): void {
  if (signal?.aborted) {
    throw new KuraError("OPERATION_ABORTED", `${operation} was aborted`, { operation, cause: signal.reason });
  }
}

/** Apply capability overrides: a store may declare less than it could, never more. */
export function narrowCapabilities(
  base: BlobCapabilities,
  overrides?: Partial<BlobCapabilities>,
): BlobCapabilities {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(overrides ?? {})) {
    // Only yes/no capabilities narrow; a declared value such as `urlScheme` is the store's own.
    if (v === false && typeof out[k] === "boolean") out[k] = false;
  }
  return Object.freeze(out) as unknown as BlobCapabilities;
}
