/**
 * Which messages legal holds cover (LIFE-1): a hold names a message, a chat, or a user — the
 * messages whose `metadata.user_id` is that user. Held messages are never purged, expired or
 * erased: the lifecycle leaves them out, and every removal carries a `checkNotHeld` operation,
 * so a hold placed while the removal was under way still stops it (LEGAL_HOLD).
 */
import type { Catalog, HeldQuery, LegalHoldRow, MessageRow } from "../ports/catalog.js";
import type { PlainOp } from "./write-protocol.js";

const PAGE = 1000;

/** The user a message belongs to, for holds by user: its `metadata.user_id`, if a string. */
export function messageUser(row: Pick<MessageRow, "metadata">): string | null {
  const user = row.metadata?.user_id;
  return typeof user === "string" ? user : null;
}

export function holdCovers(hold: LegalHoldRow, row: MessageRow): boolean {
  return (
    hold.tenantId === row.tenantId &&
    (hold.messageId === row.id ||
      hold.chatId === row.chatId ||
      (hold.userId !== null && hold.userId === messageUser(row)))
  );
}

/** Every hold of a tenant (a few per tenant: read whole). */
export async function tenantHolds(catalog: Catalog, tenantId: string): Promise<LegalHoldRow[]> {
  const holds: LegalHoldRow[] = [];
  for (;;) {
    const last = holds.at(-1);
    const page = await catalog.listLegalHolds(tenantId, {
      limit: PAGE,
      ...(last ? { afterId: last.id } : {}),
    });
    holds.push(...page);
    if (page.length < PAGE) return holds;
  }
}

/** Splits `rows` (of any tenants) into those no hold covers and those some hold does. */
export async function splitHeld(
  catalog: Catalog,
  rows: readonly MessageRow[],
  cache: Map<string, LegalHoldRow[]> = new Map(),
): Promise<{ free: MessageRow[]; held: MessageRow[] }> {
  const free: MessageRow[] = [];
  const held: MessageRow[] = [];
  for (const row of rows) {
    let holds = cache.get(row.tenantId);
    if (holds === undefined) {
      holds = await tenantHolds(catalog, row.tenantId);
      cache.set(row.tenantId, holds);
    }
    (holds.some((h) => holdCovers(h, row)) ? held : free).push(row);
  }
  return { free, held };
}

/** One `checkNotHeld` per tenant of `rows`: the batch that removes them fails if a hold covers one. */
export function notHeldChecks(rows: readonly MessageRow[]): PlainOp[] {
  const byTenant = new Map<string, { messages: Set<string>; chats: Set<string>; users: Set<string> }>();
  for (const row of rows) {
    let t = byTenant.get(row.tenantId);
    if (t === undefined) {
      t = { messages: new Set(), chats: new Set(), users: new Set() };
      byTenant.set(row.tenantId, t);
    }
    t.messages.add(row.id);
    t.chats.add(row.chatId);
    const user = messageUser(row);
    if (user !== null) t.users.add(user);
  }
  return [...byTenant].map(
    ([tenantId, t]): PlainOp => ({
      op: "checkNotHeld",
      tenantId,
      messageIds: [...t.messages],
      chatIds: [...t.chats],
      userIds: [...t.users],
    }),
  );
}

export type { HeldQuery };
