/**
 * An S3 request body as the bytes it carries, verified on the way (API-7): plain bodies against
 * the SHA-256 `x-amz-content-sha256` vouches for; `aws-chunked` bodies decoded, each chunk's
 * signature checked (STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]) or none
 * (STREAMING-UNSIGNED-PAYLOAD-TRAILER), trailers read (their signature checked when signed);
 * and `Content-MD5` / `x-amz-checksum-sha256` / `x-amz-checksum-crc32` (header or trailer)
 * against the bytes. A body that fails a check throws at its end, before the consumer sees it
 * end: the put it feeds fails and stores nothing.
 */
import { createHash } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { crc32 } from "node:zlib";
import { KuraError } from "../../core/errors.js";
import type { SignedRequest } from "./sigv4.js";

const EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
/** The largest aws-chunked chunk held in memory to check its signature. */
const MAX_CHUNK = 16 * 1024 * 1024;
const MAX_LINE = 8 * 1024;

export interface BodyPlan {
  /** The bytes' length when known (Content-Length, or x-amz-decoded-content-length). */
  size: number | undefined;
  body: AsyncIterable<Uint8Array>;
}

function digestMismatch(what: string): KuraError {
  return new KuraError("S3_DIGEST_MISMATCH", `The ${what} you specified did not match what we received.`, {
    operation: "s3.body",
  });
}

function contentShaMismatch(): KuraError {
  return new KuraError(
    "S3_CONTENT_SHA256_MISMATCH",
    "The provided 'x-amz-content-sha256' header does not match what was computed.",
    { operation: "s3.body" },
  );
}

