/**
 * `sqlite`: the embedded catalog, one file in WAL mode through better-sqlite3.
 *
 * - A group commit is one synchronous `db.transaction()`, a SAVEPOINT per batch (`commit.ts`).
 * - Durability (DUR-1): WAL with `synchronous=NORMAL` for `os` (a commit reaches the OS before
 *   `commit` returns: it survives a process crash), `FULL` for `fsync` (the WAL is synced on
 *   every commit, so one fsync per group).
 * - One writer, so the outbox's `seq` is commit order and the cursor is simply `seq`.
 * - Statements are prepared once and cached by their SQL text.
 *
 * Over 450 lines and whole: one class implementing the ~30-method Catalog port, each method its
 * own statements; split by concern, one transaction's SQL would be scattered.
 */
import { mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import Database from "better-sqlite3";
import { z } from "zod";
import { KuraError, toKuraError } from "../../../core/errors.js";
import { parseOptions } from "../../../core/options.js";
import type {
  AuditEntry,
  BatchOutcome,
  BlobRefRow,
  Catalog,
  CatalogBatch,
  CatalogCapabilities,
  CatalogDefinition,
  CatalogDeps,
  ChangeRecord,
  ChatRow,
  DueMessagesQuery,
  ExpiredMessagesQuery,
  HistoryQuery,
  LeaseHolder,
  LeaseRequest,
  MessageKey,
  MessageRow,
  MessageVersionRow,
  ObjectRow,
  OutboxPruneOptions,
  OutboxPruneResult,
  OutboxRecord,
  Usage,
} from "../../../ports/catalog.js";
import {
  allFailed,
  changesExpired,
  checkLimit,
  checkPosition,
  checkTime,
  closedError,
  invalidCursor,
  PRUNE_CHUNK,
  prefixUpperBound,
} from "../common.js";
import { renderCreateTable } from "../dsl.js";
import { checkMigrations, MIGRATIONS, type Migration, renderMigration } from "../migrations.js";
import {
  AUDIT_COLUMNS,
  BLOB_REF_COLUMNS,
  CHAT_MESSAGE_READ_COLUMNS,
  type DbRow,
  MESSAGE_COLUMNS,
  MESSAGE_READ_COLUMNS,
  MESSAGE_VERSION_COLUMNS,
  messageFromValues,
  OBJECT_COLUMNS,
  OUTBOX_COLUMNS,
  toAuditEntry,
  toBlobRefRow,
  toChatRow,
  toMessageRow,
  toMessageVersionRow,
  toObjectRow,
  toOutboxEvent,
} from "../rows.js";
import { SCHEMA_MIGRATIONS } from "../schema.js";
import { GroupCommit } from "./commit.js";
import { sqliteError } from "./errors.js";
import { freesSpace, SpaceReserve } from "./reserve.js";

export const sqliteOptionsSchema = z
  .object({
    /** Accepted so the `database` config section can be passed as it is. */
    backend: z.literal("sqlite").optional(),
    /** The database file. Default `./data/kura.db` (the config layer resolves it); `:memory:` for tests. */
    path: z.string().min(1).default("./data/kura.db"),
    /** How long a write waits for another connection's lock before CATALOG_UNAVAILABLE. Default 5000. */
    busy_timeout_ms: z.number().int().min(0).max(600_000).default(5000),
  })
  .strict();
export type SqliteOptions = z.infer<typeof sqliteOptionsSchema>;

const CAPABILITIES: CatalogCapabilities = Object.freeze({ multiProcess: false });

type Db = Database.Database;
type Statement = Database.Statement;

const COLS = (cols: readonly string[]) => cols.join(", ");
const MESSAGE_SELECT = `SELECT ${COLS(MESSAGE_COLUMNS)} FROM messages`;
/** Reads of a tenant's messages select arrays in the order `messageFromValues` maps (`rawStmt`). */
const MESSAGE_READ_SELECT = `SELECT ${COLS(MESSAGE_READ_COLUMNS)} FROM messages`;
const CHAT_MESSAGE_READ_SELECT = `SELECT ${COLS(CHAT_MESSAGE_READ_COLUMNS)} FROM messages`;
const GET_MESSAGE_SQL = `${MESSAGE_READ_SELECT} WHERE tenant_id = ? AND id = ?`;
const VERSION_SELECT = `SELECT ${COLS(MESSAGE_VERSION_COLUMNS)} FROM message_versions`;
const OBJECT_SELECT = `SELECT ${COLS(OBJECT_COLUMNS)} FROM objects`;
const BLOB_REF_SELECT = `SELECT ${COLS(BLOB_REF_COLUMNS)} FROM blob_refs`;

export async function openSqliteCatalog(
  options: SqliteOptions,
  deps: CatalogDeps = {},
  migrations: readonly Migration[] = MIGRATIONS,
): Promise<Catalog> {
  const memory = options.path === ":memory:" || options.path.startsWith("file:");
  let db: Db;
  try {
    if (!memory) mkdirSync(dirname(resolve(options.path)), { recursive: true });
    db = new Database(options.path, { timeout: options.busy_timeout_ms });
    db.pragma("journal_mode = WAL");
    db.pragma(`synchronous = ${deps.durability === "fsync" ? "FULL" : "NORMAL"}`);
    db.pragma("foreign_keys = OFF");
  } catch (e) {
    const err = sqliteError(e, "catalog.open");
    // Opening a file that cannot be created or read is a configuration or disk problem.
    throw err.code === "CATALOG_ERROR"
      ? new KuraError("CATALOG_UNAVAILABLE", err.message, { operation: "catalog.open", cause: e })
      : err;
  }
  const reserve = memory ? undefined : new SpaceReserve(`${resolve(options.path)}.reserve`);
  reserve?.ensure();
  const catalog = new SqliteCatalog(db, deps, migrations, reserve);
  try {
    await catalog.migrate();
  } catch (e) {
    db.close();
    throw e;
  }
  return catalog;
}

export const sqliteCatalog: CatalogDefinition<SqliteOptions> = Object.freeze({
  dialect: "sqlite" as const,
  parseOptions: (raw: unknown) => parseOptions(sqliteOptionsSchema, raw, "database"),
  create: (options: SqliteOptions, deps?: CatalogDeps) => openSqliteCatalog(options, deps),
});

/** Which clauses a history query has: one prepared statement per shape. */
function historyShape(q: HistoryQuery): number {
  return (
    (q.order === "desc" ? 1 : 0) |
    (q.includeDeleted ? 2 : 0) |
    (q.since !== undefined ? 4 : 0) |
    (q.until !== undefined ? 8 : 0) |
    (q.after ? 16 : 0)
  );
}

/** The history statement of a query's shape; parameters in the order `history` binds them. */
function historySql(q: HistoryQuery): string {
  const desc = q.order === "desc";
  const where = ["tenant_id = ?", "chat_id = ?"];
  if (!q.includeDeleted) where.push("deleted_at IS NULL");
  if (q.since !== undefined) where.push("created_at >= ?");
  if (q.until !== undefined) where.push("created_at < ?");
  if (q.after) where.push(desc ? "(created_at, id) < (?, ?)" : "(created_at, id) > (?, ?)");
  const dir = desc ? "DESC" : "ASC";
  return `${CHAT_MESSAGE_READ_SELECT} WHERE ${where.join(" AND ")} ORDER BY created_at ${dir}, id ${dir} LIMIT ?`;
}

function decodeCursor(cursor: string | undefined, operation: string): number {
  if (cursor === undefined) return 0;
  if (!/^(0|[1-9][0-9]{0,15})$/.test(cursor)) throw invalidCursor(cursor, operation);
  return Number(cursor);
}

class SqliteCatalog implements Catalog {
  readonly dialect = "sqlite" as const;
  readonly capabilities = CAPABILITIES;
  private readonly statements = new Map<string, Statement>();
  /** Statements in raw mode (rows as arrays), by SQL text. */
  private readonly rawStatements = new Map<string, Statement>();
  /** History statements by query shape (`historyShape`), so a page builds no SQL text. */
  private readonly historyStatements = new Map<number, Statement>();
  private closed = false;
  private readonly writer: GroupCommit;

  constructor(
    private readonly db: Db,
    private readonly deps: CatalogDeps,
    private readonly migrations: readonly Migration[],
    private readonly reserve?: SpaceReserve,
  ) {
    this.writer = new GroupCommit(db, (sql) => this.stmt(sql));
  }

  private stmt(sql: string): Statement {
    let s = this.statements.get(sql);
    if (!s) {
      s = this.db.prepare(sql);
      this.statements.set(sql, s);
    }
    return s;
  }

  /** A statement that returns rows as arrays of column values, in the order selected. */
  private rawStmt(sql: string): Statement {
    let s = this.rawStatements.get(sql);
    if (!s) {
      s = this.db.prepare(sql).raw(true);
      this.rawStatements.set(sql, s);
    }
    return s;
  }

  /** Run a read, mapping driver errors. */
  private read<T>(operation: string, fn: () => T): Promise<T> {
    if (this.closed) return Promise.reject(closedError(operation));
    try {
      return Promise.resolve(fn());
    } catch (e) {
      return Promise.reject(sqliteError(e, operation));
    }
  }

  async migrate(): Promise<void> {
    if (this.closed) throw closedError("catalog.migrate");
    checkMigrations(this.migrations);
    const apply = this.db.transaction(() => {
      this.db.exec(renderCreateTable(SCHEMA_MIGRATIONS, "sqlite", { ifNotExists: true }));
      const current = this.currentVersion();
      if (current > this.migrations.length) {
        throw new KuraError(
          "CATALOG_SCHEMA_TOO_NEW",
          `the catalog is at schema version ${current}; this Kura knows up to ${this.migrations.length}`,
          { operation: "catalog.migrate", context: { version: current, known: this.migrations.length } },
        );
      }
      for (const m of this.migrations.slice(current)) {
        try {
          for (const sql of renderMigration(m, "sqlite")) this.db.exec(sql);
        } catch (e) {
          throw new KuraError("CATALOG_MIGRATION_FAILED", `migration ${m.version} (${m.name}) failed`, {
            operation: "catalog.migrate",
            context: { version: m.version, from: current },
            cause: e,
          });
        }
        this.db
          .prepare("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)")
          .run(m.version, m.name, Date.now());
      }
    });
    try {
      apply.immediate();
    } catch (e) {
      throw sqliteError(e, "catalog.migrate");
    } finally {
      // Cached statements may refer to a schema that changed.
      this.clearStatements();
    }
  }

  private clearStatements(): void {
    this.statements.clear();
    this.rawStatements.clear();
    this.historyStatements.clear();
  }

  private currentVersion(): number {
    const row = this.db.prepare("SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations").get() as {
      v: number;
    };
    return row.v;
  }

  schemaVersion(): Promise<number> {
    return this.read("catalog.schemaVersion", () => this.currentVersion());
  }

  async commit(batches: CatalogBatch[]): Promise<BatchOutcome[]> {
    if (batches.length === 0) return [];
    if (this.closed) return allFailed(batches.length, closedError("catalog.commit"));
    try {
      if (this.deps.probe) {
        // Report the connection's actual setting (2 = FULL: fsync on every commit), not the config.
        const synchronous = this.db.pragma("synchronous", { simple: true }) === 2 ? "FULL" : "NORMAL";
        await this.deps.probe("catalog.commit", { dialect: "sqlite", batches: batches.length, synchronous });
      }
    } catch (e) {
      return allFailed(batches.length, toKuraError(e, "catalog.commit"));
    }
    if (this.closed) return allFailed(batches.length, closedError("catalog.commit"));
    try {
      const outcomes = this.writer.run(batches);
      this.reserve?.ensure();
      return outcomes;
    } catch (e) {
      const error = sqliteError(e, "catalog.commit");
      return error.code === "STORAGE_FULL"
        ? this.commitOnFullDisk(batches, error)
        : allFailed(batches.length, error);
    }
  }

  /**
   * The disk is full. First a checkpoint that truncates the WAL (it gives back the frames of
   * commits already copied into the database file) and one more try; then, for batches that
   * only delete, the reserve's blocks (`reserve.ts`), so space can still be freed through the
   * API. Everything else fails with STORAGE_FULL; nothing is half-written (one transaction).
   */
  private commitOnFullDisk(batches: CatalogBatch[], full: KuraError): BatchOutcome[] {
    try {
      this.db.pragma("wal_checkpoint(TRUNCATE)");
      return this.writer.run(batches);
    } catch (e) {
      const error = sqliteError(e, "catalog.commit");
      if (error.code !== "STORAGE_FULL") return allFailed(batches.length, error);
    }
    const freeing = batches.filter(freesSpace);
    if (freeing.length === 0 || this.reserve === undefined) return allFailed(batches.length, full);
    this.reserve.release();
    let applied: BatchOutcome[];
    try {
      applied = this.writer.run(freeing);
    } catch (e) {
      return allFailed(batches.length, sqliteError(e, "catalog.commit"));
    }
    let next = 0;
    return batches.map((b) =>
      freesSpace(b) ? (applied[next++] as BatchOutcome) : { ok: false as const, error: full },
    );
  }

  // --- messages and chats --------------------------------------------------------------------

  getMessage(tenantId: string, id: string): Promise<MessageRow | undefined> {
    return this.read("catalog.getMessage", () => {
      const v = this.rawStmt(GET_MESSAGE_SQL).get(tenantId, id) as unknown[] | undefined;
      return v ? messageFromValues(v, tenantId) : undefined;
    });
  }

  getMessages(tenantId: string, ids: readonly string[]): Promise<MessageRow[]> {
    return this.read("catalog.getMessages", () => {
      if (ids.length === 0) return [];
      const rows = this.rawStmt(
        `${MESSAGE_READ_SELECT} WHERE tenant_id = ? AND id IN (SELECT value FROM json_each(?))`,
      ).all(tenantId, JSON.stringify(ids)) as unknown[][];
      return rows.map((v) => messageFromValues(v, tenantId));
    });
  }

  findMessageByIdempotencyKey(tenantId: string, key: string): Promise<MessageRow | undefined> {
    return this.read("catalog.findMessageByIdempotencyKey", () => {
      const v = this.rawStmt(`${MESSAGE_READ_SELECT} WHERE tenant_id = ? AND idempotency_key = ?`).get(
        tenantId,
        key,
      ) as unknown[] | undefined;
      return v ? messageFromValues(v, tenantId) : undefined;
    });
  }

  history(tenantId: string, chatId: string, query: HistoryQuery): Promise<MessageRow[]> {
    return this.read("catalog.history", () => {
      const limit = checkLimit(query.limit, "catalog.history");
      const shape = historyShape(query);
      let statement = this.historyStatements.get(shape);
      if (!statement) {
        statement = this.db.prepare(historySql(query)).raw(true);
        this.historyStatements.set(shape, statement);
      }
      const params: unknown[] = [tenantId, chatId];
      if (query.since !== undefined) params.push(query.since);
      if (query.until !== undefined) params.push(query.until);
      if (query.after) params.push(query.after.createdAt, query.after.id);
      params.push(limit);
      const rows = statement.all(params) as unknown[][];
      const out = new Array<MessageRow>(rows.length);
      for (let i = 0; i < rows.length; i++)
        out[i] = messageFromValues(rows[i] as unknown[], tenantId, chatId);
      return out;
    });
  }

  countMessages(
    tenantId: string,
    chatId: string,
    options: { includeDeleted?: boolean } = {},
  ): Promise<number> {
    return this.read("catalog.countMessages", () => {
      const deleted = options.includeDeleted ? "" : " AND deleted_at IS NULL";
      const r = this.stmt(
        `SELECT COUNT(*) AS n FROM messages WHERE tenant_id = ? AND chat_id = ?${deleted}`,
      ).get(tenantId, chatId) as { n: number };
      return r.n;
    });
  }

  listMessageVersions(tenantId: string, id: string): Promise<MessageVersionRow[]> {
    return this.read("catalog.listMessageVersions", () => {
      const rows = this.stmt(`${VERSION_SELECT} WHERE tenant_id = ? AND message_id = ? ORDER BY version`).all(
        tenantId,
        id,
      ) as DbRow[];
      return rows.map(toMessageVersionRow);
    });
  }

  getChat(tenantId: string, chatId: string): Promise<ChatRow | undefined> {
    return this.read("catalog.getChat", () => {
      const r = this.stmt("SELECT * FROM chats WHERE tenant_id = ? AND chat_id = ?").get(tenantId, chatId) as
        | DbRow
        | undefined;
      return r ? toChatRow(r) : undefined;
    });
  }

  listChats(tenantId: string, options: { afterChatId?: string; limit: number }): Promise<ChatRow[]> {
    return this.read("catalog.listChats", () => {
      const limit = checkLimit(options.limit, "catalog.listChats");
      const rows = this.stmt(
        "SELECT * FROM chats WHERE tenant_id = ? AND chat_id > ? ORDER BY chat_id LIMIT ?",
      ).all(tenantId, options.afterChatId ?? "", limit) as DbRow[];
      return rows.map(toChatRow);
    });
  }

  // --- objects and blob refs -----------------------------------------------------------------

  getObject(tenantId: string, key: string): Promise<ObjectRow | undefined> {
    return this.read("catalog.getObject", () => {
      const r = this.stmt(`${OBJECT_SELECT} WHERE tenant_id = ? AND key = ?`).get(tenantId, key) as
        | DbRow
        | undefined;
      return r ? toObjectRow(r) : undefined;
    });
  }

  listObjects(
    tenantId: string,
    options: { prefix: string; afterKey?: string; limit: number },
  ): Promise<ObjectRow[]> {
    return this.read("catalog.listObjects", () => {
      const limit = checkLimit(options.limit, "catalog.listObjects");
      const upper = prefixUpperBound(options.prefix);
      const where = ["tenant_id = ?", "key >= ?"];
      const params: unknown[] = [tenantId, options.prefix];
      if (options.afterKey !== undefined) {
        where.push("key > ?");
        params.push(options.afterKey);
      }
      if (upper !== undefined) {
        where.push("key < ?");
        params.push(upper);
      }
      const sql = `${OBJECT_SELECT} WHERE ${where.join(" AND ")} ORDER BY key LIMIT ?`;
      return (this.stmt(sql).all(...params, limit) as DbRow[]).map(toObjectRow);
    });
  }

  existingBlobRefs(storeId: string, blobKeys: readonly string[]): Promise<Set<string>> {
    return this.read("catalog.existingBlobRefs", () => {
      if (blobKeys.length === 0) return new Set<string>();
      const rows = this.stmt(
        "SELECT blob_key FROM blob_refs WHERE store_id = ? AND blob_key IN (SELECT value FROM json_each(?))",
      ).all(storeId, JSON.stringify(blobKeys)) as { blob_key: string }[];
      return new Set(rows.map((r) => r.blob_key));
    });
  }

  listBlobRefs(options: { storeId: string; afterKey?: string; limit: number }): Promise<BlobRefRow[]> {
    return this.read("catalog.listBlobRefs", () => {
      const limit = checkLimit(options.limit, "catalog.listBlobRefs");
      const after = options.afterKey !== undefined;
      const rows = this.stmt(
        `${BLOB_REF_SELECT} WHERE store_id = ?${after ? " AND blob_key > ?" : ""} ORDER BY blob_key LIMIT ?`,
      ).all(...(after ? [options.storeId, options.afterKey, limit] : [options.storeId, limit])) as DbRow[];
      return rows.map(toBlobRefRow);
    });
  }

  // --- maintenance scans ---------------------------------------------------------------------

  deletedMessagesBefore({ before, limit, tenantId }: DueMessagesQuery): Promise<MessageRow[]> {
    return this.read("catalog.deletedMessagesBefore", () => {
      const n = checkLimit(limit, "catalog.deletedMessagesBefore");
      const rows = (
        tenantId === undefined
          ? this.stmt(
              `${MESSAGE_SELECT} WHERE deleted_at IS NOT NULL AND deleted_at < ? ORDER BY deleted_at, tenant_id, id LIMIT ?`,
            ).all(before, n)
          : this.stmt(
              `${MESSAGE_SELECT} WHERE tenant_id = ? AND deleted_at IS NOT NULL AND deleted_at < ? ORDER BY deleted_at, id LIMIT ?`,
            ).all(tenantId, before, n)
      ) as DbRow[];
      return rows.map(toMessageRow);
    });
  }

  expiredMessages({ now, limit }: ExpiredMessagesQuery): Promise<MessageRow[]> {
    return this.read("catalog.expiredMessages", () => {
      const rows = this.stmt(
        `${MESSAGE_SELECT} WHERE expires_at IS NOT NULL AND expires_at < ? ORDER BY expires_at, tenant_id, id LIMIT ?`,
      ).all(now, checkLimit(limit, "catalog.expiredMessages")) as DbRow[];
      return rows.map(toMessageRow);
    });
  }

  listMessageKeys(options: {
    after?: MessageKey;
    limit: number;
    includeDeleted?: boolean;
  }): Promise<MessageKey[]> {
    return this.read("catalog.listMessageKeys", () => {
      const limit = checkLimit(options.limit, "catalog.listMessageKeys");
      const where = [options.includeDeleted ? "true" : "deleted_at IS NULL"];
      const params: unknown[] = [];
      if (options.after) {
        where.push("(tenant_id, id) > (?, ?)");
        params.push(options.after.tenantId, options.after.id);
      }
      const rows = this.stmt(
        `SELECT tenant_id, id FROM messages WHERE ${where.join(" AND ")} ORDER BY tenant_id, id LIMIT ?`,
      ).all(...params, limit) as { tenant_id: string; id: string }[];
      return rows.map((r) => ({ tenantId: r.tenant_id, id: r.id }));
    });
  }

  // --- outbox --------------------------------------------------------------------------------

  readOutbox(cursor: string | undefined, limit: number): Promise<OutboxRecord[]> {
    return this.read("catalog.readOutbox", () => {
      const after = decodeCursor(cursor, "catalog.readOutbox");
      const rows = this.stmt(
        `SELECT seq, ${COLS(OUTBOX_COLUMNS)} FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?`,
      ).all(after, checkLimit(limit, "catalog.readOutbox")) as DbRow[];
      return rows.map((r) => ({ ...toOutboxEvent(r), seq: Number(r.seq), cursor: String(r.seq) }));
    });
  }

  readChanges(tenantId: string, options: { after?: number; limit: number }): Promise<ChangeRecord[]> {
    return this.read("catalog.readChanges", () => {
      const after = checkPosition(options.after, "catalog.readChanges");
      const rows = this.stmt(
        `SELECT tenant_seq, ${COLS(OUTBOX_COLUMNS)} FROM outbox WHERE tenant_id = ? AND tenant_seq > ? ` +
          "ORDER BY tenant_seq LIMIT ?",
      ).all(tenantId, after, checkLimit(options.limit, "catalog.readChanges")) as DbRow[];
      // A page that does not start right after `after` may have lost its start to a prune.
      if (options.after !== undefined && Number(rows[0]?.tenant_seq ?? -1) !== after + 1) {
        const horizon = this.feedHorizon(tenantId);
        if (after < horizon) throw changesExpired(after, horizon, "catalog.readChanges");
      }
      return rows.map((r) => ({ ...toOutboxEvent(r), seq: Number(r.tenant_seq) }));
    });
  }

  /** The last pruned position of a tenant's feed: its oldest event's, less one, else all of it. */
  private feedHorizon(tenantId: string): number {
    const r = this.stmt(
      "SELECT COALESCE((SELECT MIN(tenant_seq) FROM outbox WHERE tenant_id = ?) - 1, " +
        "(SELECT feed_seq FROM tenants WHERE tenant_id = ?), 0) AS h",
    ).get(tenantId, tenantId) as { h: number };
    return Number(r.h);
  }

  changesHorizon(tenantId: string): Promise<number> {
    return this.read("catalog.changesHorizon", () => this.feedHorizon(tenantId));
  }

  outboxHead(): Promise<string | undefined> {
    return this.read("catalog.outboxHead", () => {
      // An empty outbox (all pruned) still has a head: AUTOINCREMENT never reissues a seq.
      const r = this.stmt(
        "SELECT COALESCE((SELECT MAX(seq) FROM outbox), " +
          "(SELECT seq FROM sqlite_sequence WHERE name = 'outbox')) AS s",
      ).get() as { s: number | null };
      return r.s === null ? undefined : String(r.s);
    });
  }

  /**
   * One writer: `seq` order is commit order, for every tenant's feed too, so the events to
   * delete are those below one bound — past no consumer, and before the first one created after
   * `before` — and each tenant loses a prefix of its feed.
   */
  async pruneOutbox(options: OutboxPruneOptions): Promise<OutboxPruneResult> {
    const operation = "catalog.pruneOutbox";
    const upper = await this.read(operation, () => {
      const before = checkTime(options.before, "before", operation);
      const saved = this.stmt("SELECT consumer, cursor FROM outbox_consumers").all() as {
        consumer: string;
        cursor: string;
      }[];
      const known = new Set(saved.map((r) => r.consumer));
      if ((options.consumers ?? []).some((name) => !known.has(name))) return 0;
      let bound = Number.MAX_SAFE_INTEGER;
      for (const r of saved) bound = Math.min(bound, decodeCursor(r.cursor, operation) + 1);
      const young = this.stmt(
        "SELECT seq FROM outbox WHERE seq < ? AND created_at > ? ORDER BY seq LIMIT 1",
      ).get(bound, before) as { seq: number } | undefined;
      return young ? Number(young.seq) : bound;
    });
    let deleted = 0;
    while (upper > 0) {
      const n = await this.read(
        operation,
        () =>
          this.stmt(
            "DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox WHERE seq < ? ORDER BY seq LIMIT ?)",
          ).run(upper, PRUNE_CHUNK).changes,
      );
      deleted += n;
      if (n < PRUNE_CHUNK) break;
      // Commits go in between chunks: the connection is the process's only writer.
      await new Promise((resolve) => setImmediate(resolve));
    }
    return { deleted };
  }

  getConsumerCursor(consumer: string): Promise<string | undefined> {
    return this.read("catalog.getConsumerCursor", () => {
      const r = this.stmt("SELECT cursor FROM outbox_consumers WHERE consumer = ?").get(consumer) as
        | { cursor: string }
        | undefined;
      return r?.cursor;
    });
  }

  setConsumerCursor(consumer: string, cursor: string): Promise<void> {
    return this.read("catalog.setConsumerCursor", () => {
      decodeCursor(cursor, "catalog.setConsumerCursor");
      this.stmt(
        "INSERT INTO outbox_consumers (consumer, cursor) VALUES (?, ?) ON CONFLICT (consumer) DO UPDATE SET cursor = excluded.cursor",
      ).run(consumer, cursor);
    });
  }

  outboxLag(cursor: string | undefined): Promise<number> {
    return this.read("catalog.outboxLag", () => {
      const after = decodeCursor(cursor, "catalog.outboxLag");
      const r = this.stmt("SELECT COUNT(*) AS n FROM outbox WHERE seq > ?").get(after) as { n: number };
      return r.n;
    });
  }

  // --- audit, usage, leases ------------------------------------------------------------------

  auditLog(tenantId: string, options: { since?: number; limit: number }): Promise<AuditEntry[]> {
    return this.read("catalog.auditLog", () => {
      const limit = checkLimit(options.limit, "catalog.auditLog");
      const rows = this.stmt(
        `SELECT ${COLS(AUDIT_COLUMNS)} FROM audit_log WHERE tenant_id = ? AND at >= ? ORDER BY at, seq LIMIT ?`,
      ).all(tenantId, options.since ?? Number.MIN_SAFE_INTEGER, limit) as DbRow[];
      return rows.map(toAuditEntry);
    });
  }

  usage(tenantId: string): Promise<Usage> {
    return this.read("catalog.usage", () => {
      const r = this.stmt(
        "SELECT " +
          "COALESCE((SELECT bytes FROM usage WHERE tenant_id = @t), 0) + COALESCE(SUM(bytes), 0) AS bytes, " +
          "COALESCE((SELECT objects FROM usage WHERE tenant_id = @t), 0) + COALESCE(SUM(objects), 0) AS objects, " +
          "COALESCE((SELECT messages FROM usage WHERE tenant_id = @t), 0) + COALESCE(SUM(messages), 0) AS messages " +
          "FROM usage_deltas WHERE tenant_id = @t",
      ).get({ t: tenantId }) as { bytes: number; objects: number; messages: number };
      return { tenantId, bytes: r.bytes, objects: r.objects, messages: r.messages };
    });
  }

  foldUsage(): Promise<number> {
    return this.read("catalog.foldUsage", () => {
      const fold = this.db.transaction(() => {
        const top = (this.stmt("SELECT MAX(seq) AS top FROM usage_deltas").get() as { top: number | null })
          .top;
        if (top === null) return 0;
        this.stmt(
          "INSERT INTO usage (tenant_id, bytes, objects, messages) " +
            "SELECT tenant_id, SUM(bytes), SUM(objects), SUM(messages) FROM usage_deltas WHERE seq <= ? GROUP BY tenant_id " +
            "ON CONFLICT (tenant_id) DO UPDATE SET bytes = bytes + excluded.bytes, " +
            "objects = objects + excluded.objects, messages = messages + excluded.messages",
        ).run(top);
        return this.stmt("DELETE FROM usage_deltas WHERE seq <= ?").run(top).changes;
      });
      return fold.immediate();
    });
  }

  tryLease({ name, owner, now, ttlMs }: LeaseRequest): Promise<boolean> {
    return this.read("catalog.tryLease", () => {
      const info = this.stmt(
        "INSERT INTO leases (name, owner, expires_at) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE SET " +
          "owner = excluded.owner, expires_at = excluded.expires_at WHERE leases.expires_at <= ? OR leases.owner = excluded.owner",
      ).run(name, owner, now + ttlMs, now);
      return info.changes === 1;
    });
  }

  releaseLease({ name, owner }: LeaseHolder): Promise<void> {
    return this.read("catalog.releaseLease", () => {
      this.stmt("DELETE FROM leases WHERE name = ? AND owner = ?").run(name, owner);
    });
  }

  ping(): Promise<void> {
    return this.read("catalog.ping", () => {
      this.stmt("SELECT 1").get();
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.clearStatements();
    this.db.close();
  }
}
