/**
 * The faiss index's trained inverted-file index (IVF-PQ or IVF-Flat) and its file,
 * `index.faiss`: trained once on a sample of the vectors of record, loaded when the store of
 * record says the file is current, rebuilt from the vectors of record otherwise.
 *
 * Labels: the binding labels added vectors `ntotal .. ntotal + n − 1` and takes no ids of its own,
 * so `remove_ids` would let a later add reuse a live label. Removal therefore masks: a replaced
 * or removed item's label maps to no key, and once masked labels outnumber live ones the index
 * is rebuilt (the empty trained index, kept beside it, gets every live vector again; no
 * retraining).
 *
 * The file: a 4-byte length, a JSON header (kind, lists, sub-quantizers, dimensions, metric,
 * sizes), the labels' keys (u32 each, 0 for a masked label), the empty trained index and the
 * filled one as FAISS serializes them. Written through a temp file and a rename.
 */
import { readFileSync } from "node:fs";
import { rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { VectorMetric } from "../../../ports/vector-index.js";
import { type FaissIndex, type FaissModule, METRIC_INNER_PRODUCT, METRIC_L2 } from "./binding.js";

export type FaissKind = "ivf_pq" | "ivf_flat" | "flat";

export interface AnnConfig {
  dimensions: number;
  metric: VectorMetric;
  kind: Exclude<FaissKind, "flat">;
  nlist: number;
  /** PQ sub-quantizers (ivf_pq). */
  m: number;
}

const INDEX_FILE = "index.faiss";
/** Vectors handed to the binding per call (it copies a plain array of numbers). */
const ADD_BATCH = 1024;

/** The FAISS factory descriptor: seed 004's `IVF4096,PQ64` by default. */
export function descriptor(c: AnnConfig): string {
  // `np`: no polysemous training (its codes serve Hamming filtering, unused here; it made
  // training ~100× slower: 60 s instead of 0.7 s for 3,000 × 64, PQ8).
  return c.kind === "ivf_pq" ? `IVF${c.nlist},PQ${c.m}np` : `IVF${c.nlist},Flat`;
}

function plain(vectors: readonly Float32Array[], dimensions: number): number[] {
  const out = new Array<number>(vectors.length * dimensions);
  let at = 0;
  for (const v of vectors) for (let i = 0; i < dimensions; i++) out[at++] = v[i] as number;
  return out;
}

function sameConfig(a: AnnConfig, b: Partial<AnnConfig>): boolean {
  return (
    a.kind === b.kind &&
    a.nlist === b.nlist &&
    a.m === b.m &&
    a.dimensions === b.dimensions &&
    a.metric === b.metric
  );
}

export class Ann {
  /** Label → key of the item it holds; 0 when masked (keys start at 1). */
  private labelKeys: number[] = [];
  private readonly labelOf = new Map<number, number>();
  private masked = 0;

  private constructor(
    private readonly faiss: FaissModule,
    readonly config: AnnConfig,
    /** The trained index before any vector was added. */
    private readonly template: Buffer,
    private index: FaissIndex,
  ) {}

  /**
   * Trains a new index on `sample` (L2 for `l2`, inner product for `cosine` — the vectors are
   * unit length — and `ip`). Throws what FAISS throws (too few points for the lists).
   */
  static train(faiss: FaissModule, config: AnnConfig, sample: readonly Float32Array[]): Ann {
    const metric = config.metric === "l2" ? METRIC_L2 : METRIC_INNER_PRODUCT;
    const index = faiss.Index.fromFactory(config.dimensions, descriptor(config), metric);
    index.train(plain(sample, config.dimensions));
    return new Ann(faiss, config, index.toBuffer(), index);
  }

  /**
   * The index saved in `dir`, built with `config`: as saved when `current` (the store of record
   * says so) and it holds exactly `keys`; else emptied and refilled from `vectorOf` with the
   * file's trained template (`rebuilt`). Undefined when the file is missing, unreadable or built
   * for another configuration: the caller trains anew.
   */
  static open(
    faiss: FaissModule,
    config: AnnConfig,
    dir: string,
    current: boolean,
    keys: readonly number[],
    vectorOf: (key: number) => Float32Array | undefined,
  ): { ann: Ann; rebuilt: boolean } | undefined {
    let ann: Ann;
    try {
      const file = readFileSync(join(dir, INDEX_FILE));
      const headerBytes = file.readUInt32LE(0);
      const header = JSON.parse(file.subarray(4, 4 + headerBytes).toString("utf8")) as Partial<AnnConfig> & {
        labels: number;
        template: number;
        index: number;
      };
      if (!sameConfig(config, header)) return undefined;
      let at = 4 + headerBytes;
      const labelKeys = new Array<number>(header.labels);
      for (let i = 0; i < header.labels; i++, at += 4) labelKeys[i] = file.readUInt32LE(at);
      const template = Buffer.from(file.subarray(at, at + header.template));
      at += header.template;
      if (!current) {
        ann = new Ann(faiss, config, template, faiss.Index.fromBuffer(template));
        ann.rebuild(keys, vectorOf);
        return { ann, rebuilt: true };
      }
      ann = new Ann(faiss, config, template, faiss.Index.fromBuffer(file.subarray(at, at + header.index)));
      ann.labelKeys = labelKeys;
      for (const [label, key] of labelKeys.entries()) {
        if (key === 0) ann.masked++;
        else ann.labelOf.set(key, label);
      }
    } catch {
      return undefined;
    }
    const stale =
      ann.index.ntotal() !== ann.labelKeys.length ||
      ann.labelOf.size !== keys.length ||
      keys.some((key) => !ann.labelOf.has(key));
    if (!stale) return { ann, rebuilt: false };
    ann.rebuild(keys, vectorOf);
    return { ann, rebuilt: true };
  }

  /** Items held (masked labels excluded). */
  get size(): number {
    return this.labelOf.size;
  }

  /** Vectors in the FAISS index, masked ones included. */
  get total(): number {
    return this.labelKeys.length;
  }

  add(keys: readonly number[], vectors: readonly Float32Array[]): void {
    const { dimensions } = this.config;
    for (let start = 0; start < keys.length; start += ADD_BATCH) {
      this.index.add(plain(vectors.slice(start, start + ADD_BATCH), dimensions));
      for (const key of keys.slice(start, start + ADD_BATCH)) {
        this.labelOf.set(key, this.labelKeys.length);
        this.labelKeys.push(key);
      }
    }
  }

  /** Masks the label of `key` (absent: nothing). */
  remove(key: number): void {
    const label = this.labelOf.get(key);
    if (label === undefined) return;
    this.labelOf.delete(key);
    this.labelKeys[label] = 0;
    this.masked++;
  }

  /** Whether masked labels outnumber live ones enough to rebuild. */
  get wasteful(): boolean {
    return this.masked > 1024 && this.masked > this.labelOf.size;
  }

  /** Empties the index (the trained lists stay) and adds `keys` again. */
  rebuild(keys: readonly number[], vectorOf: (key: number) => Float32Array | undefined): void {
    this.index = this.faiss.Index.fromBuffer(this.template);
    this.labelKeys = [];
    this.labelOf.clear();
    this.masked = 0;
    const { dimensions } = this.config;
    for (let start = 0; start < keys.length; start += ADD_BATCH) {
      const slice: number[] = [];
      const rows: Float32Array[] = [];
      for (const key of keys.slice(start, start + ADD_BATCH)) {
        const v = vectorOf(key);
        if (v?.length !== dimensions) continue;
        slice.push(key);
        rows.push(v);
      }
      this.add(slice, rows);
    }
  }

  /**
   * Keys of up to `want` nearest labels (masked ones dropped), FAISS's order, searching `nprobe`
   * lists; `exhausted` when the probed lists held fewer than asked for (asking for more finds
   * no more).
   */
  search(query: Float32Array, want: number, nprobe: number): { keys: number[]; exhausted: boolean } {
    const total = this.labelKeys.length;
    if (total === 0) return { keys: [], exhausted: true };
    this.index.setNprobe?.(Math.min(nprobe, this.config.nlist));
    const asked = Math.min(want, total);
    const found = this.index.search(Array.from(query), asked);
    const keys: number[] = [];
    let labels = 0;
    for (const label of found.labels) {
      if (label < 0) continue;
      labels++;
      const key = this.labelKeys[label];
      if (key) keys.push(key);
    }
    return { keys, exhausted: labels < asked };
  }

  /** The bytes the file holds (the index's serialized size). */
  serializedBytes(): number {
    return this.index.toBuffer().byteLength + this.template.byteLength + 4 * this.labelKeys.length;
  }

  /** Writes `index.faiss` in `dir`. */
  async write(dir: string): Promise<void> {
    const indexBytes = this.index.toBuffer();
    const header = Buffer.from(
      JSON.stringify({
        ...this.config,
        labels: this.labelKeys.length,
        template: this.template.byteLength,
        index: indexBytes.byteLength,
      }),
      "utf8",
    );
    const labels = Buffer.alloc(4 * this.labelKeys.length);
    for (const [i, key] of this.labelKeys.entries()) labels.writeUInt32LE(key, 4 * i);
    const length = Buffer.alloc(4);
    length.writeUInt32LE(header.byteLength, 0);
    const file = join(dir, INDEX_FILE);
    await writeFile(`${file}.tmp`, Buffer.concat([length, header, labels, this.template, indexBytes]));
    await rename(`${file}.tmp`, file);
  }

  /** Removes `index.faiss` from `dir` (the index is untrained again, or empty). */
  static async erase(dir: string): Promise<void> {
    await rm(join(dir, INDEX_FILE), { force: true });
  }
}
