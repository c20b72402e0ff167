/**
 * Maps a vector backend name to its adapter definition (VEC-1), loaded on first use, so a
 * configuration that uses one backend never loads the others' libraries (usearch, LMDB, pg):
 * - `usearch` (`embedded`, the default) — an HNSW graph over LMDB, in one directory per index;
 * - `pgvector` — tables in a PostgreSQL database with the `vector` extension;
 * - `exact` — the brute-force reference index, in memory only.
 */
import { KuraError } from "../../core/errors.js";
import type { VectorIndexDefinition } from "../../ports/vector-index.js";

type Loader = () => Promise<VectorIndexDefinition<unknown>>;

const usearch: Loader = async () =>
  (await import("./usearch/index.js")).usearchVectorIndex as VectorIndexDefinition<unknown>;

const LOADERS: Record<string, Loader> = {
  embedded: usearch,
  usearch,
  exact: async () => (await import("./exact/index.js")).exactVectorIndex as VectorIndexDefinition<unknown>,
  pgvector: async () =>
    (await import("./pgvector/index.js")).pgvectorVectorIndex as VectorIndexDefinition<unknown>,
};

export const VECTOR_INDEX_BACKENDS = Object.freeze(Object.keys(LOADERS));

export async function vectorIndexDefinition(scheme: string): Promise<VectorIndexDefinition<unknown>> {
  const load = LOADERS[scheme];
  if (!load) {
    throw new KuraError("CONFIG_INVALID", `unknown vector backend ${JSON.stringify(scheme)}`, {
      operation: "vector.registry",
      context: {
        problems: [{ path: "vector.backend", message: `must be one of ${VECTOR_INDEX_BACKENDS.join(", ")}` }],
      },
    });
  }
  return load();
}
