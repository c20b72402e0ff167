/**
 * The `SearchIndex` port (SRCH-1…4): a full-text index of message text, fed from the outbox by
 * the search projector (`src/engine/search.ts`) and queried by `kura.tenant(t).search()`.
 *
 * Behavior every adapter guarantees (checked by `test/conformance/search-index.suite.ts`):
 * - Documents are keyed by (tenantId, id); `upsert` replaces a document wholesale, so applying
 *   the same document twice leaves one entry (idempotent projection). `remove` of an absent id
 *   is a no-op.
 * - Tokenization is `src/adapters/search/tokenize.ts` at index and query time: CJK words of any
 *   length (1, 2, 3+ characters) and Latin words are found, mixed in one query; a document
 *   matches when it contains every query term.
 * - Tenant scoping is enforced in the index: a query only ever sees its tenant's documents.
 * - Results are ranked (BM25 on FTS5, `ts_rank_cd` on PostgreSQL), best first; sqlite-fts ranks
 *   within windows of the 1,000 newest matches of a term (exact below that; ADR 0014), ties by
 *   insertion order;
 *   filters chat, role and creation time range `[since, until)` are applied in the index.
 * - Failures to reach the index are `KuraError`s of kind `Unavailable` (`SEARCH_UNAVAILABLE`),
 *   so the caller can fall back (SRCH-3).
 */

import type { PortCalls } from "./calls.js";

export interface SearchDocument {
  tenantId: string;
  /** The message id. */
  id: string;
  chatId: string;
  role: string;
  /** ms since epoch. */
  createdAt: number;
  /** The text that is indexed (the message's text parts). */
  text: string;
}

/** The most hits one search page may ask for. */
export const MAX_SEARCH_LIMIT = 100;

export interface SearchQuery {
  tenantId: string;
  q: string;
  chatId?: string;
  role?: string;
  /** ms since epoch, inclusive. */
  since?: number;
  /** ms since epoch, exclusive. */
  until?: number;
  limit: number;
  /** From a previous page's `cursor`. */
  cursor?: string;
}

export interface SearchHit {
  id: string;
  chatId: string;
  role: string;
  createdAt: number;
  /** Higher is better; only comparable within one result list. */
  score: number;
  /** A window of the indexed text around the first match. */
  snippet: string;
  /** Matched ranges in `snippet` (UTF-16 offsets, end exclusive). */
  highlights: Array<[number, number]>;
}

export interface SearchPage {
  hits: SearchHit[];
  /** Present when more results follow. */
  cursor?: string;
}

/** A document's identity, as `listDocuments` returns it. */
export interface SearchDocumentKey {
  tenantId: string;
  id: string;
}

/** A page of document keys and where the next starts (absent after the last page). */
export interface SearchDocumentPage {
  keys: SearchDocumentKey[];
  cursor?: string;
}

export interface SearchIndex {
  /** The scheme of its definition: `sqlite-fts` or `postgres`. */
  readonly backend: string;
  upsert(docs: readonly SearchDocument[]): Promise<void>;
  remove(tenantId: string, ids: readonly string[]): Promise<void>;
  search(query: SearchQuery): Promise<SearchPage>;
  /** Documents held (for one tenant, or all). */
  count(tenantId?: string): Promise<number>;
  /**
   * Which of `ids` the tenant's documents hold (fsck's drift check).
   * Behavior: another tenant's document of the same id never counts; [] in, empty set out.
   */
  existing(tenantId: string, ids: readonly string[]): Promise<Set<string>>;
  /**
   * Every document's key, every tenant's, a page of at most `limit` at a time in an order of the
   * adapter's own (fsck's drift check), resuming from the previous page's `cursor`.
   * Behavior: paged to the end, each document present throughout is listed exactly once; a
   * cursor the adapter did not make fails with `CURSOR_INVALID`.
   */
  listDocuments(options: { cursor?: string; limit: number }): Promise<SearchDocumentPage>;
  /** Drop every document (rebuild). */
  clear(): Promise<void>;
  close(): Promise<void>;
}

/**
 * What a layer may do with each search method (`ports/calls.ts`): every call may be repeated —
 * `upsert` replaces documents wholesale, `remove` of an absent id is a no-op and `clear` empties
 * whatever is left, so the projection they serve is idempotent — and `search` and `count` are
 * reads a client may give up on.
 */
export const SEARCH_CALLS: PortCalls<SearchIndex> = Object.freeze({
  upsert: "idempotent",
  remove: "idempotent",
  search: "read",
  count: "read",
  existing: "read",
  listDocuments: "read",
  clear: "idempotent",
});

/** What a search adapter declares. The engine and the tests branch on these, never on its name. */
export interface SearchCapabilities {
  /**
   * The index keeps its tables in the catalog's PostgreSQL database and schema: it is opened with
   * the catalog's connection settings (`{url, schema}`) and needs a PostgreSQL catalog. Otherwise
   * it is a local file (`{path}`: `<data_dir>/search.db`, `:memory:` beside an in-memory catalog).
   */
  readonly catalogDatabase: boolean;
  /**
   * Several processes may open the index at once and all see one index (it lives in a server).
   * Otherwise one process owns it; its threads may each open it.
   */
  readonly multiProcess: boolean;
  /**
   * The index is reached over a network (a server): its calls get the retry layer and a
   * client-side limit on reads (`layers/port-layers.ts`).
   */
  readonly remote: boolean;
}

/** Build-time description of a search adapter: registers nothing on import. */
export interface SearchIndexDefinition<Options> {
  /** What its indexes report as `SearchIndex.backend`. */
  readonly scheme: string;
  readonly capabilities: SearchCapabilities;
  /** Parses and validates the adapter's options; throws `CONFIG_INVALID` with every problem. */
  parseOptions(raw: unknown): Options;
  /** Behavior: a failure to open the index is `SEARCH_UNAVAILABLE`. */
  create(options: Options, deps?: SearchIndexDeps): Promise<SearchIndex>;
}

export interface SearchIndexDeps {
  /** Durability of acknowledged writes (SPEC DUR-1); a local file syncs each commit with `fsync`. */
  durability?: "os" | "fsync";
}
