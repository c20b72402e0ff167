/**
 * Row mapping shared by both dialects: port rows ↔ column values. Both drivers hand back
 * snake_case columns with integers as JS numbers (the PostgreSQL adapter parses BIGINT into
 * numbers; catalog integers are times, sizes and counters, far below 2^53), so one mapping
 * serves both.
 */
import { KuraError } from "../../core/errors.js";
import type {
  AuditEntry,
  BlobRefRow,
  ChatRow,
  MessageRow,
  MessageVersionRow,
  ObjectRow,
  OutboxEvent,
} from "../../ports/catalog.js";

export type DbRow = Record<string, unknown>;

/** JSON text for a `json` column; the value must be a plain JSON object. */
export function jsonText(value: Record<string, unknown>, what: string): string {
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new KuraError("INVALID_ARGUMENT", `${what} must be a JSON object`, { operation: "catalog.commit" });
  }
  try {
    return JSON.stringify(value);
  } catch (e) {
    throw new KuraError("INVALID_ARGUMENT", `${what} is not JSON-serialisable`, {
      operation: "catalog.commit",
      cause: e,
    });
  }
}

function parseJson(text: unknown): Record<string, unknown> {
  if (typeof text !== "string") return {};
  // Most rows carry no metadata: skip the parser for them.
  if (text === "{}") return {};
  return JSON.parse(text) as Record<string, unknown>;
}

const str = (v: unknown): string => v as string;
const num = (v: unknown): number => Number(v);
const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));
const strOrNull = (v: unknown): string | null => (v === null || v === undefined ? null : (v as string));

// --- column order of inserts (the same on both dialects) ------------------------------------

export const MESSAGE_COLUMNS = [
  "tenant_id",
  "id",
  "chat_id",
  "role",
  "content_type",
  "preview",
  "size_bytes",
  "checksum",
  "store_id",
  "blob_key",
  "version",
  "created_at",
  "updated_at",
  "deleted_at",
  "expires_at",
  "idempotency_key",
  "metadata",
] as const;

export function messageValues(r: MessageRow): unknown[] {
  return [
    r.tenantId,
    r.id,
    r.chatId,
    r.role,
    r.contentType,
    r.preview,
    r.sizeBytes,
    r.checksum,
    r.storeId,
    r.blobKey,
    r.version,
    r.createdAt,
    r.updatedAt,
    r.deletedAt ?? null,
    r.expiresAt ?? null,
    r.idempotencyKey ?? null,
    jsonText(r.metadata, "message metadata"),
  ];
}

export const MESSAGE_VERSION_COLUMNS = [
  "tenant_id",
  "message_id",
  "version",
  "store_id",
  "blob_key",
  "size_bytes",
  "checksum",
  "preview",
  "created_at",
] as const;

export function messageVersionValues(r: MessageVersionRow): unknown[] {
  return [
    r.tenantId,
    r.messageId,
    r.version,
    r.storeId,
    r.blobKey,
    r.sizeBytes,
    r.checksum,
    r.preview,
    r.createdAt,
  ];
}

export const OBJECT_COLUMNS = [
  "tenant_id",
  "key",
  "store_id",
  "blob_key",
  "size_bytes",
  "checksum",
  "content_type",
  "created_at",
  "updated_at",
] as const;

export function objectValues(r: ObjectRow): unknown[] {
  return [
    r.tenantId,
    r.key,
    r.storeId,
    r.blobKey,
    r.sizeBytes,
    r.checksum,
    r.contentType,
    r.createdAt,
    r.updatedAt,
  ];
}

export const BLOB_REF_COLUMNS = [
  "store_id",
  "blob_key",
  "tenant_id",
  "size_bytes",
  "checksum",
  "kind",
  "created_at",
] as const;

export function blobRefValues(r: BlobRefRow): unknown[] {
  return [r.storeId, r.blobKey, r.tenantId, r.sizeBytes, r.checksum, r.kind, r.createdAt];
}

export const OUTBOX_COLUMNS = ["tenant_id", "type", "entity_id", "payload", "created_at"] as const;

export function outboxValues(e: OutboxEvent): unknown[] {
  return [e.tenantId, e.type, e.entityId, jsonText(e.payload, "outbox payload"), e.createdAt];
}

/** The columns an outbox insert writes: the event and its position in the tenant's feed. */
export const OUTBOX_INSERT_COLUMNS = [...OUTBOX_COLUMNS, "tenant_seq"] as const;

/** How many events of each tenant `events` holds, tenants sorted (the order feed rows are locked in). */
export function feedCounts(
  events: readonly OutboxEvent[],
): { tenantId: string; count: number; at: number }[] {
  const counts = new Map<string, { tenantId: string; count: number; at: number }>();
  for (const e of events) {
    const c = counts.get(e.tenantId);
    if (c) c.count++;
    else counts.set(e.tenantId, { tenantId: e.tenantId, count: 1, at: e.createdAt });
  }
  return [...counts.values()].sort((a, b) =>
    a.tenantId < b.tenantId ? -1 : a.tenantId > b.tenantId ? 1 : 0,
  );
}

/**
 * Insert rows for `events` given each tenant's feed position after them (`last`): the events of
 * a tenant get last-n+1 … last, in order.
 */
export function outboxInsertValues(
  events: readonly OutboxEvent[],
  last: ReadonlyMap<string, number>,
): unknown[][] {
  const next = new Map<string, number>();
  for (const { tenantId, count } of feedCounts(events))
    next.set(tenantId, (last.get(tenantId) ?? count) - count);
  return events.map((e) => {
    const seq = (next.get(e.tenantId) ?? 0) + 1;
    next.set(e.tenantId, seq);
    return [...outboxValues(e), seq];
  });
}

