/**
 * `sqlite`: the embedded catalog, one file in WAL mode through better-sqlite3.
 *
 * - A group commit is one synchronous `db.transaction()`, a SAVEPOINT per batch (`commit.ts`).
 * - Durability (DUR-1): WAL with `synchronous=NORMAL` for `os` (a commit reaches the OS before
 *   `commit` returns: it survives a process crash), `FULL` for `fsync` (the WAL is synced on
 *   every commit, so one fsync per group).
 * - One writer, so the outbox's `seq` is commit order and the cursor is simply `seq`.
 * - Statements are prepared once and cached: the write path's by SQL text, the reads' (the
 *   queries both dialects share, `../queries.ts`, run by `../reads.ts`) by query.
 * - The outbox and the usage fold are this dialect's own (`outbox.ts`).
 */
import { mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import Database from "better-sqlite3";
import { z } from "zod";
import { KuraError, toKuraError } from "../../../core/errors.js";
import { parseOptions } from "../../../core/options.js";
import type {
  BatchOutcome,
  Catalog,
  CatalogBatch,
  CatalogCapabilities,
  CatalogDefinition,
  CatalogDeps,
  CatalogDumpRow,
  CatalogSnapshot,
  OutboxPruneOptions,
  OutboxPruneResult,
  OutboxRecord,
} from "../../../ports/catalog.js";
import {
  allFailed,
  checkLimit,
  checkTime,
  closedError,
  migrationFailed,
  PRUNE_CHUNK,
  schemaTooNew,
} from "../common.js";
import { renderCreateTable } from "../dsl.js";
import { checkMigrations, MIGRATIONS, type Migration, renderMigration } from "../migrations.js";
import { Q, type Query, type QueryParams } from "../queries.js";
import { CatalogReads, type Read } from "../reads.js";
import { toOutboxEvent } from "../rows.js";
import { SCHEMA_MIGRATIONS } from "../schema.js";
import { GroupCommit } from "./commit.js";
import { loadSqliteRows, openSqliteSnapshot } from "./dump.js";
import { sqliteError } from "./errors.js";
import {
  DELETE_DELTAS,
  decodeCursor,
  FIRST_YOUNG,
  FOLD_DELTAS,
  OUTBOX_HEAD,
  OUTBOX_LAG,
  PRUNE_DELETE,
  READ_OUTBOX,
  USAGE_TOP,
} from "./outbox.js";
import { freesSpace, SpaceReserve } from "./reserve.js";
import { SqliteTenantRegistry } from "./tenants.js";

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
  const catalog = new SqliteCatalog(db, deps, migrations, memory, reserve);
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

class SqliteCatalog extends CatalogReads implements Catalog {
  readonly dialect = "sqlite" as const;
  readonly capabilities = CAPABILITIES;
  /** Statements by SQL text (the write path's). */
  private readonly statements = new Map<string, Statement>();
  /** Statements of queries (`queries.ts`), raw (rows as arrays) for array queries. */
  private readonly prepared = new Map<Query<unknown>, Statement>();
  private closed = false;
  private readonly writer: GroupCommit;
  private readonly registry: SqliteTenantRegistry;

  constructor(
    private readonly db: Db,
    private readonly deps: CatalogDeps,
    private readonly migrations: readonly Migration[],
    /** In memory (`:memory:`, `file:` URIs): a snapshot copies the database instead of opening it again. */
    private readonly memory: boolean,
    private readonly reserve?: SpaceReserve,
  ) {
    super();
    this.writer = new GroupCommit(db, (sql) => this.stmt(sql));
    this.registry = new SqliteTenantRegistry(db, (op, fn) => this.read(op, fn));
  }

  private stmt(sql: string): Statement {
    let s = this.statements.get(sql);
    if (!s) {
      s = this.db.prepare(sql);
      this.statements.set(sql, s);
    }
    return s;
  }

  private statement(q: Query<unknown>): Statement {
    let s = this.prepared.get(q);
    if (!s) {
      s = this.db.prepare(q.sqlite.sql);
      if (q.arrays) s.raw(true);
      this.prepared.set(q, s);
    }
    return s;
  }

  /** The rows of `q` (none for a statement that returns none). */
  private exec<R>(q: Query<R>, params: QueryParams = {}): R[] {
    const s = this.statement(q);
    const values = q.sqlite.bind(params);
    if (s.reader) return s.all(values) as R[];
    s.run(values);
    return [];
  }

  /** How many rows `q` changed. */
  private change(q: Query<unknown>, params: QueryParams): number {
    return this.statement(q).run(q.sqlite.bind(params)).changes;
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

  protected run<T, R>(operation: string, build: () => Read<T, R>): Promise<T> {
    return this.read(operation, () => {
      const read = build();
      return "answer" in read ? read.answer : read.result(this.exec(read.query, read.params));
    });
  }

  protected checkCursor(cursor: string, operation: string): void {
    decodeCursor(cursor, operation);
  }

  async migrate(): Promise<void> {
    if (this.closed) throw closedError("catalog.migrate");
    checkMigrations(this.migrations);
    const apply = this.db.transaction(() => {
      this.db.exec(renderCreateTable(SCHEMA_MIGRATIONS, "sqlite", { ifNotExists: true }));
      const current = this.currentVersion();
      if (current > this.migrations.length) {
        throw schemaTooNew(current, this.migrations.length);
      }
      for (const m of this.migrations.slice(current)) {
        try {
          for (const sql of renderMigration(m, "sqlite")) this.db.exec(sql);
        } catch (e) {
          throw migrationFailed(m, current, e);
        }
        const record = Q.recordMigration.sqlite;
        this.db.prepare(record.sql).run(record.bind({ version: m.version, name: m.name, at: Date.now() }));
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
    this.prepared.clear();
  }

  private currentVersion(): number {
    return (this.db.prepare(Q.schemaVersion.sqlite.sql).get() as { v: number }).v;
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

  // --- the outbox (`outbox.ts`) and the usage fold -----------------------------------------

  readOutbox(cursor: string | undefined, limit: number): Promise<OutboxRecord[]> {
    return this.run("catalog.readOutbox", () => ({
      query: READ_OUTBOX,
      params: {
        after: decodeCursor(cursor, "catalog.readOutbox"),
        limit: checkLimit(limit, "catalog.readOutbox"),
      },
      result: (rows) => rows.map((r) => ({ ...toOutboxEvent(r), seq: Number(r.seq), cursor: String(r.seq) })),
    }));
  }

  outboxHead(): Promise<string | undefined> {
    return this.run("catalog.outboxHead", () => ({
      query: OUTBOX_HEAD,
      params: {},
      result: ([r]) => (r?.s === null || r?.s === undefined ? undefined : String(r.s)),
    }));
  }

  outboxLag(cursor: string | undefined): Promise<number> {
    return this.run("catalog.outboxLag", () => ({
      query: OUTBOX_LAG,
      params: { after: decodeCursor(cursor, "catalog.outboxLag") },
      result: ([r]) => Number(r?.n ?? 0),
    }));
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
      const saved = this.exec(Q.consumers);
      const known = new Set(saved.map((r) => r.consumer as string));
      if ((options.consumers ?? []).some((name) => !known.has(name))) return 0;
      let bound = Number.MAX_SAFE_INTEGER;
      for (const r of saved) bound = Math.min(bound, decodeCursor(r.cursor as string, operation) + 1);
      const [young] = this.exec(FIRST_YOUNG, { bound, before });
      return young ? Number(young.seq) : bound;
    });
    let deleted = 0;
    while (upper > 0) {
      const n = await this.read(operation, () => this.change(PRUNE_DELETE, { upper, limit: PRUNE_CHUNK }));
      deleted += n;
      if (n < PRUNE_CHUNK) break;
      // Commits go in between chunks: the connection is the process's only writer.
      await new Promise((resolve) => setImmediate(resolve));
    }
    return { deleted };
  }

  foldUsage(): Promise<number> {
    return this.read("catalog.foldUsage", () => {
      const fold = this.db.transaction(() => {
        const top = this.exec(USAGE_TOP)[0]?.top ?? null;
        if (top === null) return 0;
        this.change(FOLD_DELTAS, { top });
        return this.change(DELETE_DELTAS, { top });
      });
      return fold.immediate();
    });
  }

  // --- backup and restore: dump.ts -----------------------------------------------------------

  async openSnapshot(): Promise<CatalogSnapshot> {
    if (this.closed) throw closedError("catalog.openSnapshot");
    return openSqliteSnapshot(this.db, this.memory);
  }

  async loadRows(table: string, rows: readonly CatalogDumpRow[]): Promise<number> {
    if (this.closed) throw closedError("catalog.loadRows");
    const inserted = loadSqliteRows(this.db, table, rows);
    this.reserve?.ensure();
    return inserted;
  }

  // --- the tenant registry and API keys: tenants.ts ------------------------------------------
  createTenant: Catalog["createTenant"] = (record, write) => this.registry.createTenant(record, write);
  getTenant: Catalog["getTenant"] = (tenantId) => this.registry.getTenant(tenantId);
  listTenants: Catalog["listTenants"] = (options) => this.registry.listTenants(options);
  updateTenant: Catalog["updateTenant"] = (id, change, o) => this.registry.updateTenant(id, change, o);
  removeTenant: Catalog["removeTenant"] = (tenantId, write) => this.registry.removeTenant(tenantId, write);
  tenantOfDomain: Catalog["tenantOfDomain"] = (domain) => this.registry.tenantOfDomain(domain);
  tenantOfIssuer: Catalog["tenantOfIssuer"] = (issuer) => this.registry.tenantOfIssuer(issuer);
  registryVersion: Catalog["registryVersion"] = () => this.registry.registryVersion();
  createApiKey: Catalog["createApiKey"] = (key, write) => this.registry.createApiKey(key, write);
  getApiKey: Catalog["getApiKey"] = (keyId) => this.registry.getApiKey(keyId);
  listApiKeys: Catalog["listApiKeys"] = (tenantId) => this.registry.listApiKeys(tenantId);
  revokeApiKey: Catalog["revokeApiKey"] = (id, keyId, o) => this.registry.revokeApiKey(id, keyId, o);

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.clearStatements();
    this.db.close();
  }
}
