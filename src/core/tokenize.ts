/**
 * The tokenizer (SRCH-2) the search adapters apply at index and at query time, and the
 * hashing embedder uses for its features: pure text functions, hence in core.
 *
 * - Text is NFKC-normalised and lower-cased.
 * - CJK runs (Han, Hiragana, Katakana, Hangul, with `ー` and `々`) are indexed as bigrams of
 *   consecutive characters followed by unigrams, so a 1-character query matches a unigram, a
 *   2-character query a bigram, and a longer one the phrase of its consecutive bigrams. Queries
 *   are split into words first (see `queryPieces`): `東京の会議` finds 東京 and 会議 anywhere in a
 *   message, `"東京の会議"` (quoted) only the phrase as written. A query
 *   bigram can match across two adjacent words of the same run (e.g. the last character of one
 *   word and the first of the next): such hits are possible and accepted, as with any bigram index.
 * - Other text is split into words by `Intl.Segmenter` (word granularity); characters other than
 *   letters, marks and digits are dropped from a word (`don't` → `dont`), so every token is a
 *   whitespace-free run of letters and digits, safe for FTS5 and for a tsvector/tsquery literal.
 */

import { decodeCursor, encodeCursor } from "./cursor.js";

const CJK = /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Hangul}ー々〆]+/gu;
const NON_WORD = /[^\p{L}\p{M}\p{N}]+/gu;
const segmenter = new Intl.Segmenter("en", { granularity: "word" });

/** One query term: a single token, or a phrase of tokens that must be adjacent. */
export type QueryTerm = readonly string[];

export function normalize(text: string): string {
  return text.normalize("NFKC").toLowerCase();
}

interface Piece {
  cjk: boolean;
  text: string;
}

function pieces(text: string): Piece[] {
  const out: Piece[] = [];
  const norm = normalize(text);
  let last = 0;
  for (const m of norm.matchAll(CJK)) {
    if (m.index > last) latin(norm.slice(last, m.index), out);
    out.push({ cjk: true, text: m[0] });
    last = m.index + m[0].length;
  }
  if (last < norm.length) latin(norm.slice(last), out);
  return out;
}

function latin(text: string, out: Piece[]): void {
  if (ASCII.test(text)) {
    asciiWords(text, out);
    return;
  }
  for (const s of segmenter.segment(text)) {
    if (!s.isWordLike) continue;
    const word = s.segment.replace(NON_WORD, "");
    if (word) out.push({ cjk: false, text: word });
  }
}

const ASCII = /^\p{ASCII}*$/u;

/** Word-break class of an ASCII code unit (UAX #29, as `Intl.Segmenter` applies it). */
enum W {
  Other = 0,
  /** ALetter, Numeric, ExtendNumLet (`_`): any two of them are never split. */
  Letter = 1,
  Digit = 2,
  Under = 3,
  /** `:` (MidLetter): joins two letters. */
  MidLetter = 4,
  /** `.` and `'` (MidNumLet, Single_Quote): join two letters or two digits. */
  MidNumLet = 5,
  /** `,` and `;` (MidNum): join two digits. */
  MidNum = 6,
}

const WB = new Uint8Array(128);
for (let c = 0; c < 128; c++) {
  const ch = String.fromCharCode(c);
  WB[c] = /[a-zA-Z]/.test(ch)
    ? W.Letter
    : /[0-9]/.test(ch)
      ? W.Digit
      : ch === "_"
        ? W.Under
        : ch === ":"
          ? W.MidLetter
          : ch === "." || ch === "'"
            ? W.MidNumLet
            : ch === "," || ch === ";"
              ? W.MidNum
              : W.Other;
}

const wordChar = (k: number) => k === W.Letter || k === W.Digit || k === W.Under;

/**
 * The words `Intl.Segmenter` finds in ASCII text, reduced to letters and digits exactly as
 * `latin` reduces them, without the cost of ICU: a word is a run of letters, digits and `_`,
 * which continues across one `:` `.` `'` between two letters or one `.` `'` `,` `;` between two
 * digits (UAX #29 rules WB5–WB13b; ASCII has no other word-joining characters).
 */
