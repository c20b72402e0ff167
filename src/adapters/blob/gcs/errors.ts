/**
 * `@google-cloud/storage` errors → `KuraError`. Every SDK call in the adapter goes through
 * {@link translateGcsError}, and every response stream through {@link pipeTranslated}, so SDK
 * error types never leave the adapter.
 *
 * The SDK gives three shapes: `ApiError`s for service answers (`code` = HTTP status, `errors[]`
 * with a `reason`), `GaxiosError`s for failed requests (`status` or a Node `code`), and plain
 * fetch errors (`code` = `ECONNREFUSED`, …) when the service could not be reached. Signing
 * without a usable key throws a `SigningError`.
 */
import type { Readable, Writable } from "node:stream";
import { type ErrorCode, KuraError } from "../../../core/errors.js";

export interface GcsErrorContext {
  /** `blob.put`, `blob.get`, … */
  operation: string;
  bucket: string;
  /** The Kura key (without the store prefix), when the call was about one key. */
  key?: string;
  /** The call was a conditional create: a failed precondition means the object exists. */
  conditionalCreate?: boolean;
}

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

const DENIED_REASONS = new Set([
  "forbidden",
  "authError",
  "unauthorized",
  "accessDenied",
  "userProjectMissing",
]);

interface GcsErrorShape {
  name?: unknown;
  code?: unknown;
  status?: unknown;
  message?: unknown;
  errors?: unknown;
  response?: { status?: unknown };
  cause?: unknown;
}

function shape(e: unknown): GcsErrorShape {
  return typeof e === "object" && e !== null ? (e as GcsErrorShape) : {};
}

export function gcsHttpStatus(e: unknown): number | undefined {
  const s = shape(e);
  for (const v of [s.code, s.status, s.response?.status]) {
    if (typeof v === "number") return v;
    if (typeof v === "string" && /^\d{3}$/.test(v)) return Number(v);
  }
  return undefined;
}

/** The first `errors[].reason` of an API error (`notFound`, `conditionNotMet`, …). */
export function gcsReason(e: unknown): string | undefined {
  const errors = shape(e).errors;
  if (!Array.isArray(errors)) return undefined;
  const reason = (errors[0] as { reason?: unknown } | undefined)?.reason;
  return typeof reason === "string" ? reason : undefined;
}

function nodeCode(e: unknown, depth = 0): string | undefined {
  const s = shape(e);
  if (typeof s.code === "string" && NETWORK_CODES.has(s.code)) return s.code;
  if (typeof s.message === "string") {
    const m = /\b(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|ENOTFOUND|EAI_AGAIN)\b/.exec(s.message);
    if (m) return m[1];
    if (/socket hang up|other side closed/.test(s.message)) return "ECONNRESET";
  }
  return depth < 3 && s.cause !== undefined ? nodeCode(s.cause, depth + 1) : undefined;
}

/** Which Kura code an SDK error maps to. */
export function classifyGcsError(e: unknown, conditionalCreate = false): ErrorCode {
  const s = shape(e);
  const status = gcsHttpStatus(e);
  const reason = gcsReason(e);
  const message = typeof s.message === "string" ? s.message : "";
  if (s.name === "AbortError") return "OPERATION_ABORTED";
  if (status === undefined && nodeCode(e) !== undefined) return "BLOB_BACKEND_UNAVAILABLE";
  if (s.name === "SigningError") return "BLOB_ACCESS_DENIED";
  if (status === 404 && /bucket does not exist|no such bucket/i.test(message)) return "BLOB_BUCKET_NOT_FOUND";
  if (status === 404) return "BLOB_NOT_FOUND";
  if (status === 401 || status === 403 || (reason !== undefined && DENIED_REASONS.has(reason))) {
    return "BLOB_ACCESS_DENIED";
  }
  if (conditionalCreate && (status === 412 || status === 409 || reason === "conditionNotMet")) {
    return "BLOB_ALREADY_EXISTS";
  }
  if (status === 416) return "RANGE_INVALID";
  if (status === 408 || status === 429 || (status !== undefined && status >= 500 && status !== 501)) {
    return "BLOB_BACKEND_UNAVAILABLE";
  }
  return "BLOB_BACKEND_ERROR";
}

/**
 * Translate anything an SDK call threw. `KuraError`s pass through (with the operation filled
 * in); everything else becomes a `KuraError` with the SDK error as `cause`.
 */
export function translateGcsError(e: unknown, ctx: GcsErrorContext): KuraError {
  if (e instanceof KuraError) return e.withOperation(ctx.operation);
  const code = classifyGcsError(e, ctx.conditionalCreate);
  const status = gcsHttpStatus(e);
  const reason = gcsReason(e) ?? nodeCode(e);
  const raw = shape(e).message;
  const detail =
    typeof raw === "string" && raw !== "" ? (raw.split("\n")[0] ?? raw) : String(status ?? "error");
  const where = ctx.key === undefined ? `bucket ${ctx.bucket}` : `${ctx.key} in bucket ${ctx.bucket}`;
  const message = {
    BLOB_NOT_FOUND: `no object under ${ctx.key ?? "the key"}`,
    BLOB_ALREADY_EXISTS: `an object already exists under ${ctx.key ?? "the key"}`,
    BLOB_BUCKET_NOT_FOUND: `the bucket ${ctx.bucket} does not exist`,
    BLOB_ACCESS_DENIED: `GCS refused ${ctx.operation} on ${where}: ${detail}`,
    BLOB_BACKEND_UNAVAILABLE: `GCS is unavailable for ${ctx.operation} on ${where}: ${detail}`,
    RANGE_INVALID: `the range is not satisfiable for ${ctx.key ?? "the object"}`,
    OPERATION_ABORTED: `${ctx.operation} was aborted`,
  }[code as string];
  return new KuraError(code, message ?? `GCS ${ctx.operation} failed on ${where}: ${detail}`, {
    operation: ctx.operation,
    context: {
      backend: "gcs",
      bucket: ctx.bucket,
      ...(ctx.key === undefined ? {} : { key: ctx.key }),
      ...(status === undefined ? {} : { httpStatus: status }),
      ...(reason === undefined ? {} : { gcsReason: reason }),
    },
    cause: e,
  });
}

/**
 * Pipe an SDK response stream into `dest`, destroying `dest` with a translated error when the
 * source fails and the source when `dest` is closed early.
 */
export function pipeTranslated<T extends Writable>(
  source: Readable,
  dest: T,
  translate: (e: unknown) => KuraError,
): T {
  source.on("error", (e) => dest.destroy(translate(e)));
  dest.on("close", () => {
    if (!source.destroyed) source.destroy();
  });
  source.pipe(dest);
  return dest;
}
