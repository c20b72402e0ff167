import { onBothDialects } from "../support/catalog-sqlite.js";
import { catalogAdminReadsConformance } from "./admin-reads.suite.js";

// The reads across tenants on both dialects: SQLite in a temp file, PostgreSQL in a random schema.
await onBothDialects("catalog admin reads", (dialect, setup) => catalogAdminReadsConformance(dialect, setup));
