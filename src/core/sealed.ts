/**
 * The encrypted form of a tenant's bytes at rest (SEC-2): a header, then AES-256-GCM ciphertext
 * in authenticated chunks, so large and streamed bodies are encrypted and decrypted in constant
 * memory and a byte range is read by decrypting only the chunks it touches.
 *
 * ```
 * header (29 bytes): "KENC" | format 1 (u8) | key id (8 bytes) | key version (u32 BE) | nonce (12 bytes)
 * chunk i:           ciphertext of plaintext[i·64 KiB, (i+1)·64 KiB) | GCM tag (16 bytes)
 * ```
 * Chunk `i` is encrypted under the nonce with its last 4 bytes XORed with `i`, and authenticated
 * with the header, `i` and whether it is the last chunk as additional data: a changed byte, a
 * reordered, dropped or appended chunk, or a body cut at a chunk boundary all fail to decrypt.
 * An empty plaintext is one empty chunk (its tag alone). Pure functions and streams: no I/O.
 */
import { createCipheriv, createDecipheriv, createHmac, randomBytes } from "node:crypto";
import { Transform, type TransformCallback } from "node:stream";

export const SEALED_MAGIC = Buffer.from("KENC", "latin1");
export const SEALED_FORMAT = 1;
export const SEALED_HEADER_BYTES = 29;
export const SEALED_CHUNK_BYTES = 64 * 1024;
export const SEALED_TAG_BYTES = 16;
const SEALED_STRIDE = SEALED_CHUNK_BYTES + SEALED_TAG_BYTES;

export interface SealedHeader {
  /** 16 hex characters. */
  keyId: string;
  version: number;
  nonce: Buffer;
  /** The header's own bytes (authenticated with every chunk). */
  bytes: Buffer;
}

/** A header for new ciphertext under key (`keyId`, `version`), with a fresh random nonce. */
export function newHeader(keyId: string, version: number): SealedHeader {
  const bytes = Buffer.alloc(SEALED_HEADER_BYTES);
  SEALED_MAGIC.copy(bytes, 0);
  bytes.writeUInt8(SEALED_FORMAT, 4);
  Buffer.from(keyId, "hex").copy(bytes, 5, 0, 8);
  bytes.writeUInt32BE(version, 13);
  const nonce = randomBytes(12);
  nonce.copy(bytes, 17);
  return { keyId, version, nonce, bytes };
}

/** Whether `data` starts like sealed bytes (the magic; the header may still be damaged). */
export function looksSealed(data: Uint8Array): boolean {
  return data.length >= 4 && Buffer.from(data.buffer, data.byteOffset, 4).equals(SEALED_MAGIC);
}

/** The header at the start of `data`, or undefined when it is not one (too short, wrong magic or format). */
export function parseHeader(data: Uint8Array): SealedHeader | undefined {
  if (data.length < SEALED_HEADER_BYTES || !looksSealed(data)) return undefined;
  const bytes = Buffer.from(data.buffer, data.byteOffset, SEALED_HEADER_BYTES);
  if (bytes.readUInt8(4) !== SEALED_FORMAT) return undefined;
  return {
    keyId: bytes.subarray(5, 13).toString("hex"),
    version: bytes.readUInt32BE(13),
    nonce: Buffer.from(bytes.subarray(17, 29)),
    bytes: Buffer.from(bytes),
  };
}

/** Sealed size of `plain` plaintext bytes. */
export function sealedSize(plain: number): number {
  const chunks = Math.max(1, Math.ceil(plain / SEALED_CHUNK_BYTES));
  return SEALED_HEADER_BYTES + plain + chunks * SEALED_TAG_BYTES;
}

/** Plaintext size of `sealed` sealed bytes, or undefined when no plaintext seals to that size. */
export function plainSize(sealed: number): number | undefined {
  const body = sealed - SEALED_HEADER_BYTES;
  if (body < SEALED_TAG_BYTES) return undefined;
  const chunks = Math.ceil(body / SEALED_STRIDE);
  const plain = body - chunks * SEALED_TAG_BYTES;
  return plain >= 0 && sealedSize(plain) === sealed ? plain : undefined;
}

