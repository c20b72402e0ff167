/**
 * How keys map to paths under `base_path`, injectively and readably:
 *
 * - each key segment is a directory, the last one a file named `<segment>.obj`;
 * - a directory segment that itself ends in `.obj` (or `.obj_`, `.obj__`…) gets one more `_`,
 *   so `a.obj` (a file for key `a`) and `a.obj/` (a directory for key `a.obj/x`) never collide;
 * - a segment starting with `~` is stored with a doubled `~`; stored names starting with a
 *   single `~` are Kura's own: `~kura` (temp files, secrets) and `~h-<hash>` (below);
 * - a segment longer than {@link MAX_PLAIN_SEGMENT} bytes (file names are limited to 255 bytes)
 *   is stored as `~h-<sha256 prefix>`; its real name is in the object's footer (files) or in a
 *   `~name` file inside (directories).
 */
import { createHash } from "node:crypto";
import { join, sep } from "node:path";

export const MAX_PLAIN_SEGMENT = 200;
export const OBJECT_SUFFIX = ".obj";
export const RESERVED_DIR = "~kura";
export const DIR_NAME_FILE = "~name";
const HASHED = "~h-";

function hashedName(segment: string): string {
  return HASHED + createHash("sha256").update(segment).digest("hex").slice(0, 40);
}

export function isLong(segment: string): boolean {
  return Buffer.byteLength(segment) > MAX_PLAIN_SEGMENT;
}

export function encodeDir(segment: string): string {
  if (isLong(segment)) return hashedName(segment);
  let name = segment.startsWith("~") ? `~${segment}` : segment;
  if (/\.obj_*$/.test(name)) name += "_";
  return name;
}

export function encodeFile(segment: string): string {
  if (isLong(segment)) return hashedName(segment) + OBJECT_SUFFIX;
  return (segment.startsWith("~") ? `~${segment}` : segment) + OBJECT_SUFFIX;
}

export type Decoded =
  | { kind: "plain"; segment: string }
  | { kind: "hashed" } // real name must be read (footer or ~name file)
  | { kind: "skip" }; // Kura's own or foreign

export function decodeDir(name: string): Decoded {
  if (name.startsWith("~~")) return { kind: "plain", segment: unsuffixDir(name.slice(1)) };
  if (name.startsWith(HASHED)) return { kind: "hashed" };
  if (name.startsWith("~")) return { kind: "skip" };
  if (/\.obj$/.test(name)) return { kind: "skip" };
  return { kind: "plain", segment: unsuffixDir(name) };
}

function unsuffixDir(name: string): string {
  return /\.obj_+$/.test(name) ? name.slice(0, -1) : name;
}

export function decodeFile(name: string): Decoded {
  if (!name.endsWith(OBJECT_SUFFIX)) return { kind: "skip" };
  const stem = name.slice(0, -OBJECT_SUFFIX.length);
  if (stem.startsWith("~~")) return { kind: "plain", segment: stem.slice(1) };
  if (stem.startsWith(HASHED)) return { kind: "hashed" };
  if (stem.startsWith("~") || stem === "") return { kind: "skip" };
  return { kind: "plain", segment: stem };
}

/** Directory segments (encoded) and file name for a valid key. */
export function keyPath(base: string, key: string): { dir: string; file: string; dirSegments: string[] } {
  const segments = key.split("/");
  const leaf = segments.pop() as string;
  const dir = join(base, ...segments.map(encodeDir));
  return { dir, file: join(dir, encodeFile(leaf)), dirSegments: segments };
}

/** Segments this short are at most {@link MAX_PLAIN_SEGMENT} bytes of UTF-8 (≤ 3 bytes a unit). */
const SURELY_SHORT = Math.floor(MAX_PLAIN_SEGMENT / 3);
/** A directory segment that gets a `_` appended (`a.obj/`, `a.obj_/`, …). */
const OBJ_DIR_SEGMENT = /\.obj_*\//;

/**
 * The file of a valid key: `keyPath(base, key).file`, without building it segment by segment
 * when no segment needs encoding (every message key): reads look it up on each call.
 */
export function objectFile(base: string, key: string): string {
  if (sep === "/" && isPlainPath(key))
    return `${base.endsWith("/") ? base : `${base}/`}${key}${OBJECT_SUFFIX}`;
  return keyPath(base, key).file;
}

/** Whether every segment of a valid key is stored under its own name. */
function isPlainPath(key: string): boolean {
  if (key.startsWith("~") || key.includes("/~") || OBJ_DIR_SEGMENT.test(key)) return false;
  if (key.length <= SURELY_SHORT) return true;
  let start = 0;
  for (;;) {
    const end = key.indexOf("/", start);
    const segment = end < 0 ? key.slice(start) : key.slice(start, end);
    if (segment.length > SURELY_SHORT && isLong(segment)) return false;
    if (end < 0) return true;
    start = end + 1;
  }
}
