/**
 * Opens the vector index of one collection for `config.vector.backend` (VEC-1):
 * - `embedded` → usearch HNSW persisted under `<data_dir>/vectors/<collection>/` (in memory
 *   beside an in-memory catalog);
 * - `exact` → the brute-force reference index, in memory.
 * `pgvector` is not wired yet.
 */
import { join } from "node:path";
import type { KuraConfig } from "../../config/index.js";
import { KuraError } from "../../core/errors.js";
import type { VectorIndex, VectorMetric } from "../../ports/vector-index.js";
import type { Quantization } from "./usearch/index.js";

const COLLECTION = /^[a-z0-9][a-z0-9_-]{0,63}$/;

export async function openVectorIndex(
  config: KuraConfig,
  collection: string,
  extra: { quantization?: Quantization } = {},
): Promise<VectorIndex> {
  if (!COLLECTION.test(collection))
    throw new KuraError("INVALID_ARGUMENT", `invalid vector collection name: ${collection}`, {
      operation: "vector.open",
    });
  const { backend, dimensions, metric, mode } = config.vector;
  if (backend === "exact") {
    const { openExactVectorIndex } = await import("./exact/index.js");
    return openExactVectorIndex({ dimensions, metric, mode });
  }
  if (backend === "embedded") {
    const db = config.database;
    const memory = db.backend === "sqlite" && (db.path === ":memory:" || db.path.startsWith("file:"));
    const { openUsearchVectorIndex } = await import("./usearch/index.js");
    return openUsearchVectorIndex({
      dimensions,
      metric,
      mode,
      ...(extra.quantization ? { quantization: extra.quantization } : {}),
      ...(memory ? {} : { dir: join(config.data_dir, "vectors", collection) }),
    });
  }
  throw new KuraError("UNSUPPORTED_OPERATION", `vector backend ${backend} is not available yet`, {
    operation: "vector.open",
  });
}

/**
 * The index of one tenant's vector collection (its own dimensions and metric): usearch under
 * `<data_dir>/vectors/tenants/<tenant>/<collection>/` with the `embedded` backend (in memory
 * beside an in-memory catalog), the exact index otherwise.
 */
export async function openCollectionIndex(
  config: KuraConfig,
  tenantId: string,
  collection: { name: string; dimensions: number; metric: VectorMetric },
): Promise<VectorIndex> {
  const { dimensions, metric, name } = collection;
  const mode = config.vector.mode;
  if (config.vector.backend !== "embedded") {
    const { openExactVectorIndex } = await import("./exact/index.js");
    return openExactVectorIndex({ dimensions, metric, mode });
  }
  const db = config.database;
  const memory = db.backend === "sqlite" && (db.path === ":memory:" || db.path.startsWith("file:"));
  const { openUsearchVectorIndex } = await import("./usearch/index.js");
  return openUsearchVectorIndex({
    dimensions,
    metric,
    mode,
    ...(memory ? {} : { dir: join(config.data_dir, "vectors", "tenants", tenantId, name) }),
  });
}
