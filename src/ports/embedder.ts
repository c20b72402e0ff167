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
  /** The scheme of its definition: `hashing` or `openai`. */
  readonly name: string;
  readonly dimensions: number;
  embed(texts: readonly string[]): Promise<Float32Array[]>;
}

/** What an embedder declares. The engine and the tests branch on these, never on its name. */
export interface EmbedderCapabilities {
  /**
   * It calls a model over the network: the service's settings (`url`, `api_key`, `model`,
   * `request_dimensions`, `batch_size`, `timeout_ms`) are its options, and its failures are
   * `EMBEDDER_UNAVAILABLE` / `EMBEDDER_FAILED`. Otherwise it computes vectors in this process
   * and needs nothing but `dimensions`.
   */
  readonly network: boolean;
}

/** Build-time description of an embedder: registers nothing on import. */
export interface EmbedderDefinition<Options> {
  /** What its embedders report as `Embedder.name`. */
  readonly scheme: string;
  readonly capabilities: EmbedderCapabilities;
  /** Parses and validates the embedder's options; throws `CONFIG_INVALID` with every problem. */
  parseOptions(raw: unknown): Options;
  create(options: Options): Promise<Embedder>;
}