function invalid(message: string): KuraError {
  return new KuraError("S3_REQUEST_INVALID", message, { operation: "s3.body" });
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** The checks on the decoded bytes: Content-MD5 and the x-amz-checksum-* values. */
class Checks {
  private readonly md5?: ReturnType<typeof createHash>;
  private readonly sha?: ReturnType<typeof createHash>;
  private crc = 0;
  private size = 0;

  constructor(
    private readonly expected: { md5?: string; sha256?: string; crc32?: string; contentSha256?: string },
    trailerNames: readonly string[],
  ) {
    if (expected.md5 !== undefined) this.md5 = createHash("md5");
    if (
      expected.sha256 !== undefined ||
      expected.contentSha256 !== undefined ||
      trailerNames.includes("x-amz-checksum-sha256")
    )
      this.sha = createHash("sha256");
  }

  update(chunk: Uint8Array): void {
    this.md5?.update(chunk);
    this.sha?.update(chunk);
    this.crc = crc32(chunk, this.crc);
    this.size += chunk.length;
  }

  finish(trailers: Record<string, string>): void {
    const sha = this.sha?.digest();
    if (this.expected.contentSha256 !== undefined && sha?.toString("hex") !== this.expected.contentSha256)
      throw contentShaMismatch();
    if (this.expected.md5 !== undefined && this.md5?.digest("base64") !== this.expected.md5)
      throw digestMismatch("Content-MD5");
    const sha256 = trailers["x-amz-checksum-sha256"] ?? this.expected.sha256;
    if (sha256 !== undefined && sha?.toString("base64") !== sha256)
      throw digestMismatch("x-amz-checksum-sha256");
    const crc = trailers["x-amz-checksum-crc32"] ?? this.expected.crc32;
    if (crc !== undefined) {
      const mine = Buffer.alloc(4);
      mine.writeUInt32BE(this.crc >>> 0);
      if (mine.toString("base64") !== crc) throw digestMismatch("x-amz-checksum-crc32");
    }
  }
}

/** Reads an aws-chunked body: yields the chunks' data, returns the trailers. */
async function* decodeChunked(
  source: AsyncIterable<Buffer>,
  signing: SignedRequest | undefined,
  checks: Checks,
  expectedSize: number | undefined,
): AsyncGenerator<Uint8Array, void> {
  const it = source[Symbol.asyncIterator]();
  let buf: Buffer = Buffer.alloc(0);
  let ended = false;
  const more = async (): Promise<boolean> => {
    if (ended) return false;
    const next = await it.next();
    if (next.done) {
      ended = true;
      return false;
    }
    buf = buf.length === 0 ? next.value : Buffer.concat([buf, next.value]);
    return true;
  };
  const line = async (): Promise<string> => {
    for (;;) {
      const at = buf.indexOf("\r\n");
      if (at >= 0) {
        const text = buf.subarray(0, at).toString("latin1");
        buf = buf.subarray(at + 2);
        return text;
      }
      if (buf.length > MAX_LINE) throw invalid("an aws-chunked chunk header is too long");
      if (!(await more())) throw invalid("the aws-chunked body ended early");
    }
  };
  let previous = signing?.seedSignature ?? "";
  let total = 0;
  for (;;) {
    const head = await line();
    const m = /^([0-9a-fA-F]{1,8})(?:;chunk-signature=([0-9a-f]{64}))?$/.exec(head);
    if (!m) throw invalid("malformed aws-chunked chunk header");
    const size = Number.parseInt(m[1] as string, 16);
    if (size > MAX_CHUNK) throw invalid("an aws-chunked chunk is larger than 16 MiB");
    while (buf.length < size + (size > 0 ? 2 : 0)) {
      if (!(await more())) throw invalid("the aws-chunked body ended early");
    }
    const data = buf.subarray(0, size);
    if (size > 0) {
      if (buf.subarray(size, size + 2).toString("latin1") !== "\r\n")
        throw invalid("malformed aws-chunked chunk");
      buf = buf.subarray(size + 2);
    }
    if (signing) {
      if (m[2] === undefined) throw contentShaMismatch();
      const toSign = [
        "AWS4-HMAC-SHA256-PAYLOAD",
        signing.longDate,
        signing.scope,
        previous,
        EMPTY_SHA256,
        createHash("sha256").update(data).digest("hex"),
      ].join("\n");
      if ((await signing.hmac(toSign)) !== m[2]) throw contentShaMismatch();
      previous = m[2];
    }
    if (size === 0) break;
    total += size;
    checks.update(data);
    yield Buffer.from(data);
  }
  // Trailers (`name:value` lines, then an empty line), or just the final CRLF.
  const trailers: Record<string, string> = {};
  const trailerLines: string[] = [];
  let trailerSignature: string | undefined;
  for (;;) {
    if (buf.length === 0 && !(await more())) break;
    const text = await line();
    if (text === "") break;
    const colon = text.indexOf(":");
    if (colon <= 0) throw invalid("malformed aws-chunked trailer");
    const name = text.slice(0, colon).trim().toLowerCase();
    const value = text.slice(colon + 1).trim();
    if (name === "x-amz-trailer-signature") trailerSignature = value;
    else {
      trailers[name] = value;
      trailerLines.push(`${name}:${value}\n`);
    }
  }
  if (signing?.payload.endsWith("-TRAILER") && trailerLines.length > 0) {
    const toSign = [
      "AWS4-HMAC-SHA256-TRAILER",
      signing.longDate,
      signing.scope,
      previous,
      createHash("sha256").update(trailerLines.join("")).digest("hex"),
    ].join("\n");
    if (trailerSignature === undefined || (await signing.hmac(toSign)) !== trailerSignature)
      throw contentShaMismatch();
  }
  if (expectedSize !== undefined && total !== expectedSize)
    throw invalid("the aws-chunked body's length is not x-amz-decoded-content-length");
  checks.finish(trailers);
}

async function* plain(source: AsyncIterable<Buffer>, checks: Checks): AsyncGenerator<Uint8Array, void> {
  for await (const chunk of source) {
    checks.update(chunk);
    yield chunk;
  }
  checks.finish({});
}

/** The request's body, decoded and verified as its headers and signature say. */
export function requestBody(req: IncomingMessage, signed: SignedRequest): BodyPlan {
  const payload = signed.payload;
  const md5 = header(req, "content-md5");
  const sha256 = header(req, "x-amz-checksum-sha256");
  const crc = header(req, "x-amz-checksum-crc32");
  const trailerNames = (header(req, "x-amz-trailer") ?? "")
    .split(",")
    .map((t) => t.trim().toLowerCase())
    .filter(Boolean);
  const streaming = payload.startsWith("STREAMING-");
  if (!streaming && payload !== "UNSIGNED-PAYLOAD" && !/^[0-9a-f]{64}$/.test(payload))
    throw invalid("x-amz-content-sha256 must be a hex SHA-256, UNSIGNED-PAYLOAD or a STREAMING- mode");
  const checks = new Checks(
    {
      ...(md5 !== undefined ? { md5 } : {}),
      ...(sha256 !== undefined ? { sha256 } : {}),
      ...(crc !== undefined ? { crc32: crc } : {}),
      ...(/^[0-9a-f]{64}$/.test(payload) ? { contentSha256: payload } : {}),
    },
    trailerNames,
  );
  const source = req as AsyncIterable<Buffer>;
  if (!streaming) {
    const length = Number(header(req, "content-length") ?? Number.NaN);
    return { size: Number.isSafeInteger(length) ? length : undefined, body: plain(source, checks) };
  }
  if (
    payload !== "STREAMING-AWS4-HMAC-SHA256-PAYLOAD" &&
    payload !== "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER" &&
    payload !== "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
  )
    throw new KuraError(
      "S3_NOT_IMPLEMENTED",
      `x-amz-content-sha256 ${payload.slice(0, 60)} is not supported`,
      {
        operation: "s3.body",
      },
    );
  const decoded = Number(header(req, "x-amz-decoded-content-length") ?? Number.NaN);
  const size = Number.isSafeInteger(decoded) && decoded >= 0 ? decoded : undefined;
  const signing = payload.startsWith("STREAMING-AWS4-HMAC-SHA256-PAYLOAD") ? signed : undefined;
  return { size, body: decodeChunked(source, signing, checks, size) };
}
