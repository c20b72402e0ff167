/**
 * SHA-256 helpers for BLOB-3: hash while writing, verify while reading.
 */
import { createHash, type Hash } from "node:crypto";
import { Readable, Transform, type TransformCallback } from "node:stream";
import { KuraError } from "./errors.js";

export function sha256Hex(data: Uint8Array | string): string {
  return createHash("sha256").update(data).digest("hex");
}

/** A pass-through stream that hashes and counts what flows through it. */
export class HashingStream extends Transform {
  private readonly hash: Hash = createHash("sha256");
  private digest: string | undefined;
  size = 0;

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.hash.update(chunk);
    this.size += chunk.length;
    done(null, chunk);
  }

  /** The hex SHA-256 of everything that passed; valid once the stream has ended. */
  sha256(): string {
    this.digest ??= this.hash.digest("hex");
    return this.digest;
  }
}

/**
 * A pass-through stream that fails with `BLOB_CHECKSUM_MISMATCH` instead of ending when the
 * bytes do not hash to `expected` (or do not add up to `expectedSize`): a consumer never sees a
 * clean end-of-stream for corrupt data.
 */
export class VerifyingStream extends Transform {
  private readonly hash: Hash = createHash("sha256");
  private seen = 0;

  constructor(
    private readonly expected: string,
    private readonly key: string,
    private readonly expectedSize?: number,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.hash.update(chunk);
    this.seen += chunk.length;
    done(null, chunk);
  }

  override _flush(done: TransformCallback): void {
    const actual = this.hash.digest("hex");
    if (actual !== this.expected || (this.expectedSize !== undefined && this.seen !== this.expectedSize)) {
      done(checksumMismatch(this.key, this.expected, actual, "blob.get"));
      return;
    }
    done();
  }
}

export function checksumMismatch(
  key: string,
  expected: string,
  actual: string,
  operation: string,
): KuraError {
  return new KuraError("BLOB_CHECKSUM_MISMATCH", `checksum mismatch reading ${key}`, {
    operation,
    context: { key, expected, actual },
  });
}

/** Throws `BLOB_CHECKSUM_MISMATCH` unless `data` hashes to `expected`. */
export function verifyBuffer(
  data: Uint8Array,
  expected: string | undefined,
  key: string,
  operation: string,
): void {
  if (expected === undefined) return;
  const actual = sha256Hex(data);
  if (actual !== expected) throw checksumMismatch(key, expected, actual, operation);
}

/** Read a whole stream into one Buffer. */
export async function collect(stream: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
  return Buffer.concat(chunks);
}

/** Any body as a Readable. */
export function toReadable(body: Uint8Array | AsyncIterable<Uint8Array>): Readable {
  if (body instanceof Readable) return body;
  if (body instanceof Uint8Array)
    return Readable.from([Buffer.from(body.buffer, body.byteOffset, body.byteLength)]);
  return Readable.from(body, { objectMode: false });
}

/**
 * Read from `stream` until `limit` bytes are buffered or it ends. Returns the bytes and, when
 * the stream did not end, a Readable replaying them followed by the rest.
 */
export async function peek(
  stream: AsyncIterable<Uint8Array>,
  limit: number,
): Promise<{ head: Buffer; ended: boolean; rest: Readable }> {
  const iterator = stream[Symbol.asyncIterator]();
  const chunks: Buffer[] = [];
  let total = 0;
  while (total < limit) {
    const next = await iterator.next();
    if (next.done) {
      const head = Buffer.concat(chunks);
      return { head, ended: true, rest: Readable.from([head]) };
    }
    const chunk = Buffer.from(next.value);
    chunks.push(chunk);
    total += chunk.length;
  }
  const head = Buffer.concat(chunks);
  async function* replay(): AsyncGenerator<Buffer> {
    yield head;
    for (;;) {
      const next = await iterator.next();
      if (next.done) return;
      yield Buffer.from(next.value);
    }
  }
  return { head, ended: false, rest: Readable.from(replay()) };
}
