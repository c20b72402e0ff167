import { onBothDialects, sqliteCatalogHarness } from "../support/catalog-sqlite.js";
import { catalogDumpConformance } from "./catalog-dump.suite.js";

// Backup's catalog methods: snapshots of each dialect loaded into each (SQLite in temp files,
// PostgreSQL in random schemas).
await onBothDialects("catalog dumps", (dialect, setup) => {
  if (dialect === "sqlite") {
    catalogDumpConformance("sqlite → sqlite", setup, setup);
    return;
  }
  catalogDumpConformance("postgres → postgres", setup, setup);
  catalogDumpConformance("sqlite → postgres", sqliteCatalogHarness, setup);
  catalogDumpConformance("postgres → sqlite", setup, sqliteCatalogHarness);
});
