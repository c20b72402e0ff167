import { randomBytes } from "node:crypto";
import pg from "pg";
import { describe } from "vitest";
import { postgresFtsSearchIndex as definition } from "../../src/adapters/search/postgres-fts/index.js";
import { backendAvailable } from "../support/backends.js";
import { postgresForTests } from "../support/servers/postgres.js";
import { searchIndexConformance } from "./search-index.suite.js";

const db = await postgresForTests();
const available = backendAvailable("search-postgres", "problem" in db ? db.problem : undefined);
const url = "url" in db ? db.url : "";
const schema = `kura_${randomBytes(5).toString("hex")}`;

async function raw(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  client.on("error", () => undefined);
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

describe.skipIf(!available)(`search on PostgreSQL (${"kind" in db ? db.kind : "none"})`, () => {
  searchIndexConformance("postgres", {
    open: async () => {
      await raw(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
      return definition.create(definition.parseOptions({ url, schema }));
    },
    cleanup: async () => {
      await raw(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => undefined);
      if ("destroy" in db) await db.destroy();
    },
  });
});
