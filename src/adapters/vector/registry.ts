/**
 * Maps a vector backend name to its adapter definition (VEC-1), loaded on first use, so a
 * configuration that uses one backend never loads the others' libraries (usearch, LMDB, pg):
 * - `usearch` (`embedded`, the default) — an HNSW graph over LMDB, in one directory per index;
 * - `pgvector` — tables in a PostgreSQL database with the `vector` extension;
 * - `exact` — the brute-force reference index, in memory only.
 */

import type { VectorIndexDefinition } from "../../ports/vector-index.js";
import { createRegistry } from "../registry.js";

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

const REGISTRY = createRegistry<VectorIndexDefinition<unknown>>(
  { what: "vector backend", operation: "vector.registry", path: "vector.backend" },
  LOADERS,
);

export const VECTOR_INDEX_BACKENDS = REGISTRY.backends;

export function vectorIndexDefinition(scheme: string): Promise<VectorIndexDefinition<unknown>> {
  return REGISTRY.definition(scheme);
}
