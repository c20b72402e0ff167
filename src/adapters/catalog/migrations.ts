/**
 * The one ordered migration history of the catalog (CAT-1), rendered to either dialect from the
 * table definitions in `schema.ts`. Append only: a released migration is never edited, a change
 * is a new migration. Each adapter applies the pending ones when it opens, in one transaction,
 * and records them in `schema_migrations`.
 */
import {
  type Dialect,
  type IndexDef,
  renderAddColumn,
  renderCreateIndex,
  renderTable,
  type TableDef,
} from "./dsl.js";
import {
  API_KEYS,
  AUDIT_LOG,
  BLOB_REFS,
  CHATS,
  JOBS,
  LEASES,
  LEASES_V1,
  LEGAL_HOLDS,
  MAIL_DOMAINS,
  MAIL_MESSAGES,
  MAIL_MESSAGES_V1,
  MAILBOXES,
  MESSAGE_VERSIONS,
  MESSAGES,
  OBJECTS,
  OUTBOX,
  OUTBOX_CONSUMERS,
  OUTBOX_V1,
  REGISTRY_VERSION,
  TENANT_DOMAINS,
  TENANT_ISSUERS,
  TENANT_KEYS,
  TENANT_REGISTRY,
  TENANTS,
  TENANTS_V1,
  USAGE,
  USAGE_DELTAS,
  USERS,
} from "./schema.js";

export type MigrationStep =
  | { readonly kind: "createTable"; readonly table: TableDef }
  | { readonly kind: "createIndex"; readonly table: TableDef; readonly index: IndexDef }
  | { readonly kind: "addColumn"; readonly table: TableDef; readonly column: string }
  /** Hand-written SQL per dialect, for what the DSL cannot say (data moves, backfills). */
  | { readonly kind: "sql"; readonly sqlite: readonly string[]; readonly postgres: readonly string[] };

export interface Migration {
  /** 1, 2, 3, … without gaps. */
  readonly version: number;
  readonly name: string;
  readonly steps: readonly MigrationStep[];
}

const createTable = (t: TableDef): MigrationStep => ({ kind: "createTable", table: t });

