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
 */

import { MAX_SEARCH_LIMIT } from "../adapters/search/common.js";
import { decodeOffset, encodeOffset, normalize, snippet } from "../adapters/search/tokenize.js";
import { mapLimit } from "../core/concurrency.js";
import { isKuraError, KuraError } from "../core/errors.js";
import type { Catalog, ChatRow, MessageRow, OutboxRecord } from "../ports/catalog.js";
import type { SearchDocument, SearchHit, SearchIndex } from "../ports/search-index.js";
import type { Projector } from "./outbox.js";

export const SEARCH_PROJECTOR = "search";
/** Upper bound of rows the degraded scan reads per query. */
export const FALLBACK_SCAN_ROWS = 20_000;
/** Messages (catalog row + body) loaded in parallel by the projector. */
const LOAD_CONCURRENCY = 16;

/** The current indexable state of a message, or undefined if it must not be searchable. */
export type LoadDocument = (tenantId: string, id: string) => Promise<SearchDocument | undefined>;

export interface SearchOptions {
  chatId?: string;
  role?: string;
  /** ISO time or ms: created at or after. */
  since?: string | number;
  /** ISO time or ms: created before. */
  until?: string | number;
  /** Default 20, at most 100. */
  limit?: number;
  cursor?: string;
}

export interface SearchResultHit extends Omit<SearchHit, "createdAt"> {
  createdAt: string;
}

export interface SearchResult {
  hits: SearchResultHit[];
  cursor?: string;
  /** True when the index was unavailable and the catalog was scanned instead (SRCH-3). */
  degraded: boolean;
  /** `sqlite-fts`, `postgres`, or `catalog-scan` when degraded. */
  backend: string;
}

export class SearchProjector implements Projector {
  readonly name = SEARCH_PROJECTOR;

  constructor(
    private readonly index: SearchIndex,
    private readonly load: LoadDocument,
  ) {}

  async handle(events: readonly OutboxRecord[]): Promise<void> {
    const keys = new Map<string, { tenantId: string; id: string }>();
    for (const e of events) {
      if (!e.type.startsWith("message.")) continue;
      keys.set(`${e.tenantId}\u0000${e.entityId}`, { tenantId: e.tenantId, id: e.entityId });
    }
    await this.apply([...keys.values()]);
  }

  /** Bring the index in line with the current state of these messages. */
  async apply(messages: ReadonlyArray<{ tenantId: string; id: string }>): Promise<void> {
    const docs: SearchDocument[] = [];
    const gone = new Map<string, string[]>();
    const loaded = await mapLimit(messages, LOAD_CONCURRENCY, (m) => this.load(m.tenantId, m.id));
    for (const [i, m] of messages.entries()) {
      const doc = loaded[i];
      if (doc) docs.push(doc);
      else {
        const list = gone.get(m.tenantId) ?? [];
        list.push(m.id);
        gone.set(m.tenantId, list);
      }
    }
    if (docs.length > 0) await this.index.upsert(docs);
    for (const [tenantId, ids] of gone) await this.index.remove(tenantId, ids);
  }
}

function toMs(v: string | number | undefined, name: string, operation: string): number | undefined {
  if (v === undefined) return undefined;
  const ms = typeof v === "number" ? v : Date.parse(v);
  if (!Number.isFinite(ms))
    throw new KuraError("INVALID_ARGUMENT", `${name} must be an ISO time or ms since epoch`, { operation });
  return ms;
}

export class SearchService {
  constructor(
    private readonly catalog: Catalog,
    private readonly index: SearchIndex | undefined,
    private readonly projector: SearchProjector | undefined,
    private readonly clock: () => number,
    /** Why the index is missing (reported once per degraded query). */
    private readonly onDegraded: (reason: unknown) => void = () => undefined,
    private readonly openError?: unknown,
  ) {}

  get backend(): string | undefined {
    return this.index?.backend;
  }

  async search(tenantId: string, q: string, options: SearchOptions = {}): Promise<SearchResult> {
    const operation = "search";
    if (typeof q !== "string" || q.trim() === "" || q.length > 1000)
      throw new KuraError("INVALID_ARGUMENT", "q must be a non-empty string of at most 1000 characters", {
        operation,
      });
    const limit = options.limit ?? 20;
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_SEARCH_LIMIT)
      throw new KuraError("INVALID_ARGUMENT", `limit must be an integer in 1..${MAX_SEARCH_LIMIT}`, {
        operation,
      });
    const since = toMs(options.since, "since", operation);
    const until = toMs(options.until, "until", operation);
    const query = {
      tenantId,
      q,
      limit,
      ...(options.chatId !== undefined ? { chatId: options.chatId } : {}),
      ...(options.role !== undefined ? { role: options.role } : {}),
      ...(since !== undefined ? { since } : {}),
      ...(until !== undefined ? { until } : {}),
      ...(options.cursor !== undefined ? { cursor: options.cursor } : {}),
    };
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
            .filter((r) => r.deletedAt === null && (r.expiresAt === null || r.expiresAt > now))
            .map((r) => r.id),
        );
        return {
          hits: page.hits
            .filter((h) => live.has(h.id))
            .map((h) => ({ ...h, createdAt: new Date(h.createdAt).toISOString() })),
          ...(page.cursor ? { cursor: page.cursor } : {}),
          degraded: false,
          backend: this.index.backend,
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
          if (r.deletedAt !== null || (r.expiresAt !== null && r.expiresAt <= now)) continue;
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
    };
  }

  /**
   * Drop the index and re-project every message named in the outbox from its start, then move
   * the projector's cursor to the end. Returns the number of messages re-projected.
   */
  async rebuild(): Promise<number> {
    if (!this.index || !this.projector)
      throw new KuraError("SEARCH_UNAVAILABLE", "the search index is not open", {
        operation: "search.rebuild",
      });
    await this.index.clear();
    const seen = new Set<string>();
    let cursor: string | undefined;
    let n = 0;
    for (;;) {
      const events = await this.catalog.readOutbox(cursor, 1000);
      if (events.length === 0) break;
      const batch: Array<{ tenantId: string; id: string }> = [];
      for (const e of events) {
        if (!e.type.startsWith("message.")) continue;
        const key = `${e.tenantId}\u0000${e.entityId}`;
        if (seen.has(key)) continue;
        seen.add(key);
        batch.push({ tenantId: e.tenantId, id: e.entityId });
      }
      await this.projector.apply(batch);
      n += batch.length;
      cursor = (events.at(-1) as OutboxRecord).cursor;
    }
    if (cursor !== undefined) await this.catalog.setConsumerCursor(SEARCH_PROJECTOR, cursor);
    return n;
  }
}
