/**
 * The PostgreSQL catalog on a test database (`servers/postgres.ts`): each harness in its own
 * random schema, and raw connections to it for SQL behind the catalog's back.
 */
import { randomBytes } from "node:crypto";
import pg from "pg";
import { openPostgresCatalog, postgresCatalog } from "../../src/adapters/catalog/postgres/index.js";
import type { CatalogHarness } from "../conformance/catalog.suite.js";

/** A raw connection with `schema` as search path, for SQL behind the catalog's back. */
export async function rawClient(url: string, schema: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url, options: `-c search_path=${schema}` });
  client.on("error", () => undefined);
  await client.connect();
  return client;
}

/** Every harness uses its own random schema in the test database (the `schema` option). */
export async function postgresCatalogHarness(url: string): Promise<CatalogHarness & { schema: string }> {
  const schema = `kura_${randomBytes(5).toString("hex")}`;
  const options = postgresCatalog.parseOptions({ url, schema, max_connections: 8 });
  const raw = await rawClient(url, schema);
  return {
    schema,
    open: (deps, migrations) => openPostgresCatalog(options, deps, migrations),
    query: async (sql) => (await raw.query(sql)).rows,
    cleanup: async () => {
      await raw.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => undefined);
      await raw.end();
    },
  };
}
