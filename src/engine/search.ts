/**
 * Full-text search in the engine (SRCH-1…4): the projector that keeps a `SearchIndex` in step
 * with the outbox, and the service behind `kura.tenant(t).search()` with its fallback.
 *
 * Projection: every `message.*` event (appended, edited, deleted, undeleted, purged, expired,
 * erased) names a message; the projector reloads that message's current state and either
 * upserts its text (live) or removes it (deleted, gone, expired). Because it applies the current
 * state rather than the event, re-delivered or reordered events do no harm (idempotent), and
 * a crash between indexing and saving the cursor heals when the events are delivered again.
 *
 * Fallback (SRCH-3): when the index cannot be opened or a query fails with an `Unavailable`
 * error, search scans the catalog instead — the previews (first 200 characters) of the tenant's
 * chats, newest first, case-insensitive substring match, at most `FALLBACK_SCAN_ROWS` rows —
 * and the result says `degraded: true`.
 *
 * Modes (VEC-4): `fulltext` (default) ranks by the full-text index; `vector` by the distance of
 * the message embeddings (`vector.embed_messages`) to the embedded query (or a given vector);
 * `hybrid` fuses both rankings by reciprocal rank fusion — each message scores Σ 1/(60 + rank)
 * over the lists it appears in (the constant of Cormack et al., 2009) — so a message found by
 * both rises above one found by either alone. Filters the vector index cannot apply (role,
 * time) are applied to the fetched candidates, over-fetching to keep pages full.
 */

import { isKuraError, KuraError } from "../core/errors.js";
import { toMs } from "../core/time.js";
import { decodeOffset, encodeOffset, normalize, snippet } from "../core/tokenize.js";
import type { Catalog, ChatRow, MessageRow, OutboxRecord } from "../ports/catalog.js";
import type { MailAddress, MailRow } from "../ports/mail-catalog.js";
import { MAX_SEARCH_LIMIT, type SearchHit, type SearchIndex } from "../ports/search-index.js";
import { MAIL_ROLE, mailKeys } from "./mail-documents.js";
import { isLive } from "./message-rows.js";
import type { MessageProjector } from "./outbox.js";
import {
  type LoadDocument,
  loadMessages,
  type MessageKey,
  messageKeys,
  rebuildFromCatalog,
} from "./projection.js";
import type { MessageVectorSearch } from "./vectors.js";

export type { LoadDocument } from "./projection.js";

export const SEARCH_PROJECTOR = "search";
/** Upper bound of rows the degraded scan reads per query. */
export const FALLBACK_SCAN_ROWS = 20_000;

export type SearchMode = "fulltext" | "vector" | "hybrid";
export const SEARCH_MODES: readonly SearchMode[] = ["fulltext", "vector", "hybrid"];
/** Constant k of reciprocal rank fusion. */
export const RRF_K = 60;
/** Fewest and most candidates one vector or hybrid query considers from each ranking. */
const MIN_CANDIDATES = 100;
const MAX_CANDIDATES = 1000;

export interface SearchOptions {
  /** Default `fulltext`. */
  mode?: SearchMode;
  /** Mode `vector` only: search by this embedding instead of embedding `q`. */
  vector?: readonly number[] | Float32Array;
  chatId?: string;
  role?: string;
  /** ISO time or ms: created at or after. */
  since?: string | number;
  /** ISO time or ms: created before. */
  until?: string | number;
  /** Default 20, at most 100. */
  limit?: number;
  cursor?: string;
  /**
   * Read-your-writes: first wait (up to `consistentTimeoutMs`, default 5000) until the index has
   * every message committed before the call; OPERATION_TIMEOUT (503) if it cannot catch up.
   */
  consistent?: boolean;
  consistentTimeoutMs?: number;
}

export interface SearchResultHit extends Omit<SearchHit, "createdAt"> {
  createdAt: string;
}

