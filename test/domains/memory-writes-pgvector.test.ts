/**
 * MEM-1's write protocol (ADR 0022) with the `memories` items in a pgvector table (PGlite +
 * pgvector over the wire protocol) beside a real LMDB KV store: each change stopped after each
 * of its writes, then reopened — see `memory-writes.test.ts`.
 */
import { afterAll, beforeAll, describe } from "vitest";
import { openPgvectorIndex } from "../../src/adapters/vector/pgvector/index.js";
import { openPgSqlClient, type PgSqlClient } from "../../src/adapters/vector/pgvector/pg-client.js";
import { crashPoints, DIMS } from "../support/memory-crash-points.js";
import { type PgvectorServer, startPgvectorServer } from "../support/servers/pgvector.js";

describe("memories: one write across the KV record and a pgvector table", () => {
  let server: PgvectorServer;
  let sql: PgSqlClient;
  let tables = 0;
  beforeAll(async () => {
    server = await startPgvectorServer();
    sql = await openPgSqlClient({ url: server.url, maxConnections: 1 });
  }, 60_000);
  afterAll(async () => {
    await sql?.close();
    await server?.stop();
  });
  // One table per test directory: reopening it is opening the same table again.
  const byDir = new Map<string, string>();
  crashPoints(() => (dir) => {
    let table = byDir.get(dir);
    if (!table) {
      table = `memw_${++tables}`;
      byDir.set(dir, table);
    }
    return openPgvectorIndex({ sql, table, dimensions: DIMS, metric: "cosine" });
  });
});
