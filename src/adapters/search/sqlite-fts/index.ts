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
 *   (`scoreWindow`). The page's rows are read from `search_docs` only once the page is chosen.
 */
import { mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import Database from "better-sqlite3";
import { z } from "zod";
import { KuraError } from "../../../core/errors.js";
import { parseOptions } from "../../../core/options.js";
import { decodeOffset, indexTokens, normalize, type QueryTerm, queryTerms } from "../../../core/tokenize.js";
import type {
  SearchCapabilities,
  SearchDocument,
  SearchIndex,
  SearchIndexDefinition,
  SearchIndexDeps,
  SearchPage,
  SearchQuery,
} from "../../../ports/search-index.js";
import { badCursor, OPTIONS_PATH, type RawHit, toPage, unavailable } from "../common.js";

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

const CAPABILITIES: SearchCapabilities = Object.freeze({ catalogDatabase: false, multiProcess: false });

export const sqliteFtsSearchIndex: SearchIndexDefinition<SqliteFtsOptions> = {
  scheme: "sqlite-fts",
  capabilities: CAPABILITIES,
  parseOptions: (raw) => parseOptions(sqliteFtsOptionsSchema, raw, OPTIONS_PATH),
  create: (options, deps) => openSqliteFts(options, deps),
};

/**
 * How many matches, newest first, one BM25 ranking covers. Ranking costs ~1.2 µs a row with
 * `bm25()` and ~3.5 µs from the stored text (a row lookup each) on the 2-core reference machine,
 * and there is no top-k pruning: 1,000 keeps a term in up to 1 % of a million messages within
 * SPEC §5's 10 ms p95 on a shared machine (ADR 0014). Queries with fewer matches are exact.
 */
export const RANK_WINDOW = 1000;

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

interface Ranked {
  rowid: number;
  /** bm25 as FTS5 gives it: lower is better. */
  s: number;
}

/** One phrase of a query's MATCH: a query term, or a chat or role filter. */
interface Phrase {
  fts: string;
  tokens: number;
  /** The query term, absent for a filter. */
  term?: QueryTerm;
}

interface WindowRow {
  rowid: number;
  length: number;
  text: string;
}

/** Documents of a time range looked up to bound the rowids a time-filtered MATCH walks. */
const TIME_RANGE_SCAN = 20_000;
/** Matches sampled to estimate the document count of each phrase of a query. */
const IDF_SAMPLE = 1000;
/**
 * Up to how many postings (estimated documents × tokens per term) a window is ranked by FTS5's
 * `bm25()`, whose count of them all costs ~0.03–0.2 µs each; beyond, by {@link scoreWindow}.
 */
export const FTS5_COUNT_BUDGET = 60_000;

/**
 * A term's document count from its newest matches: exact when they are all there, otherwise
 * extrapolated from how far back in rowid order (≈ time) they reach.
 */
function documentFrequency(newest: readonly number[], lastRowid: number, sample = newest.length): number {
  const oldest = newest.at(-1);
  if (oldest === undefined || newest.length < sample) return newest.length;
  return (newest.length * lastRowid) / Math.max(1, lastRowid - oldest + 1);
}

/**
 * FTS5's own totals, which its `bm25()` uses: rows in the table and tokens in its first column,
 * from the "averages" record (rowid 1 of `search_fts_data`, SQLite varints: the row count, then
 * the token count of each column).
 */
function decodeTotals(block: Uint8Array | undefined): { rows: number; tokens: number } | undefined {
  if (!block || block.length === 0) return undefined;
  let at = 0;
  const varint = () => {
    let v = 0;
    for (let i = 0; i < 9 && at < block.length; i++) {
      const b = block[at++] as number;
      if (i === 8) return v * 256 + b;
      v = v * 128 + (b & 0x7f);
      if ((b & 0x80) === 0) return v;
    }
    return v;
  };
  const rows = varint();
  const tokens = varint();
  return rows > 0 ? { rows, tokens } : undefined;
}

/** BM25's inverse document frequency as FTS5 computes it (never below 1e-6). */
function bm25Idf(df: number, total: number): number {
  const idf = Math.log((total - df + 0.5) / (df + 0.5));
  return idf > 0 ? idf : 1e-6;
}
/** FTS5's bm25 parameters. */
const K1 = 1.2;
const B = 0.75;
const CJK_CHAR = /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Hangul}ー々〆]/u;

