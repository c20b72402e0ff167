/**
 * The commit-safe outbox on PostgreSQL (and the usage fold: the queries only this dialect runs).
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
import { query } from "../queries.js";
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
export const READ_OUTBOX = query(
  `SELECT seq, txid::text AS txid_text, ${OUTBOX_COLUMNS.join(", ")} FROM outbox ` +
    "WHERE (txid, seq) > ({txid:xid8}, {seq:bigint}) AND txid < pg_snapshot_xmin(pg_current_snapshot()) " +
    "ORDER BY txid, seq LIMIT {limit}",
);

/** Everything after the cursor, delivered or still held back. */
export const OUTBOX_LAG = query(
  "SELECT COUNT(*) AS n FROM outbox WHERE (txid, seq) > ({txid:xid8}, {seq:bigint})",
);

/** Compare two positions in commit order (txid as a number, then seq). */
export function comparePositions(a: OutboxPosition, b: OutboxPosition): number {
  const ta = BigInt(a.txid);
  const tb = BigInt(b.txid);
  if (ta !== tb) return ta < tb ? -1 : 1;
  return a.seq - b.seq;
}

/** The last commit-safe row: what a reader starting now could be handed last. */
export const OUTBOX_HEAD = query(
  "SELECT txid::text AS txid_text, seq FROM outbox WHERE txid < pg_snapshot_xmin(pg_current_snapshot()) " +
    "ORDER BY txid DESC, seq DESC LIMIT 1",
);

/** The oldest running transaction: every one below it has finished, committed or not. */
export const HORIZON = query("SELECT pg_snapshot_xmin(pg_current_snapshot())::text AS xmin");

/**
 * The first row before `{txid}.{seq}` (exclusive) created after `{before}`: the retained tail
 * starts there. Walks the `(txid, seq)` index from the oldest row, so it reads little more than
 * it prunes.
 */
export const FIRST_YOUNG = query(
  "SELECT txid::text AS txid_text, seq FROM outbox WHERE (txid, seq) < ({txid:xid8}, {seq:bigint}) " +
    "AND created_at > {before} ORDER BY txid, seq LIMIT 1",
);

/**
 * Per tenant, the feed positions of the rows before `{txid}.{seq}` (the prunable ones: passed by
 * every consumer, older than the tail, of finished transactions), and the first position of the
 * tenant that is NOT prunable. Commit order (`txid, seq`) and a tenant's feed order can differ
 * for transactions that overlapped, so a prunable row may follow one that is not: only the
 * positions below that one can go, or the feed would lose an event from its middle.
 */
export const PRUNE_PLAN = query(
  "WITH c AS (SELECT tenant_id, MIN(tenant_seq) AS lo, MAX(tenant_seq) AS hi FROM outbox " +
    "WHERE (txid, seq) < ({txid:xid8}, {seq:bigint}) AND tenant_seq IS NOT NULL GROUP BY tenant_id) " +
    "SELECT c.tenant_id, c.lo, c.hi, (SELECT MIN(b.tenant_seq) FROM outbox b WHERE b.tenant_id = c.tenant_id " +
    "AND b.tenant_seq <= c.hi AND (b.txid, b.seq) >= ({txid:xid8}, {seq:bigint})) AS blocker FROM c",
);

/** Delete feed ranges `[lo, hi]` of tenants, only rows before `{txid}.{seq}` (as planned). */
export const PRUNE_DELETE = query(
  "DELETE FROM outbox o USING unnest({tenants:text[]}, {los:bigint[]}, {his:bigint[]}) AS r(t, lo, hi) " +
    "WHERE o.tenant_id = r.t AND o.tenant_seq BETWEEN r.lo AND r.hi AND (o.txid, o.seq) < ({txid:xid8}, {seq:bigint})",
);

/** One statement: the deltas it deletes are exactly the ones it adds to the totals. */
export const FOLD_USAGE = query(
  "WITH moved AS (DELETE FROM usage_deltas RETURNING tenant_id, bytes, objects, messages), " +
    "sums AS (SELECT tenant_id, SUM(bytes)::bigint AS bytes, SUM(objects)::bigint AS objects, " +
    "SUM(messages)::bigint AS messages FROM moved GROUP BY tenant_id), " +
    "upserted AS (INSERT INTO usage (tenant_id, bytes, objects, messages) SELECT * FROM sums ORDER BY tenant_id " +
    "ON CONFLICT (tenant_id) DO UPDATE SET bytes = usage.bytes + excluded.bytes, " +
    "objects = usage.objects + excluded.objects, messages = usage.messages + excluded.messages RETURNING 1) " +
    "SELECT COUNT(*) AS n FROM moved",
);
