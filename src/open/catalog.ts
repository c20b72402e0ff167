/**
 * Opening the catalog of a configuration (CAT-1): the adapter of `database.backend`, given the
 * rest of the `database` section as its options (each adapter validates its own).
 */
import { catalogDefinition } from "../adapters/catalog/registry.js";
import type { DatabaseConfig } from "../config/index.js";
import type { Catalog, CatalogDeps } from "../ports/catalog.js";

export async function openCatalog(
  database: DatabaseConfig,
  deps: CatalogDeps,
  /** A second process's smaller pool (the projection worker), where the adapter has one. */
  tweaks: { maxConnections?: number } = {},
): Promise<Catalog> {
  const { backend, ...options } = database as DatabaseConfig & Record<string, unknown>;
  if (tweaks.maxConnections !== undefined && "max_connections" in options)
    options.max_connections = tweaks.maxConnections;
  const definition = await catalogDefinition(backend);
  return definition.create(definition.parseOptions(options), deps);
}
