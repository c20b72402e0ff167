/**
 * What the lifecycle engine asks of the catalog (LIFE-1), once for both dialects: legal holds
 * (their rows, and the check an erase carries) and the scans for bodies due for the archive.
 * Write statements are rendered per dialect from one text each (`queries.ts` placeholders), so
 * each dialect's commit runs `HOLD_SQL.x.sqlite` or `HOLD_SQL.x.postgres` with `bind`.
 */
import { KuraError } from "../../core/errors.js";
import type { CatalogOp, HeldQuery, LegalHoldRow } from "../../ports/catalog.js";
import { query } from "./queries.js";
import { type DbRow, MESSAGE_COLUMNS, OBJECT_COLUMNS } from "./rows.js";

export const LEGAL_HOLD_COLUMNS = [
  "tenant_id",
  "id",
  "chat_id",
  "user_id",
  "message_id",
  "reason",
  "created_by",
  "created_at",
] as const;

const COLS = LEGAL_HOLD_COLUMNS.join(", ");

/** `{tenant}/archive/`: where the archive keeps a tenant's bodies (seed 001's prefix). */
const NOT_ARCHIVED = "substr(blob_key, 1, length(tenant_id) + 9) <> tenant_id || '/archive/'";

export const LIFECYCLE_QUERIES = {
  insertHold: query(
    `INSERT INTO legal_holds (${COLS}) VALUES ({tenant}, {id}, {chat}, {user}, {message}, {reason}, ` +
      "{createdBy}, {createdAt})",
  ),
  deleteHold: query("DELETE FROM legal_holds WHERE tenant_id = {tenant} AND id = {id}"),
  /** One row when a hold of the tenant names one of the messages, chats or users. */
  held: query(
    "SELECT 1 AS held FROM legal_holds WHERE tenant_id = {tenant} AND (message_id IN {messages:list} " +
      "OR chat_id IN {chats:list} OR user_id IN {users:list}) LIMIT 1",
  ),
  getHold: query(`SELECT ${COLS} FROM legal_holds WHERE tenant_id = {tenant} AND id = {id}`),
  listHolds: query(
    `SELECT ${COLS} FROM legal_holds WHERE tenant_id = {tenant} AND id > {after} ORDER BY id LIMIT {limit}`,
  ),
  messagesToArchive: query(
    `SELECT ${MESSAGE_COLUMNS.join(", ")} FROM messages WHERE created_at < {before} AND ${NOT_ARCHIVED} ` +
      "AND (tenant_id, id) > ({after_tenant:text}, {after_id:text}) ORDER BY tenant_id, id LIMIT {limit}",
  ),
  objectsToArchive: query(
    `SELECT ${OBJECT_COLUMNS.join(", ")} FROM objects WHERE updated_at < {before} AND ${NOT_ARCHIVED} ` +
      "AND (tenant_id, key) > ({after_tenant:text}, {after_id:text}) ORDER BY tenant_id, key LIMIT {limit}",
  ),
  /** A version's body moved: the message row when that version is current, and its version row. */
  moveMessageRow: query(
    "UPDATE messages SET store_id = {store}, blob_key = {key}, size_bytes = {size}, checksum = {checksum} " +
      "WHERE tenant_id = {tenant} AND id = {id} AND version = {version} AND blob_key = {from}",
  ),
  moveVersionRow: query(
    "UPDATE message_versions SET store_id = {store}, blob_key = {key}, size_bytes = {size}, " +
      "checksum = {checksum} WHERE tenant_id = {tenant} AND message_id = {id} AND version = {version} " +
      "AND blob_key = {from}",
  ),
} as const;

export function holdParams(h: LegalHoldRow): Record<string, unknown> {
  return {
    tenant: h.tenantId,
    id: h.id,
    chat: h.chatId,
    user: h.userId,
    message: h.messageId,
    reason: h.reason,
    createdBy: h.createdBy,
    createdAt: h.createdAt,
  };
}

export function moveParams(op: Extract<CatalogOp, { op: "moveMessageBody" }>): Record<string, unknown> {
  return {
    tenant: op.tenantId,
    id: op.id,
    version: op.version,
    from: op.fromBlobKey,
    store: op.storeId,
    key: op.blobKey,
    size: op.sizeBytes,
    checksum: op.checksum,
  };
}

export function heldParams(q: HeldQuery): Record<string, unknown> {
  return { tenant: q.tenantId, messages: [...q.messageIds], chats: [...q.chatIds], users: [...q.userIds] };
}

export function toLegalHold(r: DbRow): LegalHoldRow {
  const text = (v: unknown) => (v === null || v === undefined ? null : String(v));
  return {
    tenantId: r.tenant_id as string,
    id: r.id as string,
    chatId: text(r.chat_id),
    userId: text(r.user_id),
    messageId: text(r.message_id),
    reason: r.reason as string,
    createdBy: r.created_by as string,
    createdAt: Number(r.created_at),
  };
}

export function legalHoldBlocks(q: HeldQuery): KuraError {
  return new KuraError("LEGAL_HOLD", "a legal hold covers this data: it cannot be removed", {
    operation: "catalog.commit",
    context: { tenantId: q.tenantId },
  });
}

export function legalHoldNotFound(tenantId: string, id: string): KuraError {
  return new KuraError("LEGAL_HOLD_NOT_FOUND", `no legal hold ${id}`, {
    operation: "catalog.commit",
    context: { tenantId, id },
  });
}
