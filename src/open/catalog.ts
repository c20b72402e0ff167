/**
 * Opening the catalog of a configuration (CAT-1): the adapter of `database.backend`, given the
 * rest of the `database` section as its options (each adapter validates its own), and — when it
 * declares `remote` — wrapped in the remote layers (`layers/port-layers.ts`): reads and
 * idempotent calls retried, reads limited client-side by `database.read_timeout_ms`; `commit`
 * is never repeated, and its limit is the server's (`statement_timeout_ms`, `lock_timeout_ms`).
 * An embedded catalog (SQLite) gets no layer: its calls are synchronous on this thread, nothing
 * a timer could interrupt, and nothing to reconnect to.
 */
import { catalogDefinition } from "../adapters/catalog/registry.js";
import type { DatabaseConfig } from "../config/index.js";
import { DEFAULT_READ_TIMEOUT_MS, withRemoteLayers } from "../layers/port-layers.js";
import type { RetryOptions } from "../layers/retry.js";
import { CATALOG_CALLS, type Catalog, type CatalogDeps } from "../ports/catalog.js";

export async function openCatalog(
  database: DatabaseConfig,
  deps: CatalogDeps,
  tweaks: {
    /** A second process's smaller pool (the projection worker), where the adapter has one. */
    maxConnections?: number;
    /** The retry layer's settings (tests); `false` for none. */
    retry?: RetryOptions | false;
  } = {},
): Promise<Catalog> {
  const { backend, read_timeout_ms, ...options } = database as DatabaseConfig &
    Record<string, unknown> & { read_timeout_ms?: number };
  if (tweaks.maxConnections !== undefined && "max_connections" in options)
    options.max_connections = tweaks.maxConnections;
  const definition = await catalogDefinition(backend);
  const catalog = await definition.create(definition.parseOptions(options), deps);
  if (!catalog.capabilities.remote) return catalog;
  return withRemoteLayers(catalog, {
    plane: "catalog",
    calls: CATALOG_CALLS,
    readTimeoutMs: read_timeout_ms ?? DEFAULT_READ_TIMEOUT_MS,
    ...(tweaks.retry === undefined ? {} : { retry: tweaks.retry }),
  });
}
