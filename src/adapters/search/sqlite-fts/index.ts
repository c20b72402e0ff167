/**
 * `sqlite-fts`: the embedded search index, an FTS5 table in its own SQLite file (by default
 * `<data_dir>/search.db`, beside the catalog) through better-sqlite3.
 *
 * The text is tokenized in TypeScript (`../tokenize.ts`) and stored as space-separated tokens in
 * an FTS5 column with `unicode61 remove_diacritics 0`, which only splits them on the spaces (every
 * token is a run of letters and digits). `tenant_id` is a column of the FTS table and of every
 * query's WHERE clause. Ranking is FTS5's `bm25()`.
 */
import { mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import Database from "better-sqlite3";
import { KuraError } from "../../../core/errors.js";
import type { SearchDocument, SearchIndex, SearchPage, SearchQuery } from "../../../ports/search-index.js";
import { badCursor, type RawHit, toPage, unavailable } from "../common.js";
import { decodeOffset, indexTokens, queryTerms } from "../tokenize.js";

export interface SqliteFtsOptions {
  /** Database file, or `:memory:`. */
  path: string;
  durability?: "os" | "fsync";
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS search_docs (
  rowid INTEGER PRIMARY KEY,
  tenant_id TEXT NOT NULL,
  id TEXT NOT NULL,
  chat_id TEXT NOT NULL,
  role TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  text TEXT NOT NULL,
  UNIQUE (tenant_id, id)
);
CREATE VIRTUAL TABLE IF NOT EXISTS search_fts USING fts5(
  tokens, tenant_id UNINDEXED, tokenize = 'unicode61 remove_diacritics 0'
);`;

/** An FTS5 string: double quotes doubled. */
const ftsString = (s: string) => `"${s.replaceAll('"', '""')}"`;

export async function openSqliteFts(options: SqliteFtsOptions): Promise<SearchIndex> {
  try {
    if (options.path !== ":memory:") mkdirSync(dirname(resolve(options.path)), { recursive: true });
    const db = new Database(options.path, { timeout: 5000 });
    try {
      db.pragma("journal_mode = WAL");
      db.pragma(`synchronous = ${options.durability === "fsync" ? "FULL" : "NORMAL"}`);
      db.exec(SCHEMA);
    } catch (e) {
      db.close();
      throw e;
    }
    return new SqliteFts(db);
  } catch (e) {
    throw unavailable(e, "search.open");
  }
}

class SqliteFts implements SearchIndex {
  readonly backend = "sqlite-fts";
  private closed = false;
  private readonly statements = new Map<string, Database.Statement>();

  constructor(private readonly db: Database.Database) {}

  private stmt(sql: string): Database.Statement {
    let s = this.statements.get(sql);
    if (!s) {
      s = this.db.prepare(sql);
      this.statements.set(sql, s);
    }
    return s;
  }

  private run<T>(operation: string, fn: () => T): Promise<T> {
    if (this.closed)
      return Promise.reject(new KuraError("SEARCH_UNAVAILABLE", "search index is closed", { operation }));
    try {
      return Promise.resolve(fn());
    } catch (e) {
      return Promise.reject(unavailable(e, operation));
    }
  }

  private removeOne(tenantId: string, id: string): void {
    const row = this.stmt("SELECT rowid FROM search_docs WHERE tenant_id = ? AND id = ?").get(tenantId, id) as
      | { rowid: number }
      | undefined;
    if (!row) return;
    this.stmt("DELETE FROM search_fts WHERE rowid = ?").run(row.rowid);
    this.stmt("DELETE FROM search_docs WHERE rowid = ?").run(row.rowid);
  }

  upsert(docs: readonly SearchDocument[]): Promise<void> {
    return this.run("search.upsert", () =>
      this.db.transaction(() => {
        for (const d of docs) {
          this.removeOne(d.tenantId, d.id);
          const info = this.stmt(
            "INSERT INTO search_docs (tenant_id, id, chat_id, role, created_at, text) VALUES (?, ?, ?, ?, ?, ?)",
          ).run(d.tenantId, d.id, d.chatId, d.role, d.createdAt, d.text);
          this.stmt("INSERT INTO search_fts (rowid, tokens, tenant_id) VALUES (?, ?, ?)").run(
            info.lastInsertRowid,
            indexTokens(d.text).join(" "),
            d.tenantId,
          );
        }
      })(),
    );
  }

  remove(tenantId: string, ids: readonly string[]): Promise<void> {
    return this.run("search.remove", () =>
      this.db.transaction(() => {
        for (const id of ids) this.removeOne(tenantId, id);
      })(),
    );
  }

  search(query: SearchQuery): Promise<SearchPage> {
    return this.run("search.query", () => {
      const offset = decodeOffset(query.cursor);
      if (offset === undefined) throw badCursor("search.query");
      const terms = queryTerms(query.q);
      if (terms.length === 0) return { hits: [] };
      const match = terms.map((t) => ftsString(t.join(" "))).join(" AND ");
      const where = ["search_fts MATCH ?", "search_fts.tenant_id = ?", "d.tenant_id = ?"];
      const params: unknown[] = [match, query.tenantId, query.tenantId];
      if (query.chatId !== undefined) {
        where.push("d.chat_id = ?");
        params.push(query.chatId);
      }
      if (query.role !== undefined) {
        where.push("d.role = ?");
        params.push(query.role);
      }
      if (query.since !== undefined) {
        where.push("d.created_at >= ?");
        params.push(query.since);
      }
      if (query.until !== undefined) {
        where.push("d.created_at < ?");
        params.push(query.until);
      }
      params.push(query.limit + 1, offset);
      const rows = this.stmt(
        `SELECT d.id, d.chat_id AS chatId, d.role, d.created_at AS createdAt, d.text, -bm25(search_fts) AS score
         FROM search_fts JOIN search_docs d ON d.rowid = search_fts.rowid
         WHERE ${where.join(" AND ")}
         ORDER BY bm25(search_fts), d.created_at DESC, d.id DESC LIMIT ? OFFSET ?`,
      ).all(...params) as RawHit[];
      return toPage(rows, query.q, offset, query.limit);
    });
  }

  count(tenantId?: string): Promise<number> {
    return this.run("search.count", () => {
      const row = (
        tenantId === undefined
          ? this.stmt("SELECT count(*) AS n FROM search_docs").get()
          : this.stmt("SELECT count(*) AS n FROM search_docs WHERE tenant_id = ?").get(tenantId)
      ) as { n: number };
      return row.n;
    });
  }

  clear(): Promise<void> {
    return this.run("search.clear", () => {
      this.db.exec("DELETE FROM search_fts; DELETE FROM search_docs;");
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
