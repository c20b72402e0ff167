/**
 * An OpenAI-compatible embeddings client (`POST {url}/embeddings`, body
 * `{model, input: string[], dimensions?}`, answer `{data: [{index, embedding}]}`), usable with
 * OpenAI and the many servers that speak the same API (vLLM, Ollama, LiteLLM, TEI…).
 *
 * Texts are sent in batches of `batch_size`. A batch that fails on the network, times out or gets
 * 408/429/5xx is retried up to `retries` times with exponential backoff (honouring `Retry-After`
 * seconds); then `EMBEDDER_UNAVAILABLE`. Other refusals (400, 401, 404…) are `EMBEDDER_FAILED` at
 * once. Vectors of the wrong length are `VECTOR_DIMENSIONS_MISMATCH`.
 */
import { z } from "zod";
import { KuraError } from "../../../core/errors.js";
import { parseOptions } from "../../../core/options.js";
import { checkVector } from "../../../core/vectors.js";
import type { Embedder, EmbedderDefinition } from "../../../ports/embedder.js";

export const openAiOptionsSchema = z
  .object({
    /** Base URL of the API, e.g. `https://api.openai.com/v1` (requests go to `{url}/embeddings`). */
    url: z.string().regex(/^https?:\/\//i, "must be an http:// or https:// URL"),
    /** Bearer token of the API (a secret); none for servers that need none. */
    api_key: z.string().min(1).nullable().default(null),
    model: z.string().min(1),
    /** Length of every vector (`vector.dimensions`). Required. */
    dimensions: z.number().int().min(1).max(65_536),
    /** Send `dimensions` in the request (models that can shorten their output); default false. */
    request_dimensions: z.boolean().default(false),
    /** Texts per request; default 96. */
    batch_size: z.number().int().min(1).max(2048).default(96),
    /** Retries of a batch that failed on the network, timed out or got 408/429/5xx; default 3. */
    retries: z.number().int().min(0).max(10).default(3),
    /** First backoff delay in ms, doubled per retry; default 250. */
    backoff_ms: z.number().int().min(0).default(250),
    /** Time one request may take, in ms; default 30000. */
    timeout_ms: z.number().int().min(1).default(30_000),
  })
  .strict();
export type OpenAiEmbedderOptions = z.infer<typeof openAiOptionsSchema>;

export const openAiEmbedder: EmbedderDefinition<OpenAiEmbedderOptions> = {
  scheme: "openai",
  capabilities: Object.freeze({ network: true }),
  parseOptions: (raw) => parseOptions(openAiOptionsSchema, raw, "embedder"),
  create: async (options) => createOpenAiEmbedder(options),
};

const RETRYABLE_STATUS = new Set([408, 429, 500, 502, 503, 504]);

function createOpenAiEmbedder(options: OpenAiEmbedderOptions): Embedder {
  const { batch_size: batchSize, retries, backoff_ms: backoffMs, timeout_ms: timeoutMs } = options;
  const url = `${options.url.replace(/\/+$/, "")}/embeddings`;
  const operation = "embed";

  const once = async (
    input: readonly string[],
  ): Promise<{ vectors?: Float32Array[]; retryAfter?: number }> => {
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (options.api_key) headers.authorization = `Bearer ${options.api_key}`;
    const body: Record<string, unknown> = { model: options.model, input };
    if (options.request_dimensions) body.dimensions = options.dimensions;
    const res = await fetch(url, {
      method: "POST",
      headers,
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    });
    if (RETRYABLE_STATUS.has(res.status)) {
      await res.body?.cancel();
      const after = Number(res.headers.get("retry-after"));
      return Number.isFinite(after) && after > 0 ? { retryAfter: after * 1000 } : {};
    }
    if (!res.ok) {
      const text = (await res.text()).slice(0, 500);
      throw new KuraError("EMBEDDER_FAILED", `the embeddings service answered ${res.status}: ${text}`, {
        operation,
        context: { status: res.status, url },
      });
    }
    const json = (await res.json()) as { data?: Array<{ index?: number; embedding?: unknown }> };
    const data = json.data;
    if (!Array.isArray(data) || data.length !== input.length)
      throw new KuraError("EMBEDDER_FAILED", "the embeddings service answered an unexpected shape", {
        operation,
        context: { url, expected: input.length, got: Array.isArray(data) ? data.length : typeof data },
      });
    const vectors = new Array<Float32Array>(input.length);
    for (const [position, row] of data.entries()) {
      const at = typeof row.index === "number" ? row.index : position;
      if (!Array.isArray(row.embedding) || at < 0 || at >= input.length)
        throw new KuraError("EMBEDDER_FAILED", "the embeddings service answered an unexpected shape", {
          operation,
          context: { url },
        });
      vectors[at] = checkVector(row.embedding as number[], options.dimensions, operation);
    }
    return { vectors };
  };

  const batch = async (input: readonly string[]): Promise<Float32Array[]> => {
    let last: unknown;
    for (let attempt = 0; attempt <= retries; attempt++) {
      let wait = backoffMs * 2 ** attempt;
      try {
        const result = await once(input);
        if (result.vectors) return result.vectors;
        if (result.retryAfter !== undefined) wait = Math.min(result.retryAfter, 30_000);
        last = undefined;
      } catch (e) {
        if (e instanceof KuraError) throw e;
        last = e;
      }
      if (attempt < retries) await new Promise((resolve) => setTimeout(resolve, wait));
    }
    throw new KuraError(
      "EMBEDDER_UNAVAILABLE",
      `the embeddings service did not answer after ${retries + 1} attempts`,
      {
        operation,
        context: { url },
        ...(last === undefined ? {} : { cause: last }),
      },
    );
  };

  return {
    name: "openai",
    dimensions: options.dimensions,
    async embed(texts: readonly string[]) {
      const out: Float32Array[] = [];
      for (let i = 0; i < texts.length; i += batchSize)
        out.push(...(await batch(texts.slice(i, i + batchSize))));
      return out;
    },
  };
}
