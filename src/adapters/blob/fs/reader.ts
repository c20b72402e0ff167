/**
 * `fs` reads: an object's footer, its body whole (small ones with synchronous calls, larger ones
 * hashed while read) or streamed through a verifying stream, or a byte range of it.
 */
import { createHash } from "node:crypto";
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { type FileHandle, open } from "node:fs/promises";
import { Readable } from "node:stream";
import { checksumMismatch, sha256Hex, VerifyingStream, verifyBuffer } from "../../../core/checksum.js";
import type { BlobInfo, GetOptions, GetResult } from "../../../ports/blob-store.js";
import { notFound, resolveRange } from "../common.js";
import { fsError, isErrno } from "./errors.js";
import { decodeFooter, FOOTER_READ_BYTES, type Footer } from "./footer.js";
import { objectFile } from "./layout.js";
import type { FsOptions } from "./options.js";

/** Reads of the objects under `base`; the store has checked the key, options and that it is open. */
export class FsReader {
  constructor(
    private readonly base: string,
    private readonly options: FsOptions,
  ) {}

  /** Open an object and read its footer. The caller closes the handle. */
  private async openObject(key: string, operation: string): Promise<{ handle: FileHandle; footer: Footer }> {
    const file = objectFile(this.base, key);
    let handle: FileHandle;
    try {
      handle = await open(file, "r");
    } catch (e) {
      if (isErrno(e, "ENOENT", "ENOTDIR")) throw notFound(key, operation);
      throw fsError(e, operation, key);
    }
    try {
      const { size: fileSize } = await handle.stat();
      let want = Math.min(fileSize, FOOTER_READ_BYTES);
      for (;;) {
        const tail = Buffer.alloc(want);
        await handle.read(tail, 0, want, fileSize - want);
        const footer = decodeFooter(tail, fileSize, key);
        if (!("need" in footer)) return { handle, footer };
        want = footer.need;
      }
    } catch (e) {
      await handle.close();
      throw fsError(e, operation, key);
    }
  }

  private info(footer: Footer, key: string): BlobInfo {
    return {
      key,
      size: footer.size,
      sha256: footer.sha256,
      contentType: footer.ct,
      etag: `"${footer.sha256.slice(0, 32)}"`,
      lastModified: new Date(footer.t),
      metadata: { ...footer.md },
    };
  }

  /** The whole file when it is small enough for synchronous I/O, else undefined. */
  private readSmallSync(file: string): Buffer | undefined {
    const max = this.options.sync_io_max_bytes;
    if (max === 0) return undefined;
    const fd = openSync(file, "r");
    try {
      const { size } = fstatSync(fd);
      if (size > max + FOOTER_READ_BYTES) return undefined;
      const buffer = Buffer.allocUnsafe(size);
      let read = 0;
      while (read < size) {
        const n = readSync(fd, buffer, read, size - read, read);
        if (n === 0) break;
        read += n;
      }
      return read === size ? buffer : buffer.subarray(0, read);
    } finally {
      closeSync(fd);
    }
  }

  /**
   * Objects up to `sync_io_max_bytes` are read with synchronous calls (open, fstat, read, close:
   * a few microseconds on a warm cache, where a thread-pool round trip per call costs more).
   */
  getBufferSync(
    key: string,
    options: Omit<GetOptions, "range" | "signal">,
  ): { info: BlobInfo; data: Buffer } | undefined {
    let raw: Buffer | undefined;
    try {
      raw = this.readSmallSync(objectFile(this.base, key));
    } catch (e) {
      if (isErrno(e, "ENOENT", "ENOTDIR")) throw notFound(key, "blob.get");
      throw fsError(e, "blob.get", key);
    }
    if (raw === undefined) return undefined;
    const footer = decodeFooter(raw, raw.length, key);
    if ("need" in footer) throw fsError(new Error("footer longer than file"), "blob.get", key);
    const data = raw.subarray(0, footer.size);
    verifyBuffer(data, options.expectedSha256 ?? footer.sha256, key, "blob.get");
    return { info: this.info(footer, key), data };
  }

  /** Larger objects: the footer first, then the body in chunks, each hashed as it arrives. */
  async getBufferStreamed(
    key: string,
    options: Omit<GetOptions, "range">,
  ): Promise<{ info: BlobInfo; data: Buffer }> {
    const { handle, footer } = await this.openObject(key, "blob.get");
    let read: { data: Buffer; sha256: string };
    try {
      read = await readHashed(handle, footer.size);
    } catch (e) {
      throw fsError(e, "blob.get", key);
    } finally {
      await handle.close().catch(() => undefined);
    }
    const expected = options.expectedSha256 ?? footer.sha256;
    if (read.sha256 !== expected) throw checksumMismatch(key, expected, read.sha256, "blob.get");
    return { info: this.info(footer, key), data: read.data };
  }

