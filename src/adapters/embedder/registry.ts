/**
 * The embedder of `config.embedder` (VEC-5), giving vectors of `vector.dimensions`:
 * `hashing` (embedded, no network) or `openai` (any OpenAI-compatible embeddings API).
 */
import type { KuraConfig } from "../../config/index.js";
import type { Embedder } from "../../ports/embedder.js";
import { createHashingEmbedder } from "./hashing/index.js";
import { createOpenAiEmbedder } from "./openai/index.js";

export function createEmbedder(config: KuraConfig): Embedder {
  const e = config.embedder;
  const dimensions = config.vector.dimensions;
  if (e.backend === "hashing") return createHashingEmbedder({ dimensions });
  return createOpenAiEmbedder({
    baseUrl: e.url,
    ...(e.api_key === null ? {} : { apiKey: e.api_key }),
    model: e.model,
    dimensions,
    requestDimensions: e.request_dimensions,
    batchSize: e.batch_size,
    timeoutMs: e.timeout_ms,
  });
}
