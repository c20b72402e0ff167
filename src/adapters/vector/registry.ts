/**
 * Opens a vector index for `config.vector.backend` (VEC-1). An index is either one of Kura's
 * own (`memories`, `messages`: every tenant's items, each query scoped to one tenant) or one
 * tenant's collection:
 * - `embedded` → usearch over LMDB under `<data_dir>/vectors/<name>/` or
 *   `<data_dir>/vectors/tenants/<tenant>/<collection>/` (in memory beside an in-memory catalog),
 *   quantized as `vector.quantization` says (`i8` only for cosine collections; others get `f16`);
 * - `pgvector` → a table `kura_vectors_<name>` or `kura_vc_<hash of tenant and collection>` in
 *   `vector.schema` of the database at `vector.url`, through one shared pool;
 * - `exact` → the brute-force reference index, in memory only (nothing persists a restart).
 *
 * {@link VECTOR_BACKEND_DEFINITIONS} says what each backend lets the engine do: whether another
 * thread may open a second live instance of the same index (only over a shared server), and
 * whether an index outlives the instance that wrote it.
 */
import { createHash } from "node:crypto";
import { join } from "node:path";
import type { KuraConfig, VectorBackend } from "../../config/index.js";
import { KuraError } from "../../core/errors.js";
import type { VectorIndex, VectorMetric } from "../../ports/vector-index.js";
import type { SqlClient } from "./pgvector/index.js";
import type { Quantization } from "./usearch/index.js";

const NAME = /^[a-z0-9][a-z0-9_-]{0,63}$/;

export interface VectorBackendCapabilities {
  /**
   * The index lives in a server (pgvector): every thread or process may open its own instance
   * of it. Otherwise it lives in this process — usearch's graph over an LMDB directory, the exact
   * index in memory — and two live instances of one index would each hold (and write) their own
   * copy: one thread owns it and the others reach it through that thread.
   */
  readonly shared: boolean;
  /** What it holds outlives the instance that wrote it (exact: a new instance starts empty). */
  readonly persistent: boolean;
}

export interface VectorBackendDefinition {
  /** What its indexes report as `VectorIndex.backend`. */
  readonly index: string;
  readonly capabilities: VectorBackendCapabilities;
}

export const VECTOR_BACKEND_DEFINITIONS: Readonly<Record<VectorBackend, VectorBackendDefinition>> = {
  embedded: { index: "usearch", capabilities: { shared: false, persistent: true } },
  exact: { index: "exact", capabilities: { shared: false, persistent: false } },
  pgvector: { index: "pgvector", capabilities: { shared: true, persistent: true } },
};

export interface VectorPlace {
  /** Kura's own index (`memories`, `messages`) or the tenant's collection name. */
  name: string;
  /** Set for a tenant's collection. */
  tenantId?: string;
  dimensions: number;
  metric: VectorMetric;
}

export interface VectorIndexDeps {
  /** The pgvector connection, opened once by the caller and shared by its indexes. */
  sql?: () => Promise<SqlClient>;
}

/** Whether the catalog lives in memory (then so do the embedded indexes). */
function inMemory(config: KuraConfig): boolean {
  const db = config.database;
  return db.backend === "sqlite" && (db.path === ":memory:" || db.path.startsWith("file:"));
}

export async function openVectorIndex(
  config: KuraConfig,
  place: VectorPlace,
  deps: VectorIndexDeps = {},
): Promise<VectorIndex> {
  const { backend, mode } = config.vector;
  const { dimensions, metric, name, tenantId } = place;
  if (tenantId === undefined && !NAME.test(name))
    throw new KuraError("INVALID_ARGUMENT", `invalid vector index name: ${name}`, {
      operation: "vector.open",
    });
  if (backend === "exact") {
    const { openExactVectorIndex } = await import("./exact/index.js");
    return openExactVectorIndex({ dimensions, metric, mode });
  }
  if (backend === "pgvector") {
    if (!deps.sql)
      throw new KuraError("VECTOR_UNAVAILABLE", "pgvector needs a database connection", {
        operation: "vector.open",
      });
    const { openPgvectorIndex } = await import("./pgvector/index.js");
    const table =
      tenantId === undefined
        ? `kura_vectors_${name.replaceAll("-", "_")}`
        : `kura_vc_${createHash("sha256").update(`${tenantId}\u0000${name}`).digest("hex").slice(0, 24)}`;
    return openPgvectorIndex({
      sql: await deps.sql(),
      table,
      dimensions,
      metric,
      mode,
      ...(config.vector.schema ? { schema: config.vector.schema } : {}),
    });
  }
  const quantization: Quantization =
    config.vector.quantization === "i8" && metric !== "cosine" ? "f16" : config.vector.quantization;
  const { openUsearchVectorIndex } = await import("./usearch/index.js");
  return openUsearchVectorIndex({
    dimensions,
    metric,
    mode,
    quantization,
    durability: config.durability,
    ...(inMemory(config)
      ? {}
      : {
          dir:
            tenantId === undefined
              ? join(config.data_dir, "vectors", name)
              : join(config.data_dir, "vectors", "tenants", tenantId, name),
        }),
  });
}

/**
 * An opener of this configuration's indexes and what releases what they share: pgvector indexes
 * share one pool, opened on first use with at most `maxConnections` (default
 * `vector.max_connections`).
 */
export function vectorIndexOpener(
  config: KuraConfig,
  options: { maxConnections?: number } = {},
): { open: (place: VectorPlace) => Promise<VectorIndex>; release: () => Promise<void> } {
  const url = config.vector.url;
  let pool: Promise<import("./pgvector/pg-client.js").PgSqlClient> | undefined;
  const deps: VectorIndexDeps =
    url === null
      ? {}
      : {
          sql: () => {
            pool ??= import("./pgvector/pg-client.js").then((m) =>
              m.openPgSqlClient({
                url,
                maxConnections: options.maxConnections ?? config.vector.max_connections,
              }),
            );
            return pool;
          },
        };
  return {
    open: (place) => openVectorIndex(config, place, deps),
    release: async () => {
      if (pool) await (await pool.catch(() => undefined))?.close();
    },
  };
}
