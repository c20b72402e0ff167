/**
 * Removing messages for good — erase (GDPR), purge after retention, TTL expiry: the message row
 * and every version's ref leave the catalog in one batch (with usage, events and audit), then
 * every version's body goes, then what the caches hold of them.
 */
import type { MessageRow } from "../ports/catalog.js";
import type { EngineContext } from "./context.js";
import { bodyCachePrefix, hotMessageKey } from "./message-rows.js";
import type { CatalogChange } from "./write-protocol.js";

/** Erase `rows` (of any tenants); `eventType` names the outbox event and the audit action. */
export async function eraseMessages(
  ctx: EngineContext,
  rows: readonly MessageRow[],
  eventType: string,
  actor = "system",
): Promise<void> {
  if (rows.length === 0) return;
  const at = ctx.clock();
  const changes: CatalogChange[] = [];
  for (const row of rows) {
    const versions = await ctx.catalog.listMessageVersions(row.tenantId, row.id);
    const drops = versions.length > 0 ? versions : [row];
    changes.push({
      kind: "catalog",
      op: { op: "deleteMessage", tenantId: row.tenantId, id: row.id },
      drops,
      messages: -1,
      event: eventType,
      entityId: row.id,
      payload: { chatId: row.chatId },
      action: eventType,
      details: { versions: drops.length },
    });
  }
  await ctx.protocol.write({ at, actor, changes });
  for (const row of rows) {
    ctx.messageCache?.delete(hotMessageKey(row.tenantId, row.id));
    await ctx.bodyCache.deletePrefix(bodyCachePrefix(row.tenantId, row.id));
  }
}
