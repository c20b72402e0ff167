import { onBothDialects } from "../support/catalog-sqlite.js";
import { tenantRegistryConformance } from "./tenants.suite.js";

// The registry on both dialects: SQLite in a temp file, PostgreSQL in a random schema.
await onBothDialects("tenant registry", (dialect, setup) => tenantRegistryConformance(dialect, setup));
