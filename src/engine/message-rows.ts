/**
 * The vocabulary of message rows that the messages domain, the projectors, search and erase
 * share: when a row is live, and where the caches keep a message and its bodies.
 */
import type { MessageRow } from "../ports/catalog.js";

/** Neither deleted nor expired at `now`: what reads, search and projectors may show. */
export function isLive(row: Pick<MessageRow, "deletedAt" | "expiresAt">, now: number): boolean {
  return row.deletedAt === null && (row.expiresAt === null || row.expiresAt > now);
}

/** A message's entry in the hot-message cache. */
export function hotMessageKey(tenantId: string, id: string): string {
  return `${tenantId}\u0000${id}`;
}

/** A version's body in the body cache: tenant, id and version, never shared. */
export function bodyCacheKey(tenantId: string, id: string, version: number): string {
  return `${bodyCachePrefix(tenantId, id)}v${version}`;
}

/** What every version of a message's bodies starts with in the body cache. */
export function bodyCachePrefix(tenantId: string, id: string): string {
  return `${tenantId}\u0000${id}\u0000`;
}
