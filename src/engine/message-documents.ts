/**
 * What a message projector indexes: the message's current row and body turned into a
 * `SearchDocument`, or undefined when it must not be indexed (deleted, expired, gone). Shared by
 * the projectors on the event loop and those in the projection worker.
 */
import { KuraError } from "../core/errors.js";
import type { Catalog, MessageRow } from "../ports/catalog.js";
import { isLive } from "./message-rows.js";
import type { LoadDocument } from "./projection.js";

/** A message body's content: text, or parts of which the `text` ones are indexed. */
export type IndexableContent = string | readonly { type: string; text?: string }[];

export function messageDocumentLoader(
  catalog: Catalog,
  readContent: (row: MessageRow) => Promise<IndexableContent>,
  clock: () => number,
): LoadDocument {
  return async (tenantId, id) => {
    // The row comes from the catalog, never from a hot-message cache: a projector may run
    // before a writer has evicted a stale cache entry.
    const row = await catalog.getMessage(tenantId, id);
    if (!row || !isLive(row, clock())) return undefined;
    try {
      const content = await readContent(row);
      const text =
        typeof content === "string"
          ? content
          : content
              .map((p) => (p.type === "text" ? (p.text ?? "") : ""))
              .filter(Boolean)
              .join("\n");
      return { tenantId, id, chatId: row.chatId, role: row.role, createdAt: row.createdAt, text };
    } catch (e) {
      if (e instanceof KuraError && e.code === "MESSAGE_NOT_FOUND") return undefined;
      throw e;
    }
  };
}
