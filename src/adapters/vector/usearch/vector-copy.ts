/**
 * An in-memory 16-bit copy of an index's vectors, read when candidates are re-ranked instead of
 * each candidate's f32 vector in LMDB (ADR 0013: the LMDB reads, ~1.4 µs per vector when mapped
 * and several µs on first touch, were most of a re-ranked query).
 *
 * Formats: `f16` (IEEE half: 1 sign, 5 exponent, 10 fraction bits; components below 2^-14 in
 * magnitude, the half's subnormals, are kept as zero) and `bf16` (the upper half of the f32, rounded
 * to nearest even). Both decode to the exact f32 of the kept value with integer operations only: a
 * bf16 is the upper half of its f32; an f16's sign, exponent and fraction move into an f32's
 * places with the exponent rebiased (+112), zero staying zero. (Moving the bits without the
 * rebias gives the value times 2^-112, which the native kernels' norms square into f32 underflow
 * on some builds: never do that.) The integer decode serves finite halves only, so it is used for
 * the cosine metric (unit vectors); otherwise an f16 copy decodes through a 65,536-entry table.
 * Rows live in pages of {@link PAGE_ROWS} rows so that growing never copies what is held; a slot
 * freed by a remove is zeroed and reused. LMDB stays the store of record: the copy is derived,
 * written with each upsert, cleared with each remove and rebuilt from LMDB on open.
 */

export type CopyFormat = "f16" | "bf16";

/** Rows per page (1.5 MB at 768 dimensions). */
export const PAGE_ROWS = 1024;
const PAGE_SHIFT = 10;

const scratch = new Float32Array(1);
const scratchBits = new Uint32Array(scratch.buffer);

/** The IEEE half nearest `x` (ties to even; overflow to ±∞, NaN kept). */
export function toF16(x: number): number {
  scratch[0] = x;
  return f16OfBits(scratchBits[0] as number);
}

/** {@link toF16} of the f32 whose bits are `bits`. */
function f16OfBits(bits: number): number {
  const sign = (bits >>> 16) & 0x8000;
  const exponent = (bits >>> 23) & 0xff;
  let fraction = bits & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (fraction ? 0x200 : 0);
  const e = exponent - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // Subnormal half (or zero).
    if (e < -10) return sign;
    fraction |= 0x800000;
    const shift = 14 - e;
    let half = fraction >>> shift;
    const rest = fraction & ((1 << shift) - 1);
    const midway = 1 << (shift - 1);
    if (rest > midway || (rest === midway && half & 1)) half++;
    return sign | half;
  }
  // A carry out of the fraction rounds into the exponent (up to ∞), as it should.
  let half = (e << 10) | (fraction >>> 13);
  const rest = fraction & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && half & 1)) half++;
  return sign | half;
}

/** The bfloat16 nearest `x`: the upper 16 bits of its f32, rounded to nearest even (NaN kept). */
export function toBf16(x: number): number {
  scratch[0] = x;
  return bf16OfBits(scratchBits[0] as number);
}

/** {@link toBf16} of the f32 whose bits are `bits`. */
function bf16OfBits(bits: number): number {
  if ((bits & 0x7f800000) === 0x7f800000 && bits & 0x7fffff) return (bits >>> 16) | 0x40;
  return ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff;
}

let f16Table: Float32Array | undefined;

/** The f16 kept in the copy for the f32 of `bits`: {@link toF16}, its subnormals as zero. */
function f16KeptOfBits(bits: number): number {
  const half = f16OfBits(bits);
  return (half & 0x7c00) === 0 ? half & 0x8000 : half;
}

/** `(127 − 15) << 23`: the f32 exponent bias less the f16 one, in an f32's exponent field. */
const F16_REBIAS = 0x38000000;

/** The f32 value of every IEEE half (built once, 256 KB). */
export function f16Values(): Float32Array {
  if (f16Table) return f16Table;
  const table = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exponent = (h >> 10) & 0x1f;
    const fraction = h & 0x3ff;
    table[h] =
      exponent === 0
        ? sign * fraction * 2 ** -24
        : exponent === 31
          ? fraction
            ? Number.NaN
            : sign * Number.POSITIVE_INFINITY
          : sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
  }
  f16Table = table;
  return table;
}

