/**
 * LZ4 block format (https://github.com/lz4/lz4/blob/dev/doc/lz4_Block_format.md) in plain
 * TypeScript: no LZ4 package is installed, and lmdb-js keeps its native LZ4 to itself (it
 * compresses inside its own write path), so the redis and memory adapters use this one.
 *
 * Only the block format is implemented (no frames, no checksums): callers store the
 * uncompressed length beside the block. The compressor is the greedy single-probe hash
 * matcher of the reference implementation's fast mode; the decompressor checks every length
 * and offset against its buffers, so corrupt input throws instead of reading out of bounds.
 */

const MIN_MATCH = 4;
/** The last 5 bytes are always literals, and a match may not start within 12 bytes of the end. */
const LAST_LITERALS = 5;
const MF_LIMIT = 12;
const HASH_BITS = 14;
const MAX_OFFSET = 65_535;

/** Worst-case compressed size of `n` bytes (incompressible input grows slightly). */
export function lz4Bound(n: number): number {
  return n + Math.floor(n / 255) + 16;
}

function hash(x: number): number {
  return Math.imul(x, 2_654_435_761) >>> (32 - HASH_BITS);
}

function read32(b: Uint8Array, i: number): number {
  return (
    ((b[i] as number) |
      ((b[i + 1] as number) << 8) |
      ((b[i + 2] as number) << 16) |
      ((b[i + 3] as number) << 24)) >>>
    0
  );
}

/** Compress `src` into one LZ4 block. */
export function lz4Compress(src: Uint8Array): Buffer {
  const n = src.length;
  const dst = Buffer.allocUnsafe(lz4Bound(n));
  let op = 0;
  let anchor = 0;
  const writeLength = (len: number) => {
    let rest = len - 15;
    while (rest >= 255) {
      dst[op++] = 255;
      rest -= 255;
    }
    dst[op++] = rest;
  };
  const emit = (literalEnd: number, matchLength: number, offset: number) => {
    const literalLength = literalEnd - anchor;
    const tokenPos = op++;
    let token = Math.min(literalLength, 15) << 4;
    if (literalLength >= 15) writeLength(literalLength);
    dst.set(src.subarray(anchor, literalEnd), op);
    op += literalLength;
    if (matchLength > 0) {
      dst[op++] = offset & 0xff;
      dst[op++] = offset >>> 8;
      const ml = matchLength - MIN_MATCH;
      token |= Math.min(ml, 15);
      if (ml >= 15) writeLength(ml);
    }
    dst[tokenPos] = token;
  };

  if (n >= MF_LIMIT + 1) {
    const table = new Int32Array(1 << HASH_BITS).fill(-1);
    const matchLimit = n - LAST_LITERALS;
    const searchLimit = n - MF_LIMIT;
    let ip = 0;
    while (ip < searchLimit) {
      const seq = read32(src, ip);
      const h = hash(seq);
      const ref = table[h] as number;
      table[h] = ip;
      if (ref < 0 || ip - ref > MAX_OFFSET || read32(src, ref) !== seq) {
        ip++;
        continue;
      }
      // Extend backwards over pending literals, then forwards up to the last-literals limit.
      let start = ip;
      let back = ref;
      while (start > anchor && back > 0 && src[start - 1] === src[back - 1]) {
        start--;
        back--;
      }
      let end = ip + MIN_MATCH;
      let refEnd = ref + MIN_MATCH;
      while (end < matchLimit && src[end] === src[refEnd]) {
        end++;
        refEnd++;
      }
      emit(start, end - start, start - back);
      anchor = end;
      ip = end;
      if (ip - 2 >= 0 && ip - 2 < searchLimit) table[hash(read32(src, ip - 2))] = ip - 2;
    }
  }
  emit(n, 0, 0);
  return dst.subarray(0, op);
}

/** Decompress one LZ4 block whose uncompressed size is `size`; throws on malformed input. */
export function lz4Decompress(src: Uint8Array, size: number): Buffer {
  const dst = Buffer.allocUnsafe(size);
  let ip = 0;
  let op = 0;
  const fail = (why: string): never => {
    throw new RangeError(`corrupt LZ4 block: ${why}`);
  };
  const readLength = (base: number) => {
    let len = base;
    if (base === 15) {
      let b: number;
      do {
        if (ip >= src.length) fail("length runs past the input");
        b = src[ip++] as number;
        len += b;
      } while (b === 255);
    }
    return len;
  };
  for (;;) {
    if (ip >= src.length) fail("missing token");
    const token = src[ip++] as number;
    const literalLength = readLength(token >>> 4);
    if (ip + literalLength > src.length || op + literalLength > size) fail("literals out of bounds");
    dst.set(src.subarray(ip, ip + literalLength), op);
    ip += literalLength;
    op += literalLength;
    if (ip === src.length) break;
    if (ip + 2 > src.length) fail("truncated offset");
    const offset = (src[ip] as number) | ((src[ip + 1] as number) << 8);
    ip += 2;
    if (offset === 0 || offset > op) fail("offset out of bounds");
    const matchLength = readLength(token & 15) + MIN_MATCH;
    if (op + matchLength > size) fail("match out of bounds");
    // Byte by byte: a match may overlap its own output (offset < length repeats a pattern).
    let from = op - offset;
    for (let i = 0; i < matchLength; i++) dst[op++] = dst[from++] as number;
  }
  if (op !== size) fail(`decoded ${op} bytes, expected ${size}`);
  return dst;
}
