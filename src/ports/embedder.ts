/**
 * The `Embedder` port (VEC-5): text → vectors of a fixed number of dimensions.
 *
 * Behavior every adapter guarantees:
 * - `embed(texts)` returns one vector per text, in order, each of exactly `dimensions` finite
 *   numbers; an empty input returns an empty list without any work.
 * - The same text gives the same vector (for the embedded `hashing` embedder, bit for bit).
 * - Failures of a remote model are `KuraError`s: `EMBEDDER_UNAVAILABLE` (kind `Unavailable`,
 *   retryable) after the adapter's own retries, `EMBEDDER_FAILED` when the service refuses the
 *   request, `VECTOR_DIMENSIONS_MISMATCH` when it answers with vectors of another length.
 */
export interface Embedder {
  /** `hashing` or `openai`. */
  readonly name: string;
  readonly dimensions: number;
  embed(texts: readonly string[]): Promise<Float32Array[]>;
}
