/**
 * better-sqlite3 errors → KuraError. Driver errors never leave the adapter.
 */
import { KuraError } from "../../../core/errors.js";

function sqliteCode(e: unknown): string | undefined {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

export function isUniqueViolation(e: unknown): boolean {
  const code = sqliteCode(e);
  return code === "SQLITE_CONSTRAINT_UNIQUE" || code === "SQLITE_CONSTRAINT_PRIMARYKEY";
}

/**
 * The disk (or the database's size limit) is full: SQLITE_FULL, or an I/O error whose errno is
 * ENOSPC/EDQUOT (better-sqlite3 reports a failed write as SQLITE_IOERR_WRITE and friends).
 */
export function isStorageFull(e: unknown): boolean {
  const code = sqliteCode(e) ?? "";
  if (code === "SQLITE_FULL") return true;
  const message = e instanceof Error ? e.message : "";
  return code.startsWith("SQLITE_IOERR") && /no space|disk is full|quota/i.test(message);
}

export function sqliteError(e: unknown, operation: string): KuraError {
  if (e instanceof KuraError) return e.withOperation(operation);
  const code = sqliteCode(e) ?? "";
  const message = e instanceof Error ? e.message : String(e);
  const init = { operation, cause: e, context: { sqliteCode: code } };
  if (
    code.startsWith("SQLITE_BUSY") ||
    code.startsWith("SQLITE_LOCKED") ||
    code.startsWith("SQLITE_CANTOPEN")
  ) {
    return new KuraError("CATALOG_UNAVAILABLE", `catalog database is busy or unreachable: ${message}`, init);
  }
  if (isStorageFull(e)) {
    return new KuraError("STORAGE_FULL", `catalog database: the disk is full (${message})`, init);
  }
  if (isUniqueViolation(e)) return new KuraError("CATALOG_DUPLICATE", message, init);
  if (
    code === "SQLITE_CONSTRAINT_DATATYPE" ||
    code === "SQLITE_CONSTRAINT_NOTNULL" ||
    code === "SQLITE_MISMATCH" ||
    e instanceof TypeError ||
    e instanceof RangeError
  ) {
    return new KuraError("INVALID_ARGUMENT", `catalog rejected a value: ${message}`, init);
  }
  return new KuraError("CATALOG_ERROR", `catalog database error: ${message}`, init);
}
