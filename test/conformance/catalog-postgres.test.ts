import { afterAll, describe } from "vitest";
import { backendAvailable } from "../support/backends.js";
import { postgresCatalogHarness } from "../support/catalog-postgres.js";
import { postgresForTests } from "../support/servers/postgres.js";
import { catalogConformance } from "./catalog.suite.js";

const db = await postgresForTests();
const available = backendAvailable("catalog-postgres", "problem" in db ? db.problem : undefined);
const url = "url" in db ? db.url : "";

describe.skipIf(!available)(`catalog on PostgreSQL (${"kind" in db ? db.kind : "none"})`, () => {
  afterAll(async () => {
    if ("destroy" in db) await db.destroy();
  });

  catalogConformance("postgres", () => postgresCatalogHarness(url));
});
