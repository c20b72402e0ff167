/**
 * Mail rows in the catalog (MAIL-1), once for both dialects: the row mapping, the reads, and
 * the batch operations as a sequence of statements ({@link mailOpSteps}) that each dialect's
 * commit drives — synchronously on SQLite, awaiting each on PostgreSQL — so the logic of a
 * delete or copy of rows sharing a body is written once.
 *
 * Rows sharing a body are serialised by the body's ref row: every operation that adds or
 * removes a row naming a body first updates that ref row (a no-op change that takes its row
 * lock on PostgreSQL; SQLite has one writer), then looks at the other rows.
 */
import { KuraError } from "../../core/errors.js";
import type { MailAddress, MailAttachment, MailOp, MailRow } from "../../ports/mail-catalog.js";
import { duplicate } from "./common.js";
import { type Query, type QueryParams, query } from "./queries.js";
import type { DbRow } from "./rows.js";

export const MAIL_COLUMNS = [
  "tenant_id",
  "id",
  "mailbox_id",
  "store_id",
  "blob_key",
  "size_bytes",
  "checksum",
  "header_message_id",
  "subject",
  "from_addr",
  "to_addrs",
  "cc_addrs",
  "sent_at",
  "received_at",
  "flags",
  "attachments",
  "thread_id",
  "in_reply_to",
  "refs",
  "headers",
  "problems",
  "search_text",
] as const;

const COLS = MAIL_COLUMNS.join(", ");
const SELECT = `SELECT ${COLS} FROM mail_messages WHERE tenant_id = {tenant}`;
const AFTER = "AND (received_at, id) > ({after_at:bigint}, {after_id:text})";

export const MAIL_QUERIES = {
  insert: query(
    `INSERT INTO mail_messages (${COLS}) VALUES (${MAIL_COLUMNS.map((c) => `{${c}}`).join(", ")})`,
  ),
  lockRef: query(
    "UPDATE blob_refs SET created_at = created_at WHERE store_id = {store} AND blob_key = {key} AND tenant_id = {tenant}",
  ),
  move: query(
    "UPDATE mail_messages SET mailbox_id = {to} WHERE tenant_id = {tenant} AND id = {id} AND mailbox_id = {from}",
  ),
  delete: query(
    "DELETE FROM mail_messages WHERE tenant_id = {tenant} AND id = {id} AND mailbox_id = {mailbox}",
  ),
  sharing: query("SELECT count(*) AS n FROM mail_messages WHERE tenant_id = {tenant} AND blob_key = {key}"),
  setFlags: query(
    "UPDATE mail_messages SET flags = {flags} WHERE tenant_id = {tenant} AND id = {id} AND flags = {expect}",
  ),
  mailboxBytes: query(
    "SELECT COALESCE(SUM(size_bytes), 0) AS n FROM mail_messages WHERE tenant_id = {tenant} AND mailbox_id = {mailbox}",
  ),
  get: query(`${SELECT} AND id = {id}`),
  list: query(`${SELECT} AND mailbox_id = {mailbox} ORDER BY received_at, id LIMIT {limit}`),
  listSince: query(
    `${SELECT} AND mailbox_id = {mailbox} AND received_at >= {since} ORDER BY received_at, id LIMIT {limit}`,
  ),
  listAfter: query(`${SELECT} AND mailbox_id = {mailbox} ${AFTER} ORDER BY received_at, id LIMIT {limit}`),
  thread: query(`${SELECT} AND thread_id = {thread} ORDER BY received_at, id LIMIT {limit}`),
  threadAfter: query(`${SELECT} AND thread_id = {thread} ${AFTER} ORDER BY received_at, id LIMIT {limit}`),
  tenantNewest: query(`${SELECT} ORDER BY id DESC LIMIT {limit}`),
  tenantBefore: query(`${SELECT} AND id < {before} ORDER BY id DESC LIMIT {limit}`),
  keys: query("SELECT tenant_id, id FROM mail_messages ORDER BY tenant_id, id LIMIT {limit}"),
  keysAfter: query(
    "SELECT tenant_id, id FROM mail_messages WHERE (tenant_id, id) > ({after_tenant:text}, {after_id:text}) " +
      "ORDER BY tenant_id, id LIMIT {limit}",
  ),
  threadsOf: query(
    "SELECT header_message_id, thread_id FROM mail_messages WHERE tenant_id = {tenant} " +
      "AND header_message_id IN {ids:list}",
  ),
} as const;

/** The named values of a row's insert. */
export function mailParams(r: MailRow): QueryParams {
  return {
    tenant_id: r.tenantId,
    id: r.id,
    mailbox_id: r.mailboxId,
    store_id: r.storeId,
    blob_key: r.blobKey,
    size_bytes: r.sizeBytes,
    checksum: r.checksum,
    header_message_id: r.headerMessageId,
    subject: r.subject,
    from_addr: r.from === null ? null : JSON.stringify(r.from),
    to_addrs: JSON.stringify(r.to),
    cc_addrs: JSON.stringify(r.cc),
    sent_at: r.sentAt,
    received_at: r.receivedAt,
    flags: JSON.stringify(r.flags),
    attachments: JSON.stringify(r.attachments),
    thread_id: r.threadId,
    in_reply_to: r.inReplyTo,
    refs: JSON.stringify(r.references),
    headers: JSON.stringify(r.headers),
    problems: JSON.stringify(r.problems),
    search_text: r.searchText,
  };
}

const json = <T>(v: unknown, empty: T): T => (typeof v === "string" ? (JSON.parse(v) as T) : empty);
const strOrNull = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));

