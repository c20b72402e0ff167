/**
 * The write path on SQLite: a group commit inside one `db.transaction()` (BEGIN IMMEDIATE).
 *
 * better-sqlite3 is synchronous, so nothing else runs on the connection meanwhile and the event
 * loop is held only for the commit itself. Each batch runs in a nested transaction (a
 * SAVEPOINT): a throwing batch rolls back alone. Append-only groups are first tried merged, as
 * one batch, so chat touches and usage deltas fold across the whole group.
 */
import type Database from "better-sqlite3";
import type { BatchOutcome, CatalogBatch, MessageRow } from "../../../ports/catalog.js";
import {
  badNewVersion,
  duplicate,
  idempotencyConflict,
  messageNotFound,
  OK,
  staleObject,
  staleVersion,
} from "../common.js";
import { LEASE_QUERIES, leaseLost, leaseParams } from "../leases.js";
import {
  heldParams,
  holdParams,
  LIFECYCLE_QUERIES as L,
  legalHoldBlocks,
  legalHoldNotFound,
  moveParams,
} from "../lifecycle.js";
import { MAIL_OPS, type MailStepResult, mailInsertError, mailOpSteps } from "../mail.js";
import { isAppendOnly, type PlanStep, planOps, type SingleOp } from "../plan.js";
import {
  AUDIT_COLUMNS,
  auditValues,
  BLOB_REF_COLUMNS,
  blobRefValues,
  FIRST_VERSION_COLUMNS,
  feedCounts,
  MESSAGE_COLUMNS,
  MESSAGE_VERSION_COLUMNS,
  messageValues,
  messageVersionValues,
  OBJECT_COLUMNS,
  OUTBOX_INSERT_COLUMNS,
  objectValues,
  outboxInsertValues,
  sqliteInsert,
} from "../rows.js";
import { quotaExceeded } from "../tenant-rows.js";
import { isUniqueViolation, sqliteError } from "./errors.js";

type Statement = Database.Statement;

const OBJECT_SET = OBJECT_COLUMNS.slice(2)
  .map((c) => `${c} = excluded.${c}`)
  .join(", ");

const SQL = {
  usageOf:
    "SELECT COALESCE((SELECT bytes FROM usage WHERE tenant_id = @t), 0) + COALESCE(SUM(bytes), 0) AS bytes, " +
    "COALESCE((SELECT objects FROM usage WHERE tenant_id = @t), 0) + COALESCE(SUM(objects), 0) AS objects " +
    "FROM usage_deltas WHERE tenant_id = @t",
  ensureTenant:
    "INSERT INTO tenants (tenant_id, created_at) VALUES (?, ?) ON CONFLICT (tenant_id) DO NOTHING",
  touchChat:
    "INSERT INTO chats (tenant_id, chat_id, created_at, last_message_at) VALUES (?, ?, ?, ?) " +
    "ON CONFLICT (tenant_id, chat_id) DO UPDATE SET last_message_at = max(last_message_at, excluded.last_message_at)",
  insertMessage: sqliteInsert("messages", MESSAGE_COLUMNS),
  insertBlobRef: sqliteInsert("blob_refs", BLOB_REF_COLUMNS),
  insertOutbox: sqliteInsert("outbox", OUTBOX_INSERT_COLUMNS),
  advanceFeed:
    "INSERT INTO tenants (tenant_id, created_at, feed_seq) VALUES (?, ?, ?) ON CONFLICT (tenant_id) " +
    "DO UPDATE SET feed_seq = coalesce(feed_seq, 0) + excluded.feed_seq RETURNING feed_seq",
  insertAudit: sqliteInsert("audit_log", AUDIT_COLUMNS),
  insertUsage: "INSERT INTO usage_deltas (tenant_id, bytes, objects, messages) VALUES (?, ?, ?, ?)",
  messageVersion: "SELECT version FROM messages WHERE tenant_id = ? AND id = ?",
  idempotencyKeyExists: "SELECT 1 AS found FROM messages WHERE tenant_id = ? AND idempotency_key = ?",
  insertVersion: sqliteInsert("message_versions", MESSAGE_VERSION_COLUMNS),
  recordFirstVersion:
    `INSERT INTO message_versions (${MESSAGE_VERSION_COLUMNS.join(", ")}) SELECT ${FIRST_VERSION_COLUMNS.join(", ")} ` +
    "FROM messages WHERE tenant_id = ? AND id = ? ON CONFLICT DO NOTHING",
  updateToVersion:
    "UPDATE messages SET version = ?, store_id = ?, blob_key = ?, size_bytes = ?, checksum = ?, preview = ?, " +
    "updated_at = ? WHERE tenant_id = ? AND id = ?",
  setDeleted: "UPDATE messages SET deleted_at = ?, updated_at = ? WHERE tenant_id = ? AND id = ?",
  deleteVersions: "DELETE FROM message_versions WHERE tenant_id = ? AND message_id = ?",
  deleteMessage: "DELETE FROM messages WHERE tenant_id = ? AND id = ?",
  putObject: `${sqliteInsert("objects", OBJECT_COLUMNS)} ON CONFLICT (tenant_id, key) DO UPDATE SET ${OBJECT_SET}`,
  createObject: `${sqliteInsert("objects", OBJECT_COLUMNS)} ON CONFLICT (tenant_id, key) DO NOTHING`,
  replaceObjectIf: `UPDATE objects SET ${OBJECT_COLUMNS.slice(2)
    .map((c) => `${c} = ?`)
    .join(", ")} WHERE tenant_id = ? AND key = ? AND blob_key = ?`,
  deleteObjectIf: "DELETE FROM objects WHERE tenant_id = ? AND key = ? AND blob_key = ?",
  deleteObject: "DELETE FROM objects WHERE tenant_id = ? AND key = ?",
  deleteBlobRef: "DELETE FROM blob_refs WHERE store_id = ? AND blob_key = ? AND tenant_id = ?",
} as const;

