/**
 * Serving a stored body (an object, a session file, a presigned download) to the client: the
 * ONE helper every body-serving route uses (`serveBody`), so conditional requests, ranges and
 * the protective headers cannot differ between routes (API-4, RFC 9110 §13–14).
 *
 * - Preconditions in RFC 9110 §13.2.2 order: `If-Match` (strong compare, `*` = exists) else
 *   `If-Unmodified-Since` → 412 PRECONDITION_FAILED; then `If-None-Match` (weak compare) else
 *   `If-Modified-Since` → 304 (GET and HEAD).
 * - One byte range (`Range: bytes=a-b`, `a-`, `-n`). A range that starts at or beyond the end
 *   (or a suffix of 0 bytes, or any range of an empty body) → 416, whose `Content-Range` names the size.
 *   Several ranges, malformed ranges and other units are ignored: the whole body is sent (200),
 *   as RFC 9110 §14.2 allows; Kura never sends multipart/byteranges.
 * - `If-Range`: the range applies only when the validator names the current representation (a
 *   strong ETag, or an HTTP-date equal to Last-Modified); otherwise the whole body is sent (200),
 *   so a resuming client never splices two versions.
 * - Every served body carries `Content-Security-Policy: sandbox`; a type that a browser would run
 *   (HTML, SVG, XML, JavaScript, anything not on the inert list) is sent as
 *   `Content-Disposition: attachment` with a safe filename (RFC 6266 / RFC 8187). The server adds
 *   `X-Content-Type-Options: nosniff` to every response (server.ts).
 *
 * A body that fails its checksum mid-stream destroys the connection (Fastify does this when the
 * stream errors after the headers went out), so the client never sees a clean end (BLOB-3).
 * The checksum is known only at the end of the stream, so the last chunk is held back until the
 * source has ended cleanly: otherwise the client would have every byte `Content-Length`
 * promised, and a complete response, before the failure.
 */
import { Readable } from "node:stream";
import type { FastifyReply, FastifyRequest } from "fastify";
import { KuraError } from "../core/errors.js";
import { type HeaderSpec, type ResponseSpec, SENT } from "./route.js";

const ENTITY_TAG = "The body's entity tag (its SHA-256, quoted)";

/** The conditional headers `serveBody` reads, for GET and HEAD alike (RFC 9110 §13.2.2 order). */
const CONDITIONAL: Record<string, HeaderSpec> = {
  "If-Match": { description: "Entity tags (strong comparison) or *: otherwise 412 PRECONDITION_FAILED" },
  "If-Unmodified-Since": {
    description: "An HTTP-date, read without If-Match: changed since → 412 PRECONDITION_FAILED",
  },
  "If-None-Match": { description: "Entity tags (weak comparison) or *: a match → 304" },
  "If-Modified-Since": { description: "An HTTP-date, read without If-None-Match: unchanged since → 304" },
};

/**
 * The request headers `serveBody` reads: a route that serves a body through it declares these
 * (`headers`), so its OpenAPI operation lists them.
 */
export function servedBodyHeaders(method: "GET" | "HEAD"): Record<string, HeaderSpec> {
  if (method === "HEAD") return CONDITIONAL;
  return {
    ...CONDITIONAL,
    Range: {
      description:
        "One byte range (bytes=a-b, a- or -n) → 206; several, or a malformed one, → the whole body (200)",
    },
    "If-Range": {
      description:
        "An entity tag or HTTP-date: the range applies only if it names the current body, else the whole body (200)",
    },
  };
}

/** The headers of every body `serveBody` sends (200, 206, HEAD). */
const BODY_HEADERS: Record<string, string> = {
  ETag: ENTITY_TAG,
  "Last-Modified": "When the body was stored (HTTP-date)",
  "Accept-Ranges": "bytes",
  "Content-Disposition":
    "attachment; filename=… for types a browser would run (HTML, SVG, XML, JavaScript, PDF, unknown types)",
};

/**
 * The responses `serveBody` gives, with the headers it sends: a route that serves a body
 * through it declares these next to its own (a 403, a 404).
 */
