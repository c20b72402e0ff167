import { onBothDialects } from "../support/catalog-sqlite.js";
import { lifecycleCatalogConformance } from "./lifecycle.suite.js";

// Legal holds and the archive scans on both dialects: SQLite in a temp file, PostgreSQL in a random schema.
await onBothDialects("catalog lifecycle", (dialect, setup) => lifecycleCatalogConformance(dialect, setup));