export interface SearchResult {
  hits: SearchResultHit[];
  cursor?: string;
  /** True when the index was unavailable and the catalog was scanned instead (SRCH-3). */
  degraded: boolean;
  /** `sqlite-fts`, `postgres`, or `catalog-scan` when degraded; `+usearch` etc. for vector modes. */
  backend: string;
  mode: SearchMode;
}

/** A projector that also keeps mail documents (`SearchProjector`, and its worker's side). */
export interface MailProjector {
  applyMail?(mail: readonly MessageKey[]): Promise<void>;
}

/** A mail message found by `searchMail`. */
export interface MailSearchHit {
  id: string;
  mailboxId: string;
  subject: string | null;
  from: MailAddress | null;
  receivedAt: string;
  score: number;
  snippet: string;
  highlights: Array<[number, number]>;
}

export interface MailSearchResult {
  hits: MailSearchHit[];
  cursor?: string;
  /** True when the index was unavailable and the catalog was scanned instead (SRCH-3). */
  degraded: boolean;
  backend: string;
}

export class SearchProjector implements MessageProjector {
  constructor(
    private readonly index: SearchIndex,
    private readonly load: LoadDocument,
    /** Its consumer: `search`, or `search@<node>` for an index of one node's own (`engine/nodes.ts`). */
    readonly name: string = SEARCH_PROJECTOR,
    /** Mail messages' documents (`mail-documents.ts`); without it `mail.*` events are passed over. */
    private readonly loadMail?: LoadDocument,
  ) {}

  async handle(events: readonly OutboxRecord[]): Promise<void> {
    await this.apply(messageKeys(events));
    await this.applyMail(mailKeys(events));
  }

  /** Bring the index in line with the current state of these mail messages. */
  async applyMail(mail: readonly MessageKey[]): Promise<void> {
    if (!this.loadMail || mail.length === 0) return;
    const { docs, gone } = await loadMessages(this.loadMail, mail);
    if (docs.length > 0) await this.index.upsert(docs);
    for (const [tenantId, ids] of gone) await this.index.remove(tenantId, ids);
  }

  /** Bring the index in line with the current state of these messages. */
  async apply(messages: readonly MessageKey[]): Promise<void> {
    const { docs, gone } = await loadMessages(this.load, messages);
    if (docs.length > 0) await this.index.upsert(docs);
    for (const [tenantId, ids] of gone) await this.index.remove(tenantId, ids);
  }
}

export class SearchService {
  constructor(
    private readonly catalog: Catalog,
    private readonly index: SearchIndex | undefined,
    /** In this thread, or in the projection worker (`engine/worker-projector.ts`). */
    private readonly projector: MessageProjector | undefined,
    private readonly clock: () => number,
    /** Why the index is missing (reported once per degraded query). */
    private readonly onDegraded: (reason: unknown) => void = () => undefined,
    private readonly openError?: unknown,
    /** Vector and hybrid modes, when messages are embedded. */
    private readonly vectors?: MessageVectorSearch,
    /** Waits until the projections have every committed event (see `OutboxDispatcher.settle`). */
    private readonly settle: (timeoutMs: number) => Promise<boolean> = async () => true,
  ) {}

  get backend(): string | undefined {
    return this.index?.backend;
  }

  async search(tenantId: string, q: string, options: SearchOptions = {}): Promise<SearchResult> {
    if (options.consistent === true) {
      const timeoutMs = options.consistentTimeoutMs ?? 5000;
      if (!(await this.settle(timeoutMs))) {
        throw new KuraError(
          "OPERATION_TIMEOUT",
          `the search index did not catch up with the committed messages within ${timeoutMs} ms; retry`,
          { operation: "search", context: { timeoutMs, retryAfterSeconds: 1 } },
        );
      }
    }
    const mode = options.mode ?? "fulltext";
    if (!SEARCH_MODES.includes(mode))
      throw new KuraError("INVALID_ARGUMENT", `mode must be one of ${SEARCH_MODES.join(", ")}`, {
        operation: "search",
      });
    if (mode !== "fulltext") return this.vectorSearch(tenantId, q, mode, options);
    if (options.vector !== undefined)
      throw new KuraError("INVALID_ARGUMENT", "a query vector needs mode vector", { operation: "search" });
    return this.fulltext(tenantId, q, options);
  }

