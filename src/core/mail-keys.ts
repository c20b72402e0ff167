/**
 * Where a mail message's bodies are stored (MAIL-1) and how a key is recognised as one:
 *
 *   `{tenant}/{mailbox}/{id}.eml`                      the raw message, as delivered
 *   `{tenant}/{mailbox}/{id}/attachments/{n}`          its attachments, decoded (n = 1, 2, …)
 *
 * A mailbox id is the key's second segment, so the segments Kura's other planes use there are
 * not mailbox ids: a mailbox called `uploads` would have its bodies swept with stale upload
 * parts, one called `sessions` would share a prefix with session files.
 */
import { isMessageId } from "./ids.js";
import { isValidId } from "./keys.js";

/**
 * Second key segments other planes own (`{tenant}/{segment}/…`): never a mailbox id. `archive`
 * is not among them: the lifecycle's archive keeps bodies under `archive/messages/` and
 * `archive/objects/`, which no mail key can be, so a mailbox may be called `archive`.
 */
export const RESERVED_KEY_SEGMENTS: ReadonlySet<string> = new Set([
  "messages",
  "objects",
  "sessions",
  "uploads",
  "multipart",
]);

export function mailBodyKey(tenantId: string, mailboxId: string, id: string): string {
  return `${tenantId}/${mailboxId}/${id}.eml`;
}

export function mailAttachmentKey(tenantId: string, mailboxId: string, id: string, n: number): string {
  return `${tenantId}/${mailboxId}/${id}/attachments/${n}`;
}

/** Whether a key has the shape of a mail body or attachment key (GC's candidates). */
export function isMailBodyKey(key: string): boolean {
  const parts = key.split("/");
  const [tenant, mailbox] = parts;
  if (!isValidId(tenant) || !isValidId(mailbox) || RESERVED_KEY_SEGMENTS.has(mailbox)) return false;
  if (parts.length === 3) {
    const name = parts[2] as string;
    return name.endsWith(".eml") && isMessageId(name.slice(0, -4));
  }
  return (
    parts.length === 5 &&
    isMessageId(parts[2]) &&
    parts[3] === "attachments" &&
    /^[1-9]\d{0,3}$/.test(parts[4] ?? "")
  );
}
