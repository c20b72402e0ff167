/**
 * `@azure/storage-blob` errors → `KuraError`. Every SDK call in the adapter goes through
 * {@link translateAzureError}, and every response stream through {@link pipeTranslated}, so SDK
 * error types never leave the adapter.
 *
 * The SDK throws `RestError`s: service answers carry `statusCode` and the service error code
 * (`BlobNotFound`, `ContainerNotFound`, …, also in `details.errorCode`, which is the only place
 * it appears for HEAD requests); transport failures carry a Node `code` (`ECONNREFUSED`, …) and
 * no status. Cancellation surfaces as an `AbortError`.
 */
import type { Readable, Writable } from "node:stream";
import { type ErrorCode, KuraError } from "../../../core/errors.js";

export interface AzureErrorContext {
  /** `blob.put`, `blob.get`, … */
  operation: string;
  container: string;
  /** The Kura key (without the store prefix), when the call was about one key. */
  key?: string;
  /** The call was a conditional create: a conflict means the object already exists. */
  conditionalCreate?: boolean;
}

// Transport failures: the service could not be reached or dropped the connection.
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
  "REQUEST_SEND_ERROR",
  "UND_ERR_SOCKET",
]);

// Service answers that mean "try again later" whatever their status.
const TRANSIENT_CODES = new Set(["ServerBusy", "OperationTimedOut", "InternalError"]);

const DENIED_CODES = new Set([
  "AuthenticationFailed",
  "AuthorizationFailure",
  "AuthorizationPermissionMismatch",
  "AuthorizationProtocolMismatch",
  "AuthorizationResourceTypeMismatch",
  "AuthorizationServiceMismatch",
  "AuthorizationSourceIPMismatch",
  "InsufficientAccountPermissions",
  "AccountIsDisabled",
]);

interface RestErrorShape {
  name?: unknown;
  code?: unknown;
  statusCode?: unknown;
  message?: unknown;
  details?: { errorCode?: unknown; "x-ms-request-id"?: unknown };
  cause?: unknown;
}

function shape(e: unknown): RestErrorShape {
  return typeof e === "object" && e !== null ? (e as RestErrorShape) : {};
}

/** The service error code (`BlobNotFound`, …) or Node error code (`ECONNREFUSED`, …). */
export function azureErrorCode(e: unknown): string {
  const s = shape(e);
  if (typeof s.details?.errorCode === "string") return s.details.errorCode;
  if (typeof s.code === "string") return s.code;
  if (typeof s.name === "string") return s.name;
  return "Error";
}

export function azureHttpStatus(e: unknown): number | undefined {
  const status = shape(e).statusCode;
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
export function classifyAzureError(e: unknown, conditionalCreate = false): ErrorCode {
  const s = shape(e);
  const code = azureErrorCode(e);
  const status = azureHttpStatus(e);
  if (s.name === "AbortError") return "OPERATION_ABORTED";
  if (code === "ContainerNotFound") return "BLOB_BUCKET_NOT_FOUND";
  if (status === undefined && isNetworkError(e)) return "BLOB_BACKEND_UNAVAILABLE";
  if (TRANSIENT_CODES.has(code)) return "BLOB_BACKEND_UNAVAILABLE";
  if (code === "BlobNotFound" || status === 404) return "BLOB_NOT_FOUND";
  if (DENIED_CODES.has(code) || status === 401 || status === 403) return "BLOB_ACCESS_DENIED";
  if (
    conditionalCreate &&
    (code === "BlobAlreadyExists" || code === "ConditionNotMet" || status === 409 || status === 412)
  ) {
    return "BLOB_ALREADY_EXISTS";
  }
  if (code === "InvalidRange" || status === 416) return "RANGE_INVALID";
  if (status === 408 || status === 429 || (status !== undefined && status >= 500 && status !== 501)) {
    return "BLOB_BACKEND_UNAVAILABLE";
  }
  return "BLOB_BACKEND_ERROR";
}

/**
 * Translate anything an SDK call threw. `KuraError`s pass through (with the operation filled
 * in); everything else becomes a `KuraError` with the SDK error as `cause`.
 */
export function translateAzureError(e: unknown, ctx: AzureErrorContext): KuraError {
  if (e instanceof KuraError) return e.withOperation(ctx.operation);
  const code = classifyAzureError(e, ctx.conditionalCreate);
  const azureCode = azureErrorCode(e);
  const status = azureHttpStatus(e);
  const requestId = shape(e).details?.["x-ms-request-id"];
  const raw = shape(e).message;
  // Service messages carry "RequestId:… Time:…" lines; the first line is the useful part.
  const detail = typeof raw === "string" && raw !== "" ? (raw.split("\n")[0] ?? raw) : azureCode;
  const where =
    ctx.key === undefined ? `container ${ctx.container}` : `${ctx.key} in container ${ctx.container}`;
  const message = {
    BLOB_NOT_FOUND: `no object under ${ctx.key ?? "the key"}`,
    BLOB_ALREADY_EXISTS: `an object already exists under ${ctx.key ?? "the key"}`,
    BLOB_BUCKET_NOT_FOUND: `the container ${ctx.container} does not exist`,
    BLOB_ACCESS_DENIED: `Azure refused ${ctx.operation} on ${where}: ${detail}`,
    BLOB_BACKEND_UNAVAILABLE: `Azure Blob Storage is unavailable for ${ctx.operation} on ${where}: ${detail}`,
    RANGE_INVALID: `the range is not satisfiable for ${ctx.key ?? "the object"}`,
    OPERATION_ABORTED: `${ctx.operation} was aborted`,
  }[code as string];
  return new KuraError(
    code,
    message ?? `Azure ${ctx.operation} failed on ${where}: ${azureCode}: ${detail}`,
    {
      operation: ctx.operation,
      context: {
        backend: "azure",
        container: ctx.container,
        ...(ctx.key === undefined ? {} : { key: ctx.key }),
        azureError: azureCode,
        ...(status === undefined ? {} : { httpStatus: status }),
        ...(typeof requestId === "string" ? { requestId } : {}),
      },
      cause: e,
    },
  );
}

/**
 * Pipe an SDK response stream into `dest`, destroying `dest` with a translated error when the
 * source fails (a connection dropped mid-body) and the source when `dest` is closed early.
 */
export function pipeTranslated<T extends Writable>(
  source: NodeJS.ReadableStream,
  dest: T,
  translate: (e: unknown) => KuraError,
): T {
  const src = source as Readable;
  src.on("error", (e) => dest.destroy(translate(e)));
  dest.on("close", () => {
    if (!src.destroyed) src.destroy();
  });
  src.pipe(dest);
  return dest;
}
