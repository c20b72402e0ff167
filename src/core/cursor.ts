/**
 * Opaque page cursors: base64url of a small JSON object whose tag fields (`k` for a listing's
 * kind, `s` for a store's scheme, …) say what made it. A cursor made by another listing, store or
 * query, or edited by hand, decodes to `undefined`, and the caller refuses it with
 * `CURSOR_INVALID` naming its own operation. One codec for every listing in Kura.
 */

/** Longer than any cursor Kura makes; bounds the work a hostile one can cause. */
const MAX_CURSOR_LENGTH = 2048;
const BASE64URL = /^[A-Za-z0-9_-]+$/;

export function encodeCursor(doc: Readonly<Record<string, unknown>>): string {
  return Buffer.from(JSON.stringify(doc), "utf8").toString("base64url");
}

/**
 * The cursor's fields if it is one `encodeCursor` made with every field of `tag` equal;
 * `undefined` for anything else (not base64url, not a JSON object, another tag).
 */
export function decodeCursor(
  cursor: unknown,
  tag: Readonly<Record<string, string | number>>,
): Record<string, unknown> | undefined {
  if (typeof cursor !== "string" || cursor.length > MAX_CURSOR_LENGTH || !BASE64URL.test(cursor))
    return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"));
  } catch {
    return undefined;
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) return undefined;
  const doc = parsed as Record<string, unknown>;
  for (const [field, value] of Object.entries(tag)) if (doc[field] !== value) return undefined;
  return doc;
}
