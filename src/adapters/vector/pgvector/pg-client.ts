/**
 * A {@link SqlClient} over a `pg` pool: how the `pgvector` index reaches a PostgreSQL server
 * (the catalog's, or the one `vector.url` names). Transactions hold one pooled connection.
 */
import type { SqlClient, SqlRunner } from "./index.js";

export interface PgSqlClient extends SqlClient {
  close(): Promise<void>;
}

export async function openPgSqlClient(options: {
  url: string;
  maxConnections?: number;
}): Promise<PgSqlClient> {
  const { default: pg } = await import("pg");
  const pool = new pg.Pool({ connectionString: options.url, max: options.maxConnections ?? 4 });
  // An idle connection the server closed must not crash the process.
  pool.on("error", () => undefined);
  return {
    async query<T>(text: string, params?: unknown[]) {
      const result = await pool.query(text, params);
      return { rows: result.rows as T[] };
    },
    async transaction<T>(fn: (tx: SqlRunner) => Promise<T>): Promise<T> {
      const client = await pool.connect();
      try {
        await client.query("begin");
        const out = await fn({
          async query<R>(text: string, params?: unknown[]) {
            return { rows: (await client.query(text, params)).rows as R[] };
          },
        });
        await client.query("commit");
        return out;
      } catch (e) {
        await client.query("rollback").catch(() => undefined);
        throw e;
      } finally {
        client.release();
      }
    },
    close: () => pool.end(),
  };
}
