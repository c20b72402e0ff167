/**
 * The one place error kinds become HTTP status codes (API-2, API-3). Everything a route throws,
 * and everything Fastify rejects before a route runs (bad JSON, oversized bodies, unknown
 * routes), is turned into a `KuraError` here, so every error response has a stable `error_code`.
 */
import { type ErrorCode, type ErrorKind, isKuraError, KuraError } from "../core/errors.js";

const STATUS_OF_KIND: Record<ErrorKind, number> = {
  InvalidArgument: 400,
  Unauthenticated: 401,
  PermissionDenied: 403,
  NotFound: 404,
  AlreadyExists: 409,
  Conflict: 409,
  ConditionFailed: 412,
  PayloadTooLarge: 413,
  RateLimited: 429,
  Corrupt: 500,
  Unexpected: 500,
  ConfigInvalid: 500,
  Unsupported: 501,
  Unavailable: 503,
  QuotaExceeded: 507,
};

/** Codes whose HTTP meaning is narrower than their kind's. */
const STATUS_OF_CODE: Partial<Record<ErrorCode, number>> = {
  MEDIA_TYPE_UNSUPPORTED: 415,
  RANGE_NOT_SATISFIABLE: 416,
  REQUEST_TIMEOUT: 408,
  CHANGES_CURSOR_EXPIRED: 410,
  // A message whose body is lost or damaged answers Gone: retrying cannot help, and the fault is
  // known and reported (kura fsck), not an unexpected 500 (docs/http.md).
  BODY_MISSING: 410,
  BODY_CORRUPT: 410,
  // tus 1.0: an expired upload is Gone, a checksum mismatch is tus's own 460.
  UPLOAD_EXPIRED: 410,
  UPLOAD_CHECKSUM_MISMATCH: 460,
  // Crypto-shredded: the data is gone for good, as with a lost body.
  TENANT_KEYS_DESTROYED: 410,
};

export function statusOf(error: KuraError): number {
  return STATUS_OF_CODE[error.code] ?? STATUS_OF_KIND[error.kind];
}

/** Seconds a client should wait before retrying, for errors where retrying may help. */
export function retryAfterOf(error: KuraError): number | undefined {
  if (!error.retryable && error.kind !== "Unavailable" && error.code !== "STORAGE_FULL") return undefined;
  const hinted = error.context.retryAfterSeconds;
  return typeof hinted === "number" && Number.isFinite(hinted) && hinted > 0 ? Math.ceil(hinted) : 1;
}

/** Fastify's own error codes (raised before a handler runs) and what they mean to a client. */
const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_INVALID_JSON_BODY: "REQUEST_INVALID",
  FST_ERR_CTP_EMPTY_JSON_BODY: "REQUEST_INVALID",
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: "REQUEST_INVALID",
  FST_ERR_CTP_BODY_TOO_LARGE: "REQUEST_TOO_LARGE",
  FST_ERR_CTP_INVALID_MEDIA_TYPE: "MEDIA_TYPE_UNSUPPORTED",
  FST_ERR_CTP_EMPTY_TYPE: "MEDIA_TYPE_UNSUPPORTED",
  FST_ERR_BAD_URL: "REQUEST_INVALID",
  FST_ERR_MAX_PARAM_LENGTH: "REQUEST_INVALID",
  FST_ERR_ASYNC_CONSTRAINT: "REQUEST_INVALID",
  FST_ERR_VALIDATION: "REQUEST_INVALID",
  FST_ERR_NOT_FOUND: "ROUTE_NOT_FOUND",
};

/**
 * Anything thrown while serving a request, as the KuraError the client will see. A `statusCode`
 * is trusted only before the handler runs (`handling` false), where Fastify raised it for the
 * request itself (a malformed body); from a handler or the body it sends, an error that is not
 * a KuraError is unexpected whatever it carries — an SDK's `statusCode: 404` is not the client's.
 */
export function toHttpError(e: unknown, operation = "http", options: { handling?: boolean } = {}): KuraError {
  if (isKuraError(e)) return e;
  const err = e as { code?: unknown; statusCode?: unknown; message?: unknown } | null;
  const code = typeof err?.code === "string" ? FASTIFY_CODES[err.code] : undefined;
  const message = typeof err?.message === "string" ? err.message : String(e);
  if (code) return new KuraError(code, message, { operation, cause: e });
  if (options.handling) return new KuraError("UNEXPECTED", "internal error", { operation, cause: e });
  // JSON.parse failures and other client-caused errors Fastify reports with a 4xx status.
  const status = typeof err?.statusCode === "number" ? err.statusCode : 500;
  if (status === 413) return new KuraError("REQUEST_TOO_LARGE", message, { operation, cause: e });
  if (status === 415) return new KuraError("MEDIA_TYPE_UNSUPPORTED", message, { operation, cause: e });
  if (status >= 400 && status < 500)
    return new KuraError("REQUEST_INVALID", message, { operation, cause: e });
  return new KuraError("UNEXPECTED", "internal error", { operation, cause: e });
}

/** The message a client sees: the error's own, except for unanticipated failures (no internals leak). */
export function publicMessage(error: KuraError): string {
  return error.kind === "Unexpected" || error.kind === "ConfigInvalid" ? "internal error" : error.message;
}
