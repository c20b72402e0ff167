/**
 * The catalog's reads as one SQL text each, which both dialects run.
 *
 * A text is SQL that SQLite and PostgreSQL both accept, with named placeholders rendered per
 * dialect (the catalog stores JSON as text and uses no LIKE, so values are all that differ):
 *
 * | placeholder         | SQLite                                   | PostgreSQL               |
 * |---------------------|------------------------------------------|--------------------------|
 * | `{name}`            | `?`                                      | `$n`                     |
 * | `{name:type}`       | `?`                                      | `$n::type` (row comparisons and arrays, where the type cannot be inferred) |
 * | `IN {name:list}`    | `IN (SELECT value FROM json_each(?))`, bound as JSON text | `= ANY($n::text[])`, bound as an array |
 *
 * A name used twice is bound twice on SQLite and is one `$n` on PostgreSQL. Values are passed
 * by name (`bind`), so the order of the placeholders is the text's business only.
 *
 * Queries whose text is one dialect's own (the outbox in commit order, the usage fold, the
 * prunes) live in that dialect's folder, written the same way.
 */
import type { Dialect } from "./dsl.js";
import { HOLDS_DATA_SQL } from "./dump.js";
import {
  AUDIT_COLUMNS,
  BLOB_REF_COLUMNS,
  CHAT_MESSAGE_READ_COLUMNS,
  type DbRow,
  FIRST_VERSION_COLUMNS,
  MESSAGE_COLUMNS,
  MESSAGE_READ_COLUMNS,
  MESSAGE_VERSION_COLUMNS,
  OBJECT_COLUMNS,
  OUTBOX_COLUMNS,
} from "./rows.js";

export type QueryParams = Readonly<Record<string, unknown>>;

/** One dialect's text of a query, and how to turn named values into its positional ones. */
export interface RenderedQuery {
  readonly sql: string;
  bind(params: QueryParams): unknown[];
}

/** A query written once; `R` is the shape of its rows. */
export interface Query<R = DbRow> {
  readonly text: string;
  /** Rows come back as arrays of column values in select order (better-sqlite3 raw mode, pg `rowMode: "array"`). */
  readonly arrays: boolean;
  readonly sqlite: RenderedQuery;
  readonly postgres: RenderedQuery;
  /** Phantom: the row type. */
  readonly _row?: R;
}

const PLACEHOLDER = /(\bIN )?\{([A-Za-z_][A-Za-z0-9_]*)(?::([A-Za-z0-9_[\]]+))?\}/g;

function render(text: string, dialect: Dialect): RenderedQuery {
  const names: string[] = [];
  const lists: boolean[] = [];
  const sql = text.replace(PLACEHOLDER, (_, inList: string | undefined, name: string, type?: string) => {
    const list = type === "list";
    if (list !== (inList !== undefined)) throw new Error(`query: a list is written IN {${name}:list}`);
    let at = names.indexOf(name);
    if (dialect === "sqlite" || at < 0) {
      names.push(name);
      lists.push(list);
      at = names.length - 1;
    }
    if (dialect === "sqlite") return list ? "IN (SELECT value FROM json_each(?))" : "?";
    const n = `$${at + 1}`;
    if (list) return `= ANY(${n}::text[])`;
    return type === undefined ? n : `${n}::${type}`;
  });
  const anyList = lists.includes(true);
  const listValue =
    dialect === "sqlite" ? (v: unknown) => JSON.stringify(v) : (v: unknown) => [...(v as readonly unknown[])];
  return Object.freeze({
    sql,
    bind: anyList
      ? (params: QueryParams) => names.map((n, i) => (lists[i] ? listValue(params[n]) : params[n]))
      : (params: QueryParams) => names.map((n) => params[n]),
  });
}

function make<R>(text: string, arrays: boolean): Query<R> {
  return Object.freeze({ text, arrays, sqlite: render(text, "sqlite"), postgres: render(text, "postgres") });
}

/** A query whose rows are objects keyed by column name. */
export function query(text: string): Query<DbRow> {
  return make<DbRow>(text, false);
}

/** A query whose rows are arrays of the selected columns' values, in order. */
export function arrayQuery(text: string): Query<readonly unknown[]> {
  return make<readonly unknown[]>(text, true);
}

