/**
 * `sqlite-fts` ranking: BM25 over windows of {@link RANK_WINDOW} matches, newest first (ADR
 * 0014). A window is ranked by FTS5's `bm25()` when the query's words are cheap to count,
 * otherwise by the same formula over the stored text (`scoreWindow`), with document counts
 * estimated from each phrase's newest matches and the totals read from FTS5's own record.
 */
import type Database from "better-sqlite3";
import { normalize, type QueryTerm } from "../../../core/tokenize.js";
import type { SearchQuery } from "../../../ports/search-index.js";

/**
 * How many matches, newest first, one BM25 ranking covers. Ranking costs ~1.2 µs a row with
 * `bm25()` and ~3.5 µs from the stored text (a row lookup each) on the 2-core reference machine,
 * and there is no top-k pruning: 1,000 keeps a term in up to 1 % of a million messages within
 * SPEC §5's 10 ms p95 on a shared machine (ADR 0014). Queries with fewer matches are exact.
 */
export const RANK_WINDOW = 1000;

export interface Ranked {
  rowid: number;
  /** bm25 as FTS5 gives it: lower is better. */
  s: number;
}

/** One phrase of a query's MATCH: a query term, or a chat or role filter. */
export interface Phrase {
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

/** Ranks a query's matches in one index's database. */
export class WindowRanker {
  constructor(
    private readonly stmt: (sql: string) => Database.Statement,
    private readonly window: number,
    private readonly countBudget: number,
  ) {}

  /**
   * Ranked positions [offset, offset + count) of the matches (ADR 0014). Up to W matches are all
   * ranked together by FTS5's `bm25()`. Beyond, window w holds the matches w·W … (w+1)·W − 1
   * counted from the newest, each window ranked by BM25 in turn, ties newest first: by `bm25()`
   * when the query's words are cheap to count, otherwise by {@link scoreWindow} from the stored
   * text — `bm25()` first counts every document of every phrase to weigh it, a full pass over the
   * posting lists that costs 10–50 ms for a word in a quarter of a million messages.
   */
  rank(
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
}
