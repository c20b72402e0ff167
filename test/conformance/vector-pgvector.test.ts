/**
 * The pgvector adapter on PGlite: real PostgreSQL with pgvector compiled to WASM, in process
 * (Debian's PostgreSQL here has no pgvector). One database, a fresh table per index.
 */
import { afterAll, describe, expect, it } from "vitest";
import { openPgvectorIndex, type SqlClient } from "../../src/adapters/vector/pgvector/index.js";
import { isKuraError } from "../../src/core/errors.js";
import { vectorIndexConformance } from "./vector-index.suite.js";

interface Closable extends SqlClient {
  close(): Promise<void>;
}

let db: Promise<Closable> | undefined;
const database = (): Promise<Closable> => {
  db ??= (async () => {
    const { PGlite } = await import("@electric-sql/pglite");
    const { vector } = await import("@electric-sql/pglite-pgvector");
    return (await PGlite.create({ extensions: { vector } })) as unknown as Closable;
  })();
  return db;
};
let tables = 0;
afterAll(async () => {
  if (db) await (await db).close();
});

vectorIndexConformance("pgvector (PGlite)", {
  open: async (options) => openPgvectorIndex({ ...options, sql: await database(), table: `vec_${++tables}` }),
  persistent: () => {
    const table = `vec_${++tables}`;
    return { open: async (options) => openPgvectorIndex({ ...options, sql: await database(), table }) };
  },
  recallFloor: 0.9,
  distanceTolerance: 1e-4,
});

describe("pgvector specifics", () => {
  it("refuses a table of other dimensions", async () => {
    const sql = await database();
    await openPgvectorIndex({ sql, table: "vec_dims", dimensions: 4, metric: "l2" });
    await expect(
      openPgvectorIndex({ sql, table: "vec_dims", dimensions: 8, metric: "l2" }),
    ).rejects.toSatisfy((e: unknown) => isKuraError(e) && e.code === "VECTOR_INDEX_CONFIG_CHANGED");
  });
});
