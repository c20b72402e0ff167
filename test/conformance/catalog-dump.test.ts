import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, describe } from "vitest";
import { openSqliteCatalog, sqliteCatalog } from "../../src/adapters/catalog/sqlite/index.js";
import { backendAvailable } from "../support/backends.js";
import { postgresCatalogHarness } from "../support/catalog-postgres.js";
import { postgresForTests } from "../support/servers/postgres.js";
import type { CatalogHarness } from "./catalog.suite.js";
import { catalogDumpConformance } from "./catalog-dump.suite.js";

// Backup's catalog methods: snapshots of each dialect loaded into each (SQLite in temp files,
// PostgreSQL in random schemas).
async function sqliteHarness(): Promise<CatalogHarness> {
  const dir = mkdtempSync(join(tmpdir(), "kura-catalog-dump-"));
  const options = sqliteCatalog.parseOptions({ path: join(dir, "kura.db") });
  const raw = new Database(options.path);
  return {
    open: (deps, migrations) => openSqliteCatalog(options, deps, migrations),
    query: async (sql) => raw.prepare(sql).all() as Record<string, unknown>[],
    cleanup: async () => {
      raw.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

catalogDumpConformance("sqlite → sqlite", sqliteHarness, sqliteHarness);

const db = await postgresForTests();
const available = backendAvailable("catalog-postgres", "problem" in db ? db.problem : undefined);
const pgHarness = () => postgresCatalogHarness("url" in db ? db.url : "");

describe.skipIf(!available)("catalog dumps with PostgreSQL", () => {
  afterAll(async () => {
    if ("destroy" in db) await db.destroy();
  });
  catalogDumpConformance("postgres → postgres", pgHarness, pgHarness);
  catalogDumpConformance("sqlite → postgres", sqliteHarness, pgHarness);
  catalogDumpConformance("postgres → sqlite", pgHarness, sqliteHarness);
});
