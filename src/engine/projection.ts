/**
 * What the message projectors (full-text search, message embeddings) share: the messages an
 * outbox batch names, their current state loaded in parallel, and a replay of the whole outbox
 * for rebuilds. Projectors apply the current state of a message, never the event itself, so
 * re-delivered or reordered events do no harm.
 */
import { mapLimit } from "../core/concurrency.js";
import type { Catalog, OutboxRecord } from "../ports/catalog.js";
import type { SearchDocument } from "../ports/search-index.js";

/** The current indexable state of a message, or undefined if it must not be indexed. */
export type LoadDocument = (tenantId: string, id: string) => Promise<SearchDocument | undefined>;

export interface MessageKey {
  tenantId: string;
  id: string;
}

/** Messages (catalog row + body) loaded in parallel by a projector. */
const LOAD_CONCURRENCY = 16;

/** The messages named by `message.*` events, each once, in first-seen order. */
export function messageKeys(events: readonly OutboxRecord[], seen = new Set<string>()): MessageKey[] {
  const out: MessageKey[] = [];
  for (const e of events) {
    if (!e.type.startsWith("message.")) continue;
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
 * Re-apply every message the outbox names, from its start, then move `consumer`'s cursor to the
 * end. Returns the number of messages applied.
 */
export async function replayOutbox(
  catalog: Catalog,
  consumer: string,
  apply: (messages: MessageKey[]) => Promise<void>,
): Promise<number> {
  const seen = new Set<string>();
  let cursor: string | undefined;
  let n = 0;
  for (;;) {
    const events = await catalog.readOutbox(cursor, 1000);
    if (events.length === 0) break;
    const batch = messageKeys(events, seen);
    await apply(batch);
    n += batch.length;
    cursor = (events.at(-1) as OutboxRecord).cursor;
  }
  if (cursor !== undefined) await catalog.setConsumerCursor(consumer, cursor);
  return n;
}
