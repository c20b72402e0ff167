import { onBothDialects } from "../support/catalog-sqlite.js";
import { tenantDataConformance } from "./tenant-data.suite.js";

// Tenant deletion's catalog methods on both dialects: SQLite in a temp file, PostgreSQL in a random schema.
await onBothDialects("tenant data", (dialect, setup) => tenantDataConformance(dialect, setup));