/** How often a query term occurs in normalised text, as the index counts its tokens. */
function termFrequency(norm: string, term: QueryTerm): number {
  const first = term[0] ?? "";
  if (CJK_CHAR.test(first)) {
    // 1 character → unigrams, 2 → a bigram, 3+ → the phrase of bigrams: every (overlapping)
    // occurrence of the word inside a CJK run, and a word of CJK characters is inside one.
    let word = first;
    for (let i = 1; i < term.length; i++) word += Array.from(term[i] as string).at(-1) ?? "";
    let n = 0;
    for (let i = norm.indexOf(word); i >= 0; i = norm.indexOf(word, i + 1)) n++;
    return n;
  }
  // A Latin token: occurrences not inside a longer run of letters, marks or digits.
  let n = 0;
  for (let i = norm.indexOf(first); i >= 0; i = norm.indexOf(first, i + 1)) {
    const before = i > 0 ? norm.codePointAt(i - 1 - (isLowSurrogate(norm, i - 1) ? 1 : 0)) : undefined;
    const after = norm.codePointAt(i + first.length);
    if (!isWordCodePoint(before) && !isWordCodePoint(after)) n++;
  }
  return n;
}

const WORD_CHAR = /[\p{L}\p{M}\p{N}]/u;
const isWordCodePoint = (c: number | undefined) => c !== undefined && WORD_CHAR.test(String.fromCodePoint(c));
const isLowSurrogate = (s: string, i: number) => {
  const c = s.charCodeAt(i);
  return c >= 0xdc00 && c <= 0xdfff;
};

/**
 * BM25 (FTS5's formula and parameters) of one window of matches, computed from the stored text
 * and token count: term frequencies are counted in the normalised text, the average length is
 * the index's (the window's when unknown). Lower is better, as FTS5 reports it; ties newest first.
 */
