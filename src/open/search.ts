/**
 * Opening the full-text index of a configuration (SRCH-1): the adapter of `search.backend`, given
 * what it borrows from the rest of the configuration as its capabilities say — the catalog's
 * database and schema, or a file under `data_dir` (in memory beside an in-memory catalog).
 */
import { join } from "node:path";
import { searchIndexDefinition } from "../adapters/search/registry.js";
import type { KuraConfig } from "../config/index.js";
import { configInvalid } from "../core/options.js";
import type { SearchIndex } from "../ports/search-index.js";

/** Whether the catalog lives in this process's memory (then so do the local indexes). */
export function catalogInMemory(config: KuraConfig): boolean {
  const db = config.database;
  return "path" in db && (db.path === ":memory:" || db.path.startsWith("file:"));
}

export async function openSearchIndex(config: KuraConfig): Promise<SearchIndex> {
  const definition = await searchIndexDefinition(config.search.backend);
  const db = config.database;
  let options: Record<string, unknown>;
  if (definition.capabilities.catalogDatabase) {
    if (!("url" in db))
      throw configInvalid(
        [{ path: "search.backend", message: `${config.search.backend} needs a PostgreSQL catalog` }],
        "search.open",
      );
    options = { url: db.url, schema: db.schema };
  } else {
    options = { path: catalogInMemory(config) ? ":memory:" : join(config.data_dir, "search.db") };
  }
  return definition.create(definition.parseOptions(options), { durability: config.durability });
}
