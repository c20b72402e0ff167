/**
 * Mail in the full-text index (MAIL-1, SRCH-1): a stored mail message is a document of its
 * tenant with the mailbox as its chat and the role `~mail` (no message role can be that: roles
 * start with a letter), holding the row's derived text — subject, addresses and text body. The
 * search projector applies `mail.*` events by the mail row's current state, like messages:
 * indexed while the row exists, removed once it is gone.
 */
import type { Catalog, MessageKey, OutboxRecord } from "../ports/catalog.js";
import type { SearchDocument } from "../ports/search-index.js";

/** The role of mail documents in the full-text index. */
export const MAIL_ROLE = "~mail";

/** Events that change nothing the index holds (flags live in the catalog only). */
const UNCHANGED = new Set(["mail.flags"]);

/** The mail messages named by `mail.*` events, each once, in first-seen order. */
export function mailKeys(events: readonly OutboxRecord[]): MessageKey[] {
  const seen = new Set<string>();
  const out: MessageKey[] = [];
  for (const e of events) {
    if (!e.type.startsWith("mail.") || UNCHANGED.has(e.type)) continue;
    const key = `${e.tenantId}\u0000${e.entityId}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ tenantId: e.tenantId, id: e.entityId });
  }
  return out;
}

/** A mail message's document, or undefined when it is gone (deleted). */
export function mailDocumentLoader(
  catalog: Pick<Catalog, "getMail">,
): (tenantId: string, id: string) => Promise<SearchDocument | undefined> {
  return async (tenantId, id) => {
    const row = await catalog.getMail(tenantId, id);
    if (!row) return undefined;
    return {
      tenantId,
      id,
      chatId: row.mailboxId,
      role: MAIL_ROLE,
      createdAt: row.receivedAt,
      text: row.searchText,
    };
  };
}