  async get(key: string, options: GetOptions): Promise<GetResult> {
    if (!options.range) {
      let raw: Buffer | undefined;
      try {
        raw = this.readSmallSync(objectFile(this.base, key));
      } catch (e) {
        if (isErrno(e, "ENOENT", "ENOTDIR")) throw notFound(key, "blob.get");
        throw fsError(e, "blob.get", key);
      }
      if (raw) {
        const footer = decodeFooter(raw, raw.length, key);
        if ("need" in footer) throw fsError(new Error("footer longer than file"), "blob.get", key);
        const data = raw.subarray(0, footer.size);
        return {
          info: this.info(footer, key),
          body: verifiedReadable(data, options.expectedSha256 ?? footer.sha256, key),
          range: undefined,
        };
      }
    }
    const { handle, footer } = await this.openObject(key, "blob.get");
    const info = this.info(footer, key);
    try {
      if (options.range) {
        const range = resolveRange(key, options.range, footer.size);
        if (footer.size === 0) {
          await handle.close();
          return { info, body: Readable.from([]), range };
        }
        return { info, body: handle.createReadStream({ start: range.start, end: range.end }), range };
      }
      const expected = options.expectedSha256 ?? footer.sha256;
      if (footer.size <= this.options.small_object_bytes) {
        const read = await readHashed(handle, footer.size);
        await handle.close();
        return { info, body: checkedReadable(read, expected, key), range: undefined };
      }
      const stream = handle.createReadStream({ start: 0, end: footer.size - 1 });
      const verifying = new VerifyingStream(expected, key, footer.size);
      stream.once("error", (err) => verifying.destroy(err));
      // A reader that stops early (a client gone) destroys `verifying`; the file must close too.
      verifying.once("close", () => stream.destroy());
      return { info, body: stream.pipe(verifying), range: undefined };
    } catch (e) {
      await handle.close().catch(() => undefined);
      throw fsError(e, "blob.get", key);
    }
  }

  /** An object's info, from its footer. */
  async stat(key: string, operation: string): Promise<BlobInfo> {
    const { handle, footer } = await this.openObject(key, operation);
    await handle.close();
    return this.info(footer, key);
  }
}

/** A stream of already-read bytes that errors instead of ending when they fail the checksum. */
function verifiedReadable(data: Buffer, expected: string, key: string): Readable {
  return checkedReadable({ data, sha256: sha256Hex(data) }, expected, key);
}

/** {@link verifiedReadable} for bytes whose SHA-256 is already known. */
function checkedReadable(read: { data: Buffer; sha256: string }, expected: string, key: string): Readable {
  if (read.sha256 !== expected) {
    const e = checksumMismatch(key, expected, read.sha256, "blob.get");
    return new Readable({
      read() {
        this.destroy(e);
      },
    });
  }
  return Readable.from(read.data.length ? [read.data] : []);
}

/** Bytes read from an object file per call when a body is read whole. */
const READ_CHUNK_BYTES = 256 * 1024;

/**
 * The first `size` bytes of a file and their SHA-256, hashed while reading: each chunk is
 * hashed on this thread while the next one is read on the thread pool, so a large read costs
 * about the longer of the two rather than their sum.
 */
async function readHashed(handle: FileHandle, size: number): Promise<{ data: Buffer; sha256: string }> {
  const data = Buffer.allocUnsafe(size);
  const hash = createHash("sha256");
  const readAt = async (offset: number): Promise<number> => {
    const { bytesRead } = await handle.read(data, offset, Math.min(READ_CHUNK_BYTES, size - offset), offset);
    if (bytesRead === 0) throw new Error(`file ended at byte ${offset} of a ${size}-byte body`);
    return bytesRead;
  };
  let offset = 0;
  let next = size > 0 ? readAt(0) : undefined;
  while (next) {
    const n = await next;
    const start = offset;
    offset += n;
    next = offset < size ? readAt(offset) : undefined;
    // A rejected read that is not awaited yet must not count as unhandled.
    next?.catch(() => undefined);
    hash.update(data.subarray(start, offset));
  }
  return { data, sha256: hash.digest("hex") };
}
