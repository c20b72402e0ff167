/**
 * AWS SDK v3 errors → `KuraError`. Every SDK call in the adapter goes through
 * {@link translateS3Error}, so SDK error types never leave the adapter.
 *
 * The SDK gives three shapes: service errors (`name` = S3 error code such as `NoSuchKey`,
 * `$metadata.httpStatusCode`), transport errors from Node (`code` = `ECONNREFUSED`, …) and
 * the request handler's `TimeoutError`. Some servers answer HEAD or XML-less errors with only a
 * status code, so the status is checked as well as the name.
 */
import { type ErrorCode, KuraError } from "../../../core/errors.js";

export interface S3ErrorContext {
  /** `blob.put`, `blob.get`, … */
  operation: string;
  bucket: string;
  /** The Kura key (without the store prefix), when the call was about one key. */
  key?: string;
}

// Transport failures: the server could not be reached or dropped the connection.
const NETWORK_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "ETIMEDOUT",
  "EPIPE",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENETDOWN",
  "EAI_AGAIN",
  "ENOTFOUND",
  "UND_ERR_SOCKET",
]);

// Service answers that mean "try again later".
const TRANSIENT_NAMES = new Set([
  "SlowDown",
  "Throttling",
  "ThrottlingException",
  "TooManyRequests",
  "RequestTimeout",
  "RequestTimeoutException",
  "ServiceUnavailable",
  "InternalError",
  "TimeoutError",
]);

const DENIED_NAMES = new Set([
  "AccessDenied",
  "InvalidAccessKeyId",
  "SignatureDoesNotMatch",
  "ExpiredToken",
  "InvalidToken",
  "TokenRefreshRequired",
  "AllAccessDisabled",
  "AccountProblem",
  "CredentialsProviderError",
]);

interface SdkErrorShape {
  name?: unknown;
  code?: unknown;
  message?: unknown;
  Code?: unknown;
  $metadata?: { httpStatusCode?: unknown; requestId?: unknown };
  cause?: unknown;
}

function shape(e: unknown): SdkErrorShape {
  return typeof e === "object" && e !== null ? (e as SdkErrorShape) : {};
}

/** The S3 error code (`NoSuchKey`, …) or Node error code (`ECONNREFUSED`, …) of an SDK error. */
export function s3ErrorName(e: unknown): string {
  const s = shape(e);
  if (typeof s.Code === "string") return s.Code;
  if (typeof s.code === "string" && s.code.startsWith("E")) return s.code;
  if (typeof s.name === "string") return s.name;
  return "Error";
}

export function s3HttpStatus(e: unknown): number | undefined {
  const status = shape(e).$metadata?.httpStatusCode;
  return typeof status === "number" ? status : undefined;
}

function isNetworkError(e: unknown, depth = 0): boolean {
  const s = shape(e);
  if (typeof s.code === "string" && NETWORK_CODES.has(s.code)) return true;
  if (
    typeof s.message === "string" &&
    /socket hang up|other side closed|ECONNREFUSED|ECONNRESET/.test(s.message)
  ) {
    return true;
  }
  return depth < 3 && s.cause !== undefined && isNetworkError(s.cause, depth + 1);
}

/** Which Kura code an SDK error maps to. */
export function classifyS3Error(e: unknown): ErrorCode {
  const name = s3ErrorName(e);
  const status = s3HttpStatus(e);
  if (name === "AbortError") return "OPERATION_ABORTED";
  if (isNetworkError(e) || TRANSIENT_NAMES.has(name)) return "BLOB_BACKEND_UNAVAILABLE";
  if (name === "NoSuchBucket") return "BLOB_BUCKET_NOT_FOUND";
  if (name === "NoSuchKey" || name === "NotFound" || (status === 404 && name !== "NoSuchUpload")) {
    return "BLOB_NOT_FOUND";
  }
  if (DENIED_NAMES.has(name) || status === 403) return "BLOB_ACCESS_DENIED";
  if (name === "PreconditionFailed" || name === "ConditionalRequestConflict" || status === 412) {
    return "BLOB_ALREADY_EXISTS";
  }
  if (name === "InvalidRange" || status === 416) return "RANGE_INVALID";
  if (name === "KeyTooLongError" || name === "InvalidObjectName") return "KEY_INVALID";
  if (status === 429 || (status !== undefined && status >= 500 && status !== 501))
    return "BLOB_BACKEND_UNAVAILABLE";
  return "BLOB_BACKEND_ERROR";
}

/**
 * Translate anything an SDK call threw. `KuraError`s pass through (with the operation filled
 * in); everything else becomes a `KuraError` with the SDK error as `cause`.
 */
export function translateS3Error(e: unknown, ctx: S3ErrorContext): KuraError {
  if (e instanceof KuraError) return e.withOperation(ctx.operation);
  const code = classifyS3Error(e);
  const name = s3ErrorName(e);
  const status = s3HttpStatus(e);
  const requestId = shape(e).$metadata?.requestId;
  const detail =
    typeof shape(e).message === "string" && shape(e).message !== "" ? String(shape(e).message) : name;
  const where = ctx.key === undefined ? `bucket ${ctx.bucket}` : `${ctx.key} in bucket ${ctx.bucket}`;
  const message = {
    BLOB_NOT_FOUND: `no object under ${ctx.key ?? "the key"}`,
    BLOB_ALREADY_EXISTS: `an object already exists under ${ctx.key ?? "the key"}`,
    BLOB_BUCKET_NOT_FOUND: `the bucket ${ctx.bucket} does not exist`,
    BLOB_ACCESS_DENIED: `S3 refused ${ctx.operation} on ${where}: ${detail}`,
    BLOB_BACKEND_UNAVAILABLE: `S3 is unavailable for ${ctx.operation} on ${where}: ${detail}`,
    RANGE_INVALID: `the range is not satisfiable for ${ctx.key ?? "the object"}`,
    KEY_INVALID: `invalid object key: S3 refused the name (${name}): ${(ctx.key ?? "").slice(0, 200)}`,
    OPERATION_ABORTED: `${ctx.operation} was aborted`,
  }[code as string];
  return new KuraError(code, message ?? `S3 ${ctx.operation} failed on ${where}: ${name}: ${detail}`, {
    operation: ctx.operation,
    context: {
      backend: "s3",
      bucket: ctx.bucket,
      ...(ctx.key === undefined ? {} : { key: ctx.key }),
      s3Error: name,
      ...(status === undefined ? {} : { httpStatus: status }),
      ...(typeof requestId === "string" ? { requestId } : {}),
    },
    cause: e,
  });
}
