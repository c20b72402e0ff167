/**
 * Exact distances for the usearch index (re-ranking and `accurate`): the vectors compared are
 * copied into one matrix (reused, grown as needed) and ranked against the query by usearch's
 * native exact search on one thread. Its binding reads both from the start of their buffers, so
 * each is a view at offset 0 of its own buffer. Stored and query vectors are both prepared, so
 * cosine is 1 − a·b like ip.
 */
import { exactSearch, MetricKind } from "usearch";
import type { VectorMetric } from "../../../ports/vector-index.js";
import type { VectorCopy } from "./vector-copy.js";

/** A vector of the matrix with its exact distance to the query. */
export interface Ranked {
  key: number;
  distance: number;
}

export class ExactMatrix {
  /** The query as the rows hold it. */
  readonly queryRow: Float32Array;
  private readonly metric: MetricKind;
  private readonly rowBytes: number;
  private matrix: Float32Array;
  private matrixBytes: Uint8Array;
  private matrixWords: Uint32Array;
  private rowKeys = new Float64Array(64);

  constructor(
    private readonly dimensions: number,
    metric: VectorMetric,
  ) {
    this.metric = metric === "l2" ? MetricKind.L2sq : MetricKind.IP;
    this.queryRow = new Float32Array(dimensions);
    this.rowBytes = dimensions * 4;
    this.matrix = new Float32Array(dimensions * 64);
    this.matrixBytes = new Uint8Array(this.matrix.buffer);
    this.matrixWords = new Uint32Array(this.matrix.buffer);
  }

  /** Room for at least `rows` rows. */
  reserve(rows: number): void {
    const dimensions = this.dimensions;
    if (rows * dimensions <= this.matrix.length) return;
    let capacity = this.matrix.length / dimensions;
    while (capacity < rows) capacity *= 2;
    this.matrix = new Float32Array(capacity * dimensions);
    this.matrixBytes = new Uint8Array(this.matrix.buffer);
    this.matrixWords = new Uint32Array(this.matrix.buffer);
    this.rowKeys = new Float64Array(capacity);
  }

  /** Row `row` from a stored vector's bytes; false unless they are one vector's. */
  setBytes(row: number, key: number, bytes: Uint8Array | undefined): boolean {
    // A window on a shared buffer is copied through a plain view of that window.
    if (!bytes || bytes.length !== this.rowBytes) return false;
    this.matrixBytes.set(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length), row * this.rowBytes);
    this.rowKeys[row] = key;
    return true;
  }

  /** Row `row` from a vector in memory; false without one. */
  setVector(row: number, key: number, v: Float32Array | undefined): boolean {
    if (!v) return false;
    this.matrix.set(v, row * this.dimensions);
    this.rowKeys[row] = key;
    return true;
  }

  /** Row `row` decoded from the re-ranking copy; false if the copy has no `key`. */
  setFromCopy(row: number, key: number, copy: VectorCopy): boolean {
    if (!copy.decodeInto(key, this.matrix, this.matrixWords, row)) return false;
    this.rowKeys[row] = key;
    return true;
  }

  /**
   * The first `rows` rows ranked by exact distance to `against` (the query as the rows hold
   * it), nearest first, pushed onto `out`: those within the first `k`, and any beyond tied with
   * the k-th (ties are broken by id afterwards).
   */
  rank(rows: number, k: number, out: Ranked[], against = this.queryRow): void {
    if (rows === 0) return;
    const dimensions = this.dimensions;
    const found = exactSearch(
      this.matrix.subarray(0, rows * dimensions),
      against,
      dimensions,
      rows,
      this.metric,
      1,
    );
    const kth = found.distances[Math.min(k, rows) - 1] as number;
    for (let i = 0; i < rows; i++) {
      const distance = found.distances[i] as number;
      if (i >= k && distance > kth) break;
      out.push({ key: this.rowKeys[Number(found.keys[i])] as number, distance });
    }
  }
}
