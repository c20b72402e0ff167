/**
 * Removing messages for good — erase (GDPR), purge after retention, TTL expiry: the message row
 * and every version's ref leave the catalog in one batch (with usage, events and audit), then
 * every version's body goes, then what the caches hold of them.
 *
 * The versions are read before the batch, so the batch names the version it read
 * (`expectVersion`): an edit that committed in between (a new body, counted in usage) or another
 * erase of the same message (the same bodies, already taken out of usage) fails it, and the
 * messages are read again and the batch rebuilt from what is there now.
 *
 * Legal holds (LIFE-1): every batch carries a `checkNotHeld` for its messages, so a held message
 * is never removed. An erase of one fails with LEGAL_HOLD; a purge or expiry leaves held
 * messages out before the batch, and again if a hold placed meanwhile fails it.
 */
import { isKuraError } from "../core/errors.js";
import type { MessageRow } from "../ports/catalog.js";
import type { EngineContext } from "./context.js";
import { notHeldChecks, splitHeld } from "./legal-holds.js";
import { bodyCachePrefix, hotMessageKey } from "./message-rows.js";
import type { CatalogChange } from "./write-protocol.js";

/** Rebuilds of a batch a race may cost before the error is passed on. */
const MAX_ATTEMPTS = 8;

/**
 * Erase `rows` (of any tenants); `eventType` names the outbox event and the audit action.
 * Resolves with the messages removed: a purge or expiry leaves out held ones (and those an
 * undelete saved meanwhile); an erase of a held message fails with LEGAL_HOLD.
 */
export async function eraseMessages(
  ctx: EngineContext,
  rows: readonly MessageRow[],
  eventType: string,
  actor = "system",
): Promise<MessageRow[]> {
  const erase = eventType === "message.erased";
  let pending = erase ? rows : (await splitHeld(ctx.catalog, rows)).free;
  for (let attempt = 1; pending.length > 0; attempt++) {
    try {
      await eraseOnce(ctx, pending, eventType, actor);
      break;
    } catch (e) {
      const raced =
        isKuraError(e) &&
        (e.code === "CATALOG_NOT_FOUND" ||
          e.code === "CATALOG_STALE_VERSION" ||
          (!erase && e.code === "LEGAL_HOLD"));
      if (!raced || attempt >= MAX_ATTEMPTS) throw e;
      pending = await stillToErase(ctx, pending, eventType);
      if (!erase) pending = (await splitHeld(ctx.catalog, pending)).free;
    }
  }
  for (const row of rows) {
    ctx.messageCache?.delete(hotMessageKey(row.tenantId, row.id));
    await ctx.bodyCache.deletePrefix(bodyCachePrefix(row.tenantId, row.id));
  }
  return pending.slice();
}

async function eraseOnce(
  ctx: EngineContext,
  rows: readonly MessageRow[],
  eventType: string,
  actor: string,
): Promise<void> {
  const at = ctx.clock();
  const changes: CatalogChange[] = [];
  for (const row of rows) {
    const versions = await ctx.catalog.listMessageVersions(row.tenantId, row.id);
    const drops = versions.length > 0 ? versions : [row];
    const current = versions.length > 0 ? Math.max(...versions.map((v) => v.version)) : row.version;
    changes.push({
      kind: "catalog",
      op: { op: "deleteMessage", tenantId: row.tenantId, id: row.id, expectVersion: current },
      drops,
      messages: -1,
      event: eventType,
      entityId: row.id,
      payload: { chatId: row.chatId },
      action: eventType,
      details: { versions: drops.length },
    });
  }
  await ctx.protocol.write({ at, actor, ops: notHeldChecks(rows), changes });
}

/**
 * The messages of a batch that lost a race, as they are now: those already gone are dropped; a
 * purge or an expiry keeps only those still deleted or expiring as when it chose them (an
 * undelete in between saves a message), an erase keeps every one that is still there.
 */
async function stillToErase(
  ctx: EngineContext,
  rows: readonly MessageRow[],
  eventType: string,
): Promise<MessageRow[]> {
  const now: MessageRow[] = [];
  for (const row of rows) {
    const fresh = await ctx.catalog.getMessage(row.tenantId, row.id);
    if (!fresh) continue;
    if (
      eventType === "message.erased" ||
      (fresh.deletedAt === row.deletedAt && fresh.expiresAt === row.expiresAt)
    )
      now.push(fresh);
  }
  return now;
}
