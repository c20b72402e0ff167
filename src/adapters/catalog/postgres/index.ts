/**
 * `postgres`: the shared catalog for several nodes (DIST-1), through a node-postgres pool.
 *
 * - All tables live in the configured `schema` (the connections' `search_path`), so the SQL is
 *   the same whatever the schema; migrations run under an advisory lock so nodes starting
 *   together migrate once.
 * - A group commit is one transaction on one pooled connection. Append-only groups (the write
 *   path of messages) run merged: each table's rows of every batch go in one multi-row
 *   `INSERT … SELECT FROM unnest($1::text[], …)` (a constant, prepared statement whatever the
 *   row count). If that fails, the transaction is rolled back and redone batch by batch, each
 *   under a SAVEPOINT, so the failure is pinned on its batch and the others still commit.
 * - The outbox is commit-safe: see `outbox.ts`.
 */
import pg from "pg";
import { z } from "zod";
import { KuraError, toKuraError } from "../../../core/errors.js";
import type {
  AuditEntry,
  BatchOutcome,
  BlobRefRow,
  Catalog,
  CatalogBatch,
  CatalogCapabilities,
  CatalogDefinition,
  CatalogDeps,
  ChatRow,
  HistoryQuery,
  MessageRow,
  MessageVersionRow,
  ObjectRow,
  OutboxRecord,
  Usage,
} from "../../../ports/catalog.js";
import { parseOptions } from "../../options.js";
import {
  allFailed,
  badNewVersion,
  checkLimit,
  closedError,
  duplicate,
  idempotencyConflict,
  keysRepeatedWithin,
  messageNotFound,
  OK,
  prefixUpperBound,
  staleVersion,
} from "../common.js";
import { quoteIdent, renderCreateTable, type TableDef } from "../dsl.js";
import { checkMigrations, MIGRATIONS, type Migration, renderMigration } from "../migrations.js";
import { isAppendOnly, type PlanStep, planOps, type RowsStep, type SingleOp } from "../plan.js";
import {
  AUDIT_COLUMNS,
  auditValues,
  BLOB_REF_COLUMNS,
  blobRefValues,
  currentVersionOf,
  type DbRow,
  MESSAGE_COLUMNS,
  MESSAGE_VERSION_COLUMNS,
  messageValues,
  messageVersionValues,
  OBJECT_COLUMNS,
  OUTBOX_COLUMNS,
  objectValues,
  outboxValues,
  toAuditEntry,
  toBlobRefRow,
  toChatRow,
  toMessageRow,
  toMessageVersionRow,
  toObjectRow,
  toOutboxEvent,
} from "../rows.js";
import {
  AUDIT_LOG,
  BLOB_REFS,
  CHATS,
  MESSAGES,
  MESSAGES_IDEMPOTENCY_INDEX,
  OUTBOX,
  SCHEMA_MIGRATIONS,
  TENANTS,
  USAGE_DELTAS,
} from "../schema.js";
import { isConnectionError, isUniqueViolation, pgCode, pgConstraint, pgError, pgTable } from "./errors.js";
import { decodeCursor, encodeCursor, OUTBOX_LAG_SQL, READ_OUTBOX_SQL } from "./outbox.js";

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

