/**
 * `postgres`: the shared catalog for several nodes (DIST-1), through a node-postgres pool.
 *
 * - All tables live in the configured `schema` (the connections' `search_path`), so the SQL is
 *   the same whatever the schema; migrations run under an advisory lock so nodes starting
 *   together migrate once.
 * - A group commit is one transaction on one pooled connection (`commit.ts`).
 * - The outbox is commit-safe: see `outbox.ts`.
 *
 * Over 450 lines and whole: one class implementing the ~30-method Catalog port, each method its
 * own statements; split by concern, one transaction's SQL would be scattered.
 */
import pg from "pg";
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
import { COMMIT_OUTCOME_UNKNOWN } from "../../../ports/catalog.js";
import { createPgPool, isBrokenClient, pgTimeoutOptions, pgTimeouts, quoteIdent } from "../../pg.js";
import {
  allFailed,
  changesExpired,
  checkLimit,
  checkPosition,
  checkTime,
  closedError,
  PRUNE_CHUNK,
  prefixUpperBound,
} from "../common.js";
import { renderCreateTable } from "../dsl.js";
import { checkMigrations, MIGRATIONS, type Migration, renderMigration } from "../migrations.js";
import {
  AUDIT_COLUMNS,
  BLOB_REF_COLUMNS,
  type DbRow,
  MESSAGE_COLUMNS,
  MESSAGE_VERSION_COLUMNS,
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
import { failedDuringCommit, GroupCommit, type Queryable } from "./commit.js";
import { isConnectionError, pgError } from "./errors.js";
import {
  CHANGES_HORIZON_SQL,
  comparePositions,
  decodeCursor,
  encodeCursor,
  FIRST_YOUNG_SQL,
  HORIZON_SQL,
  OUTBOX_HEAD_SQL,
  OUTBOX_LAG_SQL,
  type OutboxPosition,
  PRUNE_DELETE_SQL,
  PRUNE_PLAN_SQL,
  READ_OUTBOX_SQL,
} from "./outbox.js";

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
    /** `statement_timeout_ms` (default 30000), `lock_timeout_ms` (default 0): server-side, 0 = none. */
    ...pgTimeoutOptions,
  })
  .strict();
export type PostgresOptions = z.infer<typeof postgresOptionsSchema>;

const CAPABILITIES: CatalogCapabilities = Object.freeze({ multiProcess: true, remote: true });

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

const COLS = (cols: readonly string[]) => cols.join(", ");
const MESSAGE_SELECT = `SELECT ${COLS(MESSAGE_COLUMNS)} FROM messages`;
const VERSION_SELECT = `SELECT ${COLS(MESSAGE_VERSION_COLUMNS)} FROM message_versions`;
const OBJECT_SELECT = `SELECT ${COLS(OBJECT_COLUMNS)} FROM objects`;
const BLOB_REF_SELECT = `SELECT ${COLS(BLOB_REF_COLUMNS)} FROM blob_refs`;

// --- opening -----------------------------------------------------------------------------------

