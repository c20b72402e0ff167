/**
 * Maps a vector backend name to its adapter definition (VEC-1), loaded on first use, so a
 * configuration that uses one backend never loads the others' libraries (usearch, LMDB, pg):
 * - `usearch` (`embedded`, the default) — an HNSW graph over LMDB, in one directory per index;
 * - `pgvector` — tables in a PostgreSQL database with the `vector` extension;
 * - `exact` — the brute-force reference index, in memory only;
 * - `faiss` — FAISS IVF-PQ / IVF-Flat (faiss-node, loaded at runtime) over an LMDB store of record.
 */
import type { VectorIndexDefinition } from "../../ports/vector-index.js";
import { createRegistry } from "../registry.js";

const REGISTRY = createRegistry<VectorIndexDefinition<unknown>>(
  { what: "vector backend", operation: "vector.registry", path: "vector.backend" },
  {
    embedded: "usearch",
    usearch: () => import("./usearch/index.js").then((m) => m.usearchVectorIndex),
    exact: () => import("./exact/index.js").then((m) => m.exactVectorIndex),
    pgvector: () => import("./pgvector/index.js").then((m) => m.pgvectorVectorIndex),
    faiss: () => import("./faiss/index.js").then((m) => m.faissVectorIndex),
  },
);

export const VECTOR_INDEX_BACKENDS = REGISTRY.backends;

export const vectorIndexDefinition = REGISTRY.definition;
