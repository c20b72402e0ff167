/**
 * The write path on PostgreSQL: one group commit on one connection.
 *
 * Append-only groups (the write path of messages) run merged: each table's rows of every batch
 * go in one multi-row `INSERT … SELECT FROM unnest($1::text[], …)` — a constant, prepared
 * statement whatever the row count. If that fails, the transaction is rolled back and redone
 * batch by batch, each under a SAVEPOINT, so the failure is pinned on its batch and the others
 * still commit. A single batch needs no savepoint: its failure rolls back the transaction.
 */
import type pg from "pg";
import { KuraError, toKuraError } from "../../../core/errors.js";
import type { BatchOutcome, CatalogBatch, MessageRow } from "../../../ports/catalog.js";
import {
  badNewVersion,
  duplicate,
  idempotencyConflict,
  keysRepeatedWithin,
  messageNotFound,
  OK,
  staleObject,
  staleVersion,
} from "../common.js";
import type { TableDef } from "../dsl.js";
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
import { isAppendOnly, type PlanStep, planOps, type RowsStep, type SingleOp } from "../plan.js";
import {
  AUDIT_COLUMNS,
  auditValues,
  BLOB_REF_COLUMNS,
  blobRefValues,
  type DbRow,
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
} from "../rows.js";
import {
  AUDIT_LOG,
  BLOB_REFS,
  CHATS,
  MESSAGES,
  MESSAGES_IDEMPOTENCY_INDEX,
  OUTBOX,
  TENANTS,
  USAGE_DELTAS,
} from "../schema.js";
import { quotaExceeded } from "../tenant-rows.js";
import { isConnectionError, isUniqueViolation, pgCode, pgConstraint, pgError, pgTable } from "./errors.js";

export type Queryable = Pick<pg.Pool, "query">;
/** Runs `text` as a prepared statement on `db`. */
export type RunQuery = (db: Queryable, text: string, values?: unknown[]) => Promise<pg.QueryResult<DbRow>>;
type Client = pg.PoolClient;

const COLS = (cols: readonly string[]) => cols.join(", ");

/** Marks an error thrown by COMMIT itself: whether the transaction committed is unknown. */
export const COMMIT_SENT = Symbol("kura.commitSent");

/** Whether `e` came from a COMMIT whose outcome is unknown. */
export function failedDuringCommit(e: unknown): boolean {
  return e !== null && typeof e === "object" && (e as { [COMMIT_SENT]?: boolean })[COMMIT_SENT] === true;
}

/** A multi-row insert of `columns` from one array parameter per column (types from the DSL). */
function unnestInsert(def: TableDef, columns: readonly string[], tail = ""): string {
  const arrays = columns.map((c, i) => {
    const type = def.columns[c];
    if (type === undefined) throw new Error(`${def.name} has no column ${c}`);
    return `$${i + 1}::${type.startsWith("int") ? "bigint" : "text"}[]`;
  });
  const names = columns.map((_, i) => `c${i}`);
  // WITH ORDINALITY + ORDER BY: identities (outbox, audit) are drawn in the rows' order.
  return (
    `INSERT INTO ${def.name} (${COLS(columns)}) SELECT ${COLS(names)} FROM unnest(${arrays.join(", ")}) ` +
    `WITH ORDINALITY AS u(${COLS(names)}, ord) ORDER BY ord${tail}`
  );
}

