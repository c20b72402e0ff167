import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sqliteFtsSearchIndex } from "../../src/adapters/search/sqlite-fts/index.js";
import { searchIndexConformance } from "./search-index.suite.js";

const dir = mkdtempSync(join(tmpdir(), "kura-fts-"));

searchIndexConformance("sqlite-fts", {
  open: () =>
    sqliteFtsSearchIndex.create(sqliteFtsSearchIndex.parseOptions({ path: join(dir, "search.db") })),
  cleanup: async () => rmSync(dir, { recursive: true, force: true }),
});
