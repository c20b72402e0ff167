/**
 * `sqlite-fts`: the embedded search index, an FTS5 table in its own SQLite file (by default
 * `<data_dir>/search.db`, beside the catalog) through better-sqlite3. Decisions: ADR 0011 (the
 * tokenizer) and ADR 0014 (schema and ranking).
 *
 * - `search_docs` holds what a hit shows (id, chat, role, time, text); `search_fts` is a
 *   contentless FTS5 table over the same rowids holding only the index.
 * - Every token is stored under its tenant's number (`7_会議`, from `search_tenants`), so a query
 *   reads only its tenant's posting lists: tenant scoping is part of the MATCH, not a filter.
 *   Chat and role are tokens of a second column (`7_c_<hex>`, `7_r_<hex>`), ANDed into the MATCH.
 * - Ranking is BM25 over windows of {@link RANK_WINDOW} matches, newest first: all the matches
 *   of a query with fewer are ranked together; otherwise the newest window comes first, then the
 *   next older one, each ranked in turn. A window is ranked by FTS5's `bm25()`, or, when the
 *   query's words are too frequent for it to be cheap, by the same formula over the stored text
 *   (`scoreWindow`), both in `ranking.ts`. The page's rows are read from `search_docs` only
 *   once the page is chosen.
 */
import { mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import Database from "better-sqlite3";
import { z } from "zod";
import { KuraError } from "../../../core/errors.js";
import { closedError } from "../../../core/lifecycle.js";
import { parseOptions } from "../../../core/options.js";
import { decodeOffset, indexTokens, type QueryTerm, queryTerms } from "../../../core/tokenize.js";
import type {
  SearchCapabilities,
  SearchDocument,
  SearchDocumentPage,
  SearchIndex,
  SearchIndexDefinition,
  SearchIndexDeps,
  SearchPage,
  SearchQuery,
} from "../../../ports/search-index.js";
import { badCursor, OPTIONS_PATH, type RawHit, toPage, unavailable } from "../common.js";
import { FTS5_COUNT_BUDGET, type Phrase, RANK_WINDOW, WindowRanker } from "./ranking.js";

export { FTS5_COUNT_BUDGET, RANK_WINDOW } from "./ranking.js";

export const sqliteFtsOptionsSchema = z
  .object({
    /** The database file (its directory is created), or `:memory:`. Required. */
    path: z.string().min(1),
    /** Matches ranked together, newest first; default {@link RANK_WINDOW}. */
    rank_window: z.number().int().min(1).optional(),
    /** Postings up to which a window is ranked by FTS5's `bm25()`; default {@link FTS5_COUNT_BUDGET}. */
    count_budget: z.number().int().min(0).optional(),
  })
  .strict();
export type SqliteFtsOptions = z.infer<typeof sqliteFtsOptionsSchema>;

const CAPABILITIES: SearchCapabilities = Object.freeze({
  catalogDatabase: false,
  multiProcess: false,
  remote: false,
});

export const sqliteFtsSearchIndex: SearchIndexDefinition<SqliteFtsOptions> = {
  scheme: "sqlite-fts",
  capabilities: CAPABILITIES,
  parseOptions: (raw) => parseOptions(sqliteFtsOptionsSchema, raw, OPTIONS_PATH),
  create: (options, deps) => openSqliteFts(options, deps),
};

/** `PRAGMA user_version` of the current schema; 0 with a `search_fts` table is the first one. */
const SCHEMA_VERSION = 2;

const TOKENIZER = `unicode61 remove_diacritics 0 categories 'L* M* N* Co' tokenchars '_'`;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS search_tenants (
  n INTEGER PRIMARY KEY AUTOINCREMENT,
  tenant_id TEXT NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS search_docs (
  rowid INTEGER PRIMARY KEY,
  tenant INTEGER NOT NULL,
  id TEXT NOT NULL,
  chat_id TEXT NOT NULL,
  role TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  text TEXT NOT NULL,
  length INTEGER NOT NULL,
  UNIQUE (tenant, id)
);
CREATE INDEX IF NOT EXISTS search_docs_time ON search_docs (tenant, created_at);
CREATE VIRTUAL TABLE IF NOT EXISTS search_fts USING fts5(
  tokens, tags, content = '', contentless_delete = 1, tokenize = "${TOKENIZER}"
);
CREATE TRIGGER IF NOT EXISTS search_docs_delete AFTER DELETE ON search_docs BEGIN
  DELETE FROM search_fts WHERE rowid = old.rowid;
END;
CREATE TRIGGER IF NOT EXISTS search_docs_update AFTER UPDATE ON search_docs BEGIN
  DELETE FROM search_fts WHERE rowid = old.rowid;
END;`;

/** Tables of the index itself; `search_tenants` survives `clear()` so numbers are never reused. */
const DROP_INDEX = "DROP TABLE IF EXISTS search_fts; DROP TABLE IF EXISTS search_docs;";

/** An FTS5 string: double quotes doubled. */
const ftsString = (s: string) => `"${s.replaceAll('"', '""')}"`;
/** The FTS5 phrase of one query term under a tenant's prefix. */
const phrase = (prefix: string, term: QueryTerm) => ftsString(term.map((t) => prefix + t).join(" "));
const hex = (s: string) => Buffer.from(s, "utf8").toString("hex");
const chatTag = (prefix: string, chatId: string) => `${prefix}c_${hex(chatId)}`;
const roleTag = (prefix: string, role: string) => `${prefix}r_${hex(role)}`;

export async function openSqliteFts(
  options: SqliteFtsOptions,
  deps: SearchIndexDeps = {},
): Promise<SearchIndex> {
  try {
    if (options.path !== ":memory:") mkdirSync(dirname(resolve(options.path)), { recursive: true });
    const db = new Database(options.path, { timeout: 5000 });
    try {
      db.pragma("journal_mode = WAL");
      db.pragma(`synchronous = ${deps.durability === "fsync" ? "FULL" : "NORMAL"}`);
      // Queries walk posting lists and read a few rows each: map the file and keep a larger
      // page cache than SQLite's 2 MB default (both are upper bounds, not allocations).
      db.pragma("mmap_size = 1073741824");
      db.pragma("cache_size = -65536");
      const index = new SqliteFts(
        db,
        options.rank_window ?? RANK_WINDOW,
        options.count_budget ?? FTS5_COUNT_BUDGET,
      );
      db.transaction(() => index.prepareSchema()).immediate();
      return index;
    } catch (e) {
      db.close();
      throw e;
    }
  } catch (e) {
    throw unavailable(e, "search.open");
  }
}

interface DocRow {
  tenant: number;
  id: string;
  chatId: string;
  role: string;
  createdAt: number;
  text: string;
}

class SqliteFts implements SearchIndex {
  readonly backend = "sqlite-fts";
  private closed = false;
  private readonly statements = new Map<string, Database.Statement>();
  /** tenant id → number; numbers are never reassigned, so entries never go stale. */
  private readonly tenants = new Map<string, number>();
  private readonly ranker: WindowRanker;

  constructor(
    private readonly db: Database.Database,
    window: number,
    countBudget: number,
  ) {
    this.ranker = new WindowRanker((sql) => this.stmt(sql), window, countBudget);
  }

  private stmt(sql: string): Database.Statement {
    let s = this.statements.get(sql);
    if (!s) {
      s = this.db.prepare(sql);
      this.statements.set(sql, s);
    }
    return s;
  }

  private run<T>(operation: string, fn: () => T): Promise<T> {
    if (this.closed) return Promise.reject(closedError("the search index", operation));
    try {
      return Promise.resolve(fn());
    } catch (e) {
      return Promise.reject(unavailable(e, operation));
    }
  }

  /** Creates the schema, or migrates the first one (ADR 0014), inside the caller's transaction. */
  prepareSchema(): void {
    const version = this.db.pragma("user_version", { simple: true }) as number;
    if (version === SCHEMA_VERSION) return;
    if (version > SCHEMA_VERSION)
      throw new KuraError(
        "SEARCH_UNAVAILABLE",
        `search index schema ${version} is newer than this Kura's (${SCHEMA_VERSION}): delete the search database and run \`kura reindex\``,
        { operation: "search.open" },
      );
    const v1 = this.db
      .prepare(
        "SELECT 1 FROM sqlite_master WHERE name = 'search_fts' AND sql NOT LIKE '%contentless_delete%'",
      )
      .get();
    if (v1) {
      this.db.exec("ALTER TABLE search_docs RENAME TO search_docs_v1; DROP TABLE search_fts;");
      this.db.exec(SCHEMA);
      this.migrateV1();
      this.db.exec("DROP TABLE search_docs_v1;");
    } else this.db.exec(SCHEMA);
    this.db.pragma(`user_version = ${SCHEMA_VERSION}`);
  }

  /** Re-indexes the documents of the first schema, which kept their text, in rowid order. */
  private migrateV1(): void {
    const read = this.db.prepare(
      `SELECT rowid, tenant_id AS tenantId, id, chat_id AS chatId, role, created_at AS createdAt, text
       FROM search_docs_v1 WHERE rowid > ? ORDER BY rowid LIMIT 2000`,
    );
    let after = 0;
    for (;;) {
      const rows = read.all(after) as Array<SearchDocument & { rowid: number }>;
      if (rows.length === 0) return;
      for (const d of rows) this.upsertOne(d);
      after = (rows.at(-1) as { rowid: number }).rowid;
    }
  }

  /** The number of a tenant; `create` adds an unknown tenant, otherwise it is undefined. */
  private tenantNumber(tenantId: string, create: boolean): number | undefined {
    let n = this.tenants.get(tenantId);
    if (n !== undefined) return n;
    const get = this.stmt("SELECT n FROM search_tenants WHERE tenant_id = ?").pluck();
    n = get.get(tenantId) as number | undefined;
    if (n === undefined && create) {
      this.stmt("INSERT INTO search_tenants (tenant_id) VALUES (?)").run(tenantId);
      n = get.get(tenantId) as number;
    }
    if (n !== undefined) this.tenants.set(tenantId, n);
    return n;
  }

  private upsertOne(d: SearchDocument): void {
    const n = this.tenantNumber(d.tenantId, true) as number;
    const prefix = `${n}_`;
    const tokens = indexTokens(d.text);
    // A new document is one INSERT (an upsert with RETURNING costs ~40 µs more per row here);
    // a replaced one keeps its rowid and the update trigger drops its old index entry.
    const inserted = this.stmt(
      "INSERT OR IGNORE INTO search_docs (tenant, id, chat_id, role, created_at, text, length) VALUES (?, ?, ?, ?, ?, ?, ?)",
    ).run(n, d.id, d.chatId, d.role, d.createdAt, d.text, tokens.length);
    let rowid: number | bigint | undefined = inserted.lastInsertRowid;
    if (inserted.changes === 0) {
      rowid = this.stmt(
        `UPDATE search_docs SET chat_id = ?, role = ?, created_at = ?, text = ?, length = ?
         WHERE tenant = ? AND id = ? RETURNING rowid`,
      )
        .pluck()
        .get(d.chatId, d.role, d.createdAt, d.text, tokens.length, n, d.id) as number | undefined;
      // Neither inserted nor present: a value the table refuses (OR IGNORE skipped the row).
      if (rowid === undefined) throw new Error(`search document ${d.id} has a missing field`);
    }
    let text = "";
    for (const t of tokens) text += text ? ` ${prefix}${t}` : `${prefix}${t}`;
    this.stmt("INSERT INTO search_fts (rowid, tokens, tags) VALUES (?, ?, ?)").run(
      rowid,
      text,
      `${chatTag(prefix, d.chatId)} ${roleTag(prefix, d.role)}`,
    );
  }

  upsert(docs: readonly SearchDocument[]): Promise<void> {
    return this.run("search.upsert", () => {
      try {
        this.db.transaction(() => {
          for (const d of docs) this.upsertOne(d);
        })();
      } catch (e) {
        // A tenant numbered in the rolled-back transaction was not kept: its number may go to
        // another tenant, so forget every cached number.
        this.tenants.clear();
        throw e;
      }
    });
  }

  remove(tenantId: string, ids: readonly string[]): Promise<void> {
    return this.run("search.remove", () =>
      this.db.transaction(() => {
        const n = this.tenantNumber(tenantId, false);
        if (n === undefined) return;
        const del = this.stmt("DELETE FROM search_docs WHERE tenant = ? AND id = ?");
        for (const id of ids) del.run(n, id);
      })(),
    );
  }

  search(query: SearchQuery): Promise<SearchPage> {
    return this.run("search.query", () => {
      const offset = decodeOffset(query.cursor);
      if (offset === undefined) throw badCursor("search.query");
      const terms = queryTerms(query.q);
      if (terms.length === 0) return { hits: [] };
      const n = this.tenantNumber(query.tenantId, false);
      if (n === undefined) return { hits: [] };
      const prefix = `${n}_`;
      const phrases: Phrase[] = terms.map((t) => ({ fts: phrase(prefix, t), tokens: t.length, term: t }));
      const tag = (token: string) => ({ fts: ftsString(token), tokens: 1 });
      if (query.chatId !== undefined) phrases.push(tag(chatTag(prefix, query.chatId)));
      if (query.role !== undefined) phrases.push(tag(roleTag(prefix, query.role)));
      const ranked = this.ranker.rank(query, n, phrases, offset, query.limit + 1);
      const doc = this.stmt(
        "SELECT tenant, id, chat_id AS chatId, role, created_at AS createdAt, text FROM search_docs WHERE rowid = ?",
      );
      const rows: RawHit[] = [];
      for (const r of ranked) {
        const d = doc.get(r.rowid) as DocRow | undefined;
        // The MATCH only reaches this tenant's tokens; the check guards the invariant anyway.
        if (d === undefined || d.tenant !== n) continue;
        rows.push({
          id: d.id,
          chatId: d.chatId,
          role: d.role,
          createdAt: d.createdAt,
          text: d.text,
          score: -r.s,
        });
      }
      return toPage(rows, query.q, offset, query.limit);
    });
  }

  count(tenantId?: string): Promise<number> {
    return this.run("search.count", () => {
      if (tenantId === undefined)
        return this.stmt("SELECT count(*) FROM search_docs").pluck().get() as number;
      const n = this.tenantNumber(tenantId, false);
      if (n === undefined) return 0;
      return this.stmt("SELECT count(*) FROM search_docs WHERE tenant = ?").pluck().get(n) as number;
    });
  }

  existing(tenantId: string, ids: readonly string[]): Promise<Set<string>> {
    return this.run("search.existing", () => {
      const n = this.tenantNumber(tenantId, false);
      if (n === undefined || ids.length === 0) return new Set<string>();
      const found = this.stmt(
        "SELECT id FROM search_docs WHERE tenant = ? AND id IN (SELECT value FROM json_each(?))",
      )
        .pluck()
        .all(n, JSON.stringify(ids)) as string[];
      return new Set(found);
    });
  }

  listDocuments(options: { cursor?: string; limit: number }): Promise<SearchDocumentPage> {
    return this.run("search.listDocuments", () => {
      // The cursor is the last rowid listed: rowids are stable while a document lives.
      const after = options.cursor === undefined ? 0 : Number(options.cursor);
      if (!Number.isSafeInteger(after) || after < 0 || (options.cursor ?? "0") !== String(after))
        throw badCursor("search.listDocuments");
      const rows = this.stmt(
        `SELECT d.rowid AS rowid, t.tenant_id AS tenantId, d.id AS id FROM search_docs d
         JOIN search_tenants t ON t.n = d.tenant WHERE d.rowid > ? ORDER BY d.rowid LIMIT ?`,
      ).all(after, Math.max(1, Math.min(options.limit, 10_000))) as Array<{
        rowid: number;
        tenantId: string;
        id: string;
      }>;
      const last = rows.at(-1);
      return {
        keys: rows.map((r) => ({ tenantId: r.tenantId, id: r.id })),
        ...(last && rows.length >= Math.max(1, Math.min(options.limit, 10_000))
          ? { cursor: String(last.rowid) }
          : {}),
      };
    });
  }

  clear(): Promise<void> {
    return this.run("search.clear", () => {
      // Dropping the tables is O(pages), deleting 1 M rows through the trigger is not.
      this.statements.clear();
      this.db.transaction(() => {
        this.db.exec(DROP_INDEX);
        this.db.exec(SCHEMA);
      })();
    });
  }

  close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      this.db.close();
    }
    return Promise.resolve();
  }
}
