/**
 * `postgres`: the search index in the PostgreSQL catalog's database and schema, a `tsvector`
 * column with a GIN index, ranked by `ts_rank_cd`.
 *
 * The tokens come from `../tokenize.ts` (the same as FTS5's): the tsvector is written as a
 * literal (`'token':pos …`, cast with `::tsvector`) and the query as a tsquery literal
 * (`'a' & ('b' <-> 'c')`, cast with `::tsquery`), both passed as bind parameters — no text
 * search parser re-splits them, and no user input is ever part of the SQL text. This is the
 * `simple` configuration's behaviour (no stemming, no stop words) with Kura's own tokenizer.
 * `tenant_id` is part of the primary key and of every query's WHERE clause.
 */
import type pg from "pg";
import { z } from "zod";
import { closedError } from "../../../core/lifecycle.js";
import { parseOptions } from "../../../core/options.js";
import { decodeOffset, indexTokens, queryTerms } from "../../../core/tokenize.js";
import type {
  SearchCapabilities,
  SearchDocument,
  SearchDocumentPage,
  SearchIndex,
  SearchIndexDefinition,
  SearchPage,
  SearchQuery,
} from "../../../ports/search-index.js";
import { createPgPool, pgTimeoutError, pgTimeoutOptions, pgTimeouts, quoteIdent } from "../../pg.js";
import { badCursor, OPTIONS_PATH, type RawHit, toPage, unavailable } from "../common.js";

