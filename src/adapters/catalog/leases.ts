/**
 * Leases with fencing tokens, once for both dialects (LIFE-1/DIST-1): taking a lease that was
 * free, expired or another owner's raises its token; renewing one's own keeps it; releasing
 * keeps the row (expired at once) so the next holder's token is higher still. `checkLease`, the
 * operation a job's batches carry, fails the batch unless the lease is still held with its token.
 */
import { KuraError } from "../../core/errors.js";
import type { CatalogOp } from "../../ports/catalog.js";
import { query } from "./queries.js";

export type LeaseCheck = Extract<CatalogOp, { op: "checkLease" }>;

export const LEASE_QUERIES = {
  /** A row comes back, with the token, if `owner` now holds the lease. */
  take: query(
    "INSERT INTO leases (name, owner, expires_at, token) VALUES ({name}, {owner}, {until}, 1) " +
      "ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at, " +
      "token = CASE WHEN leases.owner = excluded.owner AND leases.expires_at > {now} " +
      "THEN COALESCE(leases.token, 1) ELSE COALESCE(leases.token, 0) + 1 END " +
      "WHERE leases.expires_at <= {now} OR leases.owner = excluded.owner RETURNING owner, token",
  ),
  release: query("UPDATE leases SET expires_at = 0 WHERE name = {name} AND owner = {owner}"),
  /** One row while the lease is held by this owner with this token. */
  check: query(
    "SELECT 1 AS held FROM leases WHERE name = {name} AND owner = {owner} AND token = {token} " +
      "AND expires_at > {now}",
  ),
} as const;

export function leaseParams(op: LeaseCheck): Record<string, unknown> {
  return { name: op.name, owner: op.owner, token: op.token, now: op.now };
}

export function leaseLost(op: LeaseCheck): KuraError {
  return new KuraError("LEASE_LOST", `the lease ${op.name} is no longer held with token ${op.token}`, {
    operation: "catalog.commit",
    context: { lease: op.name, token: op.token },
  });
}
