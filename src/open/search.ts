/**
 * Opening the full-text index of a configuration (SRCH-1): the adapter of `search.backend`, given
 * what it borrows from the rest of the configuration as its capabilities say — the catalog's
 * database and schema, or a file under `data_dir` (in memory beside an in-memory catalog).
 *
 * An index that declares `remote` gets the remote layers (`layers/port-layers.ts`, `SEARCH_CALLS`:
 * every call may be repeated, reads are limited client-side) and the catalog's time limits
 * (`database.statement_timeout_ms`, `lock_timeout_ms`, `read_timeout_ms`). An embedded index
 * (SQLite FTS5) gets none: its calls are synchronous, nothing a timer could interrupt.
 */
import { join } from "node:path";
import { searchIndexDefinition } from "../adapters/search/registry.js";
import type { KuraConfig } from "../config/index.js";
import { configInvalid } from "../core/options.js";
import { DEFAULT_READ_TIMEOUT_MS, withRemoteLayers } from "../layers/port-layers.js";
import type { RetryOptions } from "../layers/retry.js";
import { SEARCH_CALLS, type SearchIndex } from "../ports/search-index.js";

/** Whether the catalog lives in this process's memory (then so do the local indexes). */
export function catalogInMemory(config: KuraConfig): boolean {
  const db = config.database;
  return "path" in db && (db.path === ":memory:" || db.path.startsWith("file:"));
}

export async function openSearchIndex(
  config: KuraConfig,
  /** The retry layer's settings (tests); `false` for none. */
  layers: { retry?: RetryOptions | false } = {},
): Promise<SearchIndex> {
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
  const remote = definition.capabilities.remote;
  if (remote) Object.assign(options, serverTimeouts(config));
  const index = await definition.create(definition.parseOptions(options), { durability: config.durability });
  if (!remote) return index;
  return withRemoteLayers(index, {
    plane: "search",
    calls: SEARCH_CALLS,
    readTimeoutMs: readTimeoutMs(config),
    ...(layers.retry === undefined ? {} : { retry: layers.retry }),
  });
}

/** The catalog's server-side limits, as far as its section names them (else the adapter's defaults). */
export function serverTimeouts(config: KuraConfig): {
  statement_timeout_ms?: number;
  lock_timeout_ms?: number;
} {
  const db = config.database;
  if (db.backend !== "postgres") return {};
  return {
    ...(db.statement_timeout_ms === undefined ? {} : { statement_timeout_ms: db.statement_timeout_ms }),
    ...(db.lock_timeout_ms === undefined ? {} : { lock_timeout_ms: db.lock_timeout_ms }),
  };
}

/** The client-side limit of a remote read: the catalog's `read_timeout_ms`, else the default. */
export function readTimeoutMs(config: KuraConfig): number {
  const db = config.database;
  return (db.backend === "postgres" ? db.read_timeout_ms : undefined) ?? DEFAULT_READ_TIMEOUT_MS;
}
