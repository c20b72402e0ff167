/**
 * A PostgreSQL server with pgvector for tests: PGlite (PostgreSQL compiled to WASM) with the
 * pgvector extension, served over the PostgreSQL wire protocol by `@electric-sql/pglite-socket`
 * on a free local port, so Kura reaches it through `pg` exactly as it would a real server.
 * PGlite is a single-session database: the server multiplexes up to `maxConnections` clients
 * onto it, so Kura should use one connection (its transactions would otherwise interleave);
 * a second one is for a test's own inspection.
 */
import type { SqlClient } from "../../../src/adapters/vector/pgvector/index.js";
import { freePort } from "./net.js";

export interface PgvectorServer {
  /** `postgres://postgres@127.0.0.1:<port>/postgres`. */
  readonly url: string;
  stop(): Promise<void>;
}

export async function startPgvectorServer(): Promise<PgvectorServer> {
  const { PGlite } = await import("@electric-sql/pglite");
  const { vector } = await import("@electric-sql/pglite-pgvector");
  const { PGLiteSocketServer } = await import("@electric-sql/pglite-socket");
  const db = await PGlite.create({ extensions: { vector } });
  const port = await freePort();
  const server = new PGLiteSocketServer({ db, host: "127.0.0.1", port, maxConnections: 4 });
  await server.start();
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    stop: async () => {
      await server.stop();
      await db.close();
    },
  };
}

type ClosableSql = SqlClient & { close(): Promise<void> };

/** A PGlite database with pgvector in process, created on first `get`; `close` ends it if it was. */
export function pgliteVectorDatabase(): { get(): Promise<ClosableSql>; close(): Promise<void> } {
  let db: Promise<ClosableSql> | undefined;
  const get = () => {
    db ??= (async () => {
      const { PGlite } = await import("@electric-sql/pglite");
      const { vector } = await import("@electric-sql/pglite-pgvector");
      return (await PGlite.create({ extensions: { vector } })) as unknown as ClosableSql;
    })();
    return db;
  };
  return { get, close: async () => (db ? (await db).close() : undefined) };
}
