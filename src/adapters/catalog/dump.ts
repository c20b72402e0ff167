/**
 * Rows as they are, for backup and restore (CONS-4): which tables a snapshot holds, and the
 * insert that loads them into either dialect. Both adapters use this; the snapshot's reads and
 * the load's transaction are each dialect's own (`sqlite/dump.ts`, `postgres/dump.ts`).
 */
import { KuraError } from "../../core/errors.js";
import type { CatalogDumpRow, CatalogDumpTable } from "../../ports/catalog.js";
import { columnsOf, type Dialect, type TableDef } from "./dsl.js";
import { ALL_TABLES } from "./schema.js";

/**
 * Tables describing the database rather than the data: the migrations applied, leases of live
 * processes, projector cursors (a dialect's own format; a restored catalog's projectors rebuild)
 * and the registry's change counter (nodes of the restored catalog start with no cache).
 */
const NOT_DUMPED = new Set(["schema_migrations", "leases", "outbox_consumers", "registry_version"]);

const DUMPED: readonly TableDef[] = ALL_TABLES.filter((t) => !NOT_DUMPED.has(t.name));

/** The tables a snapshot holds, with their dialect-neutral columns (no `txid`). */
export const DUMP_TABLES: readonly CatalogDumpTable[] = Object.freeze(
  DUMPED.map((t) => Object.freeze({ name: t.name, columns: Object.freeze(columnsOf(t, "sqlite")) })),
);

/** A dumped table's definition, or INVALID_ARGUMENT. */
export function dumpTable(name: string, operation: string): TableDef {
  const def = DUMPED.find((t) => t.name === name);
  if (def === undefined)
    throw new KuraError("INVALID_ARGUMENT", `no catalog table ${JSON.stringify(name)} is backed up`, {
      operation,
    });
  return def;
}

/** The `seq` column of a table, if it has one (its values are kept; the counter moves above them). */
export function seqColumn(def: TableDef): string | undefined {
  return Object.entries(def.columns).find(([, type]) => type === "seq")?.[0];
}

/** `SELECT` of a table's dumped columns, in order. */
export function selectColumns(def: TableDef): string {
  return columnsOf(def, "sqlite").join(", ");
}

/** One JSON-safe value of a row read back (SQLite may hand out bigints for large integers). */
export function dumpValue(v: unknown): string | number | null {
  if (v === null || v === undefined) return null;
  if (typeof v === "bigint") return Number(v);
  if (typeof v === "string" || typeof v === "number") return v;
  return String(v);
}

/** The columns of `rows` (union, in the table's order), each checked against the table. */
export function loadColumns(def: TableDef, rows: readonly CatalogDumpRow[], operation: string): string[] {
  const known = columnsOf(def, "sqlite");
  const seen = new Set<string>();
  for (const row of rows)
    for (const c of Object.keys(row)) {
      if (!seen.has(c) && !known.includes(c))
        throw new KuraError("INVALID_ARGUMENT", `catalog table ${def.name} has no column ${c}`, {
          operation,
        });
      seen.add(c);
    }
  return known.filter((c) => seen.has(c));
}

/** Largest number of bound values in one insert (PostgreSQL allows 65535). */
const MAX_PARAMS = 30_000;

/** Rows per insert statement for a table of `columns` columns. */
export function rowsPerInsert(columns: number): number {
  return Math.max(1, Math.min(500, Math.floor(MAX_PARAMS / Math.max(1, columns))));
}

/**
 * `INSERT … VALUES (…), (…) ON CONFLICT DO NOTHING` of `count` rows: a row whose key (or
 * another unique index) exists is skipped, in both dialects.
 */
export function insertSql(
  def: TableDef,
  columns: readonly string[],
  count: number,
  dialect: Dialect,
): string {
  let n = 0;
  const tuple = () => `(${columns.map(() => (dialect === "sqlite" ? "?" : `$${++n}`)).join(", ")})`;
  const tuples = Array.from({ length: count }, tuple).join(", ");
  return `INSERT INTO ${def.name} (${columns.join(", ")}) VALUES ${tuples} ON CONFLICT DO NOTHING`;
}

/** The values of `rows` for `insertSql`, row after row. */
export function insertValues(rows: readonly CatalogDumpRow[], columns: readonly string[]): unknown[] {
  const values: unknown[] = [];
  for (const row of rows) for (const c of columns) values.push(row[c] ?? null);
  return values;
}

/** Whether any dumped table has a row, in one statement both dialects run. */
export const HOLDS_DATA_SQL = `SELECT CASE WHEN ${DUMPED.map((t) => `EXISTS (SELECT 1 FROM ${t.name})`).join(
  " OR ",
)} THEN 1 ELSE 0 END AS held`;
