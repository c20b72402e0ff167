/**
 * Maps an embedder name to its definition (VEC-5), loaded on first use: `hashing` (embedded, no
 * network) or `openai` (any OpenAI-compatible embeddings API).
 */
import type { EmbedderDefinition } from "../../ports/embedder.js";
import { createRegistry } from "../registry.js";

const REGISTRY = createRegistry<EmbedderDefinition<unknown>>(
  { what: "embedder", operation: "embedder.registry", path: "embedder.backend" },
  {
    hashing: () => import("./hashing/index.js").then((m) => m.hashingEmbedder),
    openai: () => import("./openai/index.js").then((m) => m.openAiEmbedder),
  },
);

export const EMBEDDERS = REGISTRY.backends;

export const embedderDefinition = REGISTRY.definition;
