/**
 * Streaming an object to the client (API-4): Range (one range; RFC 9110 §14), conditional GET,
 * and the headers `Content-Length`, `Content-Type`, `ETag`, `Accept-Ranges`, `Content-Range`.
 * A body that fails its checksum mid-stream destroys the connection (Fastify does this when the
 * stream errors after the headers went out), so the client never sees a clean end (BLOB-3).
 * The checksum is known only at the end of the stream, so the last chunk is held back until the
 * source has ended cleanly: otherwise the client would have every byte `Content-Length`
 * promised, and a complete response, before the failure.
 */
import { Readable } from "node:stream";
import type { FastifyReply } from "fastify";
import { KuraError } from "../core/errors.js";

export interface ByteRangeRequest {
  start: number;
  end: number;
}

/**
 * The single byte range a `Range` header asks for within an object of `size` bytes.
 * Undefined when there is no header or it should be ignored (malformed, several ranges, not
 * bytes): the whole object is sent. Throws RANGE_NOT_SATISFIABLE (416) when it lies beyond the end.
 */
export function parseRange(header: string | undefined, size: number): ByteRangeRequest | undefined {
  if (header === undefined) return undefined;
  const m = /^bytes=(\d{0,15})-(\d{0,15})$/.exec(header.trim());
  if (!m) return undefined;
  const [, a = "", b = ""] = m;
  const unsatisfiable = () =>
    new KuraError("RANGE_NOT_SATISFIABLE", `range ${header.slice(0, 60)} is beyond the ${size}-byte object`, {
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
  const end = b === "" ? size - 1 : Number(b);
  if (end < start) return undefined;
  if (start >= size) throw unsatisfiable();
  return { start, end: Math.min(end, size - 1) };
}

export interface ObjectHeaders {
  size: number;
  contentType: string;
  etag: string | undefined;
  lastModified: string | undefined;
}

/** True when `If-None-Match` names the current ETag (or `*`): answer 304. */
export function notModified(ifNoneMatch: string | undefined, etag: string | undefined): boolean {
  if (!ifNoneMatch || !etag) return false;
  if (ifNoneMatch.trim() === "*") return true;
  const bare = etag.replace(/^W\//, "");
  return ifNoneMatch.split(",").some((t) => t.trim().replace(/^W\//, "") === bare);
}

export function setObjectHeaders(reply: FastifyReply, info: ObjectHeaders): void {
  reply.header("content-type", info.contentType);
  reply.header("accept-ranges", "bytes");
  if (info.etag) reply.header("etag", info.etag);
  if (info.lastModified) reply.header("last-modified", new Date(info.lastModified).toUTCString());
}

/** Send a body (whole or a range) with its headers; the stream's errors abort the response. */
export function sendBody(
  reply: FastifyReply,
  info: ObjectHeaders,
  body: Readable,
  range: { start: number; end: number } | undefined,
): FastifyReply {
  setObjectHeaders(reply, info);
  if (range) {
    reply.code(206);
    reply.header("content-range", `bytes ${range.start}-${range.end}/${info.size}`);
    reply.header("content-length", range.end - range.start + 1);
  } else {
    reply.code(200);
    reply.header("content-length", info.size);
  }
  return reply.send(Readable.from(holdLastChunk(body), { objectMode: false }));
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