export class VectorCopy {
  readonly format: CopyFormat;
  readonly dimensions: number;
  private readonly pages: Uint16Array[] = [];
  private readonly slots = new Map<number, number>();
  private readonly free: number[] = [];
  private nextSlot = 0;
  private readonly encode: (bits: number) => number;
  /** f16 decoded through the table (not by integer operations). */
  private readonly table: Float32Array | undefined;

  /**
   * `shift`: decode f16 with integer operations (finite values only: unit vectors; ignored by
   * bf16, which always decodes so).
   */
  constructor(format: CopyFormat, dimensions: number, options: { shift?: boolean } = {}) {
    this.format = format;
    this.dimensions = dimensions;
    this.encode = format === "f16" ? f16KeptOfBits : bf16OfBits;
    const shift = format === "bf16" || options.shift === true;
    this.table = shift ? undefined : f16Values();
  }

  /** Vectors held. */
  get size(): number {
    return this.slots.size;
  }

  /** Bytes of the pages allocated (rows held, free slots and the last page's spare rows). */
  get bytes(): number {
    return this.pages.length * PAGE_ROWS * this.dimensions * 2;
  }

  /** Stores the vector of `key` (replacing any it had). */
  put(key: number, vector: Float32Array): void {
    let slot = this.slots.get(key);
    if (slot === undefined) {
      slot = this.free.pop() ?? this.nextSlot++;
      this.slots.set(key, slot);
    }
    const page = this.page(slot);
    const offset = (slot & (PAGE_ROWS - 1)) * this.dimensions;
    const encode = this.encode;
    const bits = new Uint32Array(vector.buffer, vector.byteOffset, this.dimensions);
    for (let i = 0; i < this.dimensions; i++) page[offset + i] = encode(bits[i] as number);
  }

  /** Forgets the vector of `key`: its row is zeroed and its slot reused. */
  delete(key: number): void {
    const slot = this.slots.get(key);
    if (slot === undefined) return;
    this.slots.delete(key);
    const offset = (slot & (PAGE_ROWS - 1)) * this.dimensions;
    (this.pages[slot >>> PAGE_SHIFT] as Uint16Array).fill(0, offset, offset + this.dimensions);
    this.free.push(slot);
  }

  has(key: number): boolean {
    return this.slots.has(key);
  }

  /**
   * Decodes the vector of `key` into row `row` of `matrix` (`words` is the same buffer seen as
   * 32-bit words); false when the copy has no vector for `key`.
   */
  decodeInto(key: number, matrix: Float32Array, words: Uint32Array, row: number): boolean {
    const slot = this.slots.get(key);
    if (slot === undefined) return false;
    const page = this.pages[slot >>> PAGE_SHIFT] as Uint16Array;
    const dims = this.dimensions;
    const from = (slot & (PAGE_ROWS - 1)) * dims;
    const to = row * dims;
    const table = this.table;
    if (table) for (let i = 0; i < dims; i++) matrix[to + i] = table[page[from + i] as number] as number;
    else if (this.format === "bf16")
      for (let i = 0; i < dims; i++) words[to + i] = (page[from + i] as number) << 16;
    else
      for (let i = 0; i < dims; i++) {
        const half = page[from + i] as number;
        const magnitude = half & 0x7fff;
        words[to + i] = ((half & 0x8000) << 16) | (magnitude === 0 ? 0 : (magnitude << 13) + F16_REBIAS);
      }
    return true;
  }

  /** Releases every page. */
  clear(): void {
    this.pages.length = 0;
    this.slots.clear();
    this.free.length = 0;
    this.nextSlot = 0;
  }

  private page(slot: number): Uint16Array {
    const index = slot >>> PAGE_SHIFT;
    while (this.pages.length <= index) this.pages.push(new Uint16Array(PAGE_ROWS * this.dimensions));
    return this.pages[index] as Uint16Array;
  }
}
