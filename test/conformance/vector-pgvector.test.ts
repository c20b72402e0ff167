/**
 * The pgvector adapter on PGlite: real PostgreSQL with pgvector compiled to WASM, in process
 * (Debian's PostgreSQL here has no pgvector). One database, a fresh table per index.
 */
import { afterAll } from "vitest";
import { openPgvectorIndex } from "../../src/adapters/vector/pgvector/index.js";
import { pgliteVectorDatabase } from "../support/servers/pgvector.js";
import { vectorIndexConformance } from "./vector-index.suite.js";

const db = pgliteVectorDatabase();
let tables = 0;
afterAll(() => db.close());

vectorIndexConformance("pgvector (PGlite)", {
  open: async (options) => openPgvectorIndex({ ...options, sql: await db.get(), table: `vec_${++tables}` }),
  persistent: () => {
    const table = `vec_${++tables}`;
    return { open: async (options) => openPgvectorIndex({ ...options, sql: await db.get(), table }) };
  },
  recallFloor: 0.9,
  distanceTolerance: 1e-4,
});
