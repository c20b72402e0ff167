import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, describe } from "vitest";
import { openSqliteCatalog, sqliteCatalog } from "../../src/adapters/catalog/sqlite/index.js";
import { backendAvailable } from "../support/backends.js";
import { postgresCatalogHarness } from "../support/catalog-postgres.js";
import { postgresForTests } from "../support/servers/postgres.js";
import { lifecycleCatalogConformance } from "./lifecycle.suite.js";

// Legal holds and the archive scans on both dialects: SQLite in a temp file, PostgreSQL in a random schema.
lifecycleCatalogConformance("sqlite", async () => {
  const dir = mkdtempSync(join(tmpdir(), "kura-lifecycle-"));
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
});

const db = await postgresForTests();
const available = backendAvailable("catalog-postgres", "problem" in db ? db.problem : undefined);

describe.skipIf(!available)("catalog lifecycle on PostgreSQL", () => {
  afterAll(async () => {
    if ("destroy" in db) await db.destroy();
  });
  lifecycleCatalogConformance("postgres", () => postgresCatalogHarness("url" in db ? db.url : ""));
});