function scoreWindow(
  rows: readonly WindowRow[],
  terms: readonly QueryTerm[],
  idf: readonly number[],
  averageLength: number | undefined,
): Ranked[] {
  if (rows.length === 0) return [];
  const avgdl = averageLength || rows.reduce((a, r) => a + r.length, 0) / rows.length || 1;
  const out: Ranked[] = rows.map((r) => {
    const norm = normalize(r.text);
    let score = 0;
    terms.forEach((t, i) => {
      // The index matched every term, so each occurs at least once.
      const tf = Math.max(1, termFrequency(norm, t));
      score += ((idf[i] ?? 1) * (tf * (K1 + 1))) / (tf + K1 * (1 - B + (B * r.length) / avgdl));
    });
    return { rowid: r.rowid, s: -score };
  });
  return out.sort((a, b) => a.s - b.s || b.rowid - a.rowid);
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

  constructor(
    private readonly db: Database.Database,
    private readonly window: number,
    private readonly countBudget: number,
  ) {}

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
      const ranked = this.rank(query, n, phrases, offset, query.limit + 1);
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

  /**
   * Ranked positions [offset, offset + count) of the matches (ADR 0014). Up to W matches are all
   * ranked together by FTS5's `bm25()`. Beyond, window w holds the matches w·W … (w+1)·W − 1
   * counted from the newest, each window ranked by BM25 in turn, ties newest first: by `bm25()`
   * when the query's words are cheap to count, otherwise by {@link scoreWindow} from the stored
   * text — `bm25()` first counts every document of every phrase to weigh it, a full pass over the
   * posting lists that costs 10–50 ms for a word in a quarter of a million messages.
   */
  private rank(
    query: SearchQuery,
    tenant: number,
    phrases: readonly Phrase[],
    offset: number,
    count: number,
  ): Ranked[] {
    const match = phrases.map((p) => p.fts).join(" AND ");
    const timed = query.since !== undefined || query.until !== undefined;
    const params: unknown[] = [match];
    let where = "search_fts MATCH ?";
    if (timed) {
      const since = query.since ?? Number.MIN_SAFE_INTEGER;
      const until = query.until ?? Number.MAX_SAFE_INTEGER;
      where += " AND d.created_at >= ? AND d.created_at < ?";
      params.push(since, until);
      // A range of few documents bounds the rowids the MATCH walks (they need not follow time).
      const range = this.stmt(
        `SELECT count(*) AS n, min(rowid) AS lo, max(rowid) AS hi FROM (
           SELECT rowid FROM search_docs WHERE tenant = ? AND created_at >= ? AND created_at < ? LIMIT ?)`,
      ).get(tenant, since, until, TIME_RANGE_SCAN + 1) as { n: number; lo: number; hi: number };
      if (range.n === 0) return [];
      if (range.n <= TIME_RANGE_SCAN) {
        where += " AND search_fts.rowid BETWEEN ? AND ?";
        params.push(range.lo, range.hi);
      }
    }
    const from = `search_fts${timed ? " JOIN search_docs d ON d.rowid = search_fts.rowid" : ""} WHERE ${where}`;
    const W = this.window;
    const newest = this.stmt(
      `SELECT search_fts.rowid FROM ${from} ORDER BY search_fts.rowid DESC LIMIT ?`,
    ).pluck();
    const probe = newest.all(...params, W + 1) as number[];
    if (probe.length === 0) return [];
    const last = this.stmt("SELECT max(rowid) FROM search_docs").pluck().get() as number;
    // Documents per phrase (filters included: bm25() counts theirs too), from the probe when it
    // ran on the one phrase alone.
    const dfs =
      phrases.length === 1 && !timed
        ? [documentFrequency(probe, last, W + 1)]
        : phrases.map((p) => documentFrequency(this.newestOf(p.fts), last, IDF_SAMPLE));
    const postings = dfs.reduce((a, df, i) => a + df * (phrases[i]?.tokens ?? 1), 0);
    const byFts5 = postings <= this.countBudget;
    if (byFts5 && probe.length <= W) {
      // One window holds every match: rank them all (a plain ORDER BY, cheaper than a window).
      return this.stmt(
        `SELECT search_fts.rowid AS rowid, bm25(search_fts, 1.0, 0.0) AS s FROM ${from}
         ORDER BY s, search_fts.rowid DESC LIMIT ? OFFSET ?`,
      ).all(...params, count, offset) as Ranked[];
    }
    const ftsWindow = this.stmt(
      `SELECT rowid, s FROM (
         SELECT search_fts.rowid AS rowid, bm25(search_fts, 1.0, 0.0) AS s FROM ${from}
         ORDER BY search_fts.rowid DESC LIMIT ? OFFSET ?
       ) ORDER BY s, rowid DESC LIMIT ? OFFSET ?`,
    );
    const textWindow = this.stmt(
      `SELECT search_fts.rowid AS rowid, d.length, d.text
       FROM search_fts JOIN search_docs d ON d.rowid = search_fts.rowid WHERE ${where}
       ORDER BY search_fts.rowid DESC LIMIT ? OFFSET ?`,
    );
    const totals = decodeTotals(
      this.stmt("SELECT block FROM search_fts_data WHERE id = 1").pluck().get() as Uint8Array | undefined,
    );
    const terms = phrases.filter((p) => p.term !== undefined);
    const idf = terms.map((p) => bm25Idf(dfs[phrases.indexOf(p)] ?? 1, totals?.rows ?? last));
    const averageLength = totals && totals.tokens / totals.rows;
    const out: Ranked[] = [];
    let pos = offset;
    while (out.length < count) {
      const w = Math.floor(pos / W);
      const within = pos - w * W;
      const want = count - out.length;
      let rows: Ranked[];
      let full: boolean;
      if (byFts5) {
        rows = ftsWindow.all(...params, W, w * W, want, within) as Ranked[];
        full = rows.length === want || within + rows.length === W;
      } else {
        // The probe already holds the newest window's rowids: read their rows by rowid.
        const window = (
          w === 0
            ? this.stmt(
                "SELECT rowid, length, text FROM search_docs WHERE rowid IN (SELECT value FROM json_each(?))",
              ).all(JSON.stringify(probe.slice(0, W)))
            : textWindow.all(...params, W, w * W)
        ) as WindowRow[];
        rows = scoreWindow(
          window,
          terms.map((p) => p.term as QueryTerm),
          idf,
          averageLength,
        ).slice(within, within + want);
        full = window.length === W;
      }
      out.push(...rows);
      if (!full) break;
      pos = (w + 1) * W;
    }
    return out.slice(0, count);
  }

  /** The newest {@link IDF_SAMPLE} rowids matching one phrase. */
  private newestOf(phrase: string): number[] {
    return this.stmt("SELECT rowid FROM search_fts WHERE search_fts MATCH ? ORDER BY rowid DESC LIMIT ?")
      .pluck()
      .all(phrase, IDF_SAMPLE) as number[];
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
