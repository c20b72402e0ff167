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

/** Compare two positions in commit order (txid as a number, then seq). */
export function comparePositions(a: OutboxPosition, b: OutboxPosition): number {
  const ta = BigInt(a.txid);
  const tb = BigInt(b.txid);
  if (ta !== tb) return ta < tb ? -1 : 1;
  return a.seq - b.seq;
}

/** The last commit-safe row: what a reader starting now could be handed last. */
export const OUTBOX_HEAD_SQL =
  "SELECT txid::text AS txid_text, seq FROM outbox WHERE txid < pg_snapshot_xmin(pg_current_snapshot()) " +
  "ORDER BY txid DESC, seq DESC LIMIT 1";

/** The oldest running transaction: every one below it has finished, committed or not. */
export const HORIZON_SQL = "SELECT pg_snapshot_xmin(pg_current_snapshot())::text AS xmin";

/**
 * The first row before `$1.$2` (exclusive) created after `$3`: the retained tail starts there.
 * Walks the `(txid, seq)` index from the oldest row, so it reads little more than it prunes.
 */
export const FIRST_YOUNG_SQL =
  "SELECT txid::text AS txid_text, seq FROM outbox WHERE (txid, seq) < ($1::xid8, $2::bigint) " +
  "AND created_at > $3 ORDER BY txid, seq LIMIT 1";

/**
 * Per tenant, the feed positions of the rows before `$1.$2` (the prunable ones: passed by every
 * consumer, older than the tail, of finished transactions), and the first position of the
 * tenant that is NOT prunable. Commit order (`txid, seq`) and a tenant's feed order can differ
 * for transactions that overlapped, so a prunable row may follow one that is not: only the
 * positions below that one can go, or the feed would lose an event from its middle.
 */
export const PRUNE_PLAN_SQL =
  "WITH c AS (SELECT tenant_id, MIN(tenant_seq) AS lo, MAX(tenant_seq) AS hi FROM outbox " +
  "WHERE (txid, seq) < ($1::xid8, $2::bigint) AND tenant_seq IS NOT NULL GROUP BY tenant_id) " +
  "SELECT c.tenant_id, c.lo, c.hi, (SELECT MIN(b.tenant_seq) FROM outbox b WHERE b.tenant_id = c.tenant_id " +
  "AND b.tenant_seq <= c.hi AND (b.txid, b.seq) >= ($1::xid8, $2::bigint)) AS blocker FROM c";

/** Delete feed ranges `[lo, hi]` of tenants, only rows before `$4.$5` (as planned). */
export const PRUNE_DELETE_SQL =
  "DELETE FROM outbox o USING unnest($1::text[], $2::bigint[], $3::bigint[]) AS r(t, lo, hi) " +
  "WHERE o.tenant_id = r.t AND o.tenant_seq BETWEEN r.lo AND r.hi AND (o.txid, o.seq) < ($4::xid8, $5::bigint)";

/** A tenant's last pruned feed position (see `Catalog.changesHorizon`). */
export const CHANGES_HORIZON_SQL =
  "SELECT COALESCE((SELECT MIN(tenant_seq) FROM outbox WHERE tenant_id = $1) - 1, " +
  "(SELECT feed_seq FROM tenants WHERE tenant_id = $1), 0) AS h";