function asciiWords(text: string, out: Piece[]): void {
  const n = text.length;
  let i = 0;
  while (i < n) {
    if (!wordChar(WB[text.charCodeAt(i)] as number)) {
      i++;
      continue;
    }
    let word = "";
    let start = i;
    while (i < n) {
      const k = WB[text.charCodeAt(i)] as number;
      if (wordChar(k)) {
        i++;
        continue;
      }
      const prev = WB[text.charCodeAt(i - 1)] as number;
      const next = i + 1 < n ? (WB[text.charCodeAt(i + 1)] as number) : W.Other;
      const joins =
        (prev === W.Letter && next === W.Letter && (k === W.MidLetter || k === W.MidNumLet)) ||
        (prev === W.Digit && next === W.Digit && (k === W.MidNum || k === W.MidNumLet));
      if (!joins) break;
      word += text.slice(start, i);
      i++;
      start = i;
    }
    word += text.slice(start, i);
    if (word.includes("_")) word = word.replaceAll("_", "");
    if (word) out.push({ cjk: false, text: word });
  }
}

function chars(run: string): string[] {
  return Array.from(run);
}

function bigrams(cs: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i + 1 < cs.length; i++) out.push(`${cs[i]}${cs[i + 1]}`);
  return out;
}

/** Tokens of a document, in index order (positions matter for phrases). */
export function indexTokens(text: string): string[] {
  const out: string[] = [];
  for (const p of pieces(text)) {
    if (!p.cjk) {
      out.push(p.text);
      continue;
    }
    const cs = chars(p.text);
    out.push(...bigrams(cs), ...cs);
  }
  return out;
}

const jaSegmenter = new Intl.Segmenter("ja", { granularity: "word" });
const HIRAGANA_ONLY = /^[\p{Script=Hiragana}ー]+$/u;
/** Longer hiragana function words and endings; every hiragana word of 1–2 characters counts too. */
const FUNCTION_WORDS = new Set([
  "から",
  "まで",
  "より",
  "です",
  "でした",
  "ます",
  "ました",
  "ません",
  "ください",
  "して",
  "した",
  "という",
  "ている",
  "ています",
  "でしょう",
  "だった",
  "ある",
  "あります",
  "いる",
  "います",
  "する",
  "します",
  "こと",
  "もの",
  "など",
  "けど",
  "けれど",
  "ので",
  "のに",
]);

/** A particle, auxiliary or ending: hiragana only, and short or a known function word. */
function isFunctionWord(segment: string): boolean {
  if (!HIRAGANA_ONLY.test(segment)) return false;
  return Array.from(segment).length <= 2 || FUNCTION_WORDS.has(segment);
}

/** A piece of a query; the pieces of one quoted phrase share a `phrase` number. */
interface QueryPiece extends Piece {
  phrase?: number;
}

/**
 * The pieces of a query. Outside double quotes, a CJK run is split into words
 * (`Intl.Segmenter`, Japanese dictionary) and, when the run holds any other word, its
 * hiragana-only words (particles, endings: の, は, です) are dropped — people type Japanese
 * without spaces, so `東京の会議` asks for 東京 and 会議, wherever they stand. Inside quotes the
 * text is a phrase: a CJK run must occur as written, and the words of the quote adjacent.
 */
function queryPieces(query: string): QueryPiece[] {
  const out: QueryPiece[] = [];
  const parts = query.split('"');
  parts.forEach((part, i) => {
    const quoted = i % 2 === 1 && i < parts.length - 1;
    for (const p of pieces(part)) {
      if (quoted) {
        out.push({ ...p, phrase: i });
        continue;
      }
      if (!p.cjk) {
        out.push(p);
        continue;
      }
      // Split only where a function word stands: compounds stay whole (会議室 is one term).
      const chunks: string[] = [];
      let chunk = "";
      for (const { segment } of jaSegmenter.segment(p.text)) {
        if (isFunctionWord(segment)) {
          if (chunk) chunks.push(chunk);
          chunk = "";
        } else chunk += segment;
      }
      if (chunk) chunks.push(chunk);
      for (const w of chunks.length > 0 ? chunks : [p.text]) out.push({ cjk: true, text: w });
    }
  });
  return out;
}

