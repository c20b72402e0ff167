/**
 * The commit-safe outbox on PostgreSQL.
 *
 * `seq` (an identity) is taken at INSERT time, so a transaction that started earlier can commit
 * later with smaller seqs: a reader paging by seq would skip them. Every row therefore records
 * the id of the transaction that wrote it (`txid xid8 DEFAULT pg_current_xact_id()`), and a
 * reader only takes rows of transactions older than the oldest one still running
 * (`txid < pg_snapshot_xmin(pg_current_snapshot())`), in `(txid, seq)` order. Every transaction
 * below that horizon has finished, so no row can ever appear behind a cursor already handed
 * out: events of transactions in flight (and of every transaction after them) are held back
 * until they finish. The price: one long-running writing transaction delays delivery (never
 * loses it).
 *
 * The cursor is `<txid>.<seq>` of the last row read.
 */
import { invalidCursor } from "../common.js";
import { OUTBOX_COLUMNS } from "../rows.js";

export interface OutboxPosition {
  /** xid8 as decimal text (it can exceed 2^53). */
  txid: string;
  seq: number;
}

const CURSOR = /^(0|[1-9][0-9]{0,19})\.(0|[1-9][0-9]{0,15})$/;

export function encodeCursor(txid: string, seq: number): string {
  return `${txid}.${seq}`;
}

export function decodeCursor(cursor: string | undefined, operation: string): OutboxPosition {
  if (cursor === undefined) return { txid: "0", seq: 0 };
  const m = CURSOR.exec(cursor);
  if (!m || BigInt(m[1] as string) >= 2n ** 64n) throw invalidCursor(cursor, operation);
  return { txid: m[1] as string, seq: Number(m[2]) };
}

// The text copy of txid must not be named `txid`: ORDER BY would sort by it, as text.
export const READ_OUTBOX_SQL =
  `SELECT seq, txid::text AS txid_text, ${OUTBOX_COLUMNS.join(", ")} FROM outbox ` +
  "WHERE (txid, seq) > ($1::xid8, $2::bigint) AND txid < pg_snapshot_xmin(pg_current_snapshot()) " +
  "ORDER BY txid, seq LIMIT $3";

/** Everything after the cursor, delivered or still held back. */
export const OUTBOX_LAG_SQL = "SELECT COUNT(*) AS n FROM outbox WHERE (txid, seq) > ($1::xid8, $2::bigint)";
