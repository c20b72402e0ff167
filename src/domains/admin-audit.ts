/**
 * The audit log across tenants, as the admin reads it (SEC-3; `GET /v1/admin/audit`,
 * `kura.tenants.auditLog`): every tenant's entries in the order they were recorded, filtered by
 * tenant, action and time, a page at a time. A tenant reads only its own log (`kura.tenant(t).audit`).
 */
import { KuraError } from "../core/errors.js";
import { assertValidId } from "../core/keys.js";
import { ADMIN_AUDIT_STREAM } from "../engine/tenant-deletion.js";
import type { AuditRecord, Catalog } from "../ports/catalog.js";

/** The stream of admin actions that outlive their tenant (its deletion): a `tenantId` to filter by. */
export { ADMIN_AUDIT_STREAM };

export interface AuditLogQuery {
  /** One tenant's entries only, or `~admin` (`ADMIN_AUDIT_STREAM`): tenant deletions. */
  tenantId?: string;
  /** One action only (`tenant.create`, `message.append`, …), compared exactly. */
  action?: string;
  /** Entries at or after this time (ms since the epoch). */
  since?: number;
  /** Entries before this time (ms since the epoch). */
  until?: number;
  /** Resume after this entry: the `seq` of the last entry of the previous page. */
  afterSeq?: number;
  /** Page size, 1…1000 (default 100). */
  limit?: number;
}

export interface AuditLogPage {
  /** Oldest recorded first; each with its `seq`, the place in the log a next page resumes after. */
  items: AuditRecord[];
  /** Whether more entries matched after the last one. */
  more: boolean;
}

export const MAX_AUDIT_PAGE = 1000;
/** Actions are dotted names the engine and domains choose; anything else matches nothing anyway. */
const ACTION = /^[\x21-\x7e]{1,128}$/;

function invalid(message: string): KuraError {
  return new KuraError("INVALID_ARGUMENT", message, { operation: "tenants.auditLog" });
}

const isTime = (n: unknown) => typeof n === "number" && Number.isSafeInteger(n) && n >= 0;

/**
 * A page of the audit log across tenants. INVALID_ARGUMENT for a malformed tenant id or
 * action, a time or seq that is not a non-negative integer, `since` after `until`, or a limit
 * outside 1…1000: nothing is read then.
 */
export async function readAuditLog(catalog: Catalog, query: AuditLogQuery = {}): Promise<AuditLogPage> {
  const op = "tenants.auditLog";
  if (query.tenantId !== undefined && query.tenantId !== ADMIN_AUDIT_STREAM)
    assertValidId(query.tenantId, "tenant id", op);
  if (query.action !== undefined && (typeof query.action !== "string" || !ACTION.test(query.action)))
    throw invalid("action must be 1–128 printable ASCII characters");
  for (const name of ["since", "until", "afterSeq"] as const) {
    const value = query[name];
    if (value !== undefined && !isTime(value)) throw invalid(`${name} must be a non-negative integer`);
  }
  if (query.since !== undefined && query.until !== undefined && query.since > query.until)
    throw invalid("since must not be after until");
  const limit = query.limit ?? 100;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_AUDIT_PAGE)
    throw invalid(`limit must be an integer in 1..${MAX_AUDIT_PAGE}`);
  const rows = await catalog.auditEntries({
    limit: limit + 1,
    ...(query.tenantId !== undefined ? { tenantId: query.tenantId } : {}),
    ...(query.action !== undefined ? { action: query.action } : {}),
    ...(query.since !== undefined ? { since: query.since } : {}),
    ...(query.until !== undefined ? { until: query.until } : {}),
    ...(query.afterSeq !== undefined ? { afterSeq: query.afterSeq } : {}),
  });
  return { items: rows.slice(0, limit), more: rows.length > limit };
}
