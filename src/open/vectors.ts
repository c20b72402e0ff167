/**
 * Opening the vector plane's adapters from a configuration (VEC-1, VEC-5): the indexes of
 * `vector.backend` and the embedder of `embedder.backend`, each given the settings its
 * capabilities say it uses — a server's `url`, `schema` and pool size, a directory under
 * `data_dir` (none beside an in-memory catalog), a quantization, a model service.
 *
 * Indexes that declare `remote` (pgvector) get the catalog's server-side time limits and the
 * remote layers (`layers/port-layers.ts`, `VECTOR_CALLS`), as the search index does; embedded
 * ones (usearch, exact) get none: their calls run in this process, nothing to reconnect to.
 */
import { join } from "node:path";
import { embedderDefinition } from "../adapters/embedder/registry.js";
import { vectorIndexDefinition } from "../adapters/vector/registry.js";
import type { KuraConfig } from "../config/index.js";
import { withRemoteLayers } from "../layers/port-layers.js";
import type { RetryOptions } from "../layers/retry.js";
import type { Embedder } from "../ports/embedder.js";
import { VECTOR_CALLS, VECTOR_INDEXES_CALLS, type VectorIndexes } from "../ports/vector-index.js";
import { catalogInMemory, readTimeoutMs, serverTimeouts } from "./search.js";

/**
 * The indexes of this configuration (Kura's own and tenant collections). Indexes in a server
 * share one pool of at most `maxConnections` (default `vector.max_connections`), opened on first use.
 */
export async function openVectorIndexes(
  config: KuraConfig,
  o: {
    maxConnections?: number;
    /** The retry layer's settings (tests); `false` for none. */
    retry?: RetryOptions | false;
  } = {},
): Promise<VectorIndexes> {
  const v = config.vector;
  const definition = await vectorIndexDefinition(v.backend);
  const { shared, persistent, quantization, remote } = definition.capabilities;
  const options = definition.parseOptions({
    mode: v.mode,
    ...(quantization ? { quantization: v.quantization } : {}),
    ...(shared
      ? { url: v.url, schema: v.schema, max_connections: o.maxConnections ?? v.max_connections }
      : {}),
    ...(persistent && !shared && !catalogInMemory(config) ? { dir: join(config.data_dir, "vectors") } : {}),
    ...(remote ? serverTimeouts(config) : {}),
    // Options of one backend (faiss): another's schema refuses them as unknown keys.
    ...(v.module_path === undefined ? {} : { module_path: v.module_path }),
    ...(v.faiss === undefined ? {} : v.faiss),
  });
  const indexes = await definition.create(options, { durability: config.durability });
  if (!remote) return indexes;
  const layered = {
    plane: "vector",
    readTimeoutMs: readTimeoutMs(config),
    ...(o.retry === undefined ? {} : { retry: o.retry }),
  };
  // Opening an index creates it when missing: repeatable, like every index's reads and writes.
  const opener = withRemoteLayers(indexes, { ...layered, calls: VECTOR_INDEXES_CALLS });
  return {
    open: async (place) => withRemoteLayers(await opener.open(place), { ...layered, calls: VECTOR_CALLS }),
    scan: (place, o) => opener.scan(place, o),
    close: () => indexes.close(),
  };
}

/** The embedder of `config.embedder`, giving vectors of `vector.dimensions`. */
export async function createEmbedder(config: KuraConfig): Promise<Embedder> {
  const e = config.embedder;
  const definition = await embedderDefinition(e.backend);
  const options = definition.parseOptions({
    dimensions: config.vector.dimensions,
    ...(definition.capabilities.network
      ? {
          url: e.url,
          api_key: e.api_key,
          model: e.model,
          request_dimensions: e.request_dimensions,
          batch_size: e.batch_size,
          timeout_ms: e.timeout_ms,
        }
      : {}),
  });
  return definition.create(options);
}