const SQL = {
  usageOf:
    "SELECT COALESCE((SELECT bytes FROM usage WHERE tenant_id = $1), 0) + COALESCE(SUM(bytes), 0) AS bytes, " +
    "COALESCE((SELECT objects FROM usage WHERE tenant_id = $1), 0) + COALESCE(SUM(objects), 0) AS objects " +
    "FROM usage_deltas WHERE tenant_id = $1",
  tenants: unnestInsert(TENANTS, ["tenant_id", "created_at"], " ON CONFLICT (tenant_id) DO NOTHING"),
  chats: unnestInsert(
    CHATS,
    ["tenant_id", "chat_id", "created_at", "last_message_at"],
    " ON CONFLICT (tenant_id, chat_id) DO UPDATE SET last_message_at = GREATEST(chats.last_message_at, excluded.last_message_at)",
  ),
  messages: unnestInsert(MESSAGES, MESSAGE_COLUMNS),
  blobRefs: unnestInsert(BLOB_REFS, BLOB_REF_COLUMNS),
  outbox: unnestInsert(OUTBOX, OUTBOX_INSERT_COLUMNS),
  // Locks the feed rows of every tenant the transaction will write events for, in tenant order,
  // before anything else: a tenant's feed positions are then issued in commit order, and two
  // transactions never wait for each other's feed rows in opposite orders.
  lockFeeds:
    "INSERT INTO tenants (tenant_id, created_at) SELECT t, a FROM unnest($1::text[], $2::bigint[]) AS u(t, a) " +
    "ORDER BY t ON CONFLICT (tenant_id) DO UPDATE SET feed_seq = tenants.feed_seq",
  advanceFeeds:
    "INSERT INTO tenants (tenant_id, created_at, feed_seq) SELECT t, a, n FROM unnest($1::text[], $2::bigint[], " +
    "$3::bigint[]) AS u(t, a, n) ORDER BY t ON CONFLICT (tenant_id) DO UPDATE SET feed_seq = " +
    "coalesce(tenants.feed_seq, 0) + excluded.feed_seq RETURNING tenant_id, feed_seq",
  audit: unnestInsert(AUDIT_LOG, AUDIT_COLUMNS),
  usage: unnestInsert(USAGE_DELTAS, ["tenant_id", "bytes", "objects", "messages"]),
  idempotencyKeysExist:
    "SELECT 1 AS found FROM messages WHERE (tenant_id, idempotency_key) IN " +
    "(SELECT * FROM unnest($1::text[], $2::text[])) LIMIT 1",
  recordFirstVersion:
    `INSERT INTO message_versions (${MESSAGE_VERSION_COLUMNS.join(", ")}) SELECT ${FIRST_VERSION_COLUMNS.join(", ")} ` +
    "FROM messages WHERE tenant_id = $1 AND id = $2 ON CONFLICT DO NOTHING",
  lockVersion: "SELECT version FROM messages WHERE tenant_id = $1 AND id = $2 FOR UPDATE",
  insertVersion: `INSERT INTO message_versions (${COLS(MESSAGE_VERSION_COLUMNS)}) VALUES (${MESSAGE_VERSION_COLUMNS.map(
    (_, i) => `$${i + 1}`,
  ).join(", ")})`,
  updateToVersion:
    "UPDATE messages SET version = $1, store_id = $2, blob_key = $3, size_bytes = $4, checksum = $5, preview = $6, " +
    "updated_at = $7 WHERE tenant_id = $8 AND id = $9",
  setDeleted: "UPDATE messages SET deleted_at = $1, updated_at = $2 WHERE tenant_id = $3 AND id = $4",
  deleteVersions: "DELETE FROM message_versions WHERE tenant_id = $1 AND message_id = $2",
  deleteMessage: "DELETE FROM messages WHERE tenant_id = $1 AND id = $2",
  putObject:
    `INSERT INTO objects (${COLS(OBJECT_COLUMNS)}) VALUES (${OBJECT_COLUMNS.map((_, i) => `$${i + 1}`).join(", ")}) ` +
    `ON CONFLICT (tenant_id, key) DO UPDATE SET ${OBJECT_COLUMNS.slice(2)
      .map((c) => `${c} = excluded.${c}`)
      .join(", ")}`,
  createObject:
    `INSERT INTO objects (${COLS(OBJECT_COLUMNS)}) VALUES (${OBJECT_COLUMNS.map((_, i) => `$${i + 1}`).join(", ")}) ` +
    "ON CONFLICT (tenant_id, key) DO NOTHING",
  replaceObjectIf: `UPDATE objects SET ${OBJECT_COLUMNS.slice(2)
    .map((c, i) => `${c} = $${i + 1}`)
    .join(
      ", ",
    )} WHERE tenant_id = $${OBJECT_COLUMNS.length - 1} AND key = $${OBJECT_COLUMNS.length} AND blob_key = $${
    OBJECT_COLUMNS.length + 1
  }`,
  deleteObjectIf: "DELETE FROM objects WHERE tenant_id = $1 AND key = $2 AND blob_key = $3",
  deleteObject: "DELETE FROM objects WHERE tenant_id = $1 AND key = $2",
  deleteBlobRef: "DELETE FROM blob_refs WHERE store_id = $1 AND blob_key = $2 AND tenant_id = $3",
} as const;

/** Rows → one array per column. */
function columnsOf(rows: readonly unknown[][], width: number): unknown[][] {
  const out: unknown[][] = Array.from({ length: width }, () => new Array(rows.length));
  rows.forEach((row, r) => {
    for (let c = 0; c < width; c++) (out[c] as unknown[])[r] = row[c];
  });
  return out;
}

export class GroupCommit {
  constructor(private readonly query: RunQuery) {}

