/**
 * SQLite's side of backup and restore (CONS-4). A snapshot is a read transaction on a read-only
 * connection of its own: in WAL mode it sees the database as of its first read while the
 * catalog's connection (or a server in another process) goes on committing; the WAL is not
 * checkpointed past it until it closes. An in-memory catalog is copied (`serialize`) instead.
 * Rows are paged by rowid (every catalog table has one), so no page holds the connection busy.
 */
import Database from "better-sqlite3";
import type { CatalogDumpRow, CatalogSnapshot } from "../../../ports/catalog.js";
import { closedError } from "../common.js";
import {
  DUMP_TABLES,
  dumpTable,
  dumpValue,
  insertSql,
  insertValues,
  loadColumns,
  rowsPerInsert,
  selectColumns,
} from "../dump.js";
import { Q } from "../queries.js";
import { sqliteError } from "./errors.js";

type Db = Database.Database;

export function openSqliteSnapshot(db: Db, memory: boolean): CatalogSnapshot {
  const operation = "catalog.openSnapshot";
  let reader: Db;
  try {
    reader = memory
      ? new Database(db.serialize())
      : new Database(db.name, { readonly: true, fileMustExist: true });
    // The first read fixes what the transaction sees.
    reader.exec("BEGIN");
  } catch (e) {
    throw sqliteError(e, operation);
  }
  let schemaVersion: number;
  try {
    schemaVersion = Number((reader.prepare(Q.schemaVersion.sqlite.sql).get() as { v: number }).v);
  } catch (e) {
    reader.close();
    throw sqliteError(e, operation);
  }
  let closed = false;
  return {
    schemaVersion,
    tables: DUMP_TABLES,
    async *rows(table: string, options: { pageSize: number }): AsyncIterable<CatalogDumpRow[]> {
      const def = dumpTable(table, "catalog.snapshot.rows");
      const page = Math.max(1, Math.floor(options.pageSize));
      let after = 0;
      for (;;) {
        if (closed) throw closedError("catalog.snapshot.rows");
        let raw: Record<string, unknown>[];
        try {
          raw = reader
            .prepare(
              `SELECT rowid AS kura_rowid, ${selectColumns(def)} FROM ${def.name} WHERE rowid > ? ORDER BY rowid LIMIT ?`,
            )
            .all(after, page) as Record<string, unknown>[];
        } catch (e) {
          throw sqliteError(e, "catalog.snapshot.rows");
        }
        if (raw.length === 0) return;
        after = Number((raw[raw.length - 1] as Record<string, unknown>).kura_rowid);
        yield raw.map((r) => {
          const row: CatalogDumpRow = {};
          for (const [k, v] of Object.entries(r)) if (k !== "kura_rowid") row[k] = dumpValue(v);
          return row;
        });
        if (raw.length < page) return;
      }
    },
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      try {
        reader.exec("COMMIT");
      } finally {
        reader.close();
      }
    },
  };
}

/** Inserts `rows` into `table` in one transaction (`ON CONFLICT DO NOTHING`); how many were new. */
export function loadSqliteRows(db: Db, table: string, rows: readonly CatalogDumpRow[]): number {
  const operation = "catalog.loadRows";
  const def = dumpTable(table, operation);
  if (rows.length === 0) return 0;
  const columns = loadColumns(def, rows, operation);
  const per = rowsPerInsert(columns.length);
  const load = db.transaction(() => {
    let inserted = 0;
    for (let i = 0; i < rows.length; i += per) {
      const chunk = rows.slice(i, i + per);
      const insert = db.prepare(insertSql(def, columns, chunk.length, "sqlite"));
      inserted += insert.run(insertValues(chunk, columns)).changes;
    }
    // AUTOINCREMENT follows explicit `seq` values by itself (sqlite_sequence).
    return inserted;
  });
  try {
    return load.immediate();
  } catch (e) {
    throw sqliteError(e, operation);
  }
}