export const MIGRATIONS: readonly Migration[] = Object.freeze([
  {
    version: 1,
    name: "core tables",
    steps: [
      TENANTS_V1,
      USERS,
      CHATS,
      MESSAGES,
      MESSAGE_VERSIONS,
      OBJECTS,
      BLOB_REFS,
      OUTBOX_V1,
      OUTBOX_CONSUMERS,
      AUDIT_LOG,
      JOBS,
      LEASES_V1,
      USAGE,
      USAGE_DELTAS,
    ].map(createTable),
  },
  {
    version: 2,
    name: "mail metadata",
    steps: [MAIL_DOMAINS, MAILBOXES, MAIL_MESSAGES_V1].map(createTable),
  },
  {
    version: 3,
    name: "per-tenant change feed positions",
    steps: [
      { kind: "addColumn", table: TENANTS, column: "feed_seq" },
      { kind: "addColumn", table: OUTBOX, column: "tenant_seq" },
      {
        // Number the events already there per tenant, in the order readers saw them.
        kind: "sql",
        sqlite: [
          "INSERT INTO tenants (tenant_id, created_at) SELECT DISTINCT tenant_id, 0 FROM outbox WHERE true " +
            "ON CONFLICT (tenant_id) DO NOTHING",
          "CREATE TEMP TABLE kura_feed_backfill (s INTEGER PRIMARY KEY, n INTEGER NOT NULL)",
          "INSERT INTO kura_feed_backfill (s, n) " +
            "SELECT seq, ROW_NUMBER() OVER (PARTITION BY tenant_id ORDER BY seq) FROM outbox",
          "UPDATE outbox SET tenant_seq = (SELECT n FROM kura_feed_backfill WHERE s = outbox.seq)",
          "DROP TABLE kura_feed_backfill",
        ],
        postgres: [
          "INSERT INTO tenants (tenant_id, created_at) SELECT DISTINCT tenant_id, 0 FROM outbox " +
            "ON CONFLICT (tenant_id) DO NOTHING",
          "UPDATE outbox o SET tenant_seq = r.n FROM (SELECT seq, ROW_NUMBER() OVER " +
            "(PARTITION BY tenant_id ORDER BY txid, seq) AS n FROM outbox) r WHERE r.seq = o.seq",
        ],
      },
      {
        kind: "createIndex",
        table: OUTBOX,
        index: OUTBOX.indexes.find((i) => i.name === "outbox_tenant_seq") as IndexDef,
      },
      {
        kind: "sql",
        sqlite: [
          "UPDATE tenants SET feed_seq = (SELECT max(tenant_seq) FROM outbox WHERE outbox.tenant_id = tenants.tenant_id)",
        ],
        postgres: [
          "UPDATE tenants t SET feed_seq = m.mx FROM (SELECT tenant_id, max(tenant_seq) AS mx FROM outbox " +
            "GROUP BY tenant_id) m WHERE m.tenant_id = t.tenant_id",
        ],
      },
    ],
  },
  {
    version: 4,
    name: "tenant registry and API keys",
    steps: [TENANT_REGISTRY, TENANT_DOMAINS, API_KEYS].map(createTable),
  },
  {
    version: 5,
    name: "tenant issuers and the registry version",
    steps: [
      createTable(TENANT_ISSUERS),
      createTable(REGISTRY_VERSION),
      {
        // The issuers of tenants registered before, and the counter's one row.
        kind: "sql",
        sqlite: [
          "INSERT INTO tenant_issuers (issuer, tenant_id) SELECT json_extract(jwt, '$.issuer'), tenant_id " +
            "FROM tenant_registry WHERE jwt IS NOT NULL AND true ON CONFLICT (issuer) DO NOTHING",
          "INSERT INTO registry_version (id, version) VALUES (1, 0)",
        ],
        postgres: [
          "INSERT INTO tenant_issuers (issuer, tenant_id) SELECT (jwt::json)->>'issuer', tenant_id " +
            "FROM tenant_registry WHERE jwt IS NOT NULL ON CONFLICT (issuer) DO NOTHING",
          "INSERT INTO registry_version (id, version) VALUES (1, 0)",
        ],
      },
    ],
  },
  {
    version: 6,
    name: "legal holds",
    steps: [createTable(LEGAL_HOLDS)],
  },
  {
    version: 7,
    name: "message bodies referenced by their rows",
    steps: [
      {
        // A message body's ref is its message or version row from now on (`queries.ts` ALL_REFS):
        // the ref rows earlier releases wrote for them (append, edit, archive move) go.
        kind: "sql",
        sqlite: ["DELETE FROM blob_refs WHERE kind IN ('message', 'message-version')"],
        postgres: ["DELETE FROM blob_refs WHERE kind IN ('message', 'message-version')"],
      },
    ],
  },
  {
    version: 8,
    name: "mail storage",
    steps: [
      // The placeholder of migration 2 held no rows (nothing wrote it): replaced whole.
      { kind: "sql", sqlite: ["DROP TABLE mail_messages"], postgres: ["DROP TABLE mail_messages"] },
      createTable(MAIL_MESSAGES),
    ],
  },
  {
    version: 9,
    name: "tenant data keys",
    steps: [createTable(TENANT_KEYS)],
  },
  {
    version: 10,
    name: "lease fencing tokens",
    steps: [{ kind: "addColumn", table: LEASES, column: "token" }],
  },
]);

/** The schema version this code writes and understands. */
export const LATEST_VERSION = MIGRATIONS.length;

/** The statements of one migration in `dialect`, in order. */
export function renderMigration(migration: Migration, dialect: Dialect): string[] {
  return migration.steps.flatMap((step): string[] => {
    if (step.kind === "createTable") return renderTable(step.table, dialect);
    if (step.kind === "addColumn") {
      const sql = renderAddColumn(step.table, step.column, dialect);
      return sql === undefined ? [] : [sql];
    }
    if (step.kind === "createIndex") {
      const sql = renderCreateIndex(step.table, step.index, dialect);
      return sql === undefined ? [] : [sql];
    }
    return [...step[dialect]];
  });
}

/** Throws if versions are not 1..n in order (a mistake in this file, caught by tests). */
export function checkMigrations(migrations: readonly Migration[]): void {
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) throw new Error(`migration #${i} has version ${m.version}, expected ${i + 1}`);
  });
}