function chunkNonce(header: SealedHeader, index: number): Buffer {
  const n = Buffer.from(header.nonce);
  n.writeUInt32BE((n.readUInt32BE(8) ^ index) >>> 0, 8);
  return n;
}

function chunkAad(header: SealedHeader, index: number, last: boolean): Buffer {
  const aad = Buffer.alloc(SEALED_HEADER_BYTES + 5);
  header.bytes.copy(aad, 0);
  aad.writeUInt32BE(index, SEALED_HEADER_BYTES);
  aad.writeUInt8(last ? 1 : 0, SEALED_HEADER_BYTES + 4);
  return aad;
}

function sealChunk(
  key: Buffer,
  header: SealedHeader,
  index: number,
  last: boolean,
  plain: Uint8Array,
): Buffer[] {
  const cipher = createCipheriv("aes-256-gcm", key, chunkNonce(header, index));
  cipher.setAAD(chunkAad(header, index, last));
  return [cipher.update(plain), cipher.final(), cipher.getAuthTag()];
}

/** Thrown (plain Error) when ciphertext does not authenticate; callers turn it into their error code. */
export class SealedDamaged extends Error {}

function openChunk(
  key: Buffer,
  header: SealedHeader,
  index: number,
  last: boolean,
  sealed: Uint8Array,
): Buffer {
  if (sealed.length < SEALED_TAG_BYTES) throw new SealedDamaged("chunk cut short");
  try {
    const decipher = createDecipheriv("aes-256-gcm", key, chunkNonce(header, index));
    decipher.setAAD(chunkAad(header, index, last));
    decipher.setAuthTag(sealed.subarray(sealed.length - SEALED_TAG_BYTES));
    const out = decipher.update(sealed.subarray(0, sealed.length - SEALED_TAG_BYTES));
    decipher.final();
    return out;
  } catch (e) {
    throw new SealedDamaged(`chunk ${index} does not authenticate`, { cause: e });
  }
}

/** `plain` sealed whole under `key` (header included). */
export function seal(key: Buffer, header: SealedHeader, plain: Uint8Array): Buffer {
  const parts: Buffer[] = [header.bytes];
  const chunks = Math.max(1, Math.ceil(plain.length / SEALED_CHUNK_BYTES));
  for (let i = 0; i < chunks; i++)
    parts.push(
      ...sealChunk(
        key,
        header,
        i,
        i === chunks - 1,
        plain.subarray(i * SEALED_CHUNK_BYTES, (i + 1) * SEALED_CHUNK_BYTES),
      ),
    );
  return Buffer.concat(parts);
}

/** The plaintext of whole sealed bytes (header included); `SealedDamaged` when anything is off. */
export function unseal(key: Buffer, header: SealedHeader, sealed: Uint8Array): Buffer {
  const plain = plainSize(sealed.length);
  if (plain === undefined) throw new SealedDamaged("sealed size is impossible");
  const chunks = Math.max(1, Math.ceil(plain / SEALED_CHUNK_BYTES));
  const out: Buffer[] = [];
  for (let i = 0; i < chunks; i++) {
    const start = SEALED_HEADER_BYTES + i * SEALED_STRIDE;
    out.push(
      openChunk(
        key,
        header,
        i,
        i === chunks - 1,
        sealed.subarray(start, Math.min(start + SEALED_STRIDE, sealed.length)),
      ),
    );
  }
  return out.length === 1 ? (out[0] as Buffer) : Buffer.concat(out);
}

/** Where the chunks covering plaintext bytes `start…end` (inclusive) lie in the sealed bytes. */
export function sealedRange(
  start: number,
  end: number,
): { firstChunk: number; start: number; end: number; skip: number } {
  const firstChunk = Math.floor(start / SEALED_CHUNK_BYTES);
  const lastChunk = Math.floor(end / SEALED_CHUNK_BYTES);
  return {
    firstChunk,
    start: SEALED_HEADER_BYTES + firstChunk * SEALED_STRIDE,
    end: SEALED_HEADER_BYTES + (lastChunk + 1) * SEALED_STRIDE - 1,
    skip: start - firstChunk * SEALED_CHUNK_BYTES,
  };
}

