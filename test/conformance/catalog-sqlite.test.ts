import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { openSqliteCatalog, sqliteCatalog } from "../../src/adapters/catalog/sqlite/index.js";
import { catalogConformance } from "./catalog.suite.js";

// A fresh database file per run; every open() is a new connection to it.
catalogConformance("sqlite", async () => {
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
});