export function toMailRow(r: DbRow): MailRow {
  return {
    tenantId: String(r.tenant_id),
    id: String(r.id),
    mailboxId: String(r.mailbox_id),
    storeId: String(r.store_id),
    blobKey: String(r.blob_key),
    sizeBytes: Number(r.size_bytes),
    checksum: String(r.checksum),
    headerMessageId: strOrNull(r.header_message_id),
    subject: strOrNull(r.subject),
    from: json<MailAddress | null>(r.from_addr, null),
    to: json<MailAddress[]>(r.to_addrs, []),
    cc: json<MailAddress[]>(r.cc_addrs, []),
    sentAt: r.sent_at === null || r.sent_at === undefined ? null : Number(r.sent_at),
    receivedAt: Number(r.received_at),
    flags: json<string[]>(r.flags, []),
    attachments: json<MailAttachment[]>(r.attachments, []),
    threadId: String(r.thread_id),
    inReplyTo: strOrNull(r.in_reply_to),
    references: json<string[]>(r.refs, []),
    headers: json<Record<string, string>>(r.headers, {}),
    problems: json<string[]>(r.problems, []),
    searchText: String(r.search_text),
  };
}

/** One statement of a mail operation, and what it gave back. */
export interface MailStep {
  query: Query;
  params: QueryParams;
}
export interface MailStepResult {
  rows: DbRow[];
  changes: number;
}

export const MAIL_OPS = new Set<string>(["insertMail", "copyMail", "moveMail", "deleteMail", "setMailFlags"]);

function mailNotFound(tenantId: string, id: string): KuraError {
  return new KuraError("CATALOG_NOT_FOUND", `no mail ${id}`, {
    operation: "catalog.commit",
    context: { tenantId, id },
  });
}

function staleMail(tenantId: string, id: string, why: string): KuraError {
  return new KuraError("CATALOG_STALE_VERSION", `mail ${id}: ${why}`, {
    operation: "catalog.commit",
    context: { tenantId, id },
  });
}

/**
 * The statements of one mail operation, in order; each yields a statement and receives its
 * result. Throws the operation's KuraError (the batch then rolls back). A unique violation on
 * insert comes out of the driver; `mailInsertError` names it.
 */
export function* mailOpSteps(op: MailOp): Generator<MailStep, void, MailStepResult> {
  const Q = MAIL_QUERIES;
  switch (op.op) {
    case "insertMail":
      yield { query: Q.insert, params: mailParams(op.row) };
      yield* checkMailbox(op.tenantId, op.row.mailboxId, op.maxMailboxBytes);
      return;
    case "copyMail": {
      const r = op.row;
      const locked = yield {
        query: Q.lockRef,
        params: { store: r.storeId, key: r.blobKey, tenant: r.tenantId },
      };
      if (locked.changes === 0) throw mailNotFound(r.tenantId, r.id);
      yield { query: Q.insert, params: mailParams(r) };
      yield* checkMailbox(op.tenantId, r.mailboxId, op.maxMailboxBytes);
      return;
    }
    case "moveMail": {
      const moved = yield {
        query: Q.move,
        params: { tenant: op.tenantId, id: op.id, from: op.fromMailboxId, to: op.toMailboxId },
      };
      if (moved.changes === 0) throw mailNotFound(op.tenantId, op.id);
      yield* checkMailbox(op.tenantId, op.toMailboxId, op.maxMailboxBytes);
      return;
    }
    case "deleteMail": {
      yield { query: Q.lockRef, params: { store: op.storeId, key: op.blobKey, tenant: op.tenantId } };
      const gone = yield {
        query: Q.delete,
        params: { tenant: op.tenantId, id: op.id, mailbox: op.mailboxId },
      };
      if (gone.changes === 0) throw mailNotFound(op.tenantId, op.id);
      const left = yield { query: Q.sharing, params: { tenant: op.tenantId, key: op.blobKey } };
      const others = Number(left.rows[0]?.n ?? 0);
      if (op.last && others > 0) throw staleMail(op.tenantId, op.id, "another message shares its body now");
      if (!op.last && others === 0)
        throw staleMail(op.tenantId, op.id, "no other message shares its body now");
      return;
    }
    case "setMailFlags": {
      const set = yield {
        query: Q.setFlags,
        params: {
          tenant: op.tenantId,
          id: op.id,
          flags: JSON.stringify(op.flags),
          expect: JSON.stringify(op.expect),
        },
      };
      if (set.changes === 0) throw staleMail(op.tenantId, op.id, "its flags changed since they were read");
      return;
    }
  }
}

/** After an insert, copy or move: the target mailbox's bytes against `maxMailboxBytes`. */
function* checkMailbox(
  tenantId: string,
  mailboxId: string,
  maxBytes: number | undefined,
): Generator<MailStep, void, MailStepResult> {
  if (maxBytes === undefined) return;
  const r = yield { query: MAIL_QUERIES.mailboxBytes, params: { tenant: tenantId, mailbox: mailboxId } };
  const used = Number(r.rows[0]?.n ?? 0);
  if (used > maxBytes)
    throw new KuraError(
      "QUOTA_EXCEEDED",
      `the write would take mailbox ${mailboxId} past max_mailbox_bytes (${used} with it, limit ${maxBytes}); nothing was stored`,
      {
        operation: "catalog.commit",
        context: { tenantId, mailboxId, limit: "max_mailbox_bytes", used, max: maxBytes },
      },
    );
}

/** A unique violation while applying `op`: the mail id exists. */
export function mailInsertError(op: MailOp): KuraError {
  const id = op.op === "insertMail" || op.op === "copyMail" ? op.row.id : "id" in op ? op.id : "";
  return duplicate("mail", { id });
}
