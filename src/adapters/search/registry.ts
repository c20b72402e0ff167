/**
 * Maps a search backend name to its adapter definition (SRCH-1), loaded on first use, so the
 * embedded path never loads `pg`:
 * - `sqlite-fts` (`embedded`, the default) — FTS5 in a SQLite file of its own;
 * - `postgres` — tables in the PostgreSQL catalog's database and schema.
 */
import { KuraError } from "../../core/errors.js";
import type { SearchIndexDefinition } from "../../ports/search-index.js";

type Loader = () => Promise<SearchIndexDefinition<unknown>>;

const sqliteFts: Loader = async () =>
  (await import("./sqlite-fts/index.js")).sqliteFtsSearchIndex as SearchIndexDefinition<unknown>;

const LOADERS: Record<string, Loader> = {
  embedded: sqliteFts,
  "sqlite-fts": sqliteFts,
  postgres: async () =>
    (await import("./postgres-fts/index.js")).postgresFtsSearchIndex as SearchIndexDefinition<unknown>,
};

export const SEARCH_INDEX_BACKENDS = Object.freeze(Object.keys(LOADERS));

export async function searchIndexDefinition(scheme: string): Promise<SearchIndexDefinition<unknown>> {
  const load = LOADERS[scheme];
  if (!load) {
    throw new KuraError("CONFIG_INVALID", `unknown search backend ${JSON.stringify(scheme)}`, {
      operation: "search.registry",
      context: {
        problems: [{ path: "search.backend", message: `must be one of ${SEARCH_INDEX_BACKENDS.join(", ")}` }],
      },
    });
  }
  return load();
}