export function servedBodyResponses(method: "GET" | "HEAD"): Record<number, ResponseSpec> {
  const notModified: ResponseSpec = {
    description: "If-None-Match matched, or not modified since If-Modified-Since (no body)",
    headers: BODY_HEADERS,
  };
  const failed: ResponseSpec = {
    description: "If-Match or If-Unmodified-Since does not hold (PRECONDITION_FAILED)",
  };
  if (method === "HEAD") {
    return {
      200: { description: "The body's headers (no body)", headers: BODY_HEADERS },
      304: notModified,
      412: failed,
    };
  }
  return {
    200: { description: "The bytes", raw: "application/octet-stream", headers: BODY_HEADERS },
    206: {
      description: "The requested range",
      raw: "application/octet-stream",
      headers: { ...BODY_HEADERS, "Content-Range": "bytes first-last/size" },
    },
    304: notModified,
    412: failed,
    416: {
      description: "The range starts at or beyond the end (RANGE_NOT_SATISFIABLE)",
      headers: { "Content-Range": "bytes */size" },
    },
  };
}

export interface ByteRangeRequest {
  start: number;
  end: number;
}

/**
 * The single byte range a `Range` header asks for within a body of `size` bytes.
 * Undefined when there is no header or it is ignored (malformed, several ranges, not bytes,
 * last < first): the whole body is sent. Throws RANGE_NOT_SATISFIABLE (416) when the range
 * starts at or beyond the end, asks for a 0-byte suffix, or the body is empty.
 */