/** The terms of a query; a document matches when it matches every term. */
export function queryTerms(query: string): QueryTerm[] {
  const out: QueryTerm[] = [];
  const seen = new Set<string>();
  const add = (term: QueryTerm) => {
    const key = term.join(" ");
    if (term.length === 0 || seen.has(key)) return;
    seen.add(key);
    out.push(term);
  };
  let phrase: { id: number; words: string[] } | undefined;
  const flush = () => {
    if (phrase) add(phrase.words);
    phrase = undefined;
  };
  for (const p of queryPieces(query)) {
    if (!p.cjk && p.phrase !== undefined) {
      // Latin words of one quote are adjacent tokens in the index: one phrase.
      if (phrase?.id !== p.phrase) flush();
      phrase ??= { id: p.phrase, words: [] };
      phrase.words.push(p.text);
      continue;
    }
    flush();
    if (!p.cjk) add([p.text]);
    else {
      const cs = chars(p.text);
      add(cs.length === 1 ? cs : bigrams(cs));
    }
  }
  flush();
  return out;
}

/** Where the query's terms occur in `text` (UTF-16 offsets), sorted and merged. */
export function matchRanges(text: string, query: string): Array<[number, number]> {
  const terms = queryPieces(query);
  const latinTerms = new Set(terms.filter((t) => !t.cjk).map((t) => t.text));
  const cjkTerms = terms.filter((t) => t.cjk).map((t) => t.text);
  const ranges: Array<[number, number]> = [];
  if (latinTerms.size > 0) {
    for (const s of segmenter.segment(text)) {
      if (!s.isWordLike) continue;
      if (latinTerms.has(normalize(s.segment).replace(NON_WORD, "")))
        ranges.push([s.index, s.index + s.segment.length]);
    }
  }
  if (cjkTerms.length > 0) {
    // CJK is matched on the normalised text; NFKC keeps the length of CJK text in practice
    // (half-width katakana aside), so offsets are taken as they are.
    const norm = normalize(text);
    const sameLength = norm.length === text.length;
    for (const t of cjkTerms) {
      let i = norm.indexOf(t);
      while (i >= 0 && sameLength) {
        ranges.push([i, i + t.length]);
        i = norm.indexOf(t, i + t.length);
      }
    }
  }
  ranges.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const merged: Array<[number, number]> = [];
  for (const r of ranges) {
    const prev = merged.at(-1);
    if (prev && r[0] <= prev[1]) prev[1] = Math.max(prev[1], r[1]);
    else merged.push([r[0], r[1]]);
  }
  return merged;
}

export interface Snippet {
  /** A window of the text around the first match. */
  text: string;
  /** Matched ranges within `text` (UTF-16 offsets, end exclusive). */
  highlights: Array<[number, number]>;
}

/** A snippet of at most about `width` characters around the first match, with its highlights. */
export function snippet(text: string, query: string, width = 160): Snippet {
  const ranges = matchRanges(text, query);
  if (text.length <= width) return { text, highlights: ranges };
  const first = ranges[0]?.[0] ?? 0;
  let start = Math.max(0, first - Math.floor(width / 4));
  let end = Math.min(text.length, start + width);
  start = Math.max(0, end - width);
  // Do not cut a surrogate pair.
  if (start > 0 && /[\uDC00-\uDFFF]/.test(text[start] ?? "")) start--;
  if (end < text.length && /[\uDC00-\uDFFF]/.test(text[end] ?? "")) end++;
  const highlights: Array<[number, number]> = [];
  for (const [a, b] of ranges) {
    if (b <= start || a >= end) continue;
    highlights.push([Math.max(a, start) - start, Math.min(b, end) - start]);
  }
  return { text: text.slice(start, end), highlights };
}

/** Opaque offset cursor of a result page. */
export function encodeOffset(offset: number): string {
  return encodeCursor({ k: "o", o: offset });
}

/** The offset of a cursor `encodeOffset` made (0 for none); undefined for anything else. */
export function decodeOffset(cursor: string | undefined): number | undefined {
  if (cursor === undefined) return 0;
  const o = decodeCursor(cursor, { k: "o" })?.o;
  return typeof o === "number" && Number.isSafeInteger(o) && o >= 0 && o < 1e9 ? o : undefined;
}
