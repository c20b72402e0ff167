/**
 * Object key rules (BLOB-7), identical for every backend, and the id rule (IDS-1).
 * Pure functions: no I/O.
 */
import { KuraError } from "./errors.js";

/**
 * BLOB-7: the longest key a caller may give, in bytes of UTF-8. It is the caller's key: the
 * tenant scope Kura puts in front (`{tenant}/objects/`) is not counted against it.
 */
export const MAX_KEY_BYTES = 1024;

/**
 * The longest scope Kura puts in front of a caller's key: `{tenant}/sessions/{session}/`, both
 * ids at most 128 bytes (IDS-1). Stored keys are at most {@link MAX_KEY_BYTES} bytes (what every
 * backend accepts), so a domain whose scoped key would be longer stores it under a digest; only
 * keys that travel with their scope without being stored (presigned URLs) use this.
 */
export const MAX_SCOPE_PREFIX_BYTES = 128 + "/sessions/".length + 128 + 1;

// C0 controls, DEL and C1 controls.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const CONTROL_CHARS = /[\u0000-\u001f\u007f-\u009f]/;

/** Why a key is invalid (at most `maxBytes` bytes, default BLOB-7's 1,024), or undefined when it is valid. */
export function keyProblem(key: unknown, maxBytes = MAX_KEY_BYTES): string | undefined {
  if (typeof key !== "string") return "key must be a string";
  if (key.length === 0) return "key must not be empty";
  if (!key.isWellFormed()) return "key must be valid UTF-8 (no lone surrogates)";
  // Three bytes per UTF-16 unit at most: only long keys need counting.
  if (key.length * 3 > maxBytes && Buffer.byteLength(key, "utf8") > maxBytes)
    return `key must be at most ${maxBytes} bytes of UTF-8`;
  if (CONTROL_CHARS.test(key)) return "key must not contain NUL or control characters";
  if (key.includes("\\")) return "key must not contain a backslash";
  if (key.startsWith("/")) return "key must not start with '/'";
  if (key.endsWith("/")) return "key must not end with '/'";
  if (key.endsWith(".")) return "key must not end with '.'";
  for (const segment of key.split("/")) {
    if (segment === "") return "key must not contain empty segments ('//')";
    if (segment === "." || segment === "..") return "key must not contain '.' or '..' segments";
  }
  return undefined;
}

/** Throws `KEY_INVALID` (InvalidArgument) unless `key` follows BLOB-7 (at most `maxBytes`). */
export function assertValidKey(
  key: unknown,
  operation = "blob",
  maxBytes = MAX_KEY_BYTES,
): asserts key is string {
  const problem = keyProblem(key, maxBytes);
  if (problem !== undefined) {
    throw new KuraError("KEY_INVALID", `invalid object key: ${problem}`, {
      operation,
      context: { key: typeof key === "string" ? key.slice(0, 200) : typeof key },
    });
  }
}

/**
 * A prefix for listing: empty, or anything some valid key starts with. (So "a/" and "report."
 * are fine, "../" and "a//" are not.)
 */
export function assertValidPrefix(prefix: unknown, operation = "blob.list"): asserts prefix is string {
  if (prefix === "") return;
  const problem = typeof prefix === "string" ? keyProblem(`${prefix}x`) : "must be a string";
  if (problem !== undefined) {
    throw new KuraError("KEY_INVALID", `invalid prefix: ${problem}`, {
      operation,
      context: { prefix: typeof prefix === "string" ? prefix.slice(0, 200) : typeof prefix },
    });
  }
}

/** Compare two strings by their UTF-8 bytes (the listing order of BLOB-7). */
export function compareUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}

/** IDS-1: tenant, chat, mailbox, user and session ids become key segments. */
export const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** IDS-1 in full: the pattern, and no trailing `.` (a key segment `ab.` would read as `ab`). */
export function isValidId(id: unknown): id is string {
  return typeof id === "string" && ID_PATTERN.test(id) && !id.endsWith(".");
}

export function assertValidId(id: unknown, what: string, operation = "id"): asserts id is string {
  if (!isValidId(id)) {
    throw new KuraError(
      "INVALID_ARGUMENT",
      `invalid ${what}: must match ${ID_PATTERN.source} and not end in '.'`,
      {
        operation,
        context: { [what]: typeof id === "string" ? id.slice(0, 200) : typeof id },
      },
    );
  }
}

/**
 * The S3 endpoint's multipart uploads (API-7): each part waits for completion as a blob at
 * `{tenant}/multipart/{upload}/{part, 5 digits}`. `multipart` is Kura's own key segment: no
 * catalog row points there, and neither orphan GC nor fsck looks there (the upload's expiry
 * removes what completion or abort did not).
 */
export function multipartPrefix(tenantId: string, uploadId: string): string {
  return `${tenantId}/multipart/${uploadId}/`;
}

export function multipartPartKey(tenantId: string, uploadId: string, partNumber: number): string {
  return `${multipartPrefix(tenantId, uploadId)}${String(partNumber).padStart(5, "0")}`;
}

/** KV prefix of multipart upload states: `~s3upload:{tenant}:{upload}` (no tenant id starts with `~`). */
export const MULTIPART_STATE_PREFIX = "~s3upload:";
