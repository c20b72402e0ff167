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

/** What a body read fails with when the body is gone or its bytes are not those written. */
const UNREADABLE_BODY: ReadonlySet<string> = new Set([
  "BLOB_NOT_FOUND",
  "BLOB_CHECKSUM_MISMATCH",
  "BLOB_METADATA_CORRUPT",
  "BODY_MISSING",
  "BODY_CORRUPT",
]);

export function messageDocumentLoader(
  catalog: Catalog,
  readContent: (row: MessageRow) => Promise<IndexableContent>,
  clock: () => number,
): LoadDocument {
  // A body lost or damaged (kura fsck reports it; reads answer BODY_MISSING / BODY_CORRUPT)
  // leaves the row's preview as the text indexed: the message stays findable by what the
  // catalog still holds, and the projection never stalls on it.
  const readBody = async (row: MessageRow): Promise<IndexableContent> => {
    try {
      return await readContent(row);
    } catch (e) {
      if (e instanceof KuraError && UNREADABLE_BODY.has(e.code)) return row.preview;
      throw e;
    }
  };
  return async (tenantId, id) => {
    // The row comes from the catalog, never from a hot-message cache: a projector may run
    // before a writer has evicted a stale cache entry.
    const row = await catalog.getMessage(tenantId, id);
    if (!row || !isLive(row, clock())) return undefined;
    try {
      const content = await readBody(row);
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