export async function openPostgresCatalog(
  options: PostgresOptions,
  deps: CatalogDeps = {},
  migrations: readonly Migration[] = MIGRATIONS,
): Promise<Catalog> {
  const pool = createPgPool({
    connectionString: options.url,
    max: options.max_connections,
    // search_path names only Kura's schema: unqualified names mean Kura's tables.
    options: `-c search_path=${quoteIdent(options.schema)}`,
    application_name: "kura",
    connectionTimeoutMillis: 10_000,
    ...pgTimeouts(options),
    types: TYPES,
  });
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

class PostgresCatalog implements Catalog {
  readonly dialect = "postgres" as const;
  readonly capabilities = CAPABILITIES;
  private closed = false;
  private readonly names = new Map<string, string>();
  private readonly writer = new GroupCommit((db, text, values) => this.query(db, text, values));

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
      client.release(broken ?? (isBrokenClient(client) ? new Error("connection failed") : undefined));
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
      return await this.writer.run(client, batches);
    } catch (e) {
      if (isConnectionError(e)) broken = e as Error;
      else await client.query("ROLLBACK").catch((r: Error) => (broken = r));
      const error = pgError(e, "catalog.commit");
      if (!failedDuringCommit(e)) return allFailed(batches.length, error);
      return allFailed(
        batches.length,
        new KuraError(error.code, `${error.message} (during COMMIT: it may have committed)`, {
          kind: error.kind,
          operation: "catalog.commit",
          cause: e,
          context: { ...error.context, outcome: COMMIT_OUTCOME_UNKNOWN },
        }),
      );
    } finally {
      // A connection that died mid-commit is destroyed, never handed out again.
      client.release(broken ?? (isBrokenClient(client) ? new Error("connection failed") : undefined));
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
    const rows = await this.rows(
      "catalog.listMessageVersions",
      `${VERSION_SELECT} WHERE tenant_id = $1 AND message_id = $2 ORDER BY version`,
      [tenantId, id],
    );
    return rows.map(toMessageVersionRow);
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

  async deletedMessagesBefore({ before, limit, tenantId }: DueMessagesQuery): Promise<MessageRow[]> {
    const n = await this.read("catalog.deletedMessagesBefore", async () =>
      checkLimit(limit, "catalog.deletedMessagesBefore"),
    );
    const rows =
      tenantId === undefined
        ? await this.rows(
            "catalog.deletedMessagesBefore",
            `${MESSAGE_SELECT} WHERE deleted_at IS NOT NULL AND deleted_at < $1 ORDER BY deleted_at, tenant_id, id LIMIT $2`,
            [before, n],
          )
        : await this.rows(
            "catalog.deletedMessagesBefore",
            `${MESSAGE_SELECT} WHERE tenant_id = $3 AND deleted_at IS NOT NULL AND deleted_at < $1 ORDER BY deleted_at, id LIMIT $2`,
            [before, n, tenantId],
          );
    return rows.map(toMessageRow);
  }

  async expiredMessages({ now, limit }: ExpiredMessagesQuery): Promise<MessageRow[]> {
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

  async listMessageKeys(options: {
    after?: MessageKey;
    limit: number;
    includeDeleted?: boolean;
  }): Promise<MessageKey[]> {
    const limit = await this.read("catalog.listMessageKeys", async () =>
      checkLimit(options.limit, "catalog.listMessageKeys"),
    );
    const live = options.includeDeleted ? "true" : "deleted_at IS NULL";
    const rows = options.after
      ? await this.rows(
          "catalog.listMessageKeys",
          `SELECT tenant_id, id FROM messages WHERE ${live} AND (tenant_id, id) > ($1::text, $2::text) ` +
            "ORDER BY tenant_id, id LIMIT $3",
          [options.after.tenantId, options.after.id, limit],
        )
      : await this.rows(
          "catalog.listMessageKeys",
          `SELECT tenant_id, id FROM messages WHERE ${live} ORDER BY tenant_id, id LIMIT $1`,
          [limit],
        );
    return rows.map((r) => ({ tenantId: r.tenant_id as string, id: r.id as string }));
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

  async readChanges(tenantId: string, options: { after?: number; limit: number }): Promise<ChangeRecord[]> {
    const [after, n] = await this.read("catalog.readChanges", async () => [
      checkPosition(options.after, "catalog.readChanges"),
      checkLimit(options.limit, "catalog.readChanges"),
    ]);
    const rows = await this.rows(
      "catalog.readChanges",
      `SELECT tenant_seq, ${OUTBOX_COLUMNS.join(", ")} FROM outbox WHERE tenant_id = $1 AND tenant_seq > $2 ` +
        "ORDER BY tenant_seq LIMIT $3",
      [tenantId, after, n],
    );
    // A page that does not start right after `after` may have lost its start to a prune.
    if (options.after !== undefined && Number(rows[0]?.tenant_seq ?? -1) !== after + 1) {
      const horizon = await this.changesHorizon(tenantId);
      if (after < horizon) throw changesExpired(after, horizon, "catalog.readChanges");
    }
    return rows.map((r) => ({ ...toOutboxEvent(r), seq: Number(r.tenant_seq) }));
  }

  async changesHorizon(tenantId: string): Promise<number> {
    const rows = await this.rows("catalog.changesHorizon", CHANGES_HORIZON_SQL, [tenantId]);
    return Number(rows[0]?.h ?? 0);
  }

  async outboxHead(): Promise<string | undefined> {
    const [r] = await this.rows("catalog.outboxHead", OUTBOX_HEAD_SQL, []);
    return r ? encodeCursor(r.txid_text as string, Number(r.seq)) : undefined;
  }

  /**
   * Prunes below one exclusive bound in commit order — the slowest consumer's cursor, the
   * oldest transaction still running, the first event of the retained tail — then, per tenant,
   * only the prefix of its feed below its first event that is not prunable (`PRUNE_PLAN_SQL`).
   */
  async pruneOutbox(options: OutboxPruneOptions): Promise<OutboxPruneResult> {
    const operation = "catalog.pruneOutbox";
    const before = await this.read(operation, async () => checkTime(options.before, "before", operation));
    const saved = await this.rows(operation, "SELECT consumer, cursor FROM outbox_consumers", []);
    const known = new Set(saved.map((r) => r.consumer as string));
    if ((options.consumers ?? []).some((name) => !known.has(name))) return { deleted: 0 };
    const [horizon] = await this.rows(operation, HORIZON_SQL, []);
    // Exclusive bound: (xmin, 0) lies after every row of a finished transaction.
    let upper: OutboxPosition = { txid: String(horizon?.xmin), seq: 0 };
    const lower = (p: OutboxPosition) => {
      if (comparePositions(p, upper) < 0) upper = p;
    };
    for (const r of saved) {
      const passed = await this.read(operation, async () => decodeCursor(r.cursor as string, operation));
      lower({ txid: passed.txid, seq: passed.seq + 1 });
    }
    const [young] = await this.rows(operation, FIRST_YOUNG_SQL, [upper.txid, upper.seq, before]);
    if (young) lower({ txid: young.txid_text as string, seq: Number(young.seq) });

    const ranges: { tenantId: string; lo: number; hi: number }[] = [];
    for (const r of await this.rows(operation, PRUNE_PLAN_SQL, [upper.txid, upper.seq])) {
      const lo = Number(r.lo);
      const hi = r.blocker === null ? Number(r.hi) : Math.min(Number(r.hi), Number(r.blocker) - 1);
      for (let from = lo; from <= hi; from += PRUNE_CHUNK)
        ranges.push({ tenantId: r.tenant_id as string, lo: from, hi: Math.min(hi, from + PRUNE_CHUNK - 1) });
    }
    let deleted = 0;
    let batch: typeof ranges = [];
    let size = 0;
    const flush = async () => {
      if (batch.length === 0) return;
      const result = await this.read(operation, () =>
        this.query(this.pool, PRUNE_DELETE_SQL, [
          batch.map((r) => r.tenantId),
          batch.map((r) => r.lo),
          batch.map((r) => r.hi),
          upper.txid,
          upper.seq,
        ]),
      );
      deleted += result.rowCount ?? 0;
      batch = [];
      size = 0;
    };
    for (const r of ranges) {
      if (size + (r.hi - r.lo + 1) > PRUNE_CHUNK) await flush();
      batch.push(r);
      size += r.hi - r.lo + 1;
    }
    await flush();
    return { deleted };
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

  async tryLease({ name, owner, now, ttlMs }: LeaseRequest): Promise<boolean> {
    const rows = await this.rows(
      "catalog.tryLease",
      "INSERT INTO leases (name, owner, expires_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO UPDATE SET " +
        "owner = excluded.owner, expires_at = excluded.expires_at " +
        "WHERE leases.expires_at <= $4 OR leases.owner = excluded.owner RETURNING owner",
      [name, owner, now + ttlMs, now],
    );
    return rows.length === 1;
  }

  async releaseLease({ name, owner }: LeaseHolder): Promise<void> {
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