  /**
   * Full-text search of the tenant's mail (scope `mail`): subject, addresses and text body,
   * ranked; hits re-read from the catalog, so a deleted message never appears and a moved one
   * shows its mailbox now. With the index unavailable: SEARCH_UNAVAILABLE (no catalog scan).
   */
  async searchMail(
    tenantId: string,
    q: string,
    options: {
      mailboxId?: string;
      limit?: number;
      cursor?: string;
      consistent?: boolean;
      consistentTimeoutMs?: number;
    } = {},
  ): Promise<MailSearchResult> {
    const timeoutMs = options.consistentTimeoutMs ?? 5000;
    if (options.consistent === true && !(await this.settle(timeoutMs)))
      throw new KuraError(
        "OPERATION_TIMEOUT",
        `the search index did not catch up with the committed mail within ${timeoutMs} ms; retry`,
        { operation: "search.mail", context: { timeoutMs, retryAfterSeconds: 1 } },
      );
    const query = this.checkedQuery(
      tenantId,
      q,
      {
        role: MAIL_ROLE,
        ...(options.mailboxId !== undefined ? { chatId: options.mailboxId } : {}),
        ...(options.limit !== undefined ? { limit: options.limit } : {}),
        ...(options.cursor !== undefined ? { cursor: options.cursor } : {}),
      },
      "search.mail",
    );
    if (!this.index) {
      this.onDegraded(this.openError);
      return this.scanMail(query);
    }
    let page: Awaited<ReturnType<SearchIndex["search"]>>;
    try {
      page = await this.index.search(query);
    } catch (e) {
      if (!isKuraError(e) || e.kind !== "Unavailable") throw e;
      this.onDegraded(e);
      return this.scanMail(query);
    }
    const rows = await Promise.all(page.hits.map((h) => this.catalog.getMail(tenantId, h.id)));
    const hits: MailSearchHit[] = [];
    page.hits.forEach((h, i) => {
      const row = rows[i];
      if (row === undefined) return;
      hits.push({
        id: h.id,
        mailboxId: row.mailboxId,
        subject: row.subject,
        from: row.from,
        receivedAt: new Date(row.receivedAt).toISOString(),
        score: h.score,
        snippet: h.snippet,
        highlights: h.highlights,
      });
    });
    return {
      hits,
      ...(page.cursor ? { cursor: page.cursor } : {}),
      degraded: false,
      backend: this.index.backend,
    };
  }

  /**
   * SRCH-3 for mail: a case-insensitive substring scan of the tenant's mail rows' search text,
   * newest first, at most `FALLBACK_SCAN_ROWS` rows; the result says `degraded: true`.
   */
  private async scanMail(query: {
    tenantId: string;
    q: string;
    limit: number;
    chatId?: string;
    cursor?: string;
  }): Promise<MailSearchResult> {
    const offset = decodeOffset(query.cursor);
    if (offset === undefined)
      throw new KuraError("CURSOR_INVALID", "search cursor is malformed", { operation: "search.mail" });
    const needle = normalize(query.q.trim());
    const want = offset + query.limit + 1;
    const found: MailRow[] = [];
    let scanned = 0;
    let before: string | undefined;
    while (found.length < want && scanned < FALLBACK_SCAN_ROWS) {
      const rows = await this.catalog.listTenantMail(query.tenantId, {
        limit: 500,
        ...(before !== undefined ? { beforeId: before } : {}),
      });
      for (const r of rows) {
        scanned++;
        if (query.chatId !== undefined && r.mailboxId !== query.chatId) continue;
        if (normalize(r.searchText).includes(needle)) found.push(r);
      }
      before = rows.at(-1)?.id;
      if (rows.length < 500) break;
    }
    return {
      hits: found.slice(offset, offset + query.limit).map((r) => {
        const s = snippet(r.searchText, query.q);
        return {
          id: r.id,
          mailboxId: r.mailboxId,
          subject: r.subject,
          from: r.from,
          receivedAt: new Date(r.receivedAt).toISOString(),
          score: 0,
          snippet: s.text,
          highlights: s.highlights,
        };
      }),
      ...(found.length > offset + query.limit ? { cursor: encodeOffset(offset + query.limit) } : {}),
      degraded: true,
      backend: "catalog-scan",
    };
  }

