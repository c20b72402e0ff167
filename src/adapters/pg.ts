/**
 * The one way Kura makes node-postgres pools and clients (catalog, full-text search, pgvector).
 *
 * node-postgres reports a connection that dies (server crash, `pg_ctl -m immediate`, a network
 * cut) as an `'error'` *event* on the client — and on the pool for idle clients. An `'error'`
 * event without a listener throws, which kills the process. The pool listens on its idle
 * clients only; a checked-out client (a transaction in progress) is unguarded. So every pool
 * made here listens on itself AND on every client it creates, for the client's whole life: the
 * failure still reaches the caller as a failed query, the pool drops the dead client on release
 * (it is no longer queryable; {@link withPgClient} also releases it with the error), and the
 * next checkout opens a fresh connection — recovery without a restart.
 *
 * A test (`test/unit/pg-guard.test.ts`) keeps `new pg.Pool` / `new pg.Client` out of every
 * other file under `src/`.
 *
 * Time limits are the server's: every connection of a pool gets `statement_timeout` and
 * `lock_timeout` (`pg-timeouts.ts`, re-exported here), so a statement that runs too long, or
 * waits too long for a row another transaction holds, is cancelled BY THE SERVER and its
 * transaction (or savepoint) rolled back: a timed-out write is known to have written nothing,
 * which no client-side timer can promise. TCP keepalive is on, so a server that vanished
 * without closing its connections is noticed even by a connection waiting on a long statement.
 */
import pg from "pg";

export { type PgTimeouts, pgTimeoutError, pgTimeoutOptions, pgTimeouts } from "./pg-timeouts.js";

const NETWORK_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EPIPE",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ECONNABORTED",
]);

/** The connection is gone or unusable (network errors, SQLSTATE class 08, server shutdown). */
export function isPgConnectionError(e: unknown): boolean {
  const raw = (e as { code?: unknown } | null)?.code;
  const code = typeof raw === "string" ? raw : "";
  if (NETWORK_CODES.has(code) || code.startsWith("08") || code === "57P01" || code === "57P02") return true;
  if (code !== "") return false;
  const message = e instanceof Error ? e.message : String(e);
  return /Connection terminated|connection timeout|timeout exceeded when trying to connect|not queryable|Client was closed|Connection closed/i.test(
    message,
  );
}

const broken = new WeakSet<pg.ClientBase>();

function guard(client: pg.ClientBase): void {
  client.on("error", () => broken.add(client));
}

/** A pool whose idle and checked-out clients can die without an unhandled `'error'` event. */
/** A PostgreSQL identifier (schema, table) quoted for SQL text. */
export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

export function createPgPool(config: pg.PoolConfig): pg.Pool {
  const pool = new pg.Pool({ keepAlive: true, ...config });
  pool.on("error", (_e, client) => broken.add(client));
  pool.on("connect", guard);
  return pool;
}

/** A dedicated client (LISTEN, long sessions) with the same guard; its owner must reconnect. */
export function createPgClient(config: pg.ClientConfig | string): pg.Client {
  const client = new pg.Client(
    typeof config === "string"
      ? { connectionString: config, keepAlive: true }
      : { keepAlive: true, ...config },
  );
  guard(client);
  return client;
}

/** Whether the client saw its connection fail (it must be discarded, never reused). */
export function isBrokenClient(client: pg.ClientBase): boolean {
  return broken.has(client);
}

/**
 * Run `fn` on a checked-out client and release it; a client whose connection failed (an
 * `'error'` event, or a thrown connection error) is released with the error so the pool
 * destroys it instead of handing it out again.
 */
export async function withPgClient<T>(
  pool: pg.Pool,
  fn: (client: pg.PoolClient) => Promise<T>,
  isConnectionError: (e: unknown) => boolean = isPgConnectionError,
): Promise<T> {
  const client = await pool.connect();
  let failure: Error | undefined;
  try {
    return await fn(client);
  } catch (e) {
    if (isConnectionError(e)) failure = e instanceof Error ? e : new Error(String(e));
    throw e;
  } finally {
    if (!failure && broken.has(client)) failure = new Error("connection failed");
    client.release(failure);
  }
}
