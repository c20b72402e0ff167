/**
 * Maps a search backend name to its adapter definition (SRCH-1), loaded on first use, so the
 * embedded path never loads `pg`:
 * - `sqlite-fts` (`embedded`, the default) — FTS5 in a SQLite file of its own;
 * - `postgres` — tables in the PostgreSQL catalog's database and schema.
 */

import type { SearchIndexDefinition } from "../../ports/search-index.js";
import { createRegistry } from "../registry.js";

type Loader = () => Promise<SearchIndexDefinition<unknown>>;

const sqliteFts: Loader = async () =>
  (await import("./sqlite-fts/index.js")).sqliteFtsSearchIndex as SearchIndexDefinition<unknown>;

const LOADERS: Record<string, Loader> = {
  embedded: sqliteFts,
  "sqlite-fts": sqliteFts,
  postgres: async () =>
    (await import("./postgres-fts/index.js")).postgresFtsSearchIndex as SearchIndexDefinition<unknown>,
};

const REGISTRY = createRegistry<SearchIndexDefinition<unknown>>(
  { what: "search backend", operation: "search.registry", path: "search.backend" },
  LOADERS,
);

export const SEARCH_INDEX_BACKENDS = REGISTRY.backends;

export function searchIndexDefinition(scheme: string): Promise<SearchIndexDefinition<unknown>> {
  return REGISTRY.definition(scheme);
}
