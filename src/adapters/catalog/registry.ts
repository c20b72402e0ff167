/**
 * Maps a database backend name to its catalog definition. Definitions load on first use, so the
 * embedded path never loads `pg` and a PostgreSQL deployment never loads the SQLite addon.
 */
import type { CatalogDefinition } from "../../ports/catalog.js";
import { createRegistry } from "../registry.js";

const REGISTRY = createRegistry<CatalogDefinition<unknown>>(
  { what: "database backend", operation: "catalog.registry", path: "database.backend" },
  {
    sqlite: () => import("./sqlite/index.js").then((m) => m.sqliteCatalog),
    postgres: () => import("./postgres/index.js").then((m) => m.postgresCatalog),
  },
);

export const CATALOG_BACKENDS = REGISTRY.backends;

export const catalogDefinition = REGISTRY.definition;
