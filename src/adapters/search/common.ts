/** Helpers shared by the search adapters. */
import { isKuraError, KuraError } from "../../core/errors.js";
import { encodeOffset, snippet } from "../../core/tokenize.js";
import type { SearchHit, SearchPage } from "../../ports/search-index.js";

/** Where an adapter's options are reported in configuration problems. */
export const OPTIONS_PATH = "search";

/** Every failure of the index is `SEARCH_UNAVAILABLE` (kind Unavailable): the caller falls back. */
export function unavailable(e: unknown, operation: string): KuraError {
  if (isKuraError(e)) return e;
  const message = e instanceof Error ? e.message : String(e);
  return new KuraError("SEARCH_UNAVAILABLE", `search index: ${message}`, { operation, cause: e });
}

export function badCursor(operation: string): KuraError {
  return new KuraError("CURSOR_INVALID", "search cursor is malformed", { operation });
}

export interface RawHit {
  id: string;
  chatId: string;
  role: string;
  createdAt: number;
  text: string;
  score: number;
}

/** Turn one page of raw rows (fetched with limit + 1) into hits with snippets and a cursor. */
export function toPage(rows: readonly RawHit[], q: string, offset: number, limit: number): SearchPage {
  const hits: SearchHit[] = rows.slice(0, limit).map((r) => {
    const s = snippet(r.text, q);
    return {
      id: r.id,
      chatId: r.chatId,
      role: r.role,
      createdAt: r.createdAt,
      score: r.score,
      snippet: s.text,
      highlights: s.highlights,
    };
  });
  return rows.length > limit ? { hits, cursor: encodeOffset(offset + limit) } : { hits };
}
