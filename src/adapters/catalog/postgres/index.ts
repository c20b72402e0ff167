/**
 * `postgres`: the shared catalog for several nodes (DIST-1), through a node-postgres pool.
 *
 * - All tables live in the configured `schema` (the connections' `search_path`), so the SQL is
 *   the same whatever the schema; migrations run under an advisory lock so nodes starting
 *   together migrate once.
 * - A group commit is one transaction on one pooled connection (`commit.ts`).
 * - The reads are the queries both dialects share (`../queries.ts`, run by `../reads.ts`); the
 *   outbox, commit-safe, and the usage fold are this dialect's own (`outbox.ts`).
 */
import pg from "pg";
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
import { COMMIT_OUTCOME_UNKNOWN } from "../../../ports/catalog.js";
import { createPgPool, isBrokenClient, pgTimeoutOptions, pgTimeouts, quoteIdent } from "../../pg.js";
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
import { Q } from "../queries.js";
import { CatalogReads, type Read } from "../reads.js";
import { type DbRow, toOutboxEvent } from "../rows.js";
import { SCHEMA_MIGRATIONS } from "../schema.js";
import { failedDuringCommit, GroupCommit, type Queryable } from "./commit.js";
import { loadPostgresRows, openPostgresSnapshot } from "./dump.js";
import { isConnectionError, pgError } from "./errors.js";
import {
  comparePositions,
  decodeCursor,
  encodeCursor,
  FIRST_YOUNG,
  FOLD_USAGE,
  HORIZON,
  OUTBOX_HEAD,
  OUTBOX_LAG,
  type OutboxPosition,
  PRUNE_DELETE,
  PRUNE_PLAN,
  READ_OUTBOX,
} from "./outbox.js";
import { PostgresTenantRegistry } from "./tenants.js";

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

class PostgresCatalog extends CatalogReads implements Catalog {
  readonly dialect = "postgres" as const;
  readonly capabilities = CAPABILITIES;
  private closed = false;
  private readonly names = new Map<string, string>();
  private readonly writer = new GroupCommit((db, text, values) => this.query(db, text, values));
  private readonly registry: PostgresTenantRegistry;

  constructor(
    private readonly pool: pg.Pool,
    private readonly schema: string,
    private readonly deps: CatalogDeps,
    private readonly migrations: readonly Migration[],
  ) {
    super();
    this.registry = new PostgresTenantRegistry(pool, (op, fn) => this.read(op, fn));
  }