export const postgresOptionsSchema = z
  .object({
    /** Accepted so the `database` config section can be passed as it is. */
    backend: z.literal("postgres").optional(),
    /** `postgres://user:password@host:port/db?…` — secret (the password; use `env:VAR`). Required. */
    url: z.string().regex(/^postgres(ql)?:\/\//, "must be a postgres:// or postgresql:// URL"),
    /** Schema holding Kura's tables, created if missing. Default `public`. */
    schema: z.string().regex(IDENTIFIER, "must be a plain SQL identifier").default("public"),
    /** Pool size. Default 10. */
    max_connections: z.number().int().min(1).max(10_000).default(10),
    /** Server-side limit per statement, 0 = none. Default 30000. */
    statement_timeout_ms: z.number().int().min(0).max(86_400_000).default(30_000),
  })
  .strict();
export type PostgresOptions = z.infer<typeof postgresOptionsSchema>;

const CAPABILITIES: CatalogCapabilities = Object.freeze({ multiProcess: true });

/** Advisory lock class for migrations ('KURA'); the object id is a hash of the schema name. */
const MIGRATION_LOCK_CLASS = 0x4b555241;

function fnv1a32(text: string): number {
  let h = 0x811c9dc5;
  for (const byte of Buffer.from(text, "utf8")) {
    h ^= byte;
    h = Math.imul(h, 0x01000193);
  }
  return h | 0;
}

// BIGINT (oid 20) as a JS number: catalog integers are times, sizes and counters below 2^53.
const INT8_OID = 20;
const TYPES = {
  getTypeParser: ((oid: number, format?: "text" | "binary") =>
    oid === INT8_OID && format !== "binary"
      ? (v: string) => Number(v)
      : pg.types.getTypeParser(oid, format ?? "text")) as typeof pg.types.getTypeParser,
};

// --- statements --------------------------------------------------------------------------------

const COLS = (cols: readonly string[]) => cols.join(", ");

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

const MESSAGE_SELECT = `SELECT ${COLS(MESSAGE_COLUMNS)} FROM messages`;
const VERSION_SELECT = `SELECT ${COLS(MESSAGE_VERSION_COLUMNS)} FROM message_versions`;
const OBJECT_SELECT = `SELECT ${COLS(OBJECT_COLUMNS)} FROM objects`;
const BLOB_REF_SELECT = `SELECT ${COLS(BLOB_REF_COLUMNS)} FROM blob_refs`;

const SQL = {
  tenants: unnestInsert(TENANTS, ["tenant_id", "created_at"], " ON CONFLICT (tenant_id) DO NOTHING"),
  chats: unnestInsert(
    CHATS,
    ["tenant_id", "chat_id", "created_at", "last_message_at"],
    " ON CONFLICT (tenant_id, chat_id) DO UPDATE SET last_message_at = GREATEST(chats.last_message_at, excluded.last_message_at)",
  ),
  messages: unnestInsert(MESSAGES, MESSAGE_COLUMNS),
  blobRefs: unnestInsert(BLOB_REFS, BLOB_REF_COLUMNS),
  outbox: unnestInsert(OUTBOX, OUTBOX_COLUMNS),
  audit: unnestInsert(AUDIT_LOG, AUDIT_COLUMNS),
  usage: unnestInsert(USAGE_DELTAS, ["tenant_id", "bytes", "objects", "messages"]),
  idempotencyKeysExist:
    "SELECT 1 AS found FROM messages WHERE (tenant_id, idempotency_key) IN " +
    "(SELECT * FROM unnest($1::text[], $2::text[])) LIMIT 1",
  lockVersion: "SELECT version FROM messages WHERE tenant_id = $1 AND id = $2 FOR UPDATE",
  preserveVersion:
    `INSERT INTO message_versions (${COLS(MESSAGE_VERSION_COLUMNS)}, text_kid) ` +
    "SELECT tenant_id, id, version, store_id, blob_key, size_bytes, checksum, preview, " +
    "CASE WHEN version = 1 THEN created_at ELSE updated_at END, text_kid " +
    "FROM messages WHERE tenant_id = $1 AND id = $2 ON CONFLICT DO NOTHING",
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

// --- opening -----------------------------------------------------------------------------------

export async function openPostgresCatalog(
  options: PostgresOptions,
  deps: CatalogDeps = {},
  migrations: readonly Migration[] = MIGRATIONS,
): Promise<Catalog> {
  const pool = new pg.Pool({
    connectionString: options.url,
    max: options.max_connections,
    // search_path names only Kura's schema: unqualified names mean Kura's tables.
    options: `-c search_path=${quoteIdent(options.schema)}`,
    application_name: "kura",
    connectionTimeoutMillis: 10_000,
    ...(options.statement_timeout_ms > 0 ? { statement_timeout: options.statement_timeout_ms } : {}),
    types: TYPES,
  });
  // An idle connection that dies (server restart) must not crash the process; the pool drops it.
  pool.on("error", () => undefined);
  const catalog = new PostgresCatalog(pool, options.schema, deps, migrations);
  try {
    await catalog.migrate();
  } catch (e) {
    await pool.end().catch(() => undefined);
    throw e;
  }
  return catalog;
}

export const postgresCatalog: CatalogDefinition<PostgresOptions> = Object.freeze({
  dialect: "postgres" as const,
  parseOptions: (raw: unknown) => parseOptions(postgresOptionsSchema, raw, "database"),
  create: (options: PostgresOptions, deps?: CatalogDeps) => openPostgresCatalog(options, deps),
});

type Client = pg.PoolClient;
type Queryable = Pick<pg.Pool, "query">;

class PostgresCatalog implements Catalog {
  readonly dialect = "postgres" as const;
  readonly capabilities = CAPABILITIES;
  private closed = false;
  private readonly names = new Map<string, string>();

  constructor(
    private readonly pool: pg.Pool,
    private readonly schema: string,
    private readonly deps: CatalogDeps,
    private readonly migrations: readonly Migration[],
  ) {}

  /** A prepared statement per distinct SQL text (prepared once per connection by pg). */
  private query(db: Queryable, text: string, values: unknown[] = []): Promise<pg.QueryResult<DbRow>> {
    let name = this.names.get(text);
    if (!name) {
      name = `kura_${this.names.size + 1}`;
      this.names.set(text, name);
    }
    return db.query<DbRow>({ name, text, values });
  }

  /** Run a read on the pool, mapping driver errors. */
  private async read<T>(operation: string, fn: () => Promise<T>): Promise<T> {
    if (this.closed) throw closedError(operation);
    try {
      return await fn();
    } catch (e) {
      throw pgError(e, operation);
    }
  }

  private async rows(operation: string, text: string, values: unknown[]): Promise<DbRow[]> {
    return this.read(operation, async () => (await this.query(this.pool, text, values)).rows);
  }

  // --- migrations --------------------------------------------------------------------------

  async migrate(): Promise<void> {
    if (this.closed) throw closedError("catalog.migrate");
    checkMigrations(this.migrations);
    let client: Client;
    try {
      client = await this.pool.connect();
    } catch (e) {
      throw pgError(e, "catalog.migrate");
    }
    let broken: Error | undefined;
    try {
      await client.query("BEGIN");
      // Several nodes may start at once: one migrates, the others wait and then find nothing to do.
      await client.query("SELECT pg_advisory_xact_lock($1, $2)", [
        MIGRATION_LOCK_CLASS,
        fnv1a32(this.schema),
      ]);
      const exists = await client.query("SELECT 1 FROM pg_namespace WHERE nspname = $1", [this.schema]);
      if (exists.rowCount === 0) await client.query(`CREATE SCHEMA ${quoteIdent(this.schema)}`);
      await client.query(renderCreateTable(SCHEMA_MIGRATIONS, "postgres", { ifNotExists: true }));
      const current = await this.currentVersion(client);
      if (current > this.migrations.length) {
        throw new KuraError(
          "CATALOG_SCHEMA_TOO_NEW",
          `the catalog is at schema version ${current}; this Kura knows up to ${this.migrations.length}`,
          { operation: "catalog.migrate", context: { version: current, known: this.migrations.length } },
        );
      }
      for (const m of this.migrations.slice(current)) {
        try {
          for (const sql of renderMigration(m, "postgres")) await client.query(sql);
        } catch (e) {
          if (isConnectionError(e)) throw e;
          throw new KuraError("CATALOG_MIGRATION_FAILED", `migration ${m.version} (${m.name}) failed`, {
            operation: "catalog.migrate",
            context: { version: m.version, from: current },
            cause: e,
          });
        }
        await client.query("INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)", [
          m.version,
          m.name,
          Date.now(),
        ]);
      }
      await client.query("COMMIT");
    } catch (e) {
      if (isConnectionError(e)) broken = e as Error;
      else await client.query("ROLLBACK").catch((r: Error) => (broken = r));
      throw pgError(e, "catalog.migrate");
    } finally {
      client.release(broken);
    }
  }

  private async currentVersion(db: Queryable): Promise<number> {
    const r = await db.query<{ v: number }>("SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations");
    return Number(r.rows[0]?.v ?? 0);
  }

  schemaVersion(): Promise<number> {
    return this.read("catalog.schemaVersion", () => this.currentVersion(this.pool));
  }

  // --- commit ------------------------------------------------------------------------------

  async commit(batches: CatalogBatch[]): Promise<BatchOutcome[]> {
    if (batches.length === 0) return [];
    if (this.closed) return allFailed(batches.length, closedError("catalog.commit"));
    try {
      await this.deps.probe?.("catalog.commit", { dialect: "postgres", batches: batches.length });
    } catch (e) {
      return allFailed(batches.length, toKuraError(e, "catalog.commit"));
    }
    let client: Client;
    try {
      client = await this.pool.connect();
    } catch (e) {
      return allFailed(batches.length, pgError(e, "catalog.commit"));
    }
    let broken: Error | undefined;
    try {
      return await this.commitOn(client, batches);
    } catch (e) {
      if (isConnectionError(e)) broken = e as Error;
      else await client.query("ROLLBACK").catch((r: Error) => (broken = r));
      return allFailed(batches.length, pgError(e, "catalog.commit"));
    } finally {
      client.release(broken);
    }
  }

  private async commitOn(client: Client, batches: readonly CatalogBatch[]): Promise<BatchOutcome[]> {
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

  private async commitTransaction(client: Client): Promise<void> {
    const result = await client.query("COMMIT");
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
    await insert(SQL.blobRefs, step.blobRefs.map(blobRefValues), BLOB_REF_COLUMNS.length);
    await insert(SQL.outbox, step.outbox.map(outboxValues), OUTBOX_COLUMNS.length);
    await insert(SQL.audit, step.audit.map(auditValues), AUDIT_COLUMNS.length);
    await insert(
      SQL.usage,
      step.usage.map((u) => [u.tenantId, u.bytes, u.objects, u.messages]),
      4,
    );
  }

  private async applyOp(client: Client, op: SingleOp): Promise<void> {
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
        await this.query(client, SQL.preserveVersion, [row.tenantId, row.messageId]);
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
        await this.query(client, SQL.deleteVersions, [op.tenantId, op.id]);
        await this.query(client, SQL.deleteMessage, [op.tenantId, op.id]);
        return;
      case "putObject":
        await this.query(client, SQL.putObject, objectValues(op.row));
        return;
      case "deleteObject":
        await this.query(client, SQL.deleteObject, [op.tenantId, op.key]);
        return;
      case "deleteBlobRef":
        await this.query(client, SQL.deleteBlobRef, [op.storeId, op.blobKey, op.tenantId]);
        return;
    }
  }

  // --- messages and chats ------------------------------------------------------------------

  async getMessage(tenantId: string, id: string): Promise<MessageRow | undefined> {
    const rows = await this.rows("catalog.getMessage", `${MESSAGE_SELECT} WHERE tenant_id = $1 AND id = $2`, [
      tenantId,
      id,
    ]);
    return rows[0] ? toMessageRow(rows[0]) : undefined;
  }

  async getMessages(tenantId: string, ids: readonly string[]): Promise<MessageRow[]> {
    if (ids.length === 0) return this.read("catalog.getMessages", async () => []);
    const rows = await this.rows(
      "catalog.getMessages",
      `${MESSAGE_SELECT} WHERE tenant_id = $1 AND id = ANY($2::text[])`,
      [tenantId, [...ids]],
    );
    return rows.map(toMessageRow);
  }

  async findMessageByIdempotencyKey(tenantId: string, key: string): Promise<MessageRow | undefined> {
    const rows = await this.rows(
      "catalog.findMessageByIdempotencyKey",
      `${MESSAGE_SELECT} WHERE tenant_id = $1 AND idempotency_key = $2`,
      [tenantId, key],
    );
    return rows[0] ? toMessageRow(rows[0]) : undefined;
  }

  async history(tenantId: string, chatId: string, query: HistoryQuery): Promise<MessageRow[]> {
    const limit = await this.read("catalog.history", async () => checkLimit(query.limit, "catalog.history"));
    const desc = query.order === "desc";
    const params: unknown[] = [tenantId, chatId];
    const p = (v: unknown) => {
      params.push(v);
      return `$${params.length}`;
    };
    const where = ["tenant_id = $1", "chat_id = $2"];
    if (!query.includeDeleted) where.push("deleted_at IS NULL");
    if (query.since !== undefined) where.push(`created_at >= ${p(query.since)}`);
    if (query.until !== undefined) where.push(`created_at < ${p(query.until)}`);
    if (query.after) {
      const cmp = desc ? "<" : ">";
      where.push(`(created_at, id) ${cmp} (${p(query.after.createdAt)}::bigint, ${p(query.after.id)}::text)`);
    }
    const dir = desc ? "DESC" : "ASC";
    const sql = `${MESSAGE_SELECT} WHERE ${where.join(" AND ")} ORDER BY created_at ${dir}, id ${dir} LIMIT ${p(limit)}`;
    return (await this.rows("catalog.history", sql, params)).map(toMessageRow);
  }

  async countMessages(
    tenantId: string,
    chatId: string,
    options: { includeDeleted?: boolean } = {},
  ): Promise<number> {
    const deleted = options.includeDeleted ? "" : " AND deleted_at IS NULL";
    const rows = await this.rows(
      "catalog.countMessages",
      `SELECT COUNT(*) AS n FROM messages WHERE tenant_id = $1 AND chat_id = $2${deleted}`,
      [tenantId, chatId],
    );
    return Number(rows[0]?.n ?? 0);
  }

  async listMessageVersions(tenantId: string, id: string): Promise<MessageVersionRow[]> {
    return this.read("catalog.listMessageVersions", async () => {
      const current = (
        await this.query(this.pool, `${MESSAGE_SELECT} WHERE tenant_id = $1 AND id = $2`, [tenantId, id])
      ).rows[0];
      if (!current) return [];
      const versions = (
        await this.query(
          this.pool,
          `${VERSION_SELECT} WHERE tenant_id = $1 AND message_id = $2 ORDER BY version`,
          [tenantId, id],
        )
      ).rows.map(toMessageVersionRow);
      const message = toMessageRow(current);
      if (!versions.some((v) => v.version === message.version)) versions.push(currentVersionOf(message));
      return versions;
    });
  }

  async getChat(tenantId: string, chatId: string): Promise<ChatRow | undefined> {
    const rows = await this.rows(
      "catalog.getChat",
      "SELECT * FROM chats WHERE tenant_id = $1 AND chat_id = $2",
      [tenantId, chatId],
    );
    return rows[0] ? toChatRow(rows[0]) : undefined;
  }

  async listChats(tenantId: string, options: { afterChatId?: string; limit: number }): Promise<ChatRow[]> {
    const limit = await this.read("catalog.listChats", async () =>
      checkLimit(options.limit, "catalog.listChats"),
    );
    const rows = await this.rows(
      "catalog.listChats",
      "SELECT * FROM chats WHERE tenant_id = $1 AND chat_id > $2 ORDER BY chat_id LIMIT $3",
      [tenantId, options.afterChatId ?? "", limit],
    );
    return rows.map(toChatRow);
  }

  // --- objects and blob refs ---------------------------------------------------------------

  async getObject(tenantId: string, key: string): Promise<ObjectRow | undefined> {
    const rows = await this.rows("catalog.getObject", `${OBJECT_SELECT} WHERE tenant_id = $1 AND key = $2`, [
      tenantId,
      key,
    ]);
    return rows[0] ? toObjectRow(rows[0]) : undefined;
  }

  async listObjects(
    tenantId: string,
    options: { prefix: string; afterKey?: string; limit: number },
  ): Promise<ObjectRow[]> {
    const limit = await this.read("catalog.listObjects", async () =>
      checkLimit(options.limit, "catalog.listObjects"),
    );
    const params: unknown[] = [tenantId, options.prefix];
    const where = ["tenant_id = $1", "key >= $2"];
    if (options.afterKey !== undefined) {
      params.push(options.afterKey);
      where.push(`key > $${params.length}`);
    }
    const upper = prefixUpperBound(options.prefix);
    if (upper !== undefined) {
      params.push(upper);
      where.push(`key < $${params.length}`);
    }
    params.push(limit);
    const sql = `${OBJECT_SELECT} WHERE ${where.join(" AND ")} ORDER BY key LIMIT $${params.length}`;
    return (await this.rows("catalog.listObjects", sql, params)).map(toObjectRow);
  }

  async existingBlobRefs(storeId: string, blobKeys: readonly string[]): Promise<Set<string>> {
    if (blobKeys.length === 0) return this.read("catalog.existingBlobRefs", async () => new Set<string>());
    const rows = await this.rows(
      "catalog.existingBlobRefs",
      "SELECT blob_key FROM blob_refs WHERE store_id = $1 AND blob_key = ANY($2::text[])",
      [storeId, [...blobKeys]],
    );
    return new Set(rows.map((r) => r.blob_key as string));
  }

  async listBlobRefs(options: { storeId: string; afterKey?: string; limit: number }): Promise<BlobRefRow[]> {
    const limit = await this.read("catalog.listBlobRefs", async () =>
      checkLimit(options.limit, "catalog.listBlobRefs"),
    );
    const rows =
      options.afterKey === undefined
        ? await this.rows(
            "catalog.listBlobRefs",
            `${BLOB_REF_SELECT} WHERE store_id = $1 ORDER BY blob_key LIMIT $2`,
            [options.storeId, limit],
          )
        : await this.rows(
            "catalog.listBlobRefs",
            `${BLOB_REF_SELECT} WHERE store_id = $1 AND blob_key > $2 ORDER BY blob_key LIMIT $3`,
            [options.storeId, options.afterKey, limit],
          );
    return rows.map(toBlobRefRow);
  }

  // --- maintenance scans -------------------------------------------------------------------

  async deletedMessagesBefore(before: number, limit: number): Promise<MessageRow[]> {
    const n = await this.read("catalog.deletedMessagesBefore", async () =>
      checkLimit(limit, "catalog.deletedMessagesBefore"),
    );
    const rows = await this.rows(
      "catalog.deletedMessagesBefore",
      `${MESSAGE_SELECT} WHERE deleted_at IS NOT NULL AND deleted_at < $1 ORDER BY deleted_at, tenant_id, id LIMIT $2`,
      [before, n],
    );
    return rows.map(toMessageRow);
  }

  async expiredMessages(now: number, limit: number): Promise<MessageRow[]> {
    const n = await this.read("catalog.expiredMessages", async () =>
      checkLimit(limit, "catalog.expiredMessages"),
    );
    const rows = await this.rows(
      "catalog.expiredMessages",
      `${MESSAGE_SELECT} WHERE expires_at IS NOT NULL AND expires_at < $1 ORDER BY expires_at, tenant_id, id LIMIT $2`,
      [now, n],
    );
    return rows.map(toMessageRow);
  }

  // --- outbox ------------------------------------------------------------------------------

  async readOutbox(cursor: string | undefined, limit: number): Promise<OutboxRecord[]> {
    const [from, n] = await this.read("catalog.readOutbox", async () => [
      decodeCursor(cursor, "catalog.readOutbox"),
      checkLimit(limit, "catalog.readOutbox"),
    ]);
    const rows = await this.rows("catalog.readOutbox", READ_OUTBOX_SQL, [from.txid, from.seq, n]);
    return rows.map((r) => ({
      ...toOutboxEvent(r),
      seq: Number(r.seq),
      cursor: encodeCursor(r.txid_text as string, Number(r.seq)),
    }));
  }

  async getConsumerCursor(consumer: string): Promise<string | undefined> {
    const rows = await this.rows(
      "catalog.getConsumerCursor",
      "SELECT cursor FROM outbox_consumers WHERE consumer = $1",
      [consumer],
    );
    return rows[0]?.cursor as string | undefined;
  }

  async setConsumerCursor(consumer: string, cursor: string): Promise<void> {
    await this.read("catalog.setConsumerCursor", async () =>
      decodeCursor(cursor, "catalog.setConsumerCursor"),
    );
    await this.rows(
      "catalog.setConsumerCursor",
      "INSERT INTO outbox_consumers (consumer, cursor) VALUES ($1, $2) ON CONFLICT (consumer) DO UPDATE SET cursor = excluded.cursor",
      [consumer, cursor],
    );
  }

  async outboxLag(cursor: string | undefined): Promise<number> {
    const from = await this.read("catalog.outboxLag", async () => decodeCursor(cursor, "catalog.outboxLag"));
    const rows = await this.rows("catalog.outboxLag", OUTBOX_LAG_SQL, [from.txid, from.seq]);
    return Number(rows[0]?.n ?? 0);
  }

  // --- audit, usage, leases ----------------------------------------------------------------

  async auditLog(tenantId: string, options: { since?: number; limit: number }): Promise<AuditEntry[]> {
    const limit = await this.read("catalog.auditLog", async () =>
      checkLimit(options.limit, "catalog.auditLog"),
    );
    const rows = await this.rows(
      "catalog.auditLog",
      `SELECT ${COLS(AUDIT_COLUMNS)} FROM audit_log WHERE tenant_id = $1 AND at >= $2 ORDER BY at, seq LIMIT $3`,
      [tenantId, options.since ?? Number.MIN_SAFE_INTEGER, limit],
    );
    return rows.map(toAuditEntry);
  }

  async usage(tenantId: string): Promise<Usage> {
    // One statement, one snapshot: a concurrent fold is seen entirely or not at all.
    const rows = await this.rows(
      "catalog.usage",
      "SELECT (COALESCE(u.bytes, 0) + COALESCE(d.bytes, 0))::bigint AS bytes, " +
        "(COALESCE(u.objects, 0) + COALESCE(d.objects, 0))::bigint AS objects, " +
        "(COALESCE(u.messages, 0) + COALESCE(d.messages, 0))::bigint AS messages " +
        "FROM (SELECT SUM(bytes) AS bytes, SUM(objects) AS objects, SUM(messages) AS messages " +
        "FROM usage_deltas WHERE tenant_id = $1) d LEFT JOIN usage u ON u.tenant_id = $1",
      [tenantId],
    );
    const r = rows[0] ?? {};
    return {
      tenantId,
      bytes: Number(r.bytes ?? 0),
      objects: Number(r.objects ?? 0),
      messages: Number(r.messages ?? 0),
    };
  }

  async foldUsage(): Promise<number> {
    // One statement: the deltas it deletes are exactly the ones it adds to the totals.
    const rows = await this.rows(
      "catalog.foldUsage",
      "WITH moved AS (DELETE FROM usage_deltas RETURNING tenant_id, bytes, objects, messages), " +
        "sums AS (SELECT tenant_id, SUM(bytes)::bigint AS bytes, SUM(objects)::bigint AS objects, " +
        "SUM(messages)::bigint AS messages FROM moved GROUP BY tenant_id), " +
        "upserted AS (INSERT INTO usage (tenant_id, bytes, objects, messages) SELECT * FROM sums ORDER BY tenant_id " +
        "ON CONFLICT (tenant_id) DO UPDATE SET bytes = usage.bytes + excluded.bytes, " +
        "objects = usage.objects + excluded.objects, messages = usage.messages + excluded.messages RETURNING 1) " +
        "SELECT COUNT(*) AS n FROM moved",
      [],
    );
    return Number(rows[0]?.n ?? 0);
  }

  async tryLease(name: string, owner: string, now: number, ttlMs: number): Promise<boolean> {
    const rows = await this.rows(
      "catalog.tryLease",
      "INSERT INTO leases (name, owner, expires_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO UPDATE SET " +
        "owner = excluded.owner, expires_at = excluded.expires_at " +
        "WHERE leases.expires_at <= $4 OR leases.owner = excluded.owner RETURNING owner",
      [name, owner, now + ttlMs, now],
    );
    return rows.length === 1;
  }

  async releaseLease(name: string, owner: string): Promise<void> {
    await this.rows("catalog.releaseLease", "DELETE FROM leases WHERE name = $1 AND owner = $2", [
      name,
      owner,
    ]);
  }

  async ping(): Promise<void> {
    await this.rows("catalog.ping", "SELECT 1", []);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.end().catch(() => undefined);
  }
}