/** A stream sealing what passes through (header first), in constant memory. */
export class SealStream extends Transform {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private index = 0;
  private started = false;

  constructor(
    private readonly key: Buffer,
    private readonly header: SealedHeader,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    if (!this.started) {
      this.started = true;
      this.push(this.header.bytes);
    }
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    // Keep at least one byte back: only the end of the stream tells which chunk is the last.
    while (this.pendingBytes > SEALED_CHUNK_BYTES) {
      const all = Buffer.concat(this.pending);
      for (const part of sealChunk(
        this.key,
        this.header,
        this.index++,
        false,
        all.subarray(0, SEALED_CHUNK_BYTES),
      ))
        this.push(part);
      const rest = all.subarray(SEALED_CHUNK_BYTES);
      this.pending = [rest];
      this.pendingBytes = rest.length;
    }
    done();
  }

  override _flush(done: TransformCallback): void {
    if (!this.started) this.push(this.header.bytes);
    for (const part of sealChunk(this.key, this.header, this.index, true, Buffer.concat(this.pending)))
      this.push(part);
    done();
  }
}

/**
 * A stream opening sealed chunks, starting at chunk `firstChunk` of a body of `totalChunks`
 * (after the header: the caller reads and checks it), dropping `skip` bytes of the first chunk's
 * plaintext and ending after `length` bytes (undefined: to the end). Errors with
 * `SealedDamaged` as soon as a chunk fails to authenticate or the body ends early.
 */
export class UnsealStream extends Transform {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private index: number;
  private skip: number;
  private left: number | undefined;

  constructor(
    private readonly key: Buffer,
    private readonly header: SealedHeader,
    private readonly totalChunks: number,
    options: { firstChunk?: number; skip?: number; length?: number } = {},
  ) {
    super();
    this.index = options.firstChunk ?? 0;
    this.skip = options.skip ?? 0;
    this.left = options.length;
  }

  private deliver(plain: Buffer): void {
    let out = plain;
    if (this.skip > 0) {
      const n = Math.min(this.skip, out.length);
      out = out.subarray(n);
      this.skip -= n;
    }
    if (this.left !== undefined) {
      out = out.subarray(0, this.left);
      this.left -= out.length;
    }
    if (out.length > 0) this.push(out);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    try {
      while (this.pendingBytes >= SEALED_STRIDE && this.index < this.totalChunks - 1) {
        const all = Buffer.concat(this.pending);
        this.deliver(openChunk(this.key, this.header, this.index, false, all.subarray(0, SEALED_STRIDE)));
        this.index++;
        const rest = all.subarray(SEALED_STRIDE);
        this.pending = [rest];
        this.pendingBytes = rest.length;
      }
      done();
    } catch (e) {
      done(e as Error);
    }
  }

  override _flush(done: TransformCallback): void {
    try {
      const rest = Buffer.concat(this.pending);
      const last = this.index === this.totalChunks - 1;
      if (rest.length > 0 || last) {
        if (rest.length > SEALED_STRIDE) throw new SealedDamaged("sealed body is longer than its chunks");
        this.deliver(openChunk(this.key, this.header, this.index, last, rest));
      } else if (this.left === undefined) {
        // A read to the end must reach the last chunk: a body cut at a chunk boundary is damaged.
        throw new SealedDamaged("sealed body ends before its last chunk");
      }
      done();
    } catch (e) {
      done(e as Error);
    }
  }
}

/** How many chunks a sealed body of `sealed` bytes has (undefined: an impossible size). */
export function chunkCount(sealed: number): number | undefined {
  const plain = plainSize(sealed);
  return plain === undefined ? undefined : Math.max(1, Math.ceil(plain / SEALED_CHUNK_BYTES));
}

/**
 * A blind search token: the keyed hash (HMAC-SHA-256, 92 bits kept) of a token under a tenant's
 * search key, as a `k` and 23 hex digits — one ASCII word to every tokenizer, so the index keeps
 * positions, frequencies and lengths (phrases and ranking work) without holding the word.
 */
export function blindToken(searchKey: Buffer, token: string): string {
  return `k${createHmac("sha256", searchKey).update(token, "utf8").digest("hex").slice(0, 23)}`;
}