export const AUDIT_COLUMNS = ["tenant_id", "actor", "action", "target", "at", "details"] as const;

export function auditValues(a: AuditEntry): unknown[] {
  return [a.tenantId, a.actor, a.action, a.target, a.at, jsonText(a.details, "audit details")];
}

/** `(a, b, c) VALUES (?, ?, ?)` for SQLite single-row inserts. */
export function sqliteInsert(tableName: string, columns: readonly string[]): string {
  return `INSERT INTO ${tableName} (${columns.join(", ")}) VALUES (${columns.map(() => "?").join(", ")})`;
}

// --- reading rows back -----------------------------------------------------------------------

export function toMessageRow(r: DbRow): MessageRow {
  return {
    tenantId: str(r.tenant_id),
    id: str(r.id),
    chatId: str(r.chat_id),
    role: str(r.role),
    contentType: str(r.content_type),
    preview: str(r.preview),
    sizeBytes: num(r.size_bytes),
    checksum: str(r.checksum),
    storeId: str(r.store_id),
    blobKey: str(r.blob_key),
    version: num(r.version),
    createdAt: num(r.created_at),
    updatedAt: num(r.updated_at),
    deletedAt: numOrNull(r.deleted_at),
    expiresAt: numOrNull(r.expires_at),
    idempotencyKey: strOrNull(r.idempotency_key),
    metadata: parseJson(r.metadata),
  };
}

/**
 * What a message read selects, in the order {@link messageFromValues} expects: every column of
 * a {@link MessageRow} but the tenant (always in the WHERE clause, so known). Selected as arrays
 * (better-sqlite3's raw mode), which spares a keyed object per row.
 */
export const MESSAGE_READ_COLUMNS = [
  "chat_id",
  "id",
  "role",
  "content_type",
  "preview",
  "size_bytes",
  "checksum",
  "store_id",
  "blob_key",
  "version",
  "created_at",
  "updated_at",
  "deleted_at",
  "expires_at",
  "idempotency_key",
  "metadata",
] as const;

/** {@link MESSAGE_READ_COLUMNS} without `chat_id`, for reads of one chat (history). */
export const CHAT_MESSAGE_READ_COLUMNS = MESSAGE_READ_COLUMNS.slice(1);

/**
 * A message row from the values of {@link MESSAGE_READ_COLUMNS}, or of
 * {@link CHAT_MESSAGE_READ_COLUMNS} when `chatId` is given (the chat the query named).
 */
export function messageFromValues(v: readonly unknown[], tenantId: string, chatId?: string): MessageRow {
  const o = chatId === undefined ? 1 : 0;
  return {
    tenantId,
    id: v[o] as string,
    chatId: chatId ?? (v[0] as string),
    role: v[o + 1] as string,
    contentType: v[o + 2] as string,
    preview: v[o + 3] as string,
    sizeBytes: num(v[o + 4]),
    checksum: v[o + 5] as string,
    storeId: v[o + 6] as string,
    blobKey: v[o + 7] as string,
    version: num(v[o + 8]),
    createdAt: num(v[o + 9]),
    updatedAt: num(v[o + 10]),
    deletedAt: numOrNull(v[o + 11]),
    expiresAt: numOrNull(v[o + 12]),
    idempotencyKey: strOrNull(v[o + 13]),
    metadata: parseJson(v[o + 14]),
  };
}

export function toMessageVersionRow(r: DbRow): MessageVersionRow {
  return {
    tenantId: str(r.tenant_id),
    messageId: str(r.message_id),
    version: num(r.version),
    storeId: str(r.store_id),
    blobKey: str(r.blob_key),
    sizeBytes: num(r.size_bytes),
    checksum: str(r.checksum),
    preview: str(r.preview),
    createdAt: num(r.created_at),
  };
}

/**
 * The columns of `messages` that are its version 1 while it has not been edited, in the order of
 * {@link MESSAGE_VERSION_COLUMNS}: an append writes no version row; the first edit copies these
 * into message_versions before the new version becomes current.
 */
export const FIRST_VERSION_COLUMNS = [
  "tenant_id",
  "id",
  "version",
  "store_id",
  "blob_key",
  "size_bytes",
  "checksum",
  "preview",
  "created_at",
] as const;

export function toChatRow(r: DbRow): ChatRow {
  return {
    tenantId: str(r.tenant_id),
    chatId: str(r.chat_id),
    createdAt: num(r.created_at),
    lastMessageAt: num(r.last_message_at),
  };
}

export function toObjectRow(r: DbRow): ObjectRow {
  return {
    tenantId: str(r.tenant_id),
    key: str(r.key),
    storeId: str(r.store_id),
    blobKey: str(r.blob_key),
    sizeBytes: num(r.size_bytes),
    checksum: str(r.checksum),
    contentType: str(r.content_type),
    createdAt: num(r.created_at),
    updatedAt: num(r.updated_at),
  };
}

export function toBlobRefRow(r: DbRow): BlobRefRow {
  return {
    tenantId: str(r.tenant_id),
    storeId: str(r.store_id),
    blobKey: str(r.blob_key),
    sizeBytes: num(r.size_bytes),
    checksum: str(r.checksum),
    kind: str(r.kind),
    createdAt: num(r.created_at),
  };
}

export function toOutboxEvent(r: DbRow): OutboxEvent {
  return {
    tenantId: str(r.tenant_id),
    type: str(r.type),
    entityId: str(r.entity_id),
    payload: parseJson(r.payload),
    createdAt: num(r.created_at),
  };
}

export function toAuditEntry(r: DbRow): AuditEntry {
  return {
    tenantId: str(r.tenant_id),
    actor: str(r.actor),
    action: str(r.action),
    target: str(r.target),
    at: num(r.at),
    details: parseJson(r.details),
  };
}
