/**
 * LZ4 block compression for KV values (memory and redis adapters; lmdb compresses natively),
 * by the lz4-napi binding (lz4_flex). Blocks are raw LZ4 blocks; the caller keeps the
 * uncompressed length beside them (see the `z` frame in `common.ts`).
 */
import { compressSync, uncompressSync } from "lz4-napi";

/** Largest block LZ4 can produce for `n` input bytes. */
export function lz4Bound(n: number): number {
  return n + Math.floor(n / 255) + 16;
}

/** Compress `src` into one raw LZ4 block. */
export function lz4Compress(src: Uint8Array): Buffer {
  // lz4-napi prepends the uncompressed length (u32le); the block follows it.
  return compressSync(Buffer.from(src.buffer, src.byteOffset, src.byteLength)).subarray(4);
}

/** Decompress a raw LZ4 block of `size` uncompressed bytes; damaged input throws RangeError. */
export function lz4Decompress(src: Uint8Array, size: number): Buffer {
  const framed = Buffer.allocUnsafe(4 + src.length);
  framed.writeUInt32LE(size, 0);
  framed.set(src, 4);
  let out: Buffer;
  try {
    out = uncompressSync(framed);
  } catch (e) {
    throw new RangeError(`damaged LZ4 block: ${(e as Error).message}`);
  }
  if (out.length !== size) throw new RangeError(`LZ4 block holds ${out.length} bytes, expected ${size}`);
  return out;
}
