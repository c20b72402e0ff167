/**
 * What the message projectors (full-text search, message embeddings) share: the messages an
 * outbox batch names, their current state loaded in parallel, and a scan of every message in
 * the catalog for rebuilds. Projectors apply the current state of a message, never the event
 * itself, so re-delivered or reordered events do no harm.
 */
import { mapLimit } from "../core/concurrency.js";
import type { Catalog, MessageKey, OutboxRecord } from "../ports/catalog.js";
import type { SearchDocument } from "../ports/search-index.js";

export type { MessageKey } from "../ports/catalog.js";

/** The current indexable state of a message, or undefined if it must not be indexed. */
export type LoadDocument = (tenantId: string, id: string) => Promise<SearchDocument | undefined>;

/** Messages (catalog row + body) loaded in parallel by a projector. */
const LOAD_CONCURRENCY = 16;

/**
 * Events that change no indexable state: an archived message's body moved, its content and
 * liveness are what they were (`engine/lifecycle.ts`), so it is neither re-indexed nor re-embedded.
 */
const UNCHANGED = new Set(["message.archived"]);

/** The messages named by `message.*` events, each once, in first-seen order. */
export function messageKeys(events: readonly OutboxRecord[], seen = new Set<string>()): MessageKey[] {
  const out: MessageKey[] = [];
  for (const e of events) {
    if (!e.type.startsWith("message.") || UNCHANGED.has(e.type)) continue;
    const key = `${e.tenantId}\u0000${e.entityId}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ tenantId: e.tenantId, id: e.entityId });
  }
  return out;
}

/** Load each message's current state: live documents, and per tenant the ids to remove. */
export async function loadMessages(
  load: LoadDocument,
  messages: readonly MessageKey[],
): Promise<{ docs: SearchDocument[]; gone: Map<string, string[]> }> {
  const docs: SearchDocument[] = [];
  const gone = new Map<string, string[]>();
  const loaded = await mapLimit(messages, LOAD_CONCURRENCY, (m) => load(m.tenantId, m.id));
  for (const [i, m] of messages.entries()) {
    const doc = loaded[i];
    if (doc) docs.push(doc);
    else {
      const list = gone.get(m.tenantId) ?? [];
      list.push(m.id);
      gone.set(m.tenantId, list);
    }
  }
  return { docs, gone };
}

/**
 * Re-apply every message of the catalog, a page at a time across tenants, then move
 * `consumer`'s cursor to the outbox head captured BEFORE the scan began. A message committed
 * during the scan is either seen by it or delivered after that head, so none is skipped (one
 * applied twice is harmless). Rebuilds read the catalog, not the outbox, which is pruned
 * (OUT-1). `includeDeleted` also hands over soft-deleted messages, for indexes that are
 * not cleared first and must drop them. Returns the number of messages applied.
 */
export async function rebuildFromCatalog(
  catalog: Catalog,
  consumer: string,
  apply: (messages: MessageKey[]) => Promise<void>,
  options: { includeDeleted?: boolean; pageSize?: number } = {},
): Promise<number> {
  const pageSize = options.pageSize ?? 1000;
  const head = await catalog.outboxHead();
  let after: MessageKey | undefined;
  let n = 0;
  for (;;) {
    const page = await catalog.listMessageKeys({
      limit: pageSize,
      includeDeleted: options.includeDeleted ?? false,
      ...(after ? { after } : {}),
    });
    if (page.length > 0) await apply(page);
    n += page.length;
    if (page.length < pageSize) break;
    after = page.at(-1);
  }
  if (head !== undefined) await catalog.setConsumerCursor(consumer, head);
  return n;
}
