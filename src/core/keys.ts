/**
 * Object key rules (SPEC BLOB-7), identical for every backend, and the id rule (IDS-1).
 * Pure functions: no I/O.
 */
import { KuraError } from "./errors.js";

export const MAX_KEY_BYTES = 1024;

// C0 controls, DEL and C1 controls.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const CONTROL_CHARS = /[\u0000-\u001f\u007f-\u009f]/;

/** Why a key is invalid, or undefined when it is valid. */
export function keyProblem(key: unknown): string | undefined {
  if (typeof key !== "string") return "key must be a string";
  if (key.length === 0) return "key must not be empty";
  if (!key.isWellFormed()) return "key must be valid UTF-8 (no lone surrogates)";
  if (Buffer.byteLength(key, "utf8") > MAX_KEY_BYTES)
    return `key must be at most ${MAX_KEY_BYTES} bytes of UTF-8`;
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

/** Throws `KEY_INVALID` (InvalidArgument) unless `key` follows BLOB-7. */
export function assertValidKey(key: unknown, operation = "blob"): asserts key is string {
  const problem = keyProblem(key);
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
