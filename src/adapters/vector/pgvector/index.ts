/**
 * The `pgvector` vector index: one table per collection in a PostgreSQL database with the
 * `vector` extension, an HNSW index per metric, tenant and filter columns beside the vector.
 *
 * It speaks to the database through {@link SqlClient} — the shape of PGlite (in-process
 * PostgreSQL + pgvector compiled to WASM, which the tests use) — so the same code serves a PGlite
 * database or a wrapped `pg` pool. It is a separate index fed like the others; it does not join
 * the catalog's transactions.
 *
 * Distances are converted to the port's convention: `<->` (Euclidean) is squared, `<=>` is
 * already 1 − cos, `<#>` (−a·b) becomes 1 − a·b. Modes set `hnsw.ef_search` (`fast` 40,
 * `balanced` 200) inside the query's transaction, with pgvector's iterative scan
 * (`hnsw.iterative_scan = relaxed_order`) so tenant and filter conditions still yield k rows;
 * `accurate` disables index scans, so PostgreSQL compares every row (exact). If an approximate
 * query still returns fewer than k rows, it is repeated exactly. PostgreSQL's planner decides
 * per query whether the HNSW index or an exact scan of the tenant's rows is cheaper (a tenant
 * with few rows is searched exactly); upserts of 1,000+ rows refresh the table's statistics.
 */
import { createHash } from "node:crypto";
import { z } from "zod";
import { KuraError } from "../../../core/errors.js";
import { withLifecycle } from "../../../core/lifecycle.js";
import { parseOptions } from "../../../core/options.js";
import { checkVector } from "../../../core/vectors.js";
import type {
  VectorCapabilities,
  VectorHit,
  VectorIndex,
  VectorIndexDefinition,
  VectorIndexOptions,
  VectorIndexPlace,
  VectorItem,
  VectorMetric,
  VectorMode,
  VectorQuery,
} from "../../../ports/vector-index.js";
import { pgTimeoutError, pgTimeoutOptions } from "../../pg-timeouts.js";
import {
  checkPlace,
  checkQuery,
  checkScanLimit,
  filterFields,
  modeOption,
  OPTIONS_PATH,
  parseScanCursor,
} from "../common.js";
import type { PgSqlClient } from "./pg-client.js";

export interface SqlRunner {
  query<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<{ rows: T[] }>;
}

export interface SqlClient extends SqlRunner {
  transaction<T>(fn: (tx: SqlRunner) => Promise<T>): Promise<T>;
}

export interface PgvectorOptions extends VectorIndexOptions {
  sql: SqlClient;
  /** Table name: `[a-z_][a-z0-9_]{0,62}`. */
  table: string;
  /** Schema of the table (created if missing); default the connection's search path. */
  schema?: string;
}

const OPS: Record<VectorMetric, { op: string; opclass: string; toPort: (d: string) => string }> = {
  l2: { op: "<->", opclass: "vector_l2_ops", toPort: (d) => `(${d}) * (${d})` },
  cosine: { op: "<=>", opclass: "vector_cosine_ops", toPort: (d) => d },
  ip: { op: "<#>", opclass: "vector_ip_ops", toPort: (d) => `1 + (${d})` },
};
const EF: Record<Exclude<VectorMode, "accurate">, number> = { fast: 40, balanced: 200 };
const TABLE = /^[a-z_][a-z0-9_]{0,62}$/;

const literal = (v: Float32Array) => `[${Array.from(v).join(",")}]`;

function unavailable(cause: unknown, operation: string): KuraError {
  if (cause instanceof KuraError) return cause;
  const timedOut = pgTimeoutError(cause, operation);
  if (timedOut) return timedOut;
  return new KuraError(
    "VECTOR_UNAVAILABLE",
    `the pgvector index failed: ${String((cause as Error)?.message ?? cause)}`,
    {
      operation,
      cause,
    },
  );
}