export class GroupCommit {
  private readonly groupTx: Database.Transaction<
    (batches: readonly CatalogBatch[], outcomes: BatchOutcome[]) => void
  >;
  private readonly batchTx: Database.Transaction<(steps: PlanStep[]) => void>;

  /** `stmt` returns the cached prepared statement for a SQL text. */
  constructor(
    private readonly db: Database.Database,
    private readonly stmt: (sql: string) => Statement,
  ) {
    // Nested better-sqlite3 transactions become savepoints: a throwing batch rolls back alone.
    this.batchTx = db.transaction((steps: PlanStep[]) => {
      for (const step of steps) this.applyStep(step);
    });
    this.groupTx = db.transaction((batches: readonly CatalogBatch[], outcomes: BatchOutcome[]) => {
      // Append-only batches are first tried as one (chat touches and usage deltas fold across
      // the group); if that fails, the savepoint is rolled back and each batch runs on its own.
      if (batches.length > 1 && batches.every((b) => isAppendOnly(b.ops))) {
        try {
          this.batchTx(planOps(batches.flatMap((b) => b.ops)));
          outcomes.fill(OK);
          return;
        } catch (e) {
          if (!this.db.inTransaction) throw e;
        }
      }
      batches.forEach((batch, i) => {
        try {
          this.batchTx(planOps(batch.ops));
          outcomes[i] = OK;
        } catch (e) {
          const error = sqliteError(e, "catalog.commit");
          // A busy, full or broken database fails the group as a whole, not batch by batch.
          if (error.code === "CATALOG_UNAVAILABLE" || error.code === "STORAGE_FULL" || !this.db.inTransaction)
            throw e;
          outcomes[i] = { ok: false, error };
        }
      });
    });
  }

  /** Apply `batches` in one transaction; throws when the transaction as a whole fails. */
  run(batches: readonly CatalogBatch[]): BatchOutcome[] {
    const outcomes: BatchOutcome[] = new Array(batches.length);
    this.groupTx.immediate(batches, outcomes);
    return outcomes;
  }

