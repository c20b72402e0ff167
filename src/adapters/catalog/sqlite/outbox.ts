/**
 * The outbox on SQLite, and the usage fold: the queries only this dialect runs.
 *
 * One writer, so `seq` (AUTOINCREMENT) is commit order and the cursor is simply the last `seq`
 * read, in decimal.
 */
import { invalidCursor } from "../common.js";
import { query } from "../queries.js";
import { OUTBOX_COLUMNS } from "../rows.js";

export function decodeCursor(cursor: string | undefined, operation: string): number {
  if (cursor === undefined) return 0;
  if (!/^(0|[1-9][0-9]{0,15})$/.test(cursor)) throw invalidCursor(cursor, operation);
  return Number(cursor);
}

export const READ_OUTBOX = query(
  `SELECT seq, ${OUTBOX_COLUMNS.join(", ")} FROM outbox WHERE seq > {after} ORDER BY seq LIMIT {limit}`,
);

export const OUTBOX_LAG = query("SELECT COUNT(*) AS n FROM outbox WHERE seq > {after}");

/** An empty outbox (all pruned) still has a head: AUTOINCREMENT never reissues a seq. */
export const OUTBOX_HEAD = query(
  "SELECT COALESCE((SELECT MAX(seq) FROM outbox), " +
    "(SELECT seq FROM sqlite_sequence WHERE name = 'outbox')) AS s",
);

/** The first event below `{bound}` created after `{before}`: the retained tail starts there. */
export const FIRST_YOUNG = query(
  "SELECT seq FROM outbox WHERE seq < {bound} AND created_at > {before} ORDER BY seq LIMIT 1",
);

/** One chunk of a prune: the oldest `{limit}` events below `{upper}`. */
export const PRUNE_DELETE = query(
  "DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox WHERE seq < {upper} ORDER BY seq LIMIT {limit})",
);

export const USAGE_TOP = query("SELECT MAX(seq) AS top FROM usage_deltas");

/** Deltas up to `{top}` added to the totals; `DELETE_DELTAS` then drops them, in one transaction. */
export const FOLD_DELTAS = query(
  "INSERT INTO usage (tenant_id, bytes, objects, messages) " +
    "SELECT tenant_id, SUM(bytes), SUM(objects), SUM(messages) FROM usage_deltas WHERE seq <= {top} GROUP BY tenant_id " +
    "ON CONFLICT (tenant_id) DO UPDATE SET bytes = bytes + excluded.bytes, " +
    "objects = objects + excluded.objects, messages = messages + excluded.messages",
);

export const DELETE_DELTAS = query("DELETE FROM usage_deltas WHERE seq <= {top}");