/** The query of each shape `build` is asked for, built once. */
function byShape<R>(build: (shape: number) => Query<R>): (shape: number) => Query<R> {
  const made = new Map<number, Query<R>>();
  return (shape) => {
    let q = made.get(shape);
    if (!q) {
      q = build(shape);
      made.set(shape, q);
    }
    return q;
  };
}

const COLS = (cols: readonly string[]) => cols.join(", ");
const MESSAGES = `SELECT ${COLS(MESSAGE_COLUMNS)} FROM messages`;
/** Reads of one tenant's messages: arrays in the order `messageFromValues` maps. */
const TENANT_MESSAGES = `SELECT ${COLS(MESSAGE_READ_COLUMNS)} FROM messages WHERE tenant_id = {tenant}`;

/** A message body's kind of ref: version 1 is the message's, later ones are versions'. */
const BODY_KIND = "CASE WHEN version = 1 THEN 'message' ELSE 'message-version' END AS kind";
/** Whether a ref row holds this row's body (written by earlier releases): then the ref row is the one listed. */
const NO_REF_ROW = (t: string) =>
  `NOT EXISTS (SELECT 1 FROM blob_refs r WHERE r.store_id = ${t}.store_id AND r.blob_key = ${t}.blob_key)`;
/**
 * Every ref, as rows of `blob_refs`' columns: the ref rows (objects), every version row's body,
 * and the message row's body while no version row holds its version (an unedited message;
 * earlier releases also wrote version 1's row on append) — each key once.
 */
const ALL_REFS =
  `(SELECT ${COLS(BLOB_REF_COLUMNS)} FROM blob_refs UNION ALL ` +
  `SELECT store_id, blob_key, tenant_id, size_bytes, checksum, ${BODY_KIND}, created_at FROM message_versions v ` +
  `WHERE ${NO_REF_ROW("v")} UNION ALL ` +
  `SELECT store_id, blob_key, tenant_id, size_bytes, checksum, ${BODY_KIND}, created_at FROM messages m ` +
  "WHERE NOT EXISTS (SELECT 1 FROM message_versions x WHERE x.tenant_id = m.tenant_id " +
  `AND x.message_id = m.id AND x.version = m.version) AND ${NO_REF_ROW("m")}) refs`;

// --- shapes: which optional clauses a query has --------------------------------------------

export const HISTORY_DESC = 1;
export const HISTORY_DELETED = 2;
export const HISTORY_SINCE = 4;
export const HISTORY_UNTIL = 8;
export const HISTORY_AFTER = 16;
export const AFTER = 1;
export const BELOW = 2;
export const AUDIT_TENANT = 1;
export const AUDIT_ACTION = 2;
export const AUDIT_SINCE = 4;
export const AUDIT_UNTIL = 8;
export const AUDIT_AFTER = 16;

// --- the reads -----------------------------------------------------------------------------

