/**
 * The server-side time limits of Kura's PostgreSQL connections (catalog, full-text search,
 * pgvector), apart from `pg.ts` so that an adapter's options schema can name them without
 * loading the driver. PostgreSQL cancels a statement at its `statement_timeout`, or at its
 * `lock_timeout` while it waits for a lock, and rolls its transaction (or savepoint) back: the
 * statement wrote nothing, which is what makes a timed-out write's outcome known.
 */
import { z } from "zod";
import { KuraError } from "../core/errors.js";

/**
 * The server-side limits of a PostgreSQL adapter's connections, as fields its options schema
 * spreads in (the catalog's `database` section; search and pgvector borrow the catalog's).
 */
export const pgTimeoutOptions = {
  /** Server-side limit of each statement, in ms (`statement_timeout`); 0 = none. Default 30000. */
  statement_timeout_ms: z.number().int().min(0).max(86_400_000).default(30_000),
  /**
   * Longest wait for a lock (a row or table another transaction holds), in ms (`lock_timeout`);
   * 0 = none, the statement limit alone. Default 0.
   */
  lock_timeout_ms: z.number().int().min(0).max(86_400_000).default(0),
};

export interface PgTimeouts {
  statement_timeout_ms: number;
  lock_timeout_ms: number;
}

/** Pool or client settings applying `t` to every connection (a 0 limit is left unset: none). */
export function pgTimeouts(t: PgTimeouts): { statement_timeout?: number; lock_timeout?: number } {
  return {
    ...(t.statement_timeout_ms > 0 ? { statement_timeout: t.statement_timeout_ms } : {}),
    ...(t.lock_timeout_ms > 0 ? { lock_timeout: t.lock_timeout_ms } : {}),
  };
}

/** SQLSTATE 57014 and 55P03 have other causes too (a cancel request, `NOWAIT`): the message tells. */
const SERVER_TIMEOUT = /due to (statement|lock) timeout/;

/**
 * `OPERATION_TIMEOUT` (retryable) when the server cancelled the statement at its
 * `statement_timeout` or `lock_timeout`, else undefined. The statement changed nothing, and its
 * transaction is aborted: the caller rolls back (or back to its savepoint).
 */
export function pgTimeoutError(e: unknown, operation: string): KuraError | undefined {
  const code = (e as { code?: unknown } | null)?.code;
  if (code !== "57014" && code !== "55P03") return undefined;
  const message = e instanceof Error ? e.message : String(e);
  const limit = SERVER_TIMEOUT.exec(message)?.[1];
  if (limit === undefined) return undefined;
  return new KuraError("OPERATION_TIMEOUT", `${operation} timed out on the server: ${message}`, {
    operation,
    cause: e,
    context: { sqlState: code, limit, side: "server" },
  });
}
