/**
 * Opens the search index of `config.search.backend` (SRCH-1):
 * - `embedded` / `sqlite-fts` → FTS5 in `<data_dir>/search.db` (`:memory:` beside an in-memory catalog);
 * - `postgres` → tables in the PostgreSQL catalog's database and schema.
 */
import { join } from "node:path";
import type { KuraConfig } from "../../config/index.js";
import type { SearchIndex } from "../../ports/search-index.js";

export async function openSearchIndex(config: KuraConfig): Promise<SearchIndex> {
  const db = config.database;
  if (config.search.backend === "postgres") {
    if (db.backend !== "postgres") throw new Error("postgres search needs a PostgreSQL catalog");
    const { openPostgresFts } = await import("./postgres-fts/index.js");
    return openPostgresFts({ url: db.url, schema: db.schema });
  }
  const { openSqliteFts } = await import("./sqlite-fts/index.js");
  const memory = db.backend === "sqlite" && (db.path === ":memory:" || db.path.startsWith("file:"));
  return openSqliteFts({
    path: memory ? ":memory:" : join(config.data_dir, "search.db"),
    durability: config.durability,
  });
}