  private checkedQuery(tenantId: string, q: string, options: SearchOptions, operation: string) {
    if (typeof q !== "string" || q.trim() === "" || q.length > 1000)
      throw new KuraError("INVALID_ARGUMENT", "q must be a non-empty string of at most 1000 characters", {
        operation,
      });
    const limit = options.limit ?? 20;
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_SEARCH_LIMIT)
      throw new KuraError("INVALID_ARGUMENT", `limit must be an integer in 1..${MAX_SEARCH_LIMIT}`, {
        operation,
      });
    const since = options.since === undefined ? undefined : toMs(options.since, "since", operation);
    const until = options.until === undefined ? undefined : toMs(options.until, "until", operation);
    return {
      tenantId,
      q,
      limit,
      ...(options.chatId !== undefined ? { chatId: options.chatId } : {}),
      ...(options.role !== undefined ? { role: options.role } : {}),
      ...(since !== undefined ? { since } : {}),
      ...(until !== undefined ? { until } : {}),
      ...(options.cursor !== undefined ? { cursor: options.cursor } : {}),
    };
  }

  private async fulltext(tenantId: string, q: string, options: SearchOptions): Promise<SearchResult> {
    const query = this.checkedQuery(tenantId, q, options, "search");
    if (this.index) {
      try {
        const page = await this.index.search(query);
        // The index lags the catalog by the outbox: hits deleted or expired since they were
        // indexed are dropped here, so a deleted message never appears (a page may be short).
        const now = this.clock();
        const live = new Set(
          (
            await this.catalog.getMessages(
              tenantId,
              page.hits.map((h) => h.id),
            )
          )
            .filter((r) => isLive(r, now))
            .map((r) => r.id),
        );
        return {
          hits: page.hits
            .filter((h) => live.has(h.id))
            .map((h) => ({ ...h, createdAt: new Date(h.createdAt).toISOString() })),
          ...(page.cursor ? { cursor: page.cursor } : {}),
          degraded: false,
          backend: this.index.backend,
          mode: "fulltext",
        };
      } catch (e) {
        if (!isKuraError(e) || e.kind !== "Unavailable") throw e;
        this.onDegraded(e);
      }
    } else this.onDegraded(this.openError);
    return this.scan(query);
  }

  /** SRCH-3: a case-insensitive substring scan of previews, newest chats first. */
  private async scan(query: {
    tenantId: string;
    q: string;
    limit: number;
    chatId?: string;
    role?: string;
    since?: number;
    until?: number;
    cursor?: string;
  }): Promise<SearchResult> {
    const offset = decodeOffset(query.cursor);
    if (offset === undefined)
      throw new KuraError("CURSOR_INVALID", "search cursor is malformed", { operation: "search" });
    const needle = normalize(query.q.trim());
    const now = this.clock();
    const found: MessageRow[] = [];
    let scanned = 0;
    const chats: string[] = [];
    if (query.chatId !== undefined) chats.push(query.chatId);
    else {
      let after: string | undefined;
      for (;;) {
        const page: ChatRow[] = await this.catalog.listChats(query.tenantId, {
          limit: 500,
          ...(after !== undefined ? { afterChatId: after } : {}),
        });
        chats.push(...page.map((c) => c.chatId));
        if (page.length < 500) break;
        after = page.at(-1)?.chatId;
      }
    }
    const want = offset + query.limit + 1;
    outer: for (const chatId of chats) {
      let after: { createdAt: number; id: string } | undefined;
      for (;;) {
        const rows = await this.catalog.history(query.tenantId, chatId, {
          order: "desc",
          limit: 500,
          ...(after ? { after } : {}),
          ...(query.since !== undefined ? { since: query.since } : {}),
          ...(query.until !== undefined ? { until: query.until } : {}),
        });
        for (const r of rows) {
          if (++scanned > FALLBACK_SCAN_ROWS) break outer;
          if (!isLive(r, now)) continue;
          if (query.role !== undefined && r.role !== query.role) continue;
          if (normalize(r.preview).includes(needle)) found.push(r);
        }
        if (found.length >= want && query.chatId !== undefined) break outer;
        const last = rows.at(-1);
        if (rows.length < 500 || !last) break;
        after = { createdAt: last.createdAt, id: last.id };
      }
    }
    found.sort((a, b) => b.createdAt - a.createdAt || (a.id < b.id ? 1 : -1));
    const page = found.slice(offset, offset + query.limit);
    return {
      hits: page.map((r) => {
        const s = snippet(r.preview, query.q);
        return {
          id: r.id,
          chatId: r.chatId,
          role: r.role,
          createdAt: new Date(r.createdAt).toISOString(),
          score: 0,
          snippet: s.text,
          highlights: s.highlights,
        };
      }),
      ...(found.length > offset + query.limit ? { cursor: encodeOffset(offset + query.limit) } : {}),
      degraded: true,
      backend: "catalog-scan",
      mode: "fulltext",
    };
  }

  /** The first `n` full-text hits (several index pages), degraded to the scan if need be. */
  private async fulltextTop(
    query: ReturnType<SearchService["checkedQuery"]>,
    n: number,
  ): Promise<{ hits: SearchResultHit[]; degraded: boolean; backend: string }> {
    const hits: SearchResultHit[] = [];
    let cursor: string | undefined;
    let degraded = false;
    let backend = "";
    do {
      const { cursor: _ignored, ...filters } = query;
      const page = await this.fulltext(query.tenantId, query.q, {
        ...filters,
        limit: Math.min(MAX_SEARCH_LIMIT, n - hits.length),
        ...(cursor !== undefined ? { cursor } : {}),
      });
      hits.push(...page.hits);
      cursor = page.cursor;
      degraded ||= page.degraded;
      backend = page.backend;
    } while (cursor !== undefined && hits.length < n);
    return { hits, degraded, backend };
  }

  /** Modes `vector` and `hybrid` (VEC-4). */
  private async vectorSearch(
    tenantId: string,
    q: string,
    mode: "vector" | "hybrid",
    options: SearchOptions,
  ): Promise<SearchResult> {
    const operation = "search";
    if (!this.vectors)
      throw new KuraError(
        "VECTOR_SEARCH_DISABLED",
        `search mode ${mode} needs messages to be embedded (vector.embed_messages: true)`,
        { operation },
      );
    const byVector = options.vector !== undefined;
    if (byVector && mode !== "vector")
      throw new KuraError("INVALID_ARGUMENT", "a query vector needs mode vector", { operation });
    // With a vector and no text, `q` only labels the query; give the checks a placeholder.
    const query = this.checkedQuery(tenantId, byVector && (q ?? "") === "" ? "-" : q, options, operation);
    const offset = decodeOffset(query.cursor);
    if (offset === undefined)
      throw new KuraError("CURSOR_INVALID", "search cursor is malformed", { operation });
    const want = offset + query.limit + 1;
    const postFiltered = query.role !== undefined || query.since !== undefined || query.until !== undefined;
    // At least MIN_CANDIDATES whatever the page: the candidate set, and so the order of the first
    // pages, does not depend on which page is asked for (ties at its edge would otherwise move).
    const n = Math.min(MAX_CANDIDATES, Math.max(MIN_CANDIDATES, postFiltered ? want * 4 : want));
    if (offset + query.limit > MAX_CANDIDATES)
      throw new KuraError(
        "INVALID_ARGUMENT",
        `vector and hybrid search reach at most ${MAX_CANDIDATES} results`,
        {
          operation,
        },
      );
    const near = await this.vectors.query(
      tenantId,
      byVector ? { vector: options.vector as readonly number[] } : { q: query.q },
      { k: n, ...(query.chatId !== undefined ? { chatId: query.chatId } : {}) },
    );
    const scores = new Map<string, number>();
    const textHits = new Map<string, SearchResultHit>();
    let degraded = false;
    let backend = this.vectors.index.backend;
    if (mode === "vector") {
      for (const h of near) scores.set(h.id, 1 / (1 + Math.max(0, h.distance)));
    } else {
      const text = await this.fulltextTop(query, n);
      degraded = text.degraded;
      backend = `${text.backend}+${backend}`;
      const fuse = (ids: readonly string[]) => {
        for (const [rank, id] of ids.entries())
          scores.set(id, (scores.get(id) ?? 0) + 1 / (RRF_K + rank + 1));
      };
      fuse(text.hits.map((h) => h.id));
      fuse(near.map((h) => h.id));
      for (const h of text.hits) textHits.set(h.id, h);
    }
    // Current rows: live, in scope, and matching the filters the vector index cannot apply.
    const now = this.clock();
    const rows = await this.catalog.getMessages(tenantId, [...scores.keys()]);
    const ranked = rows
      .filter(
        (r) =>
          isLive(r, now) &&
          (query.chatId === undefined || r.chatId === query.chatId) &&
          (query.role === undefined || r.role === query.role) &&
          (query.since === undefined || r.createdAt >= query.since) &&
          (query.until === undefined || r.createdAt < query.until),
      )
      .map((r) => ({ row: r, score: scores.get(r.id) as number }))
      .sort((a, b) => b.score - a.score || (a.row.id < b.row.id ? -1 : 1));
    const page = ranked.slice(offset, offset + query.limit);
    return {
      hits: page.map(({ row, score }) => {
        const fromText = textHits.get(row.id);
        const s = fromText ?? (byVector ? { snippet: row.preview.slice(0, 160), highlights: [] } : undefined);
        const made = s ? undefined : snippet(row.preview, query.q);
        return {
          id: row.id,
          chatId: row.chatId,
          role: row.role,
          createdAt: new Date(row.createdAt).toISOString(),
          score,
          snippet: s ? s.snippet : (made?.text ?? ""),
          highlights: s ? s.highlights : (made?.highlights ?? []),
        };
      }),
      ...(ranked.length > offset + query.limit ? { cursor: encodeOffset(offset + query.limit) } : {}),
      degraded,
      backend,
      mode,
    };
  }

  /**
   * Drop the index and re-project every live message of the catalog (not the outbox, which is
   * pruned), then move the projector's cursor to the outbox head taken before the scan. Returns
   * the number of messages re-projected.
   */
  async rebuild(): Promise<number> {
    if (!this.index || !this.projector)
      throw new KuraError("SEARCH_UNAVAILABLE", "the search index is not open", {
        operation: "search.rebuild",
      });
    await this.index.clear();
    const projector = this.projector as MessageProjector & MailProjector;
    // Mail first: a mail message stored meanwhile is either scanned or delivered after the head
    // the message scan takes below (which moves the cursor), so none is skipped.
    if (projector.applyMail) {
      let after: MessageKey | undefined;
      for (;;) {
        const keys = await this.catalog.listMailKeys({ limit: 1000, ...(after ? { after } : {}) });
        await projector.applyMail(keys);
        if (keys.length < 1000) break;
        after = keys.at(-1);
      }
    }
    return rebuildFromCatalog(this.catalog, projector.name, (batch) => projector.apply(batch));
  }
}