export async function openPgvectorIndex(options: PgvectorOptions): Promise<VectorIndex> {
  const { sql, dimensions, metric } = options;
  const defaultMode = options.mode ?? "balanced";
  const name = options.table;
  if (!TABLE.test(name) || (options.schema !== undefined && !TABLE.test(options.schema)))
    throw new KuraError("INVALID_ARGUMENT", `invalid pgvector table name: ${options.schema ?? ""}.${name}`, {
      operation: "vector.open",
    });
  const table = options.schema === undefined ? name : `${options.schema}.${name}`;
  const { op, opclass, toPort } = OPS[metric];
  try {
    await sql.query("create extension if not exists vector");
    if (options.schema !== undefined) await sql.query(`create schema if not exists ${options.schema}`);
    await sql.query(
      `create table if not exists ${table} (
        tenant_id text not null, id text not null, embedding vector(${dimensions}) not null,
        user_id text, chat_id text, category text, primary key (tenant_id, id))`,
    );
    await sql.query(`create index if not exists ${name}_hnsw on ${table} using hnsw (embedding ${opclass})`);
    const found = await sql.query<{ t: string }>(
      "select format_type(atttypid, atttypmod) as t from pg_attribute where attrelid = $1::regclass and attname = 'embedding'",
      [table],
    );
    const type = found.rows[0]?.t;
    if (type !== `vector(${dimensions})`)
      throw new KuraError(
        "VECTOR_INDEX_CONFIG_CHANGED",
        `table ${table} holds ${type ?? "no"} embeddings; the configuration asks for vector(${dimensions})`,
        { operation: "vector.open" },
      );
  } catch (e) {
    throw unavailable(e, "vector.open");
  }

  const search = async (query: VectorQuery, q: Float32Array, mode: VectorMode): Promise<VectorHit[]> => {
    const params: unknown[] = [literal(q), query.tenantId];
    let where = "tenant_id = $2";
    for (const [column, value] of [
      ["user_id", query.filter?.userId],
      ["chat_id", query.filter?.chatId],
      ["category", query.filter?.category],
    ] as const) {
      if (value === undefined) continue;
      params.push(value);
      where += ` and ${column} = $${params.length}`;
    }
    params.push(query.k);
    const distance = `embedding ${op} $1::vector`;
    const text = `select id, user_id, chat_id, category, ${toPort(distance)} as distance
      from ${table} where ${where} order by ${distance} limit $${params.length}`;
    const rows = await sql.transaction(async (tx) => {
      if (mode === "accurate") {
        await tx.query("set local enable_indexscan = off");
      } else {
        await tx.query(`set local hnsw.ef_search = ${EF[mode]}`);
        await tx.query("set local hnsw.iterative_scan = relaxed_order");
      }
      return (
        await tx.query<{
          id: string;
          user_id: string | null;
          chat_id: string | null;
          category: string | null;
          distance: number;
        }>(text, params)
      ).rows;
    });
    const hits = rows.map((r) => ({
      id: r.id,
      distance: Number(r.distance),
      ...filterFields({
        ...(r.user_id === null ? {} : { userId: r.user_id }),
        ...(r.chat_id === null ? {} : { chatId: r.chat_id }),
        ...(r.category === null ? {} : { category: r.category }),
      }),
    }));
    // relaxed_order may return rows slightly out of order: the port promises nearest first.
    return hits.sort((a, b) => a.distance - b.distance || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  };

  return withLifecycle(
    {
      backend: "pgvector",
      dimensions,
      metric,
      async upsert(items: readonly VectorItem[]) {
        const checked = items.map((item) => checkVector(item.vector, dimensions, "vector.upsert"));
        if (items.length === 0) return;
        const last = new Map<string, number>();
        for (const [i, item] of items.entries()) last.set(`${item.tenantId}\u0000${item.id}`, i);
        const rows = [...last.values()];
        try {
          for (let start = 0; start < rows.length; start += 500) {
            const params: unknown[] = [];
            const values: string[] = [];
            for (const i of rows.slice(start, start + 500)) {
              const item = items[i] as VectorItem;
              const base = params.length;
              params.push(
                item.tenantId,
                item.id,
                literal(checked[i] as Float32Array),
                item.userId ?? null,
                item.chatId ?? null,
                item.category ?? null,
              );
              values.push(
                `($${base + 1}, $${base + 2}, $${base + 3}::vector, $${base + 4}, $${base + 5}, $${base + 6})`,
              );
            }
            await sql.query(
              `insert into ${table} (tenant_id, id, embedding, user_id, chat_id, category) values ${values.join(", ")}
             on conflict (tenant_id, id) do update set embedding = excluded.embedding,
               user_id = excluded.user_id, chat_id = excluded.chat_id, category = excluded.category`,
              params,
            );
          }
          // Without statistics the planner takes a small table for tiny and sorts the tenant's
          // rows exactly instead of walking the HNSW graph: refresh them after bulk loads.
          if (rows.length >= 1000) await sql.query(`analyze ${table}`);
        } catch (e) {
          throw unavailable(e, "vector.upsert");
        }
      },
      async remove(tenantId: string, ids: readonly string[]) {
        if (ids.length === 0) return;
        try {
          await sql.query(`delete from ${table} where tenant_id = $1 and id = any($2::text[])`, [
            tenantId,
            [...ids],
          ]);
        } catch (e) {
          throw unavailable(e, "vector.remove");
        }
      },
      async query(query: VectorQuery): Promise<VectorHit[]> {
        checkQuery(query, "vector.query");
        const q = checkVector(query.vector, dimensions, "vector.query");
        const mode = query.mode ?? defaultMode;
        try {
          const hits = await search(query, q, mode);
          if (hits.length >= query.k || mode === "accurate") return hits;
          return await search(query, q, "accurate");
        } catch (e) {
          throw unavailable(e, "vector.query");
        }
      },
      async existing(tenantId: string, ids: readonly string[]) {
        if (ids.length === 0) return new Set<string>();
        try {
          const { rows } = await sql.query<{ id: string }>(
            `select id from ${table} where tenant_id = $1 and id = any($2::text[])`,
            [tenantId, [...ids]],
          );
          return new Set(rows.map((r) => r.id));
        } catch (e) {
          throw unavailable(e, "vector.existing");
        }
      },
      async count(tenantId?: string) {
        const { rows } =
          tenantId === undefined
            ? await sql.query<{ n: number }>(`select count(*)::int as n from ${table}`)
            : await sql.query<{ n: number }>(`select count(*)::int as n from ${table} where tenant_id = $1`, [
                tenantId,
              ]);
        return Number(rows[0]?.n ?? 0);
      },
      async save() {},
      async close() {},
      async drop() {
        try {
          await sql.query(`drop table if exists ${table}`);
        } catch (e) {
          throw unavailable(e, "vector.drop");
        }
      },
    },
    "the vector index",
    "vector",
  );
}

/** The options of the `pgvector` definition: the database of its tables and the pool to it. */
export const pgvectorOptionsSchema = z
  .object({
    /** `postgres://user:password@host:port/db?…` — secret (the password). Required. */
    url: z.string().regex(/^postgres(ql)?:\/\//, "must be a postgres:// or postgresql:// URL"),
    /** Schema of the vector tables, created if missing; default the connection's search path. */
    schema: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]{0,62}$/, "must be a plain SQL identifier")
      .nullable()
      .default(null),
    /** Size of the connection pool every index of the configuration shares; default 4. */
    max_connections: z.number().int().min(1).max(10_000).default(4),
    /** `statement_timeout_ms` (default 30000), `lock_timeout_ms` (default 0): server-side, 0 = none. */
    ...pgTimeoutOptions,
    mode: modeOption,
  })
  .strict();
