/**
 * Maps an embedder name to its definition (VEC-5), loaded on first use: `hashing` (embedded, no
 * network) or `openai` (any OpenAI-compatible embeddings API).
 */
import { KuraError } from "../../core/errors.js";
import type { EmbedderDefinition } from "../../ports/embedder.js";

type Loader = () => Promise<EmbedderDefinition<unknown>>;

const LOADERS: Record<string, Loader> = {
  hashing: async () => (await import("./hashing/index.js")).hashingEmbedder as EmbedderDefinition<unknown>,
  openai: async () => (await import("./openai/index.js")).openAiEmbedder as EmbedderDefinition<unknown>,
};

export const EMBEDDERS = Object.freeze(Object.keys(LOADERS));

export async function embedderDefinition(scheme: string): Promise<EmbedderDefinition<unknown>> {
  const load = LOADERS[scheme];
  if (!load) {
    throw new KuraError("CONFIG_INVALID", `unknown embedder ${JSON.stringify(scheme)}`, {
      operation: "embedder.registry",
      context: {
        problems: [{ path: "embedder.backend", message: `must be one of ${EMBEDDERS.join(", ")}` }],
      },
    });
  }
  return load();
}
