/**
 * The one ordered migration history of the catalog (CAT-1), rendered to either dialect from the
 * table definitions in `schema.ts`. Append only: a released migration is never edited, a change
 * is a new migration. Each adapter applies the pending ones when it opens, in one transaction,
 * and records them in `schema_migrations`.
 */
import { type Dialect, type IndexDef, renderCreateIndex, renderTable, type TableDef } from "./dsl.js";
import {
  AUDIT_LOG,
  BLOB_REFS,
  CHATS,
  JOBS,
  LEASES,
  MAIL_DOMAINS,
  MAIL_MESSAGES,
  MAILBOXES,
  MESSAGE_VERSIONS,
  MESSAGES,
  OBJECTS,
  OUTBOX,
  OUTBOX_CONSUMERS,
  TENANTS,
  USAGE,
  USAGE_DELTAS,
  USERS,
} from "./schema.js";

export type MigrationStep =
  | { readonly kind: "createTable"; readonly table: TableDef }
  | { readonly kind: "createIndex"; readonly table: TableDef; readonly index: IndexDef }
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
      TENANTS,
      USERS,
      CHATS,
      MESSAGES,
      MESSAGE_VERSIONS,
      OBJECTS,
      BLOB_REFS,
      OUTBOX,
      OUTBOX_CONSUMERS,
      AUDIT_LOG,
      JOBS,
      LEASES,
      USAGE,
      USAGE_DELTAS,
    ].map(createTable),
  },
  {
    version: 2,
    name: "mail metadata",
    steps: [MAIL_DOMAINS, MAILBOXES, MAIL_MESSAGES].map(createTable),
  },
]);

/** The schema version this code writes and understands. */
export const LATEST_VERSION = MIGRATIONS.length;

/** The statements of one migration in `dialect`, in order. */
export function renderMigration(migration: Migration, dialect: Dialect): string[] {
  return migration.steps.flatMap((step): string[] => {
    if (step.kind === "createTable") return renderTable(step.table, dialect);
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