export type PgvectorDefinitionOptions = z.infer<typeof pgvectorOptionsSchema>;

const CAPABILITIES: VectorCapabilities = Object.freeze({
  shared: true,
  persistent: true,
  quantization: false,
  remote: true,
});

/**
 * The table of a place: `kura_vectors_<name>` for Kura's own indexes, `kura_vc_<hash of tenant and
 * collection>` for a tenant's collection (any tenant and collection name fits a SQL identifier).
 */
export function pgvectorTable(place: VectorIndexPlace): string {
  return place.tenantId === undefined
    ? `kura_vectors_${place.name.replaceAll("-", "_")}`
    : `kura_vc_${createHash("sha256").update(`${place.tenantId}\u0000${place.name}`).digest("hex").slice(0, 24)}`;
}

/** Indexes of one configuration share one pool, opened on the first `open`. */
export const pgvectorVectorIndex: VectorIndexDefinition<PgvectorDefinitionOptions> = {
  scheme: "pgvector",
  capabilities: CAPABILITIES,
  parseOptions: (raw) => parseOptions(pgvectorOptionsSchema, raw, OPTIONS_PATH),
  create: async (options) => {
    let pool: Promise<PgSqlClient> | undefined;
    const connect = () => {
      pool ??= import("./pg-client.js").then((m) =>
        m.openPgSqlClient({ url: options.url, maxConnections: options.max_connections, timeouts: options }),
      );
      return pool;
    };
    return {
      open: async (place) => {
        checkPlace(place, "vector.open");
        return openPgvectorIndex({
          sql: await connect(),
          table: pgvectorTable(place),
          dimensions: place.dimensions,
          metric: place.metric,
          mode: options.mode,
          ...(options.schema === null ? {} : { schema: options.schema }),
        });
      },
      scan: async (place, o) => {
        checkPlace(place, "vector.scan");
        const limit = checkScanLimit(o.limit);
        const after = parseScanCursor(
          o.after,
          (v): v is [string, string] =>
            v.length === 2 && typeof v[0] === "string" && typeof v[1] === "string",
        );
        const name = pgvectorTable(place);
        const table = options.schema === null ? name : `${options.schema}.${name}`;
        const sql = await connect();
        try {
          const exists = await sql.query<{ t: string | null }>("select to_regclass($1)::text as t", [table]);
          if (exists.rows[0]?.t == null) return { items: [] };
          const params: unknown[] = [limit];
          let where = "";
          if (after) {
            params.push(after[0], after[1]);
            where = "where (tenant_id, id) > ($2, $3)";
          }
          const { rows } = await sql.query<{
            tenant_id: string;
            id: string;
            embedding: string;
            user_id: string | null;
            chat_id: string | null;
            category: string | null;
          }>(
            `select tenant_id, id, embedding::text as embedding, user_id, chat_id, category from ${table} ${where} ` +
              "order by tenant_id, id limit $1",
            params,
          );
          const items = rows.map((r) => ({
            tenantId: r.tenant_id,
            id: r.id,
            vector: Float32Array.from(JSON.parse(r.embedding) as number[]),
            ...(r.user_id === null ? {} : { userId: r.user_id }),
            ...(r.chat_id === null ? {} : { chatId: r.chat_id }),
            ...(r.category === null ? {} : { category: r.category }),
          }));
          const last = items.at(-1);
          return items.length < limit || last === undefined
            ? { items }
            : { items, next: JSON.stringify([last.tenantId, last.id]) };
        } catch (e) {
          throw unavailable(e, "vector.scan");
        }
      },
      close: async () => {
        const opened = pool;
        pool = undefined;
        if (opened) await (await opened.catch(() => undefined))?.close();
      },
    };
  },
};
