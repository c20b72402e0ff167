/**
 * The `lmdb` KV store's record format: `[version, expiresAt, value]` in MessagePack, a
 * tombstone's `expiresAt` {@link TOMBSTONE}, the version read from the header alone, and the
 * header's size.
 */
import { Packr } from "msgpackr";

/**
 * A decoded record; `expiresAt` 0 = never. A tombstone has `expiresAt` {@link TOMBSTONE} and
 * its prune time as `value`.
 */
export interface Record {
  version: number;
  expiresAt: number;
  value: unknown;
  /** Overlay entries of asynchronous commits: the record as written, for reads issued before it commits. */
  bytes?: Buffer;
}

/**
 * Overlay entries: the latest queued record of a key whose write is not committed yet — a fresh
 * object per write, tombstones included; a pruned tombstone is version 0. Entries are compared
 * by identity when their batch commits, so a newer write of the same key is never dropped early.
 */
export const TOMBSTONE = -1;

/**
 * The version of an encoded record, read from its MessagePack header (`[version, …]`) without
 * decoding the value; undefined when the header is not one of the plain integer forms.
 */
export function headerVersion(bytes: Buffer): number | undefined {
  if (bytes[0] !== 0x93 || bytes.length < 2) return undefined;
  const b = bytes[1] as number;
  if (b < 0x80) return b;
  switch (b) {
    case 0xcc:
      return bytes.length > 2 ? bytes.readUInt8(2) : undefined;
    case 0xcd:
      return bytes.length > 3 ? bytes.readUInt16BE(2) : undefined;
    case 0xce:
      return bytes.length > 5 ? bytes.readUInt32BE(2) : undefined;
    default:
      return undefined;
  }
}

/**
 * Decodes values read with `getBinaryFast`, whose buffer lmdb-js reuses on the next read: binary
 * values inside the record must be copied out (the shared codec would hand out views).
 */
export const readPackr = new Packr({ useRecords: false, copyBuffers: true });

/** Bytes MessagePack uses for a non-negative integer (the record header fields). */
export function uintBytes(n: number): number {
  if (n < 128) return 1;
  if (n < 256) return 2;
  if (n < 65_536) return 3;
  if (n < 4_294_967_296) return 5;
  return 9;
}