  private applyStep(step: PlanStep): void {
    if (step.kind === "op") {
      this.applyOp(step.op);
      return;
    }
    for (const t of step.tenants) this.stmt(SQL.ensureTenant).run(t.tenantId, t.createdAt);
    for (const c of step.chats)
      this.stmt(SQL.touchChat).run(c.tenantId, c.chatId, c.createdAt, c.lastMessageAt);
    if (step.messages.length > 0) {
      // The message row is its version 1 until the first edit (FIRST_VERSION_COLUMNS).
      const insert = this.stmt(SQL.insertMessage);
      for (const m of step.messages) {
        try {
          insert.run(messageValues(m));
        } catch (e) {
          throw this.messageInsertError(e, m);
        }
      }
    }
    if (step.blobRefs.length > 0) {
      const insert = this.stmt(SQL.insertBlobRef);
      for (const r of step.blobRefs) {
        try {
          insert.run(blobRefValues(r));
        } catch (e) {
          if (isUniqueViolation(e)) throw duplicate("blob ref", { storeId: r.storeId, blobKey: r.blobKey });
          throw e;
        }
      }
    }
    if (step.outbox.length > 0) {
      // Each tenant's feed advances by its events (one writer: issue order is commit order).
      const last = new Map<string, number>();
      const advance = this.stmt(SQL.advanceFeed);
      for (const { tenantId, count, at } of feedCounts(step.outbox)) {
        last.set(tenantId, Number((advance.get(tenantId, at, count) as { feed_seq: number }).feed_seq));
      }
      const insert = this.stmt(SQL.insertOutbox);
      for (const values of outboxInsertValues(step.outbox, last)) insert.run(values);
    }
    if (step.audit.length > 0) {
      const insert = this.stmt(SQL.insertAudit);
      for (const a of step.audit) insert.run(auditValues(a));
    }
    for (const u of step.usage) this.stmt(SQL.insertUsage).run(u.tenantId, u.bytes, u.objects, u.messages);
  }

  /**
   * A unique violation on insert: the idempotency key wins over the id (a retried append).
   * Rows are inserted one at a time, so earlier rows of the same batch are visible here.
   */
  private messageInsertError(e: unknown, m: MessageRow): unknown {
    if (!isUniqueViolation(e)) return e;
    if (m.idempotencyKey !== null && m.idempotencyKey !== undefined) {
      const found = this.stmt(SQL.idempotencyKeyExists).get(m.tenantId, m.idempotencyKey);
      if (found) return idempotencyConflict(m.tenantId, m.idempotencyKey);
    }
    return duplicate("message", { tenantId: m.tenantId, id: m.id });
  }

  /** A mail operation's statements (`mail.ts`), run in turn. */
  private applyMailOp(op: SingleOp): void {
    const steps = mailOpSteps(op as Parameters<typeof mailOpSteps>[0]);
    let result: MailStepResult | undefined;
    for (;;) {
      const next = result === undefined ? steps.next() : steps.next(result);
      if (next.done) return;
      const q = next.value.query.sqlite;
      const stmt = this.stmt(q.sql);
      try {
        result = stmt.reader
          ? { rows: stmt.all(q.bind(next.value.params)) as MailStepResult["rows"], changes: 0 }
          : { rows: [], changes: stmt.run(q.bind(next.value.params)).changes };
      } catch (e) {
        if (isUniqueViolation(e)) throw mailInsertError(op as Parameters<typeof mailInsertError>[0]);
        throw e;
      }
    }
  }

