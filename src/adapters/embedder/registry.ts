/**
 * Maps an embedder name to its definition (VEC-5), loaded on first use: `hashing` (embedded, no
 * network) or `openai` (any OpenAI-compatible embeddings API).
 */

import type { EmbedderDefinition } from "../../ports/embedder.js";
import { createRegistry } from "../registry.js";

type Loader = () => Promise<EmbedderDefinition<unknown>>;

const LOADERS: Record<string, Loader> = {
  hashing: async () => (await import("./hashing/index.js")).hashingEmbedder as EmbedderDefinition<unknown>,
  openai: async () => (await import("./openai/index.js")).openAiEmbedder as EmbedderDefinition<unknown>,
};

const REGISTRY = createRegistry<EmbedderDefinition<unknown>>(
  { what: "embedder", operation: "embedder.registry", path: "embedder.backend" },
  LOADERS,
);

export const EMBEDDERS = REGISTRY.backends;

export function embedderDefinition(scheme: string): Promise<EmbedderDefinition<unknown>> {
  return REGISTRY.definition(scheme);
}
