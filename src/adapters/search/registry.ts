/**
 * Maps a search backend name to its adapter definition (SRCH-1), loaded on first use, so the
 * embedded path never loads `pg`:
 * - `sqlite-fts` (`embedded`, the default) — FTS5 in a SQLite file of its own;
 * - `postgres` — tables in the PostgreSQL catalog's database and schema.
 */
import type { SearchIndexDefinition } from "../../ports/search-index.js";
import { createRegistry } from "../registry.js";

const REGISTRY = createRegistry<SearchIndexDefinition<unknown>>(
  { what: "search backend", operation: "search.registry", path: "search.backend" },
  {
    embedded: "sqlite-fts",
    "sqlite-fts": () => import("./sqlite-fts/index.js").then((m) => m.sqliteFtsSearchIndex),
    postgres: () => import("./postgres-fts/index.js").then((m) => m.postgresFtsSearchIndex),
  },
);

export const SEARCH_INDEX_BACKENDS = REGISTRY.backends;

export const searchIndexDefinition = REGISTRY.definition;
