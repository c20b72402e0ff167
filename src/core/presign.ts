/**
 * Kura's own presigned URLs (BLOB-5) for stores that have none (fs): an HMAC-SHA256 over the
 * method, the key, the expiry and (for PUT) the content type, verified in constant time.
 * The fs adapter signs; `kura serve` verifies and serves.
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import { KuraError } from "./errors.js";
import { assertValidKey, MAX_KEY_BYTES, MAX_SCOPE_PREFIX_BYTES } from "./keys.js";

export const PRESIGN_PATH = "/v1/presigned/";

export interface PresignClaims {
  method: "GET" | "PUT";
  key: string;
  /** Unix seconds after which the URL is refused. */
  expires: number;
  contentType?: string;
}

function canonical(c: PresignClaims): string {
  return ["KURA-PRESIGN-V1", c.method, c.key, String(c.expires), c.contentType ?? ""].join("\n");
}

export function presignSignature(secret: Uint8Array | string, claims: PresignClaims): string {
  return createHmac("sha256", secret).update(canonical(claims), "utf8").digest("hex");
}

/** Build the URL for `claims` under `publicUrl` (e.g. `http://127.0.0.1:8787`). */
export function buildPresignedUrl(
  publicUrl: string,
  secret: Uint8Array | string,
  claims: PresignClaims,
): string {
  const url = new URL(PRESIGN_PATH + claims.key.split("/").map(encodeURIComponent).join("/"), publicUrl);
  url.searchParams.set("X-Kura-Method", claims.method);
  url.searchParams.set("X-Kura-Expires", String(claims.expires));
  if (claims.contentType) url.searchParams.set("X-Kura-Content-Type", claims.contentType);
  url.searchParams.set("X-Kura-Signature", presignSignature(secret, claims));
  return url.toString();
}

/**
 * Check a presigned request: the path and query of the URL as received, and the HTTP method
 * used. Returns the claims when the signature matches and has not expired; otherwise throws
 * `PRESIGN_INVALID` or `PRESIGN_EXPIRED` (PermissionDenied).
 */
export function verifyPresignedRequest(
  secret: Uint8Array | string,
  request: { method: string; url: string },
  nowMs: number = Date.now(),
): PresignClaims {
  const invalid = (why: string) =>
    new KuraError("PRESIGN_INVALID", `presigned URL rejected: ${why}`, { operation: "presign.verify" });
  let url: URL;
  try {
    url = new URL(request.url, "http://kura.invalid");
  } catch {
    throw invalid("malformed URL");
  }
  if (!url.pathname.startsWith(PRESIGN_PATH)) throw invalid("not a presigned path");
  let key: string;
  try {
    key = url.pathname.slice(PRESIGN_PATH.length).split("/").map(decodeURIComponent).join("/");
  } catch {
    throw invalid("malformed key encoding");
  }
  try {
    // The URL carries the tenant-scoped key: the caller's 1,024 bytes plus the scope.
    assertValidKey(key, "presign.verify", MAX_KEY_BYTES + MAX_SCOPE_PREFIX_BYTES);
  } catch {
    throw invalid("invalid key");
  }
  const method = url.searchParams.get("X-Kura-Method");
  const expiresRaw = url.searchParams.get("X-Kura-Expires") ?? "";
  const signature = url.searchParams.get("X-Kura-Signature") ?? "";
  const contentType = url.searchParams.get("X-Kura-Content-Type") ?? undefined;
  if (method !== "GET" && method !== "PUT") throw invalid("missing method");
  const requestMethod = request.method.toUpperCase();
  if (requestMethod !== method && !(method === "GET" && requestMethod === "HEAD"))
    throw invalid("method does not match");
  if (!/^\d{1,12}$/.test(expiresRaw)) throw invalid("missing expiry");
  if (!/^[0-9a-f]{64}$/.test(signature)) throw invalid("missing signature");
  const claims: PresignClaims = {
    method,
    key,
    expires: Number(expiresRaw),
    ...(contentType ? { contentType } : {}),
  };
  const expected = Buffer.from(presignSignature(secret, claims), "hex");
  if (!timingSafeEqual(expected, Buffer.from(signature, "hex"))) throw invalid("signature does not match");
  if (claims.expires * 1000 < nowMs) {
    throw new KuraError("PRESIGN_EXPIRED", "presigned URL has expired", {
      operation: "presign.verify",
      context: { expiredAt: new Date(claims.expires * 1000).toISOString() },
    });
  }
  return claims;
}
