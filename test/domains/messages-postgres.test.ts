import { describe } from "vitest";
import { backendAvailable } from "../support/backends.js";
import { testKura } from "../support/kura.js";
import { postgresForTests } from "../support/servers/postgres.js";
import { messagesSuite } from "./messages.suite.js";

const db = await postgresForTests();
const available = backendAvailable("messages-postgres", "problem" in db ? db.problem : undefined);

describe.skipIf(!available)("PostgreSQL catalog", () => {
  messagesSuite("PostgreSQL + fs", () =>
    testKura("postgres", async () => ("url" in db ? { url: db.url, drop: () => db.destroy() } : undefined)),
  );
});
