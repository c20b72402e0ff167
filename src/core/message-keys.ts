/**
 * Where a message version's body is stored, and the way back: which tenant, message and version
 * a body key names. The catalog keeps no ref row for a message body — the message and version
 * rows hold its key — so a reader that is given only a key (orphan GC, fsck) parses it here and
 * looks those rows up by their primary keys.
 *
 *   `{tenant}/messages/{yyyy}/{mm}/{dd}/{chat}/{id}.json`                version 1
 *   `{tenant}/messages/{yyyy}/{mm}/{dd}/{chat}/{id}.v{N}.{hex}.json`     version N ≥ 2 (a suffix per attempt)
 *   `{tenant}/archive/messages/…/{name}.a{hex}.json`                     the same, archived (LIFE-1)
 */
import { isMessageId } from "./ids.js";
import { isValidId } from "./keys.js";

/** A body key's tenant, message and version. */
export interface MessageBodyKey {
  tenantId: string;
  messageId: string;
  version: number;
}

function datePath(createdAt: number): string {
  const d = new Date(createdAt);
  const yyyy = String(d.getUTCFullYear()).padStart(4, "0");
  const mm = String(d.getUTCMonth() + 1).padStart(2, "0");
  const dd = String(d.getUTCDate()).padStart(2, "0");
  return `${yyyy}/${mm}/${dd}`;
}

/**
 * The key of a message version's body. Version 1 is named by the message id, fresh for every
 * append attempt; later versions carry `attempt` (random hex), so editors racing for the same
 * version number never write (or, when they lose, delete) the key the winner committed.
 */
export function messageBodyKey(options: {
  tenantId: string;
  chatId: string;
  id: string;
  createdAt: number;
  version: number;
  attempt: string;
}): string {
  const { tenantId, chatId, id, version, attempt } = options;
  const name = version === 1 ? `${id}.json` : `${id}.v${version}.${attempt}.json`;
  return `${tenantId}/messages/${datePath(options.createdAt)}/${chatId}/${name}`;
}

/**
 * `{tenant}/messages/…/{name}.json` → `{tenant}/archive/messages/…/{name}.a{attempt}.json`: the
 * path kept (dates, chat) and a suffix per attempt, so no two writers ever share the key.
 */
export function messageArchiveKey(blobKey: string, tenantId: string, attempt: string): string {
  const rest = blobKey.slice(tenantId.length + 1);
  const suffix = `.a${attempt}`;
  const named = rest.endsWith(".json") ? `${rest.slice(0, -5)}${suffix}.json` : `${rest}${suffix}`;
  return `${tenantId}/archive/${named}`;
}

const NAME = /^([0-9a-f-]{36})(?:\.v([1-9][0-9]{0,9})\.[0-9a-f]+)?(\.a[0-9a-f]+)?\.json$/;
const DATE = /^[0-9]{4}$|^[0-9]{2}$/;

/**
 * The tenant, message and version a body key names, or undefined if it is not a key
 * {@link messageBodyKey} or {@link messageArchiveKey} makes. Only a name: whether a row points
 * at the key is the catalog's to say (a failed attempt's key parses as well as the winner's).
 */
export function parseMessageBodyKey(key: string): MessageBodyKey | undefined {
  const parts = key.split("/");
  const archive = parts.length === 8 && parts[1] === "archive" && parts[2] === "messages";
  if (!archive && !(parts.length === 7 && parts[1] === "messages")) return undefined;
  const [tenantId, name] = [parts[0] as string, parts[parts.length - 1] as string];
  const at = archive ? 3 : 2;
  for (let i = at; i < at + 3; i++) if (!DATE.test(parts[i] as string)) return undefined;
  if (!isValidId(tenantId) || !isValidId(parts[at + 3])) return undefined;
  const m = NAME.exec(name);
  if (m === null || !isMessageId(m[1]) || (m[3] !== undefined) !== archive) return undefined;
  const version = m[2] === undefined ? 1 : Number(m[2]);
  if (version === 1 && m[2] !== undefined) return undefined;
  return { tenantId, messageId: m[1] as string, version };
}
