/**
 * Maps a database backend name to its catalog definition. Definitions load on first use, so the
 * embedded path never loads `pg` and a PostgreSQL deployment never loads the SQLite addon.
 */

import type { CatalogDefinition } from "../../ports/catalog.js";
import { createRegistry } from "../registry.js";

type Loader = () => Promise<CatalogDefinition<unknown>>;

const LOADERS: Record<string, Loader> = {
  sqlite: async () => (await import("./sqlite/index.js")).sqliteCatalog as CatalogDefinition<unknown>,
  postgres: async () => (await import("./postgres/index.js")).postgresCatalog as CatalogDefinition<unknown>,
};

const REGISTRY = createRegistry<CatalogDefinition<unknown>>(
  { what: "database backend", operation: "catalog.registry", path: "database.backend" },
  LOADERS,
);

export const CATALOG_BACKENDS = REGISTRY.backends;

export function catalogDefinition(backend: string): Promise<CatalogDefinition<unknown>> {
  return REGISTRY.definition(backend);
}
