/**
 * SigV4 on the S3 endpoint (API-7, ADR 0035): the signature a request carries — in its
 * `Authorization` header or its presigned query — is recomputed with `@smithy/signature-v4` from
 * the request as it arrived and the key's secret (`Tenants.signingSecret`), and compared in
 * constant time. Only the SigV4 scheme is accepted (`AWS4-HMAC-SHA256`, service `s3`); the
 * region is the one the client signed for. Chunk and trailer signatures of aws-chunked bodies
 * are checked by `chunked.ts` with the signer this returns.
 */
import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { Sha256 } from "@aws-crypto/sha256-js";
import { HttpRequest } from "@smithy/protocol-http";
import { SignatureV4 } from "@smithy/signature-v4";
import { KuraError } from "../../core/errors.js";
import type { KeyIdentity, Tenants } from "../../domains/tenants.js";

/** S3's limit on the distance between a request's date and the server's clock. */
export const MAX_SKEW_MS = 15 * 60_000;
const MAX_PRESIGN_SECONDS = 604_800;

export interface SignedRequest {
  identity: KeyIdentity;
  /** x-amz-content-sha256 as signed (a hex digest, UNSIGNED-PAYLOAD, STREAMING-…). */
  payload: string;
  /** What aws-chunked chunk signatures chain from (the request's own signature). */
  seedSignature: string;
  /** `yyyymmddThhmmssZ`, `{date}/{region}/s3/aws4_request`, and the HMAC of a string to sign. */
  longDate: string;
  scope: string;
  hmac(stringToSign: string): Promise<string>;
}

export interface RawRequest {
  method: string;
  /** The path as it arrived (percent-encoded). */
  rawPath: string;
  /** Decoded query parameters (first value of each). */
  query: Record<string, string>;
  headers: IncomingMessage["headers"];
}

function malformed(message: string): KuraError {
  return new KuraError("S3_AUTH_MALFORMED", message, { operation: "s3.auth" });
}

function mismatch(): KuraError {
  return new KuraError(
    "S3_SIGNATURE_MISMATCH",
    "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
    { operation: "s3.auth" },
  );
}

/** `20260101T000000Z` → Date, or undefined. */
function parseAmzDate(text: string | undefined): Date | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(text ?? "");
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s] = m.map(Number) as number[];
  const date = new Date(Date.UTC(y as number, (mo as number) - 1, d, h, mi, s));
  return Number.isNaN(date.getTime()) ? undefined : date;
}

/** Credential `AKID/yyyymmdd/region/s3/aws4_request`. */
function parseCredential(text: string, longDate: string) {
  const parts = text.split("/");
  if (parts.length !== 5) throw malformed("the credential must be <key id>/<date>/<region>/s3/aws4_request");
  const [keyId, date, region, service, terminator] = parts as [string, string, string, string, string];
  if (service !== "s3" || terminator !== "aws4_request" || region === "")
    throw malformed("the credential scope must be <date>/<region>/s3/aws4_request");
  if (date !== longDate.slice(0, 8)) throw malformed("the credential's date is not the request's date");
  return { keyId, region, scope: `${date}/${region}/s3/aws4_request` };
}

