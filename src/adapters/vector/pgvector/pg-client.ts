/**
 * A {@link SqlClient} over a `pg` pool: how the `pgvector` index reaches a PostgreSQL server
 * (the catalog's, or the one `vector.url` names). Transactions hold one pooled connection.
 * The pool comes from `adapters/pg.ts`, so a connection that dies never crashes the process, and
 * a transaction's dead connection is destroyed rather than returned to the pool.
 */
import type { PgTimeouts } from "../../pg-timeouts.js";
import type { SqlClient, SqlRunner } from "./index.js";

export interface PgSqlClient extends SqlClient {
  close(): Promise<void>;
}

export async function openPgSqlClient(options: {
  url: string;
  maxConnections?: number;
  /** Server-side limits of every connection (none when absent). */
  timeouts?: PgTimeouts;
}): Promise<PgSqlClient> {
  const { createPgPool, isPgConnectionError, pgTimeouts, withPgClient } = await import("../../pg.js");
  const pool = createPgPool({
    connectionString: options.url,
    max: options.maxConnections ?? 4,
    application_name: "kura-vectors",
    connectionTimeoutMillis: 10_000,
    ...(options.timeouts ? pgTimeouts(options.timeouts) : {}),
  });
  return {
    async query<T>(text: string, params?: unknown[]) {
      const result = await pool.query(text, params);
      return { rows: result.rows as T[] };
    },
    transaction<T>(fn: (tx: SqlRunner) => Promise<T>): Promise<T> {
      return withPgClient(pool, async (client) => {
        await client.query("begin");
        try {
          const out = await fn({
            async query<R>(text: string, params?: unknown[]) {
              return { rows: (await client.query(text, params)).rows as R[] };
            },
          });
          await client.query("commit");
          return out;
        } catch (e) {
          if (!isPgConnectionError(e)) await client.query("rollback").catch(() => undefined);
          throw e;
        }
      });
    },
    close: () => pool.end(),
  };
}