  /**
   * Apply `batches` in one transaction on `client` and return their outcomes. Throws when the
   * transaction as a whole fails (connection lost, COMMIT refused); the caller rolls back.
   */
  async run(client: Client, batches: readonly CatalogBatch[]): Promise<BatchOutcome[]> {
    const single = batches.length === 1;
    if (single || batches.every((b) => isAppendOnly(b.ops))) {
      let steps: PlanStep[] | undefined;
      try {
        steps = planOps(batches.flatMap((b) => b.ops));
      } catch (e) {
        if (single) return [{ ok: false, error: toKuraError(e, "catalog.commit") }];
      }
      if (steps) {
        await client.query("BEGIN");
        try {
          await this.lockFeeds(client, batches);
          await this.applySteps(client, steps);
        } catch (e) {
          if (isConnectionError(e)) throw e;
          await client.query("ROLLBACK");
          if (single) return [{ ok: false, error: await this.failure(client, e, steps) }];
          return this.commitBatchByBatch(client, batches);
        }
        await this.commitTransaction(client);
        return batches.map(() => OK);
      }
    }
    return this.commitBatchByBatch(client, batches);
  }

  private async commitBatchByBatch(
    client: Client,
    batches: readonly CatalogBatch[],
  ): Promise<BatchOutcome[]> {
    const outcomes: BatchOutcome[] = [];
    await client.query("BEGIN");
    await this.lockFeeds(client, batches);
    for (const batch of batches) {
      let steps: PlanStep[];
      try {
        steps = planOps(batch.ops);
      } catch (e) {
        outcomes.push({ ok: false, error: toKuraError(e, "catalog.commit") });
        continue;
      }
      await client.query("SAVEPOINT kura_batch");
      try {
        await this.applySteps(client, steps);
        await client.query("RELEASE SAVEPOINT kura_batch");
        outcomes.push(OK);
      } catch (e) {
        if (isConnectionError(e)) throw e;
        await client.query("ROLLBACK TO SAVEPOINT kura_batch");
        await client.query("RELEASE SAVEPOINT kura_batch");
        outcomes.push({ ok: false, error: await this.failure(client, e, steps) });
      }
    }
    await this.commitTransaction(client);
    return outcomes;
  }

  private async lockFeeds(client: Client, batches: readonly CatalogBatch[]): Promise<void> {
    const events = batches.flatMap((b) =>
      b.ops.flatMap((op) => (op.op === "appendOutbox" ? [op.event] : [])),
    );
    if (events.length === 0) return;
    const counts = feedCounts(events);
    await this.query(client, SQL.lockFeeds, [counts.map((c) => c.tenantId), counts.map((c) => c.at)]);
  }

  private async commitTransaction(client: Client): Promise<void> {
    let result: pg.QueryResult;
    try {
      result = await client.query("COMMIT");
    } catch (e) {
      // The server may have committed before the answer was lost.
      if (e !== null && typeof e === "object") (e as { [COMMIT_SENT]?: boolean })[COMMIT_SENT] = true;
      throw e;
    }
    // COMMIT of a transaction in error state answers ROLLBACK instead of failing.
    if (result.command === "ROLLBACK") {
      throw new KuraError("CATALOG_ERROR", "the transaction was rolled back at commit", {
        operation: "catalog.commit",
      });
    }
  }

  /**
   * The KuraError for a batch that failed (after its changes were rolled back). A unique
   * violation on messages is IDEMPOTENCY_CONFLICT if any of the batch's idempotency keys is
   * taken (a retried append wins over an id collision), else CATALOG_DUPLICATE.
   */
  private async failure(client: Client, e: unknown, steps: readonly PlanStep[]): Promise<KuraError> {
    if (!isUniqueViolation(e)) return pgError(e, "catalog.commit");
    const table = pgTable(e);
    if (table === "messages") {
      const rows = steps.flatMap((s) => (s.kind === "rows" ? s.messages : []));
      if (pgConstraint(e) === MESSAGES_IDEMPOTENCY_INDEX) return this.idempotencyError(rows);
      const keyed = rows.filter((r) => r.idempotencyKey !== null && r.idempotencyKey !== undefined);
      if (keyed.length > 0) {
        if (keysRepeatedWithin(keyed)) return this.idempotencyError(keyed);
        const found = await this.query(client, SQL.idempotencyKeysExist, [
          keyed.map((r) => r.tenantId),
          keyed.map((r) => r.idempotencyKey),
        ]);
        if ((found.rowCount ?? 0) > 0) return this.idempotencyError(keyed);
      }
      return duplicate("message", { sqlState: pgCode(e), constraint: pgConstraint(e) });
    }
    if (table === "blob_refs") return duplicate("blob ref", { constraint: pgConstraint(e) });
    if (table === "message_versions") return duplicate("message version", { constraint: pgConstraint(e) });
    return pgError(e, "catalog.commit");
  }