/** The path in S3's canonical form: each byte but unreserved ones and `/` percent-encoded. */
export function canonicalPath(rawPath: string): string {
  let decoded: string;
  try {
    decoded = decodeURIComponent(rawPath);
  } catch {
    throw new KuraError("S3_REQUEST_INVALID", "the path is not valid percent-encoded UTF-8", {
      operation: "s3.request",
    });
  }
  return decoded
    .split("/")
    .map((s) =>
      encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`),
    )
    .join("/");
}

function headerValue(headers: IncomingMessage["headers"], name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v.join(",") : v;
}

function sameHex(a: string, b: string): boolean {
  return a.length === b.length && /^[0-9a-f]+$/.test(b) && timingSafeEqual(Buffer.from(a), Buffer.from(b));
}

/** Node's SHA-256 in the shape the signer takes (faster than the pure-JS one for chunk HMACs). */
class NodeSha256 {
  private readonly hash;
  constructor(secret?: string | Uint8Array | ArrayBuffer | ArrayBufferView) {
    this.hash =
      secret === undefined
        ? createHash("sha256")
        : (createHmacOf(secret) as unknown as ReturnType<typeof createHash>);
  }
  update(data: string | ArrayBuffer | ArrayBufferView): void {
    this.hash.update(typeof data === "string" ? Buffer.from(data) : Buffer.from(data as Uint8Array));
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.hash.digest());
  }
}

function createHmacOf(secret: string | Uint8Array | ArrayBuffer | ArrayBufferView) {
  if (typeof secret === "string" || secret instanceof ArrayBuffer)
    return createHmac("sha256", Buffer.from(secret as string));
  return createHmac("sha256", Buffer.from(secret.buffer, secret.byteOffset, secret.byteLength));
}

/**
 * Who signed the request, after checking the signature; S3_ACCESS_DENIED when it carries none,
 * S3_AUTH_MALFORMED, S3_REQUEST_TIME_SKEWED, S3_ACCESS_KEY_UNKNOWN, S3_SIGNATURE_MISMATCH.
 */
export async function verifySignature(
  tenants: Tenants,
  req: RawRequest,
  now: number,
): Promise<SignedRequest> {
  const auth = headerValue(req.headers, "authorization");
  if (auth !== undefined) return verifyHeader(tenants, req, auth, now);
  if (req.query["X-Amz-Signature"] !== undefined || req.query["X-Amz-Algorithm"] !== undefined)
    return verifyPresigned(tenants, req, now);
  throw new KuraError("S3_ACCESS_DENIED", "Anonymous access is not allowed: sign the request (SigV4)", {
    operation: "s3.auth",
  });
}

function signerFor(keyId: string, secret: string, region: string, sha = Sha256): SignatureV4 {
  return new SignatureV4({
    credentials: { accessKeyId: keyId, secretAccessKey: secret },
    region,
    service: "s3",
    sha256: sha,
    uriEscapePath: false,
    applyChecksum: false,
  });
}

/** The request as the signer sees it: only the headers the client signed, the path in `path`. */
function requestFor(req: RawRequest, path: string, signed: readonly string[], query: Record<string, string>) {
  const headers: Record<string, string> = {};
  for (const name of signed) {
    const v = headerValue(req.headers, name);
    if (v === undefined) throw malformed(`signed header ${name.slice(0, 64)} is missing`);
    headers[name] = v;
  }
  return new HttpRequest({
    method: req.method,
    protocol: "http:",
    hostname: headers.host ?? "",
    path,
    query,
    headers,
  });
}

/** The paths a client may have signed: S3's canonical form, else the path exactly as sent. */
function candidatePaths(rawPath: string): string[] {
  const canonical = canonicalPath(rawPath);
  return canonical === rawPath ? [canonical] : [canonical, rawPath];
}

async function identityOf(tenants: Tenants, keyId: string) {
  return tenants.signingSecret(keyId);
}

function checkSkew(date: Date, now: number): void {
  if (Math.abs(date.getTime() - now) > MAX_SKEW_MS)
    throw new KuraError(
      "S3_REQUEST_TIME_SKEWED",
      "The difference between the request time and the server's time is too large.",
      { operation: "s3.auth" },
    );
}

async function verifyHeader(tenants: Tenants, req: RawRequest, auth: string, now: number) {
  const m =
    /^AWS4-HMAC-SHA256\s+Credential=([^,\s]+)\s*,\s*SignedHeaders=([^,\s]+)\s*,\s*Signature=([0-9a-f]{64})\s*$/.exec(
      auth,
    );
  if (!m) {
    if (auth.startsWith("AWS "))
      throw malformed("only SigV4 (AWS4-HMAC-SHA256) signatures are accepted, not SigV2");
    throw malformed("the Authorization header is not a well-formed AWS4-HMAC-SHA256 signature");
  }
  const [, credential = "", signedList = "", signature = ""] = m;
  const longDate = headerValue(req.headers, "x-amz-date") ?? "";
  const date = parseAmzDate(longDate);
  if (!date) throw malformed("X-Amz-Date is missing or not yyyymmddThhmmssZ");
  const { keyId, region, scope } = parseCredential(credential, longDate);
  const signed = signedList.split(";");
  if (!signed.includes("host")) throw malformed("the host header must be signed");
  checkSkew(date, now);
  const { identity, secret } = await identityOf(tenants, keyId);
  const payload = headerValue(req.headers, "x-amz-content-sha256") ?? "UNSIGNED-PAYLOAD";
  const signer = signerFor(keyId, secret, region);
  const query = { ...req.query };
  for (const path of candidatePaths(req.rawPath)) {
    const request = requestFor(req, path, signed, query);
    // The payload hash the client signed (the header's value, or none: UNSIGNED-PAYLOAD).
    if (!signed.includes("x-amz-content-sha256")) request.headers["x-amz-content-sha256"] = payload;
    const out = await signer.sign(request, {
      signingDate: date,
      signableHeaders: new Set(signed),
      unsignableHeaders: signed.includes("x-amz-content-sha256")
        ? new Set()
        : new Set(["x-amz-content-sha256"]),
    });
    const ours = /Signature=([0-9a-f]{64})/.exec(String(out.headers.authorization ?? ""))?.[1] ?? "";
    if (sameHex(ours, signature))
      return result(identity, payload, signature, longDate, scope, keyId, secret, region);
  }
  throw mismatch();
}

async function verifyPresigned(tenants: Tenants, req: RawRequest, now: number) {
  const q = req.query;
  if (q["X-Amz-Algorithm"] !== "AWS4-HMAC-SHA256")
    throw malformed("X-Amz-Algorithm must be AWS4-HMAC-SHA256");
  const longDate = q["X-Amz-Date"] ?? "";
  const date = parseAmzDate(longDate);
  if (!date) throw malformed("X-Amz-Date is missing or not yyyymmddThhmmssZ");
  const expires = Number(q["X-Amz-Expires"] ?? Number.NaN);
  if (!Number.isSafeInteger(expires) || expires < 1 || expires > MAX_PRESIGN_SECONDS)
    throw malformed("X-Amz-Expires must be 1…604800 seconds");
  const signature = q["X-Amz-Signature"] ?? "";
  if (!/^[0-9a-f]{64}$/.test(signature)) throw malformed("X-Amz-Signature is missing or malformed");
  const { keyId, region, scope } = parseCredential(q["X-Amz-Credential"] ?? "", longDate);
  const signed = (q["X-Amz-SignedHeaders"] ?? "").split(";");
  if (!signed.includes("host")) throw malformed("the host header must be signed");
  if (date.getTime() - now > MAX_SKEW_MS) checkSkew(date, now);
  if (now > date.getTime() + expires * 1000)
    throw new KuraError("S3_ACCESS_DENIED", "Request has expired", { operation: "s3.auth" });
  const { identity, secret } = await identityOf(tenants, keyId);
  const signer = signerFor(keyId, secret, region);
  const query: Record<string, string> = {};
  for (const [k, v] of Object.entries(q)) {
    if (!/^X-Amz-(Algorithm|Credential|Date|Expires|SignedHeaders|Signature)$/.test(k)) query[k] = v;
  }
  const payload = q["X-Amz-Content-Sha256"] ?? "UNSIGNED-PAYLOAD";
  for (const path of candidatePaths(req.rawPath)) {
    const request = requestFor(req, path, signed, query);
    request.headers["x-amz-content-sha256"] = payload;
    const out = await signer.presign(request, {
      signingDate: date,
      expiresIn: expires,
      signableHeaders: new Set(signed),
      unsignableHeaders: new Set(["x-amz-content-sha256"]),
      unhoistableHeaders: new Set(["x-amz-content-sha256"]),
    });
    const ours = String(out.query?.["X-Amz-Signature"] ?? "");
    if (sameHex(ours, signature))
      return result(identity, "UNSIGNED-PAYLOAD", signature, longDate, scope, keyId, secret, region);
  }
  throw mismatch();
}

function result(
  identity: KeyIdentity,
  payload: string,
  seedSignature: string,
  longDate: string,
  scope: string,
  keyId: string,
  secret: string,
  region: string,
): SignedRequest {
  const signer = signerFor(keyId, secret, region, NodeSha256 as unknown as typeof Sha256);
  const signingDate = parseAmzDate(longDate) as Date;
  return {
    identity,
    payload,
    seedSignature,
    longDate,
    scope,
    hmac: (stringToSign) =>
      signer.sign(stringToSign, { signingDate, signingRegion: region, signingService: "s3" }),
  };
}
