/**
 * The pgvector adapter on PGlite: real PostgreSQL with pgvector compiled to WASM, in process
 * (Debian's PostgreSQL here has no pgvector). One database, a fresh table per index.
 */
import { afterAll } from "vitest";
import { openPgvectorIndex, pgvectorVectorIndex } from "../../src/adapters/vector/pgvector/index.js";
import {
  type PgvectorServer,
  pgliteVectorDatabase,
  startPgvectorServer,
} from "../support/servers/pgvector.js";
import { vectorIndexConformance } from "./vector-index.suite.js";

const db = pgliteVectorDatabase();
let tables = 0;
let server: PgvectorServer | undefined;
afterAll(async () => {
  await db.close();
  await server?.stop();
});

vectorIndexConformance("pgvector (PGlite)", {
  open: async (options) => openPgvectorIndex({ ...options, sql: await db.get(), table: `vec_${++tables}` }),
  persistent: () => {
    const table = `vec_${++tables}`;
    return { open: async (options) => openPgvectorIndex({ ...options, sql: await db.get(), table }) };
  },
  plane: async () => {
    server ??= await startPgvectorServer();
    const definition = pgvectorVectorIndex;
    const options = definition.parseOptions({ url: server.url, max_connections: 1 });
    return { indexes: await definition.create(options), persistent: true };
  },
  recallFloor: 0.9,
  distanceTolerance: 1e-4,
});