export const Q = {
  schemaVersion: query("SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations"),
  recordMigration: query(
    "INSERT INTO schema_migrations (version, name, applied_at) VALUES ({version}, {name}, {at})",
  ),
  ping: query("SELECT 1"),

  message: arrayQuery(`${TENANT_MESSAGES} AND id = {id}`),
  messages: arrayQuery(`${TENANT_MESSAGES} AND id IN {ids:list}`),
  messageByIdempotencyKey: arrayQuery(`${TENANT_MESSAGES} AND idempotency_key = {key}`),
  /** A page of one chat's history: `HISTORY_*` flags. */
  history: byShape((shape) => {
    const desc = (shape & HISTORY_DESC) !== 0;
    const where = ["tenant_id = {tenant}", "chat_id = {chat}"];
    if (!(shape & HISTORY_DELETED)) where.push("deleted_at IS NULL");
    if (shape & HISTORY_SINCE) where.push("created_at >= {since}");
    if (shape & HISTORY_UNTIL) where.push("created_at < {until}");
    if (shape & HISTORY_AFTER)
      where.push(`(created_at, id) ${desc ? "<" : ">"} ({after_at:bigint}, {after_id:text})`);
    const dir = desc ? "DESC" : "ASC";
    return arrayQuery(
      `SELECT ${COLS(CHAT_MESSAGE_READ_COLUMNS)} FROM messages WHERE ${where.join(" AND ")} ` +
        `ORDER BY created_at ${dir}, id ${dir} LIMIT {limit}`,
    );
  }),
  countMessages: query("SELECT COUNT(*) AS n FROM messages WHERE tenant_id = {tenant} AND chat_id = {chat}"),
  countLiveMessages: query(
    "SELECT COUNT(*) AS n FROM messages WHERE tenant_id = {tenant} AND chat_id = {chat} AND deleted_at IS NULL",
  ),
  /**
   * Every version: those in message_versions, and version 1 from the message row itself while
   * it has none there (an unedited message: its first edit records version 1 in the table).
   */
  messageVersions: query(
    `SELECT ${COLS(MESSAGE_VERSION_COLUMNS)} FROM message_versions ` +
      "WHERE tenant_id = {tenant} AND message_id = {id} UNION ALL " +
      `SELECT ${COLS(FIRST_VERSION_COLUMNS)} FROM messages m WHERE m.tenant_id = {tenant} AND m.id = {id} ` +
      "AND m.version = 1 AND NOT EXISTS (SELECT 1 FROM message_versions v " +
      "WHERE v.tenant_id = {tenant} AND v.message_id = {id} AND v.version = 1) ORDER BY version",
  ),
  chat: query("SELECT * FROM chats WHERE tenant_id = {tenant} AND chat_id = {chat}"),
  chats: query(
    "SELECT * FROM chats WHERE tenant_id = {tenant} AND chat_id > {after} ORDER BY chat_id LIMIT {limit}",
  ),

  object: query(`SELECT ${COLS(OBJECT_COLUMNS)} FROM objects WHERE tenant_id = {tenant} AND key = {key}`),
  /** Keys from `{prefix}`, with `AFTER` past `{after}`, with `BELOW` under `{upper}`. */
  objects: byShape((shape) => {
    const where = ["tenant_id = {tenant}", "key >= {prefix}"];
    if (shape & AFTER) where.push("key > {after}");
    if (shape & BELOW) where.push("key < {upper}");
    return query(
      `SELECT ${COLS(OBJECT_COLUMNS)} FROM objects WHERE ${where.join(" AND ")} ORDER BY key LIMIT {limit}`,
    );
  }),
  /**
   * Which of `{keys}` have a ref: a ref row, or a message or version row found by primary key
   * from the tenants and message ids the keys name (`{tenants}`, `{ids}`) whose body is the key.
   */
  existingBlobRefs: query(
    "SELECT blob_key FROM blob_refs WHERE store_id = {store} AND blob_key IN {keys:list} UNION " +
      "SELECT blob_key FROM messages WHERE tenant_id IN {tenants:list} AND id IN {ids:list} " +
      "AND store_id = {store} AND blob_key IN {keys:list} UNION " +
      "SELECT blob_key FROM message_versions WHERE tenant_id IN {tenants:list} AND message_id IN {ids:list} " +
      "AND store_id = {store} AND blob_key IN {keys:list}",
  ),
  /**
   * A store's refs in three parts, each read in its own primary-key order so a page costs its
   * size, not the table's (`AFTER` past the cursor's position in that part): the ref rows, the
   * version rows' bodies, then the bodies of messages no version row holds.
   */
  blobRefRows: byShape((shape) =>
    query(
      `SELECT ${COLS(BLOB_REF_COLUMNS)} FROM blob_refs WHERE store_id = {store}` +
        `${shape & AFTER ? " AND blob_key > {after}" : ""} ORDER BY blob_key LIMIT {limit}`,
    ),
  ),
  blobRefVersions: byShape((shape) =>
    query(
      `SELECT store_id, blob_key, tenant_id, size_bytes, checksum, ${BODY_KIND}, created_at, message_id AS pos_id, ` +
        `version AS pos_version FROM message_versions v WHERE store_id = {store} AND ${NO_REF_ROW("v")}` +
        `${shape & AFTER ? " AND (tenant_id, message_id, version) > ({after_tenant:text}, {after_id:text}, {after_version:int})" : ""} ` +
        "ORDER BY tenant_id, message_id, version LIMIT {limit}",
    ),
  ),
  blobRefMessages: byShape((shape) =>
    query(
      `SELECT store_id, blob_key, tenant_id, size_bytes, checksum, ${BODY_KIND}, created_at, id AS pos_id ` +
        "FROM messages m WHERE store_id = {store} AND NOT EXISTS (SELECT 1 FROM message_versions x " +
        `WHERE x.tenant_id = m.tenant_id AND x.message_id = m.id AND x.version = m.version) AND ${NO_REF_ROW("m")}` +
        `${shape & AFTER ? " AND (tenant_id, id) > ({after_tenant:text}, {after_id:text})" : ""} ` +
        "ORDER BY tenant_id, id LIMIT {limit}",
    ),
  ),

  deletedBefore: query(
    `${MESSAGES} WHERE deleted_at IS NOT NULL AND deleted_at < {before} ` +
      "ORDER BY deleted_at, tenant_id, id LIMIT {limit}",
  ),
  tenantDeletedBefore: query(
    `${MESSAGES} WHERE tenant_id = {tenant} AND deleted_at IS NOT NULL AND deleted_at < {before} ` +
      "ORDER BY deleted_at, id LIMIT {limit}",
  ),
  expired: query(
    `${MESSAGES} WHERE expires_at IS NOT NULL AND expires_at < {now} ORDER BY expires_at, tenant_id, id LIMIT {limit}`,
  ),
  /** Every message's key: `HISTORY_DELETED` includes deleted ones, `AFTER` starts past a key. */
  messageKeys: byShape((shape) => {
    const where = [shape & HISTORY_DELETED ? "true" : "deleted_at IS NULL"];
    if (shape & AFTER) where.push("(tenant_id, id) > ({after_tenant:text}, {after_id:text})");
    return query(
      `SELECT tenant_id, id FROM messages WHERE ${where.join(" AND ")} ORDER BY tenant_id, id LIMIT {limit}`,
    );
  }),

  changes: query(
    `SELECT tenant_seq, ${COLS(OUTBOX_COLUMNS)} FROM outbox WHERE tenant_id = {tenant} AND tenant_seq > {after} ` +
      "ORDER BY tenant_seq LIMIT {limit}",
  ),
  /** A tenant's last pruned feed position (see `Catalog.changesHorizon`). */
  changesHorizon: query(
    "SELECT COALESCE((SELECT MIN(tenant_seq) FROM outbox WHERE tenant_id = {tenant}) - 1, " +
      "(SELECT feed_seq FROM tenants WHERE tenant_id = {tenant}), 0) AS h",
  ),
  consumers: query("SELECT consumer, cursor FROM outbox_consumers"),
  consumerCursor: query("SELECT cursor FROM outbox_consumers WHERE consumer = {consumer}"),
  setConsumerCursor: query(
    "INSERT INTO outbox_consumers (consumer, cursor) VALUES ({consumer}, {cursor}) " +
      "ON CONFLICT (consumer) DO UPDATE SET cursor = excluded.cursor",
  ),
  deleteConsumerCursor: query("DELETE FROM outbox_consumers WHERE consumer = {consumer}"),

  audit: query(
    `SELECT ${COLS(AUDIT_COLUMNS)} FROM audit_log WHERE tenant_id = {tenant} AND at >= {since} ORDER BY at, seq LIMIT {limit}`,
  ),
  /** The log across tenants in `seq` order: `AUDIT_*` flags say which filters apply. */
  auditEntries: byShape((shape) => {
    const where = ["true"];
    if (shape & AUDIT_TENANT) where.push("tenant_id = {tenant}");
    if (shape & AUDIT_ACTION) where.push("action = {action}");
    if (shape & AUDIT_SINCE) where.push("at >= {since}");
    if (shape & AUDIT_UNTIL) where.push("at < {until}");
    if (shape & AUDIT_AFTER) where.push("seq > {after}");
    return query(
      `SELECT seq, ${COLS(AUDIT_COLUMNS)} FROM audit_log WHERE ${where.join(" AND ")} ORDER BY seq LIMIT {limit}`,
    );
  }),
  bodyStats: query(
    "SELECT tenant_id, kind, COUNT(*) AS bodies, CAST(COALESCE(SUM(size_bytes), 0) AS BIGINT) AS bytes " +
      `FROM ${ALL_REFS} GROUP BY tenant_id, kind ORDER BY tenant_id, kind`,
  ),
  /**
   * Bodies per tenant, kind, age and size bucket; the shape is `64 × created bounds + size
   * bounds` (`{c0}`, … and `{s0}`, …; no bounds, bucket 0).
   */
  bodyBuckets: byShape((shape) => {
    const bucket = (n: number, column: string, p: string) =>
      n === 0
        ? "0"
        : `CASE ${Array.from({ length: n }, (_, i) => `WHEN ${column} < {${p}${i}:bigint} THEN ${i}`).join(" ")} ELSE ${n} END`;
    return query(
      `SELECT tenant_id, kind, ${bucket(Math.floor(shape / 64), "created_at", "c")} AS created, ` +
        `${bucket(shape % 64, "size_bytes", "s")} AS size, COUNT(*) AS bodies, ` +
        `CAST(COALESCE(SUM(size_bytes), 0) AS BIGINT) AS bytes FROM ${ALL_REFS} GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4`,
    );
  }),
  /** Live messages per tenant and size bucket; the shape is the number of bounds (`{b0}`, `{b1}`, …). */
  messageSizes: byShape((bounds) => {
    const cases = Array.from({ length: bounds }, (_, i) => `WHEN size_bytes < {b${i}:bigint} THEN ${i}`);
    return query(
      `SELECT tenant_id, CASE ${cases.join(" ")} ELSE ${bounds} END AS bucket, COUNT(*) AS n ` +
        "FROM messages WHERE deleted_at IS NULL GROUP BY 1, 2 ORDER BY 1, 2",
    );
  }),
  /** One statement, one snapshot: a concurrent fold is seen entirely or not at all. */
  usage: query(
    "SELECT CAST(COALESCE(u.bytes, 0) + COALESCE(d.bytes, 0) AS BIGINT) AS bytes, " +
      "CAST(COALESCE(u.objects, 0) + COALESCE(d.objects, 0) AS BIGINT) AS objects, " +
      "CAST(COALESCE(u.messages, 0) + COALESCE(d.messages, 0) AS BIGINT) AS messages " +
      "FROM (SELECT SUM(bytes) AS bytes, SUM(objects) AS objects, SUM(messages) AS messages " +
      "FROM usage_deltas WHERE tenant_id = {tenant}) d LEFT JOIN usage u ON u.tenant_id = {tenant}",
  ),
  /** Recorded usage beside the stored sums, per tenant, in one statement (one snapshot). */
  usageCheck: query(
    `WITH refs AS (SELECT tenant_id, COUNT(*) AS objects, SUM(size_bytes) AS bytes FROM ${ALL_REFS} GROUP BY tenant_id), ` +
      "msgs AS (SELECT tenant_id, COUNT(*) AS messages FROM messages GROUP BY tenant_id), " +
      "rec AS (SELECT tenant_id, SUM(bytes) AS bytes, SUM(objects) AS objects, SUM(messages) AS messages FROM " +
      "(SELECT tenant_id, bytes, objects, messages FROM usage UNION ALL " +
      "SELECT tenant_id, bytes, objects, messages FROM usage_deltas) x GROUP BY tenant_id), " +
      "ids AS (SELECT tenant_id FROM refs UNION SELECT tenant_id FROM msgs UNION SELECT tenant_id FROM rec) " +
      "SELECT ids.tenant_id, CAST(COALESCE(rec.bytes, 0) AS BIGINT) AS recorded_bytes, " +
      "CAST(COALESCE(rec.objects, 0) AS BIGINT) AS recorded_objects, " +
      "CAST(COALESCE(rec.messages, 0) AS BIGINT) AS recorded_messages, " +
      "CAST(COALESCE(refs.bytes, 0) AS BIGINT) AS stored_bytes, " +
      "CAST(COALESCE(refs.objects, 0) AS BIGINT) AS stored_objects, " +
      "CAST(COALESCE(msgs.messages, 0) AS BIGINT) AS stored_messages " +
      "FROM ids LEFT JOIN rec ON rec.tenant_id = ids.tenant_id LEFT JOIN refs ON refs.tenant_id = ids.tenant_id " +
      "LEFT JOIN msgs ON msgs.tenant_id = ids.tenant_id ORDER BY ids.tenant_id",
  ),
  // Taking and releasing leases: `leases.ts` (fencing tokens).
  leaseOwner: query("SELECT owner FROM leases WHERE name = {name} AND expires_at > {now}"),
  holdsData: query(HOLDS_DATA_SQL),
} as const;
