/**
 * Object metadata lives in a footer at the end of each file, so one file per object is all it
 * costs (a sidecar would double the file creations that dominate write cost) and a stream of
 * unknown length can be written in one pass:
 *
 *   [body bytes][footer JSON, UTF-8][footer length: u32 BE][magic "KURAOBJ1"]
 *
 * The JSON carries the key, size, SHA-256, content type, user metadata, write time and room for
 * an encryption key id (`kid`), so files can be checked (fsck) and re-keyed without the catalog.
 */
import { KuraError } from "../../../core/errors.js";

export const MAGIC = Buffer.from("KURAOBJ1", "ascii");
export const TRAILER_BYTES = 4 + MAGIC.length;
/** Footers are small; reading this much from the end almost always gets all of it. */
export const FOOTER_READ_BYTES = 4096;
const MAX_FOOTER_BYTES = 64 * 1024;

export interface Footer {
  v: 1;
  /** The key the object was written under. */
  k: string;
  size: number;
  sha256: string;
  ct: string;
  md: Record<string, string>;
  /** Write time, ms since epoch. */
  t: number;
  /** Encryption key id, when the body is encrypted (SEC-2). */
  kid?: string;
}

export function encodeFooter(footer: Footer): Buffer {
  const json = Buffer.from(JSON.stringify(footer), "utf8");
  const trailer = Buffer.alloc(TRAILER_BYTES);
  trailer.writeUInt32BE(json.length, 0);
  MAGIC.copy(trailer, 4);
  return Buffer.concat([json, trailer]);
}

function corrupt(key: string, why: string): KuraError {
  return new KuraError("BLOB_METADATA_CORRUPT", `object file for ${key} is damaged: ${why}`, {
    operation: "blob.get",
    context: { key },
  });
}

/**
 * Parse the footer from the last bytes of a file. `tail` holds the file's final bytes and
 * `fileSize` its full length. Returns undefined when the tail is too short to hold the footer
 * (the caller reads more and tries again).
 */
export function decodeFooter(tail: Buffer, fileSize: number, key: string): Footer | { need: number } {
  if (fileSize < TRAILER_BYTES || tail.length < TRAILER_BYTES) throw corrupt(key, "too short for a footer");
  const trailer = tail.subarray(tail.length - TRAILER_BYTES);
  if (!trailer.subarray(4).equals(MAGIC)) throw corrupt(key, "footer magic missing");
  const length = trailer.readUInt32BE(0);
  if (length > MAX_FOOTER_BYTES || length + TRAILER_BYTES > fileSize)
    throw corrupt(key, "footer length out of range");
  if (length + TRAILER_BYTES > tail.length) return { need: length + TRAILER_BYTES };
  const json = tail.subarray(tail.length - TRAILER_BYTES - length, tail.length - TRAILER_BYTES);
  let parsed: Footer;
  try {
    parsed = JSON.parse(json.toString("utf8")) as Footer;
  } catch {
    throw corrupt(key, "footer is not JSON");
  }
  if (
    parsed?.v !== 1 ||
    typeof parsed.k !== "string" ||
    typeof parsed.sha256 !== "string" ||
    typeof parsed.ct !== "string" ||
    !Number.isSafeInteger(parsed.size) ||
    parsed.size !== fileSize - length - TRAILER_BYTES
  ) {
    throw corrupt(key, "footer fields do not add up");
  }
  parsed.md ??= {};
  return parsed;
}
