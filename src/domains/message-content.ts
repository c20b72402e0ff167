/**
 * Message content rules (MSG-1, MSG-3): validation, the size that counts against the limit,
 * and the preview. Pure functions.
 */
import { KuraError } from "../core/errors.js";
import { assertStorableValue } from "../core/values.js";

export type ContentPart = { type: "text"; text: string } | { type: "image_url"; image_url: { url: string } };

export type MessageContent = string | ContentPart[];

export interface AppendInput {
  role: string;
  content: MessageContent;
  /** MIME type of the content; default `text/plain` for strings, `application/json` for parts. */
  contentType?: string;
  metadata?: Record<string, unknown>;
  /** The message expires (and is purged) this many seconds after creation. */
  ttlSeconds?: number;
  /** A retried append with the same key returns the first result (MSG-1). */
  idempotencyKey?: string;
}

/** http(s) image URLs up to this size are not counted (seed 000); `data:` URLs always are. */
export const FREE_IMAGE_URL_BYTES = 2048;
export const PREVIEW_CHARS = 200;
const MAX_METADATA_BYTES = 16 * 1024;
const MAX_PARTS = 1000;
const ROLE = /^[a-z][a-z0-9_-]{0,31}$/;
const MIME = /^[a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.+-]+(;.{0,200})?$/i;
const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,256}$/;
const MAX_TTL_SECONDS = 10 * 366 * 24 * 3600;

function invalid(message: string, context: Record<string, unknown> = {}): KuraError {
  return new KuraError("MESSAGE_INVALID", message, { operation: "messages.append", context });
}

/** Checks everything but the size; returns the normalised content type. */
export function validateAppend(input: AppendInput): { contentType: string } {
  if (typeof input !== "object" || input === null) throw invalid("message must be an object");
  if (typeof input.role !== "string" || !ROLE.test(input.role)) {
    throw invalid(`role must match ${ROLE.source}`, { role: String(input.role).slice(0, 40) });
  }
  validateContent(input.content);
  const contentType =
    input.contentType ?? (typeof input.content === "string" ? "text/plain" : "application/json");
  if (typeof contentType !== "string" || !MIME.test(contentType))
    throw invalid("contentType must be a MIME type");
  if (input.metadata !== undefined) validateMetadata(input.metadata);
  if (
    input.ttlSeconds !== undefined &&
    (!Number.isSafeInteger(input.ttlSeconds) || input.ttlSeconds < 1 || input.ttlSeconds > MAX_TTL_SECONDS)
  ) {
    throw invalid(`ttlSeconds must be an integer from 1 to ${MAX_TTL_SECONDS}`);
  }
  if (
    input.idempotencyKey !== undefined &&
    (typeof input.idempotencyKey !== "string" || !IDEMPOTENCY_KEY.test(input.idempotencyKey))
  ) {
    throw invalid("idempotencyKey must be 1–256 printable ASCII characters");
  }
  return { contentType };
}

export function validateContent(content: unknown): asserts content is MessageContent {
  if (typeof content === "string") {
    if (content.length === 0) throw invalid("content must not be empty");
    assertStorableValue(content, "message content", "messages.append");
    return;
  }
  if (!Array.isArray(content)) throw invalid("content must be a string or an array of parts");
  if (content.length === 0) throw invalid("content must have at least one part");
  if (content.length > MAX_PARTS) throw invalid(`content may have at most ${MAX_PARTS} parts`);
  content.forEach((part: unknown, i) => {
    const p = part as { type?: unknown; text?: unknown; image_url?: { url?: unknown } };
    if (typeof p !== "object" || p === null) throw invalid(`part ${i} must be an object`);
    if (p.type === "text") {
      if (typeof p.text !== "string") throw invalid(`part ${i}: text must be a string`);
      assertStorableValue(p.text, `part ${i} of the message content`, "messages.append");
      if (Object.keys(p).length !== 2) throw invalid(`part ${i}: unexpected fields`);
    } else if (p.type === "image_url") {
      const url = p.image_url?.url;
      if (typeof url !== "string" || !/^(https?:\/\/|data:)/i.test(url)) {
        throw invalid(`part ${i}: image_url.url must be an http(s) or data: URL`);
      }
      assertStorableValue(url, `part ${i}'s image_url.url`, "messages.append");
    } else {
      throw invalid(`part ${i}: type must be "text" or "image_url"`);
    }
  });
  if (!content.some((p) => (p.type === "text" ? p.text.length > 0 : true)))
    throw invalid("content must not be empty");
}

function validateMetadata(metadata: unknown): void {
  if (typeof metadata !== "object" || metadata === null || Array.isArray(metadata))
    throw invalid("metadata must be an object");
  assertStorableValue(metadata, "message metadata", "messages.append");
  let json: string;
  try {
    json = JSON.stringify(metadata);
  } catch {
    throw invalid("metadata must be JSON-serialisable");
  }
  if (Buffer.byteLength(json) > MAX_METADATA_BYTES)
    throw invalid(`metadata must be at most ${MAX_METADATA_BYTES} bytes of JSON`);
}

/** The bytes that count against the limit (MSG-3). */
export function countedBytes(content: MessageContent): number {
  if (typeof content === "string") return Buffer.byteLength(content, "utf8");
  let total = 0;
  for (const part of content) {
    if (part.type === "text") total += Buffer.byteLength(part.text, "utf8");
    else {
      const bytes = Buffer.byteLength(part.image_url.url, "utf8");
      const free = /^https?:\/\//i.test(part.image_url.url) && bytes <= FREE_IMAGE_URL_BYTES;
      if (!free) total += bytes;
    }
  }
  return total;
}

export function assertWithinLimit(content: MessageContent, limit: number, operation: string): number {
  const size = countedBytes(content);
  if (size > limit) {
    throw new KuraError("MESSAGE_TOO_LARGE", `message content is ${size} bytes; the limit is ${limit}`, {
      operation,
      context: { size, limit },
    });
  }
  return size;
}

/** The first 200 characters (code points) of the text, never splitting a surrogate pair. */
export function previewOf(content: MessageContent): string {
  const text =
    typeof content === "string"
      ? content
      : content
          .map((p) => (p.type === "text" ? p.text : ""))
          .filter(Boolean)
          .join("\n");
  if (text.length <= PREVIEW_CHARS) return text;
  let out = "";
  let n = 0;
  for (const ch of text) {
    if (n++ === PREVIEW_CHARS) break;
    out += ch;
  }
  return out;
}