  /**
   * A prepared statement per distinct SQL text (prepared once per connection by pg); `arrays`:
   * rows as arrays of column values.
   */
  private query(
    db: Queryable,
    text: string,
    values: unknown[] = [],
    arrays = false,
  ): Promise<pg.QueryResult<DbRow>> {
    let name = this.names.get(text);
    if (!name) {
      name = `kura_${this.names.size + 1}`;
      this.names.set(text, name);
    }
    if (arrays)
      return db.query({ name, text, values, rowMode: "array" }) as unknown as Promise<pg.QueryResult<DbRow>>;
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

  protected run<T, R>(operation: string, build: () => Read<T, R>): Promise<T> {
    return this.read(operation, async () => {
      const read = build();
      if ("answer" in read) return read.answer;
      const { sql, bind } = read.query.postgres;
      const result = await this.query(this.pool, sql, bind(read.params), read.query.arrays);
      return read.result(result.rows as R[]);
    });
  }

  protected checkCursor(cursor: string, operation: string): void {
    decodeCursor(cursor, operation);
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
        throw schemaTooNew(current, this.migrations.length);
      }
      for (const m of this.migrations.slice(current)) {
        try {
          for (const sql of renderMigration(m, "postgres")) await client.query(sql);
        } catch (e) {
          if (isConnectionError(e)) throw e;
          throw migrationFailed(m, current, e);
        }
        const record = Q.recordMigration.postgres;
        await client.query(record.sql, record.bind({ version: m.version, name: m.name, at: Date.now() }));
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
    const r = await db.query<{ v: number }>(Q.schemaVersion.postgres.sql);
    return Number(r.rows[0]?.v ?? 0);
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

  // --- the outbox in commit order (`outbox.ts`) and the usage fold --------------------------

  readOutbox(cursor: string | undefined, limit: number): Promise<OutboxRecord[]> {
    return this.run("catalog.readOutbox", () => {
      const from = decodeCursor(cursor, "catalog.readOutbox");
      return {
        query: READ_OUTBOX,
        params: { txid: from.txid, seq: from.seq, limit: checkLimit(limit, "catalog.readOutbox") },
        result: (rows) =>
          rows.map((r) => ({
            ...toOutboxEvent(r),
            seq: Number(r.seq),
            cursor: encodeCursor(r.txid_text as string, Number(r.seq)),
          })),
      };
    });
  }

  outboxHead(): Promise<string | undefined> {
    return this.run("catalog.outboxHead", () => ({
      query: OUTBOX_HEAD,
      params: {},
      result: ([r]) => (r ? encodeCursor(r.txid_text as string, Number(r.seq)) : undefined),
    }));
  }

  outboxLag(cursor: string | undefined): Promise<number> {
    return this.run("catalog.outboxLag", () => ({
      query: OUTBOX_LAG,
      params: { ...decodeCursor(cursor, "catalog.outboxLag") },
      result: ([r]) => Number(r?.n ?? 0),
    }));
  }

  /**
   * Prunes below one exclusive bound in commit order — the slowest consumer's cursor, the
   * oldest transaction still running, the first event of the retained tail — then, per tenant,
   * only the prefix of its feed below its first event that is not prunable (`PRUNE_PLAN`).
   */
  async pruneOutbox(options: OutboxPruneOptions): Promise<OutboxPruneResult> {
    const operation = "catalog.pruneOutbox";
    const before = await this.read(operation, async () => checkTime(options.before, "before", operation));
    const saved = await this.rows(operation, Q.consumers);
    const known = new Set(saved.map((r) => r.consumer as string));
    if ((options.consumers ?? []).some((name) => !known.has(name))) return { deleted: 0 };
    const [horizon] = await this.rows(operation, HORIZON);
    // Exclusive bound: (xmin, 0) lies after every row of a finished transaction.
    let upper: OutboxPosition = { txid: String(horizon?.xmin), seq: 0 };
    const lower = (p: OutboxPosition) => {
      if (comparePositions(p, upper) < 0) upper = p;
    };
    for (const r of saved) {
      const passed = await this.read(operation, async () => decodeCursor(r.cursor as string, operation));
      lower({ txid: passed.txid, seq: passed.seq + 1 });
    }
    const [young] = await this.rows(operation, FIRST_YOUNG, { ...upper, before });
    if (young) lower({ txid: young.txid_text as string, seq: Number(young.seq) });

    const ranges: { tenantId: string; lo: number; hi: number }[] = [];
    for (const r of await this.rows(operation, PRUNE_PLAN, { ...upper })) {
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
      const { sql, bind } = PRUNE_DELETE.postgres;
      const values = bind({
        tenants: batch.map((r) => r.tenantId),
        los: batch.map((r) => r.lo),
        his: batch.map((r) => r.hi),
        ...upper,
      });
      const result = await this.read(operation, () => this.query(this.pool, sql, values));
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

  foldUsage(): Promise<number> {
    return this.run("catalog.foldUsage", () => ({
      query: FOLD_USAGE,
      params: {},
      result: ([r]) => Number(r?.n ?? 0),
    }));
  }

  // --- backup and restore: dump.ts -----------------------------------------------------------

  async openSnapshot(): Promise<CatalogSnapshot> {
    if (this.closed) throw closedError("catalog.openSnapshot");
    return openPostgresSnapshot(this.pool);
  }

  async loadRows(table: string, rows: readonly CatalogDumpRow[]): Promise<number> {
    if (this.closed) throw closedError("catalog.loadRows");
    return loadPostgresRows(this.pool, table, rows);
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
    await this.pool.end().catch(() => undefined);
  }
}
