/**
 * PostgreSQL's side of backup and restore (CONS-4). A snapshot is a REPEATABLE READ READ ONLY
 * transaction on one pooled connection, held until `close`: every table is read as of its
 * first statement, through a server-side cursor per table (a page per FETCH, so no table is
 * held in memory), while writers go on. A load is one transaction that inserts the rows and
 * then moves each identity sequence (`seq` columns) above the greatest value loaded.
 */
import type pg from "pg";
import type { CatalogDumpRow, CatalogSnapshot } from "../../../ports/catalog.js";
import { isBrokenClient } from "../../pg.js";
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
  seqColumn,
} from "../dump.js";
import { Q } from "../queries.js";
import { isConnectionError, pgError } from "./errors.js";

export async function openPostgresSnapshot(pool: pg.Pool): Promise<CatalogSnapshot> {
  const operation = "catalog.openSnapshot";
  let client: pg.PoolClient;
  try {
    client = await pool.connect();
  } catch (e) {
    throw pgError(e, operation);
  }
  let broken: Error | undefined;
  const release = () =>
    client.release(broken ?? (isBrokenClient(client) ? new Error("connection failed") : undefined));
  let schemaVersion: number;
  try {
    await client.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    // The first statement takes the snapshot every later one reads.
    const r = await client.query<{ v: number | string }>(Q.schemaVersion.postgres.sql);
    schemaVersion = Number(r.rows[0]?.v ?? 0);
  } catch (e) {
    if (isConnectionError(e)) broken = e as Error;
    release();
    throw pgError(e, operation);
  }
  let closed = false;
  let cursors = 0;
  return {
    schemaVersion,
    tables: DUMP_TABLES,
    async *rows(table: string, options: { pageSize: number }): AsyncIterable<CatalogDumpRow[]> {
      const op = "catalog.snapshot.rows";
      const def = dumpTable(table, op);
      if (closed) throw closedError(op);
      const page = Math.max(1, Math.floor(options.pageSize));
      const name = `kura_dump_${++cursors}`;
      try {
        await client.query(
          `DECLARE ${name} NO SCROLL CURSOR FOR SELECT ${selectColumns(def)} FROM ${def.name}`,
        );
      } catch (e) {
        if (isConnectionError(e)) broken = e as Error;
        throw pgError(e, op);
      }
      try {
        for (;;) {
          if (closed) throw closedError(op);
          let rows: Record<string, unknown>[];
          try {
            rows = (await client.query(`FETCH FORWARD ${page} FROM ${name}`)).rows;
          } catch (e) {
            if (isConnectionError(e)) broken = e as Error;
            throw pgError(e, op);
          }
          if (rows.length === 0) return;
          yield rows.map((r) => {
            const row: CatalogDumpRow = {};
            for (const [k, v] of Object.entries(r)) row[k] = dumpValue(v);
            return row;
          });
          if (rows.length < page) return;
        }
      } finally {
        if (!closed && broken === undefined) await client.query(`CLOSE ${name}`).catch(() => undefined);
      }
    },
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      try {
        if (broken === undefined) await client.query("COMMIT");
      } catch (e) {
        broken = e as Error;
      } finally {
        release();
      }
    },
  };
}

/** Inserts `rows` into `table` in one transaction (`ON CONFLICT DO NOTHING`); how many were new. */
export async function loadPostgresRows(
  pool: pg.Pool,
  table: string,
  rows: readonly CatalogDumpRow[],
): Promise<number> {
  const operation = "catalog.loadRows";
  const def = dumpTable(table, operation);
  if (rows.length === 0) return 0;
  const columns = loadColumns(def, rows, operation);
  const per = rowsPerInsert(columns.length);
  let client: pg.PoolClient;
  try {
    client = await pool.connect();
  } catch (e) {
    throw pgError(e, operation);
  }
  let broken: Error | undefined;
  try {
    await client.query("BEGIN");
    let inserted = 0;
    for (let i = 0; i < rows.length; i += per) {
      const chunk = rows.slice(i, i + per);
      const r = await client.query(
        insertSql(def, columns, chunk.length, "postgres"),
        insertValues(chunk, columns),
      );
      inserted += r.rowCount ?? 0;
    }
    const seq = seqColumn(def);
    if (seq !== undefined && columns.includes(seq)) {
      // Later inserts draw from the identity sequence: move it past what was loaded.
      await client.query(
        `SELECT setval(pg_get_serial_sequence($1, $2), m) FROM (SELECT MAX(${seq}) AS m FROM ${def.name}) x WHERE m IS NOT NULL`,
        [def.name, seq],
      );
    }
    await client.query("COMMIT");
    return inserted;
  } catch (e) {
    if (isConnectionError(e)) broken = e as Error;
    else await client.query("ROLLBACK").catch((r: Error) => (broken = r));
    throw pgError(e, operation);
  } finally {
    client.release(broken ?? (isBrokenClient(client) ? new Error("connection failed") : undefined));
  }
}