  private applyOp(op: SingleOp): void {
    if (MAIL_OPS.has(op.op)) {
      this.applyMailOp(op);
      return;
    }
    switch (op.op) {
      case "addMessageVersion": {
        const { row, expectVersion } = op;
        const cur = this.stmt(SQL.messageVersion).get(row.tenantId, row.messageId) as
          | { version: number }
          | undefined;
        if (!cur) throw messageNotFound(row.tenantId, row.messageId);
        if (cur.version !== expectVersion)
          throw staleVersion(row.tenantId, row.messageId, expectVersion, cur.version);
        if (row.version !== expectVersion + 1)
          throw badNewVersion(row.tenantId, row.messageId, expectVersion, row.version);
        // The first edit: version 1 leaves the message row for message_versions.
        if (expectVersion === 1) this.stmt(SQL.recordFirstVersion).run(row.tenantId, row.messageId);
        try {
          this.stmt(SQL.insertVersion).run(messageVersionValues(row));
        } catch (e) {
          if (isUniqueViolation(e))
            throw duplicate("message version", { id: row.messageId, version: row.version });
          throw e;
        }
        this.stmt(SQL.updateToVersion).run(
          row.version,
          row.storeId,
          row.blobKey,
          row.sizeBytes,
          row.checksum,
          row.preview,
          op.updatedAt,
          row.tenantId,
          row.messageId,
        );
        return;
      }
      case "setMessageDeleted": {
        const info = this.stmt(SQL.setDeleted).run(op.deletedAt, op.updatedAt, op.tenantId, op.id);
        if (info.changes === 0) throw messageNotFound(op.tenantId, op.id);
        return;
      }
      case "deleteMessage":
        if (op.expectVersion !== undefined) {
          const cur = this.stmt(SQL.messageVersion).get(op.tenantId, op.id) as
            | { version: number }
            | undefined;
          if (!cur) throw messageNotFound(op.tenantId, op.id);
          if (cur.version !== op.expectVersion)
            throw staleVersion(op.tenantId, op.id, op.expectVersion, cur.version);
        }
        this.stmt(SQL.deleteVersions).run(op.tenantId, op.id);
        this.stmt(SQL.deleteMessage).run(op.tenantId, op.id);
        return;
      case "putObject": {
        const { row, expectBlobKey } = op;
        if (expectBlobKey === undefined) {
          this.stmt(SQL.putObject).run(objectValues(row));
        } else if (expectBlobKey === null) {
          if (this.stmt(SQL.createObject).run(objectValues(row)).changes === 0) {
            throw staleObject(row.tenantId, row.key, null);
          }
        } else {
          const values = objectValues(row);
          const info = this.stmt(SQL.replaceObjectIf).run(
            values.slice(2),
            row.tenantId,
            row.key,
            expectBlobKey,
          );
          if (info.changes === 0) throw staleObject(row.tenantId, row.key, expectBlobKey);
        }
        return;
      }
      case "deleteObject":
        if (op.expectBlobKey === undefined) {
          this.stmt(SQL.deleteObject).run(op.tenantId, op.key);
        } else if (this.stmt(SQL.deleteObjectIf).run(op.tenantId, op.key, op.expectBlobKey).changes === 0) {
          throw staleObject(op.tenantId, op.key, op.expectBlobKey);
        }
        return;
      case "deleteBlobRef":
        this.stmt(SQL.deleteBlobRef).run(op.storeId, op.blobKey, op.tenantId);
        return;
      case "checkQuota": {
        // One writer: every earlier batch of the tenant, this one's rows included, is counted.
        const u = this.stmt(SQL.usageOf).get({ t: op.tenantId }) as { bytes: number; objects: number };
        if (op.maxBytes !== undefined && Number(u.bytes) > op.maxBytes)
          throw quotaExceeded(op.tenantId, "max_storage_bytes", Number(u.bytes), op.maxBytes);
        if (op.maxObjects !== undefined && Number(u.objects) > op.maxObjects)
          throw quotaExceeded(op.tenantId, "max_objects", Number(u.objects), op.maxObjects);
        return;
      }
      case "moveMessageBody": {
        const cur = this.stmt(SQL.messageVersion).get(op.tenantId, op.id) as { version: number } | undefined;
        if (!cur) throw messageNotFound(op.tenantId, op.id);
        if (cur.version !== op.expectVersion)
          throw staleVersion(op.tenantId, op.id, op.expectVersion, cur.version);
        const params = moveParams(op);
        let moved = 0;
        for (const q of [L.moveMessageRow, L.moveVersionRow])
          moved += this.stmt(q.sqlite.sql).run(q.sqlite.bind(params)).changes;
        if (moved === 0) throw staleVersion(op.tenantId, op.id, op.expectVersion, cur.version);
        return;
      }
      case "insertLegalHold":
        try {
          this.stmt(L.insertHold.sqlite.sql).run(L.insertHold.sqlite.bind(holdParams(op)));
        } catch (e) {
          if (isUniqueViolation(e)) throw duplicate("legal hold", { id: op.id });
          throw e;
        }
        return;
      case "deleteLegalHold": {
        const q = L.deleteHold.sqlite;
        if (this.stmt(q.sql).run(q.bind({ tenant: op.tenantId, id: op.id })).changes === 0)
          throw legalHoldNotFound(op.tenantId, op.id);
        return;
      }
      case "checkLease": {
        // One writer: a takeover committed before this batch is seen.
        const q = LEASE_QUERIES.check.sqlite;
        if (!this.stmt(q.sql).get(q.bind(leaseParams(op)))) throw leaseLost(op);
        return;
      }
      case "checkNotHeld": {
        // One writer: every hold committed before this batch is seen.
        const q = L.held.sqlite;
        if (this.stmt(q.sql).get(q.bind(heldParams(op)))) throw legalHoldBlocks(op);
        return;
      }
    }
  }
}