  private idempotencyError(rows: readonly MessageRow[]): KuraError {
    const first = rows.find((r) => r.idempotencyKey !== null && r.idempotencyKey !== undefined);
    return idempotencyConflict(first?.tenantId ?? "", first?.idempotencyKey ?? null);
  }

  private async applySteps(client: Client, steps: readonly PlanStep[]): Promise<void> {
    for (const step of steps) {
      if (step.kind === "rows") await this.insertRows(client, step);
      else await this.applyOp(client, step.op);
    }
  }

  private async insertRows(client: Client, step: RowsStep): Promise<void> {
    const insert = async (sql: string, rows: unknown[][], width: number) => {
      if (rows.length > 0) await this.query(client, sql, columnsOf(rows, width));
    };
    await insert(
      SQL.tenants,
      step.tenants.map((t) => [t.tenantId, t.createdAt]),
      2,
    );
    await insert(
      SQL.chats,
      step.chats.map((c) => [c.tenantId, c.chatId, c.createdAt, c.lastMessageAt]),
      4,
    );
    await insert(SQL.messages, step.messages.map(messageValues), MESSAGE_COLUMNS.length);
    // The message row is its version 1 until the first edit (FIRST_VERSION_COLUMNS).
    await insert(SQL.blobRefs, step.blobRefs.map(blobRefValues), BLOB_REF_COLUMNS.length);
    if (step.outbox.length > 0) {
      const counts = feedCounts(step.outbox);
      const advanced = await this.query(client, SQL.advanceFeeds, [
        counts.map((c) => c.tenantId),
        counts.map((c) => c.at),
        counts.map((c) => c.count),
      ]);
      const last = new Map(advanced.rows.map((r) => [String(r.tenant_id), Number(r.feed_seq)]));
      await insert(SQL.outbox, outboxInsertValues(step.outbox, last), OUTBOX_INSERT_COLUMNS.length);
    }
    await insert(SQL.audit, step.audit.map(auditValues), AUDIT_COLUMNS.length);
    await insert(
      SQL.usage,
      step.usage.map((u) => [u.tenantId, u.bytes, u.objects, u.messages]),
      4,
    );
  }

  /** A mail operation's statements (`mail.ts`), run in turn. */
  private async applyMailOp(client: Client, op: SingleOp): Promise<void> {
    const mailOp = op as Parameters<typeof mailOpSteps>[0];
    const steps = mailOpSteps(mailOp);
    let result: MailStepResult | undefined;
    for (;;) {
      const next = result === undefined ? steps.next() : steps.next(result);
      if (next.done) return;
      const q = next.value.query.postgres;
      try {
        const r = await this.query(client, q.sql, q.bind(next.value.params));
        result = { rows: r.rows as MailStepResult["rows"], changes: r.rowCount ?? 0 };
      } catch (e) {
        if (isUniqueViolation(e)) throw mailInsertError(mailOp);
        throw e;
      }
    }
  }

