/**
 * Helpers shared by the catalog adapters: argument checks, error constructors for the write
 * rules of the port, and key-range arithmetic for prefix listings.
 */
import { KuraError } from "../../core/errors.js";
import { closedError as closed } from "../../core/lifecycle.js";
import type { BatchOutcome, MessageRow } from "../../ports/catalog.js";

export const MAX_LIMIT = 100_000;

export function checkLimit(limit: number, operation: string): number {
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) {
    throw new KuraError("INVALID_ARGUMENT", `limit must be an integer in 1..${MAX_LIMIT}`, {
      operation,
      context: { limit },
    });
  }
  return limit;
}

/** A change-feed position: an integer ≥ 0 (0, the default, is before the first event). */
export function checkPosition(after: number | undefined, operation: string): number {
  if (after === undefined) return 0;
  if (!Number.isSafeInteger(after) || after < 0) {
    throw new KuraError("INVALID_ARGUMENT", "a feed position must be an integer >= 0", {
      operation,
      context: { after },
    });
  }
  return after;
}

/**
 * A change-feed read after `after` when the feed's events up to `horizon` were pruned: reading on
 * would skip some, so the reader must start again (OUT-1).
 */
export function changesExpired(after: number, horizon: number, operation: string): KuraError {
  return new KuraError(
    "CHANGES_CURSOR_EXPIRED",
    `the change feed no longer holds the events after position ${after}: the oldest retained is ${horizon + 1}`,
    { operation, context: { after, oldest: horizon + 1 } },
  );
}

/** Rows a prune deletes per statement: no transaction grows with the outbox. */
export const PRUNE_CHUNK = 5_000;

export function checkTime(value: number, name: string, operation: string): number {
  if (!Number.isSafeInteger(value)) {
    throw new KuraError("INVALID_ARGUMENT", `${name} must be an integer time in ms since the epoch`, {
      operation,
      context: { [name]: value },
    });
  }
  return value;
}

/** The catalog is at a schema version above the `known` migrations: a newer Kura migrated it. */
export function schemaTooNew(current: number, known: number): KuraError {
  return new KuraError(
    "CATALOG_SCHEMA_TOO_NEW",
    `the catalog is at schema version ${current}; this Kura knows up to ${known}`,
    { operation: "catalog.migrate", context: { version: current, known } },
  );
}

/** Migration `m` failed on a catalog at version `from` (the whole migration rolls back). */
export function migrationFailed(
  m: { version: number; name: string },
  from: number,
  cause: unknown,
): KuraError {
  return new KuraError("CATALOG_MIGRATION_FAILED", `migration ${m.version} (${m.name}) failed`, {
    operation: "catalog.migrate",
    context: { version: m.version, from },
    cause,
  });
}

export function closedError(operation: string): KuraError {
  return closed("the catalog", operation);
}

export function messageNotFound(tenantId: string, id: string, operation = "catalog.commit"): KuraError {
  return new KuraError("CATALOG_NOT_FOUND", `no message ${id}`, { operation, context: { tenantId, id } });
}

export function staleVersion(tenantId: string, id: string, expected: number, actual: number): KuraError {
  return new KuraError("CATALOG_STALE_VERSION", `message ${id} is at version ${actual}, not ${expected}`, {
    operation: "catalog.commit",
    context: { tenantId, id, expectVersion: expected, currentVersion: actual },
  });
}

export function staleObject(tenantId: string, key: string, expectBlobKey: string | null): KuraError {
  return new KuraError(
    "CATALOG_STALE_VERSION",
    expectBlobKey === null ? `object ${key} already exists` : `object ${key} changed since it was read`,
    { operation: "catalog.commit", context: { tenantId, key, expectBlobKey } },
  );
}

export function badNewVersion(tenantId: string, id: string, expected: number, given: number): KuraError {
  return new KuraError(
    "INVALID_ARGUMENT",
    `a version after ${expected} must be ${expected + 1}, not ${given}`,
    {
      operation: "catalog.commit",
      context: { tenantId, id },
    },
  );
}

export function idempotencyConflict(tenantId: string, key: string | null): KuraError {
  return new KuraError("IDEMPOTENCY_CONFLICT", "a message with this idempotency key already exists", {
    operation: "catalog.commit",
    context: { tenantId, idempotencyKey: key },
  });
}

export function duplicate(table: string, context: Record<string, unknown>): KuraError {
  return new KuraError("CATALOG_DUPLICATE", `a ${table} row with this id already exists`, {
    operation: "catalog.commit",
    context,
  });
}

export function invalidCursor(cursor: string, operation: string): KuraError {
  return new KuraError("CURSOR_INVALID", "not an outbox cursor of this catalog", {
    operation,
    context: { cursor },
  });
}

/** Every outcome of a group that failed as a whole. */
export function allFailed(count: number, error: KuraError): BatchOutcome[] {
  return Array.from({ length: count }, () => ({ ok: false, error }));
}

export const OK: BatchOutcome = Object.freeze({ ok: true });

/**
 * Idempotency keys used twice among `rows` themselves (same tenant): a batch inserting both
 * fails with IDEMPOTENCY_CONFLICT however the database reports it.
 */
export function keysRepeatedWithin(rows: readonly MessageRow[]): boolean {
  const seen = new Set<string>();
  for (const r of rows) {
    if (r.idempotencyKey === null || r.idempotencyKey === undefined) continue;
    const k = JSON.stringify([r.tenantId, r.idempotencyKey]);
    if (seen.has(k)) return true;
    seen.add(k);
  }
  return false;
}

const MAX_CODE_POINT = 0x10ffff;

/**
 * The smallest string greater than every string starting with `prefix`, in code point order
 * (= UTF-8 byte order, the order of both dialects' text columns); undefined if none exists.
 * `key >= prefix AND key < upper` is then an index range with no LIKE and no escaping.
 */
export function prefixUpperBound(prefix: string): string | undefined {
  const points = Array.from(prefix, (c) => c.codePointAt(0) ?? 0);
  while (points.length > 0) {
    const last = points.pop() as number;
    if (last < MAX_CODE_POINT) {
      // Skip the surrogate range: not valid on its own in UTF-8 text.
      const next = last + 1 === 0xd800 ? 0xe000 : last + 1;
      return String.fromCodePoint(...points, next);
    }
  }
  return undefined;
}
