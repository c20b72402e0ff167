/**
 * Reading a delivered RFC 5322 message (MAIL-1): what Kura indexes of it and what was wrong
 * with it. Decoding is mailparser's (MIME, quoted-printable, base64, RFC 2047 encoded words,
 * ISO-2022-JP / Shift_JIS / EUC-JP / UTF-8 through iconv-lite); this file decides what is
 * refused (nothing a mail server would accept) and what is stored with a problem noted.
 */
import { type AddressObject, type ParsedMail, simpleParser } from "mailparser";
import { KuraError } from "../core/errors.js";
import type { MailAddress } from "../ports/mail-catalog.js";

/** An attachment as parsed, before it is stored. */
export interface ParsedAttachment {
  content: Buffer;
  filename: string | null;
  contentType: string;
  disposition: string;
  contentId: string | null;
}

export interface ParsedMailFacts {
  headerMessageId: string | null;
  subject: string | null;
  from: MailAddress | null;
  to: MailAddress[];
  cc: MailAddress[];
  sentAt: number | null;
  inReplyTo: string | null;
  references: string[];
  headers: Record<string, string>;
  attachments: ParsedAttachment[];
  problems: string[];
  /** Subject, addresses and text body, for the full-text index. */
  searchText: string;
}

/** The most text of one message the full-text index holds. */
const MAX_SEARCH_TEXT = 65_536;
/** Header fields kept decoded in the row (the envelope's own fields are columns). */
const MAX_HEADER_VALUE = 2_000;
const MAX_HEADERS = 100;
/** Attachments extracted per message; the rest stay in the raw message only (a problem noted). */
export const MAX_ATTACHMENTS = 500;
/** A content type safe to send back as a header; anything else is served as octets. */
const MIME = /^[A-Za-z0-9!#$&^_.+-]{1,127}\/[A-Za-z0-9!#$&^_.+-]{1,127}$/;
/** Longest subject, address name or address kept in the row. */
const MAX_FIELD = 2_000;
/** A header field line: a name of printable characters but the colon, then a colon (RFC 5322 §2.2). */
const FIELD = /^[!-9;-~]+[ \t]*:/;

function unparseable(why: string): KuraError {
  return new KuraError("MAIL_UNPARSEABLE", `not an RFC 5322 message: ${why}; nothing was stored`, {
    operation: "mail.store",
    context: { reason: why },
  });
}

/**
 * Refuses what cannot be a message at all: an empty body, or one whose first line (after an
 * mbox `From ` line) is not a header field and that has no blank line separating a header.
 */
export function checkShape(raw: Buffer): void {
  if (raw.length === 0 || raw.toString("latin1").trim() === "") throw unparseable("the body is empty");
  const text = raw.subarray(0, Math.min(raw.length, 64 * 1024)).toString("latin1");
  const lines = text.split(/\r?\n/);
  let first = lines[0] ?? "";
  if (first.startsWith("From ")) first = lines[1] ?? "";
  const separated = /\r?\n\r?\n/.test(text);
  if (!FIELD.test(first)) {
    throw unparseable(
      separated
        ? "it does not begin with a header field"
        : "it has no header field and no header/body separator",
    );
  }
}

const stripAngles = (id: string): string => id.trim().replace(/^<+/, "").replace(/>+$/, "");

function idList(v: string | string[] | undefined): string[] {
  if (v === undefined) return [];
  const all = (Array.isArray(v) ? v : [v]).flatMap((s) => s.split(/[\s,]+/));
  return all.map(stripAngles).filter((s) => s !== "" && s.length <= 998);
}

function addresses(v: AddressObject | AddressObject[] | undefined): MailAddress[] {
  if (v === undefined) return [];
  const out: MailAddress[] = [];
  for (const obj of Array.isArray(v) ? v : [v]) {
    for (const a of obj.value) {
      const one = (x: { name?: string; address?: string }) =>
        out.push({
          name: (x.name ?? "").slice(0, MAX_FIELD),
          address: (x.address ?? "").slice(0, MAX_FIELD),
        });
      if (a.group) for (const g of a.group) one(g);
      else one(a);
    }
  }
  return out;
}

/** The charsets named anywhere in the message that no decoder knows. */
function unknownCharsets(raw: Buffer): string[] {
  const text = raw.toString("latin1");
  const found = new Set<string>();
  for (const m of text.matchAll(/charset\s*=\s*"?([A-Za-z0-9_.:+-]{1,64})/gi))
    found.add((m[1] as string).toLowerCase());
  for (const m of text.matchAll(/=\?([A-Za-z0-9_.:+-]{1,64})(\*[A-Za-z-]+)?\?[BbQq]\?/g))
    found.add((m[1] as string).toLowerCase());
  const unknown: string[] = [];
  for (const cs of found) {
    try {
      new TextDecoder(cs);
    } catch {
      unknown.push(cs);
    }
  }
  return unknown;
}

/** An encoded word mailparser left as it was (bad base64, unknown charset, cut short). */
const LEFT_ENCODED = /=\?[^?\s]+\?[BbQq]\?[^?\s]*\?=/;

function headerText(v: unknown): string | undefined {
  if (typeof v === "string") return v;
  if (v instanceof Date) return Number.isNaN(v.getTime()) ? undefined : v.toISOString();
  if (v && typeof v === "object" && "text" in v && typeof (v as { text: unknown }).text === "string")
    return (v as { text: string }).text;
  if (v && typeof v === "object" && "value" in v && typeof (v as { value: unknown }).value === "string")
    return (v as { value: string }).value;
  if (Array.isArray(v))
    return v
      .map(headerText)
      .filter((s) => s !== undefined)
      .join(", ");
  return undefined;
}

function decodedHeaders(parsed: ParsedMail): Record<string, string> {
  const out: Record<string, string> = {};
  let n = 0;
  for (const [name, value] of parsed.headers) {
    if (n++ >= MAX_HEADERS) break;
    const text = headerText(value);
    if (text !== undefined) out[name] = text.slice(0, MAX_HEADER_VALUE);
  }
  return out;
}

/** Parse a delivered message; refuses only what `checkShape` refuses. */
export async function parseMail(raw: Buffer): Promise<ParsedMailFacts> {
  checkShape(raw);
  let parsed: ParsedMail;
  try {
    parsed = await simpleParser(raw, { skipHtmlToText: false, skipTextToHtml: true, skipImageLinks: true });
  } catch (e) {
    throw new KuraError(
      "MAIL_UNPARSEABLE",
      "not an RFC 5322 message: the parser gave up; nothing was stored",
      {
        operation: "mail.store",
        cause: e,
      },
    );
  }
  const problems: string[] = [];
  const headerDate = parsed.headers.get("date");
  let sentAt: number | null = null;
  if (headerDate === undefined) problems.push("missing-date");
  else if (!(parsed.date instanceof Date) || Number.isNaN(parsed.date.getTime()))
    problems.push("invalid-date");
  else sentAt = parsed.date.getTime();
  const messageId = parsed.messageId ? stripAngles(parsed.messageId) : "";
  if (messageId === "") problems.push("missing-message-id");
  if (parsed.headers.get("from") === undefined) problems.push("missing-from");
  const from = addresses(parsed.from)[0] ?? null;
  const to = addresses(parsed.to);
  const cc = addresses(parsed.cc);
  const subject = parsed.subject === undefined ? null : parsed.subject.slice(0, MAX_FIELD);
  const encodedLeft = [
    subject ?? "",
    from?.name ?? "",
    ...to.map((a) => a.name),
    ...cc.map((a) => a.name),
  ].some((s) => LEFT_ENCODED.test(s));
  if (encodedLeft) problems.push("broken-encoded-word");
  for (const cs of unknownCharsets(raw)) problems.push(`unknown-charset:${cs}`);
  if (parsed.attachments.length > MAX_ATTACHMENTS) problems.push("attachments-truncated");
  const attachments: ParsedAttachment[] = parsed.attachments.slice(0, MAX_ATTACHMENTS).map((a) => ({
    content: a.content,
    // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what goes
    filename: a.filename ? a.filename.replace(/[\u0000-\u001f\u007f]/g, "").slice(0, 255) : null,
    contentType: a.contentType && MIME.test(a.contentType) ? a.contentType : "application/octet-stream",
    disposition: a.contentDisposition === "inline" || a.related ? "inline" : "attachment",
    contentId: a.cid ? stripAngles(a.cid) : null,
  }));
  const body = parsed.text ?? (typeof parsed.html === "string" ? htmlText(parsed.html) : "");
  const addressText = [from, ...to, ...cc]
    .filter((a): a is MailAddress => a !== null)
    .map((a) => `${a.name} ${a.address}`)
    .join(" ");
  const searchText = [subject ?? "", addressText, body].join("\n").slice(0, MAX_SEARCH_TEXT);
  return {
    headerMessageId: messageId === "" ? null : messageId.slice(0, 998),
    subject,
    from,
    to,
    cc,
    sentAt,
    inReplyTo: idList(parsed.inReplyTo)[0] ?? null,
    references: idList(parsed.references).slice(0, 100),
    headers: decodedHeaders(parsed),
    attachments,
    problems,
    searchText,
  };
}

/** The text of an HTML body without a dependency: tags out, the common entities decoded. */
function htmlText(html: string): string {
  return html
    .replace(/<(script|style)[\s\S]*?<\/\1>/gi, " ")
    .replace(/<[^>]*>/g, " ")
    .replace(/&nbsp;/g, " ")
    .replace(/&lt;/g, "<")
    .replace(/&gt;/g, ">")
    .replace(/&quot;/g, '"')
    .replace(/&#(\d+);/g, (_, n: string) => String.fromCodePoint(Number(n)))
    .replace(/&amp;/g, "&")
    .replace(/\s+/g, " ")
    .trim();
}
