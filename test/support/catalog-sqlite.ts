/**
 * Catalog harnesses for the conformance suites: SQLite in a temp file of its own (with a raw
 * connection for SQL behind the catalog's back), and `onBothDialects`, which runs a suite on
 * SQLite and — when a PostgreSQL server is there (`servers/postgres.ts`) — on PostgreSQL in a
 * random schema per harness.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, describe } from "vitest";
import { openSqliteCatalog, sqliteCatalog } from "../../src/adapters/catalog/sqlite/index.js";
import type { CatalogHarness } from "../conformance/catalog.suite.js";
import { backendAvailable } from "./backends.js";
import { postgresCatalogHarness } from "./catalog-postgres.js";
import { postgresForTests } from "./servers/postgres.js";

/** A fresh database file; `query` runs reads and writes on a raw connection to it. */
export async function sqliteCatalogHarness(): Promise<CatalogHarness> {
  const dir = mkdtempSync(join(tmpdir(), "kura-catalog-"));
  const options = sqliteCatalog.parseOptions({ path: join(dir, "kura.db") });
  const raw = new Database(options.path);
  return {
    open: (deps, migrations) => openSqliteCatalog(options, deps, migrations),
    query: async (sql) => {
      const stmt = raw.prepare(sql);
      if (stmt.reader) return stmt.all() as Record<string, unknown>[];
      stmt.run();
      return [];
    },
    cleanup: async () => {
      raw.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Registers `suite` for SQLite, and for PostgreSQL under `title` (skipped with its reason
 * recorded when no server is there, a failure in CI); the PostgreSQL database is dropped after
 * the suite.
 */
export async function onBothDialects(
  title: string,
  suite: (dialect: "sqlite" | "postgres", setup: () => Promise<CatalogHarness>) => void,
): Promise<void> {
  suite("sqlite", sqliteCatalogHarness);
  const db = await postgresForTests();
  const available = backendAvailable("catalog-postgres", "problem" in db ? db.problem : undefined);
  const pg = () => postgresCatalogHarness("url" in db ? db.url : "");
  describe.skipIf(!available)(`${title} on PostgreSQL`, () => {
    afterAll(async () => {
      if ("destroy" in db) await db.destroy();
    });
    suite("postgres", pg);
  });
}
