/**
 * Maps a database backend name to its catalog definition. Definitions load on first use, so the
 * embedded path never loads `pg` and a PostgreSQL deployment never loads the SQLite addon.
 */
import { KuraError } from "../../core/errors.js";
import type { CatalogDefinition } from "../../ports/catalog.js";

type Loader = () => Promise<CatalogDefinition<unknown>>;

const LOADERS: Record<string, Loader> = {
  sqlite: async () => (await import("./sqlite/index.js")).sqliteCatalog as CatalogDefinition<unknown>,
  postgres: async () => (await import("./postgres/index.js")).postgresCatalog as CatalogDefinition<unknown>,
};

export const CATALOG_BACKENDS = Object.freeze(Object.keys(LOADERS));

export async function catalogDefinition(backend: string): Promise<CatalogDefinition<unknown>> {
  const load = LOADERS[backend];
  if (!load) {
    throw new KuraError("CONFIG_INVALID", `unknown database backend ${JSON.stringify(backend)}`, {
      operation: "catalog.registry",
      context: {
        problems: [{ path: "database.backend", message: `must be one of ${CATALOG_BACKENDS.join(", ")}` }],
      },
    });
  }
  return load();
}
