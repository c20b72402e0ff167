/**
 * The embedded default embedder: feature hashing of the full-text tokenizer's tokens
 * (`src/adapters/search/tokenize.ts`: NFKC, lower case, Latin words, CJK unigrams and bigrams)
 * into `dimensions` floats, L2-normalised. It needs no network and no model.
 *
 * Quality, honestly: this is a bag-of-words sketch, not a semantic model. Texts that share
 * words (or CJK characters and bigrams) are near; synonyms, paraphrases and translations are not
 * (`car` and `automobile` are unrelated). Token weights are sublinear (1 + ln tf) with a signed
 * hash to cancel collisions on average. Use it for lexical similarity and for running without a
 * model; configure an OpenAI-compatible embedder for semantic search.
 */
import { createHash } from "node:crypto";
import { z } from "zod";
import { KuraError } from "../../../core/errors.js";
import { parseOptions } from "../../../core/options.js";
import { indexTokens } from "../../../core/tokenize.js";
import type { Embedder, EmbedderDefinition } from "../../../ports/embedder.js";

export const hashingOptionsSchema = z
  .object({
    /** Length of every vector (`vector.dimensions`). Required. */
    dimensions: z.number().int().min(1).max(65_536),
  })
  .strict();
export type HashingOptions = z.infer<typeof hashingOptionsSchema>;

export const hashingEmbedder: EmbedderDefinition<HashingOptions> = {
  scheme: "hashing",
  capabilities: Object.freeze({ network: false }),
  parseOptions: (raw) => parseOptions(hashingOptionsSchema, raw, "embedder"),
  create: async (options) => createHashingEmbedder(options),
};

export function createHashingEmbedder(options: HashingOptions): Embedder {
  const { dimensions } = options;
  if (!Number.isInteger(dimensions) || dimensions < 1)
    throw new KuraError(
      "INVALID_ARGUMENT",
      `embedder dimensions must be a positive integer, got ${dimensions}`,
      {
        operation: "embed",
      },
    );
  const embedOne = (text: string): Float32Array => {
    const counts = new Map<string, number>();
    for (const token of indexTokens(text)) counts.set(token, (counts.get(token) ?? 0) + 1);
    const out = new Float32Array(dimensions);
    for (const [token, tf] of counts) {
      const digest = createHash("sha256").update(token).digest();
      const slot = digest.readUInt32LE(0) % dimensions;
      const sign = (digest[4] as number) & 1 ? -1 : 1;
      out[slot] = (out[slot] as number) + sign * (1 + Math.log(tf));
    }
    let norm = 0;
    for (const x of out) norm += x * x;
    if (norm > 0) {
      const scale = 1 / Math.sqrt(norm);
      for (let i = 0; i < out.length; i++) out[i] = (out[i] as number) * scale;
    }
    return out;
  };
  return {
    name: "hashing",
    dimensions,
    async embed(texts: readonly string[]) {
      return texts.map(embedOne);
    },
  };
}
