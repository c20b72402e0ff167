/**
 * node-postgres errors → KuraError. Driver errors never leave the adapter.
 */
import { KuraError } from "../../../core/errors.js";
import { isPgConnectionError, pgTimeoutError } from "../../pg.js";

interface PgErrorFields {
  code?: unknown;
  constraint?: unknown;
  table?: unknown;
  message?: unknown;
}

/** SQLSTATEs after which trying again may succeed (server restarting, overloaded, conflicts). */
const RETRYABLE_STATES = new Set([
  "57P01", // admin_shutdown
  "57P02", // crash_shutdown
  "57P03", // cannot_connect_now
  "53300", // too_many_connections
  "40001", // serialization_failure
  "40P01", // deadlock_detected
  "57014", // query_canceled (statement_timeout)
  "55P03", // lock_not_available
]);

function fields(e: unknown): PgErrorFields {
  return (e ?? {}) as PgErrorFields;
}

export function pgCode(e: unknown): string {
  const code = fields(e).code;
  return typeof code === "string" ? code : "";
}

export function pgConstraint(e: unknown): string | undefined {
  const c = fields(e).constraint;
  return typeof c === "string" ? c : undefined;
}

export function pgTable(e: unknown): string | undefined {
  const t = fields(e).table;
  return typeof t === "string" ? t : undefined;
}

export function isUniqueViolation(e: unknown): boolean {
  return pgCode(e) === "23505";
}

/** The connection is gone or unusable: the client must be discarded, the whole commit fails. */
export const isConnectionError = isPgConnectionError;

export function pgError(e: unknown, operation: string): KuraError {
  if (e instanceof KuraError) return e.withOperation(operation);
  const code = pgCode(e);
  const message = e instanceof Error ? e.message : String(e);
  const init = { operation, cause: e, context: { sqlState: code || undefined } };
  // statement_timeout / lock_timeout: the server cancelled the statement, which wrote nothing.
  const timedOut = pgTimeoutError(e, operation);
  if (timedOut) return timedOut;
  // disk_full (53100): the server's disk, like SQLITE_FULL locally.
  if (code === "53100") {
    return new KuraError("STORAGE_FULL", `catalog database: the disk is full (${message})`, init);
  }
  if (isConnectionError(e) || RETRYABLE_STATES.has(code)) {
    return new KuraError("CATALOG_UNAVAILABLE", `catalog database unavailable: ${message}`, init);
  }
  // Wrong credentials or a missing database: unreachable, but retrying will not help.
  if (code.startsWith("28") || code === "3D000" || code === "3F000") {
    return new KuraError("CATALOG_UNAVAILABLE", `catalog database refused the connection: ${message}`, {
      ...init,
      retryable: false,
    });
  }
  if (code === "23505") return new KuraError("CATALOG_DUPLICATE", message, init);
  if (code.startsWith("22") || code === "23502") {
    return new KuraError("INVALID_ARGUMENT", `catalog rejected a value: ${message}`, init);
  }
  return new KuraError("CATALOG_ERROR", `catalog database error: ${message}`, init);
}
