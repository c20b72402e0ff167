/** What the pgvector adapter does beyond the port's contract, on PGlite (see the conformance harness). */
import { afterAll, describe, expect, it } from "vitest";
import { openPgvectorIndex } from "../../src/adapters/vector/pgvector/index.js";
import { isKuraError } from "../../src/core/errors.js";
import { pgliteVectorDatabase } from "../support/servers/pgvector.js";

const db = pgliteVectorDatabase();
afterAll(() => db.close());
const database = db.get;

describe("pgvector specifics", () => {
  it("refuses a table of other dimensions", async () => {
    const sql = await database();
    await openPgvectorIndex({ sql, table: "vec_dims", dimensions: 4, metric: "l2" });
    await expect(
      openPgvectorIndex({ sql, table: "vec_dims", dimensions: 8, metric: "l2" }),
    ).rejects.toSatisfy((e: unknown) => isKuraError(e) && e.code === "VECTOR_INDEX_CONFIG_CHANGED");
  });
});