  private async applyOp(client: Client, op: SingleOp): Promise<void> {
    if (MAIL_OPS.has(op.op)) return this.applyMailOp(client, op);
    switch (op.op) {
      case "addMessageVersion": {
        const { row, expectVersion } = op;
        const cur = await this.query(client, SQL.lockVersion, [row.tenantId, row.messageId]);
        const version = cur.rows[0]?.version;
        if (version === undefined) throw messageNotFound(row.tenantId, row.messageId);
        if (version !== expectVersion)
          throw staleVersion(row.tenantId, row.messageId, expectVersion, Number(version));
        if (row.version !== expectVersion + 1)
          throw badNewVersion(row.tenantId, row.messageId, expectVersion, row.version);
        // The first edit: version 1 leaves the message row for message_versions.
        if (expectVersion === 1)
          await this.query(client, SQL.recordFirstVersion, [row.tenantId, row.messageId]);
        await this.query(client, SQL.insertVersion, messageVersionValues(row));
        await this.query(client, SQL.updateToVersion, [
          row.version,
          row.storeId,
          row.blobKey,
          row.sizeBytes,
          row.checksum,
          row.preview,
          op.updatedAt,
          row.tenantId,
          row.messageId,
        ]);
        return;
      }
      case "setMessageDeleted": {
        const r = await this.query(client, SQL.setDeleted, [op.deletedAt, op.updatedAt, op.tenantId, op.id]);
        if (r.rowCount === 0) throw messageNotFound(op.tenantId, op.id);
        return;
      }
      case "deleteMessage":
        if (op.expectVersion !== undefined) {
          const cur = await this.query(client, SQL.lockVersion, [op.tenantId, op.id]);
          const version = cur.rows[0]?.version;
          if (version === undefined) throw messageNotFound(op.tenantId, op.id);
          if (Number(version) !== op.expectVersion)
            throw staleVersion(op.tenantId, op.id, op.expectVersion, Number(version));
        }
        await this.query(client, SQL.deleteVersions, [op.tenantId, op.id]);
        await this.query(client, SQL.deleteMessage, [op.tenantId, op.id]);
        return;
      case "putObject": {
        const { row, expectBlobKey } = op;
        if (expectBlobKey === undefined) {
          await this.query(client, SQL.putObject, objectValues(row));
        } else if (expectBlobKey === null) {
          const r = await this.query(client, SQL.createObject, objectValues(row));
          if (r.rowCount === 0) throw staleObject(row.tenantId, row.key, null);
        } else {
          const values = [...objectValues(row).slice(2), row.tenantId, row.key, expectBlobKey];
          const r = await this.query(client, SQL.replaceObjectIf, values);
          if (r.rowCount === 0) throw staleObject(row.tenantId, row.key, expectBlobKey);
        }
        return;
      }
      case "deleteObject":
        if (op.expectBlobKey === undefined) {
          await this.query(client, SQL.deleteObject, [op.tenantId, op.key]);
        } else {
          const r = await this.query(client, SQL.deleteObjectIf, [op.tenantId, op.key, op.expectBlobKey]);
          if (r.rowCount === 0) throw staleObject(op.tenantId, op.key, op.expectBlobKey);
        }
        return;
      case "deleteBlobRef":
        await this.query(client, SQL.deleteBlobRef, [op.storeId, op.blobKey, op.tenantId]);
        return;
      case "checkQuota": {
        // After lockFeeds: every write of the tenant committed before this one is counted.
        const u = (await this.query(client, SQL.usageOf, [op.tenantId])).rows[0];
        const bytes = Number(u?.bytes ?? 0);
        const objects = Number(u?.objects ?? 0);
        if (op.maxBytes !== undefined && bytes > op.maxBytes)
          throw quotaExceeded(op.tenantId, "max_storage_bytes", bytes, op.maxBytes);
        if (op.maxObjects !== undefined && objects > op.maxObjects)
          throw quotaExceeded(op.tenantId, "max_objects", objects, op.maxObjects);
        return;
      }
      case "moveMessageBody": {
        // The row locked as an edit locks it: an edit or erase racing the move waits for it.
        const cur = await this.query(client, SQL.lockVersion, [op.tenantId, op.id]);
        const version = cur.rows[0]?.version;
        if (version === undefined) throw messageNotFound(op.tenantId, op.id);
        if (Number(version) !== op.expectVersion)
          throw staleVersion(op.tenantId, op.id, op.expectVersion, Number(version));
        const params = moveParams(op);
        let moved = 0;
        for (const q of [L.moveMessageRow, L.moveVersionRow])
          moved += (await this.query(client, q.postgres.sql, q.postgres.bind(params))).rowCount ?? 0;
        if (moved === 0) throw staleVersion(op.tenantId, op.id, op.expectVersion, Number(version));
        return;
      }
      case "insertLegalHold": {
        const q = L.insertHold.postgres;
        try {
          await this.query(client, q.sql, q.bind(holdParams(op)));
        } catch (e) {
          if (isUniqueViolation(e)) throw duplicate("legal hold", { id: op.id });
          throw e;
        }
        return;
      }
      case "deleteLegalHold": {
        const q = L.deleteHold.postgres;
        const r = await this.query(client, q.sql, q.bind({ tenant: op.tenantId, id: op.id }));
        if (r.rowCount === 0) throw legalHoldNotFound(op.tenantId, op.id);
        return;
      }
      case "checkLease": {
        // FOR SHARE: a takeover (an UPDATE of the row) waits for this transaction to end.
        const q = LEASE_QUERIES.check.postgres;
        const r = await this.query(client, `${q.sql} FOR SHARE`, q.bind(leaseParams(op)));
        if ((r.rowCount ?? 0) === 0) throw leaseLost(op);
        return;
      }
      case "checkNotHeld": {
        // After lockFeeds: hold writes append the tenant's events, so every hold committed
        // before this transaction took the tenant's feed row is seen.
        const q = L.held.postgres;
        const r = await this.query(client, q.sql, q.bind(heldParams(op)));
        if ((r.rowCount ?? 0) > 0) throw legalHoldBlocks(op);
        return;
      }
    }
  }
}