export function parseRange(header: string | undefined, size: number): ByteRangeRequest | undefined {
  if (header === undefined) return undefined;
  const m = /^bytes=(\d{0,15})-(\d{0,15})$/.exec(header.trim());
  if (!m) return undefined;
  const [, a = "", b = ""] = m;
  const unsatisfiable = () =>
    new KuraError("RANGE_NOT_SATISFIABLE", `range ${header.slice(0, 60)} is beyond the ${size}-byte body`, {
      operation: "http.range",
      context: { size },
    });
  if (a === "" && b === "") return undefined;
  if (a === "") {
    const n = Number(b);
    if (n === 0 || size === 0) throw unsatisfiable();
    return { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(a);
  if (b !== "" && Number(b) < start) return undefined; // invalid range-spec: ignore the header
  if (start >= size) throw unsatisfiable();
  return { start, end: b === "" ? size - 1 : Math.min(Number(b), size - 1) };
}

/** What the headers say about a stored body. */
export interface BodyInfo {
  size: number;
  contentType: string;
  /** Quoted entity tag (`"…"`), strong unless it starts with `W/`. */
  etag: string | undefined;
  /** ISO time or Date of the last change. */
  lastModified: string | Date | undefined;
}

/** Where a served body comes from. */
export interface BodySource {
  /** The body's metadata without its bytes (asked only when the request is conditional or ranged). */
  info(): Promise<BodyInfo>;
  /** The bytes (or a range of them) with the metadata of exactly the version they belong to. */
  open(range: ByteRangeRequest | undefined): Promise<{
    info: BodyInfo;
    body: Readable;
    range?: ByteRangeRequest | undefined;
  }>;
  /** The name a download is saved as (the key's last segment); default "download". */
  filename?: string;
}

/** What a GET or HEAD should answer, from the request's headers and the current representation. */
export type BodyDecision = { status: 304 } | { status: 200 } | { status: 206; range: ByteRangeRequest };

const CONDITIONAL_HEADERS = ["if-match", "if-none-match", "if-modified-since", "if-unmodified-since"];

/** True when the request needs the representation's metadata before its bytes. */
function isConditional(req: FastifyRequest): boolean {
  return req.headers.range !== undefined || CONDITIONAL_HEADERS.some((h) => req.headers[h] !== undefined);
}

function entityTags(header: string): string[] {
  return header
    .split(",")
    .map((t) => t.trim())
    .filter(Boolean);
}

/** RFC 9110 §8.8.3.2: strong comparison — both tags strong and identical. */
function strongMatch(a: string, b: string): boolean {
  return !a.startsWith("W/") && !b.startsWith("W/") && a === b;
}

/** Weak comparison: identical once any `W/` is dropped. */
function weakMatch(a: string, b: string): boolean {
  return a.replace(/^W\//, "") === b.replace(/^W\//, "");
}

/** Seconds since the epoch of an HTTP-date, or undefined when it is not one. */
function httpDate(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const ms = Date.parse(value);
  return Number.isFinite(ms) ? Math.floor(ms / 1000) : undefined;
}

function lastModifiedSeconds(info: BodyInfo): number | undefined {
  if (info.lastModified === undefined) return undefined;
  const ms = new Date(info.lastModified).getTime();
  return Number.isFinite(ms) ? Math.floor(ms / 1000) : undefined;
}

function preconditionFailed(header: string): KuraError {
  return new KuraError("PRECONDITION_FAILED", `${header} does not hold for the current version`, {
    operation: "http.conditional",
  });
}

/**
 * The answer to a GET (or HEAD) of a body described by `info`, in RFC 9110 §13.2.2 order.
 * Throws PRECONDITION_FAILED (412) or RANGE_NOT_SATISFIABLE (416).
 */
export function decide(headers: FastifyRequest["headers"], method: string, info: BodyInfo): BodyDecision {
  const one = (name: string) => {
    const v = headers[name];
    return Array.isArray(v) ? v.join(", ") : v;
  };
  const modified = lastModifiedSeconds(info);
  const ifMatch = one("if-match");
  if (ifMatch !== undefined) {
    const tags = entityTags(ifMatch);
    const ok =
      tags.includes("*") ||
      (info.etag !== undefined && tags.some((t) => strongMatch(t, info.etag as string)));
    if (!ok) throw preconditionFailed("If-Match");
  } else {
    const since = httpDate(one("if-unmodified-since"));
    if (since !== undefined && modified !== undefined && modified > since) {
      throw preconditionFailed("If-Unmodified-Since");
    }
  }
  const ifNoneMatch = one("if-none-match");
  if (ifNoneMatch !== undefined) {
    const tags = entityTags(ifNoneMatch);
    if (
      tags.includes("*") ||
      (info.etag !== undefined && tags.some((t) => weakMatch(t, info.etag as string)))
    ) {
      return { status: 304 };
    }
  } else {
    const since = httpDate(one("if-modified-since"));
    if (since !== undefined && modified !== undefined && modified <= since) return { status: 304 };
  }
  if (method !== "GET") return { status: 200 };
  const rangeHeader = one("range");
  if (rangeHeader === undefined) return { status: 200 };
  const ifRange = one("if-range")?.trim();
  if (ifRange !== undefined) {
    const current =
      ifRange.startsWith('"') || ifRange.startsWith("W/")
        ? info.etag !== undefined && strongMatch(ifRange, info.etag)
        : // An HTTP-date validator: only an exact match of Last-Modified (RFC 9110 §13.1.5).
          httpDate(ifRange) !== undefined && httpDate(ifRange) === modified;
    if (!current) return { status: 200 };
  }
  const range = parseRange(rangeHeader, info.size);
  return range ? { status: 206, range } : { status: 200 };
}

/**
 * Media types a browser shows without running anything: served inline. Everything else (HTML,
 * SVG, XML, JavaScript, PDF, unknown types) is served as an attachment.
 */
const INERT_TYPES = new Set([
  "text/plain",
  "text/csv",
  "application/json",
  "application/octet-stream",
  "image/png",
  "image/jpeg",
  "image/gif",
  "image/webp",
  "image/avif",
  "image/bmp",
]);

/** True when a browser would render `contentType` as an active document (scripts, markup). */
export function isActiveType(contentType: string): boolean {
  const bare = (contentType.split(";")[0] ?? "").trim().toLowerCase();
  if (INERT_TYPES.has(bare)) return false;
  if (bare.startsWith("audio/") || bare.startsWith("video/")) return false;
  return true;
}

/**
 * `attachment; filename="…"; filename*=UTF-8''…` (RFC 6266, RFC 8187): the ASCII fallback
 * keeps printable characters other than `"`, `\` and `%`; the extended form carries the name.
 */
export function attachmentDisposition(name: string): string {
  const clean =
    Array.from(name.toWellFormed())
      .slice(0, 200)
      .map((c) => (c < " " || c === "\u007f" || c === "/" || c === "\\" ? "_" : c))
      .join("") || "download";
  const ascii = clean.replace(/[^\x20-\x7e]|["\\%]/g, "_");
  const extended = encodeURIComponent(clean).replace(
    /['()*!]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
  return `attachment; filename="${ascii}"; filename*=UTF-8''${extended}`;
}

/** The headers of a body response (200, 206, 304 and HEAD alike). */
function setBodyHeaders(reply: FastifyReply, info: BodyInfo, filename: string | undefined): void {
  reply.header("content-type", info.contentType);
  reply.header("accept-ranges", "bytes");
  if (info.etag) reply.header("etag", info.etag);
  if (info.lastModified !== undefined) {
    reply.header("last-modified", new Date(info.lastModified).toUTCString());
  }
  reply.header("content-security-policy", "sandbox");
  if (isActiveType(info.contentType)) {
    reply.header("content-disposition", attachmentDisposition(filename ?? "download"));
  }
}

/** The last segment of a key or path: the name a download is saved as. */
export function filenameOf(key: string): string {
  return key.slice(key.lastIndexOf("/") + 1);
}

/** Versions differ when their ETags (or sizes) do: a range of one must not be served as the other. */
function sameVersion(a: BodyInfo, b: BodyInfo): boolean {
  return a.etag === b.etag && a.size === b.size;
}

/**
 * Answer a GET or HEAD for a stored body: preconditions, range, protective headers, then the
 * bytes (streamed). A plain GET opens the body directly; a conditional or ranged one reads the
 * metadata first and, should the body change before it is opened, decides again.
 */
export async function serveBody(
  req: FastifyRequest,
  reply: FastifyReply,
  source: BodySource,
): Promise<typeof SENT> {
  const head = req.method === "HEAD";
  if (!head && !isConditional(req)) {
    const got = await source.open(undefined);
    send(reply, got.info, source.filename, got.body, undefined);
    return SENT;
  }
  for (let attempt = 1; ; attempt++) {
    const info = await source.info();
    const decision = decide(req.headers, req.method, info);
    if (decision.status === 304) {
      setBodyHeaders(reply, info, source.filename);
      reply.code(304).send();
      return SENT;
    }
    if (head) {
      setBodyHeaders(reply, info, source.filename);
      reply.header("content-length", info.size);
      reply.code(200).send();
      return SENT;
    }
    const range = decision.status === 206 ? decision.range : undefined;
    // After a few changes in between, serve the whole of whatever version opens: always coherent.
    const got = await source.open(attempt < 3 ? range : undefined);
    if (attempt >= 3 || sameVersion(info, got.info)) {
      const served = attempt < 3 && range ? (got.range ?? range) : undefined;
      send(reply, got.info, source.filename, got.body, served);
      return SENT;
    }
    got.body.destroy();
  }
}

function send(
  reply: FastifyReply,
  info: BodyInfo,
  filename: string | undefined,
  body: Readable,
  range: ByteRangeRequest | undefined,
): void {
  setBodyHeaders(reply, info, filename);
  if (range) {
    reply.code(206);
    reply.header("content-range", `bytes ${range.start}-${range.end}/${info.size}`);
    reply.header("content-length", range.end - range.start + 1);
  } else {
    reply.code(200);
    reply.header("content-length", info.size);
  }
  reply.send(Readable.from(holdLastChunk(body), { objectMode: false }));
}

/** Yields the chunks of `source` one behind, releasing the last only once `source` ended without error. */
async function* holdLastChunk(source: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  let held: Buffer | undefined;
  for await (const chunk of source) {
    if (held !== undefined) yield held;
    held = chunk;
  }
  if (held !== undefined) yield held;
}