export const postgresFtsOptionsSchema = z
  .object({
    /** The catalog's `postgres://…` URL — secret (the password). Required. */
    url: z.string().regex(/^postgres(ql)?:\/\//, "must be a postgres:// or postgresql:// URL"),
    /** The catalog's schema; the index's tables live beside the catalog's. Required. */
    schema: z.string().min(1),
    /** Pool size; default 4. */
    max_connections: z.number().int().min(1).max(10_000).default(4),
    /** `statement_timeout_ms` (default 30000), `lock_timeout_ms` (default 0): the catalog's. */
    ...pgTimeoutOptions,
  })
  .strict();
export type PostgresFtsOptions = z.infer<typeof postgresFtsOptionsSchema>;

const CAPABILITIES: SearchCapabilities = Object.freeze({
  catalogDatabase: true,
  multiProcess: true,
  remote: true,
});

export const postgresFtsSearchIndex: SearchIndexDefinition<PostgresFtsOptions> = {
  scheme: "postgres",
  capabilities: CAPABILITIES,
  parseOptions: (raw) => parseOptions(postgresFtsOptionsSchema, raw, OPTIONS_PATH),
  create: (options) => openPostgresFts(options),
};

const SCHEMA = [
  `CREATE TABLE IF NOT EXISTS search_docs (
    tenant_id text NOT NULL,
    id text NOT NULL,
    chat_id text NOT NULL,
    role text NOT NULL,
    created_at bigint NOT NULL,
    body text NOT NULL,
    tsv tsvector NOT NULL,
    PRIMARY KEY (tenant_id, id)
  )`,
  "CREATE INDEX IF NOT EXISTS search_docs_tsv ON search_docs USING gin (tsv)",
  "CREATE INDEX IF NOT EXISTS search_docs_chat ON search_docs (tenant_id, chat_id, created_at)",
];

/** PostgreSQL keeps positions up to 16383 and at most 256 per lexeme; lexemes under 2 KB. */
const MAX_POS = 16383;
const MAX_POSITIONS = 256;
const MAX_LEXEME_BYTES = 2000;

const lexeme = (t: string) => `'${t.replaceAll("\\", "\\\\").replaceAll("'", "''")}'`;
const fits = (t: string) => Buffer.byteLength(t) <= MAX_LEXEME_BYTES;

/** A tsvector literal of the document's tokens with their positions. */
export function tsvectorLiteral(text: string): string {
  const positions = new Map<string, number[]>();
  indexTokens(text).forEach((t, i) => {
    if (!fits(t)) return;
    const list = positions.get(t) ?? [];
    if (list.length < MAX_POSITIONS) list.push(Math.min(i + 1, MAX_POS));
    positions.set(t, list);
  });
  return [...positions].map(([t, ps]) => `${lexeme(t)}:${[...new Set(ps)].join(",")}`).join(" ");
}

/** A tsquery literal: every term (AND), a term of several tokens being a phrase (`<->`). */
export function tsqueryLiteral(q: string): string | undefined {
  const terms = queryTerms(q).filter((t) => t.every(fits));
  if (terms.length === 0) return undefined;
  return terms
    .map((t) => (t.length === 1 ? lexeme(t[0] as string) : `(${t.map(lexeme).join(" <-> ")})`))
    .join(" & ");
}

export async function openPostgresFts(options: PostgresFtsOptions): Promise<SearchIndex> {
  const pool = createPgPool({
    connectionString: options.url,
    max: options.max_connections,
    options: `-c search_path=${quoteIdent(options.schema)}`,
    application_name: "kura-search",
    connectionTimeoutMillis: 10_000,
    ...pgTimeouts(options),
  });
  try {
    for (const sql of SCHEMA) await pool.query(sql);
  } catch (e) {
    await pool.end().catch(() => undefined);
    throw unavailable(e, "search.open");
  }
  return new PostgresFts(pool);
}

class PostgresFts implements SearchIndex {
  readonly backend = "postgres";
  private closed = false;

  constructor(private readonly pool: pg.Pool) {}

  private async q<T extends pg.QueryResultRow>(
    operation: string,
    text: string,
    values: unknown[] = [],
  ): Promise<T[]> {
    if (this.closed) throw closedError("the search index", operation);
    try {
      return (await this.pool.query<T>(text, values)).rows;
    } catch (e) {
      throw pgTimeoutError(e, operation) ?? unavailable(e, operation);
    }
  }

  async upsert(docs: readonly SearchDocument[]): Promise<void> {
    if (docs.length === 0) return;
    const seen = new Map<string, SearchDocument>();
    for (const d of docs) seen.set(`${d.tenantId}\u0000${d.id}`, d);
    const rows = [...seen.values()];
    await this.q(
      "search.upsert",
      `INSERT INTO search_docs (tenant_id, id, chat_id, role, created_at, body, tsv)
       SELECT t, i, c, r, ca, b, v::tsvector
       FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::text[], $7::text[])
         AS x(t, i, c, r, ca, b, v)
       ON CONFLICT (tenant_id, id) DO UPDATE SET chat_id = excluded.chat_id, role = excluded.role,
         created_at = excluded.created_at, body = excluded.body, tsv = excluded.tsv`,
      [
        rows.map((d) => d.tenantId),
        rows.map((d) => d.id),
        rows.map((d) => d.chatId),
        rows.map((d) => d.role),
        rows.map((d) => d.createdAt),
        rows.map((d) => d.text),
        rows.map((d) => tsvectorLiteral(d.text)),
      ],
    );
  }

  async remove(tenantId: string, ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return;
    await this.q("search.remove", "DELETE FROM search_docs WHERE tenant_id = $1 AND id = ANY($2::text[])", [
      tenantId,
      [...ids],
    ]);
  }

  async search(query: SearchQuery): Promise<SearchPage> {
    const offset = decodeOffset(query.cursor);
    if (offset === undefined) throw badCursor("search.query");
    const tsq = tsqueryLiteral(query.q);
    if (tsq === undefined) return { hits: [] };
    const values: unknown[] = [tsq, query.tenantId];
    const where = ["tsv @@ $1::tsquery", "tenant_id = $2"];
    const add = (sql: string, v: unknown) => {
      values.push(v);
      where.push(`${sql} $${values.length}`);
    };
    if (query.chatId !== undefined) add("chat_id =", query.chatId);
    if (query.role !== undefined) add("role =", query.role);
    if (query.since !== undefined) add("created_at >=", query.since);
    if (query.until !== undefined) add("created_at <", query.until);
    values.push(query.limit + 1, offset);
    const rows = await this.q<{
      id: string;
      chat_id: string;
      role: string;
      created_at: string;
      body: string;
      score: number;
    }>(
      "search.query",
      `SELECT id, chat_id, role, created_at, body, ts_rank_cd(tsv, $1::tsquery) AS score
       FROM search_docs WHERE ${where.join(" AND ")}
       ORDER BY score DESC, created_at DESC, id DESC
       LIMIT $${values.length - 1} OFFSET $${values.length}`,
      values,
    );
    const raw: RawHit[] = rows.map((r) => ({
      id: r.id,
      chatId: r.chat_id,
      role: r.role,
      createdAt: Number(r.created_at),
      text: r.body,
      score: Number(r.score),
    }));
    return toPage(raw, query.q, offset, query.limit);
  }

  async count(tenantId?: string): Promise<number> {
    const rows =
      tenantId === undefined
        ? await this.q<{ n: string }>("search.count", "SELECT count(*) AS n FROM search_docs")
        : await this.q<{ n: string }>(
            "search.count",
            "SELECT count(*) AS n FROM search_docs WHERE tenant_id = $1",
            [tenantId],
          );
    return Number(rows[0]?.n ?? 0);
  }

  async existing(tenantId: string, ids: readonly string[]): Promise<Set<string>> {
    if (ids.length === 0) return new Set();
    const rows = await this.q<{ id: string }>(
      "search.existing",
      "SELECT id FROM search_docs WHERE tenant_id = $1 AND id = ANY($2::text[])",
      [tenantId, [...ids]],
    );
    return new Set(rows.map((r) => r.id));
  }

  async listDocuments(options: { cursor?: string; limit: number }): Promise<SearchDocumentPage> {
    // The cursor is the last key listed, as JSON; the order is the primary key's.
    let after: [string, string] | undefined;
    if (options.cursor !== undefined) {
      try {
        const parsed: unknown = JSON.parse(options.cursor);
        if (Array.isArray(parsed) && parsed.length === 2 && parsed.every((x) => typeof x === "string"))
          after = parsed as [string, string];
      } catch {
        // falls through to CURSOR_INVALID
      }
      if (!after) throw badCursor("search.listDocuments");
    }
    const limit = Math.max(1, Math.min(options.limit, 10_000));
    const rows = after
      ? await this.q<{ tenant_id: string; id: string }>(
          "search.listDocuments",
          "SELECT tenant_id, id FROM search_docs WHERE (tenant_id, id) > ($1::text, $2::text) " +
            "ORDER BY tenant_id, id LIMIT $3",
          [after[0], after[1], limit],
        )
      : await this.q<{ tenant_id: string; id: string }>(
          "search.listDocuments",
          "SELECT tenant_id, id FROM search_docs ORDER BY tenant_id, id LIMIT $1",
          [limit],
        );
    const last = rows.at(-1);
    return {
      keys: rows.map((r) => ({ tenantId: r.tenant_id, id: r.id })),
      ...(last && rows.length >= limit ? { cursor: JSON.stringify([last.tenant_id, last.id]) } : {}),
    };
  }

  async clear(): Promise<void> {
    await this.q("search.clear", "TRUNCATE search_docs");
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.end().catch(() => undefined);
  }
}
