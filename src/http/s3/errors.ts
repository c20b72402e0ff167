/**
 * Errors on the S3 endpoint (API-7): a `KuraError` becomes S3's XML error document with the S3
 * error code clients branch on (`NoSuchKey`, `SignatureDoesNotMatch`, …). The status is S3's for
 * the codes S3 defines, else the one `http/errors.ts` gives the error's kind, so a failure
 * means the same on both endpoints.
 */
import { type ErrorCode, isKuraError, KuraError } from "../../core/errors.js";
import { publicMessage, statusOf } from "../errors.js";
import { xml } from "./xml.js";

/** Kura code → [S3 code, status]. */
const S3_CODES: Partial<Record<ErrorCode, [string, number]>> = {
  OBJECT_NOT_FOUND: ["NoSuchKey", 404],
  S3_BUCKET_NOT_FOUND: ["NoSuchBucket", 404],
  S3_BUCKET_EXISTS: ["BucketAlreadyOwnedByYou", 409],
  S3_BUCKET_NOT_EMPTY: ["BucketNotEmpty", 409],
  S3_BUCKET_NAME_INVALID: ["InvalidBucketName", 400],
  S3_UPLOAD_NOT_FOUND: ["NoSuchUpload", 404],
  S3_PART_INVALID: ["InvalidPart", 400],
  S3_PART_ORDER_INVALID: ["InvalidPartOrder", 400],
  S3_PART_TOO_SMALL: ["EntityTooSmall", 400],
  S3_DIGEST_MISMATCH: ["BadDigest", 400],
  S3_CONTENT_SHA256_MISMATCH: ["XAmzContentSHA256Mismatch", 400],
  S3_SIGNATURE_MISMATCH: ["SignatureDoesNotMatch", 403],
  S3_ACCESS_KEY_UNKNOWN: ["InvalidAccessKeyId", 403],
  S3_REQUEST_TIME_SKEWED: ["RequestTimeTooSkewed", 403],
  S3_AUTH_MALFORMED: ["AuthorizationHeaderMalformed", 400],
  S3_ACCESS_DENIED: ["AccessDenied", 403],
  S3_REQUEST_INVALID: ["InvalidRequest", 400],
  S3_NOT_IMPLEMENTED: ["NotImplemented", 501],
  PRECONDITION_FAILED: ["PreconditionFailed", 412],
  CONDITION_FAILED_CONCURRENT: ["PreconditionFailed", 412],
  BLOB_ALREADY_EXISTS: ["PreconditionFailed", 412],
  RANGE_NOT_SATISFIABLE: ["InvalidRange", 416],
  PAYLOAD_TOO_LARGE: ["EntityTooLarge", 400],
  REQUEST_TOO_LARGE: ["EntityTooLarge", 400],
  // radosgw's code for a tenant quota; S3 itself has none.
  QUOTA_EXCEEDED: ["QuotaExceeded", 403],
  SCOPE_DENIED: ["AccessDenied", 403],
  API_KEY_INVALID: ["InvalidAccessKeyId", 403],
  TENANT_SUSPENDED: ["AccessDenied", 403],
  TENANT_DELETING: ["AccessDenied", 403],
  TENANT_UNKNOWN: ["AccessDenied", 403],
  KEY_INVALID: ["InvalidArgument", 400],
  CURSOR_INVALID: ["InvalidArgument", 400],
  INVALID_ARGUMENT: ["InvalidArgument", 400],
  REQUEST_TIMEOUT: ["RequestTimeout", 400],
  RATE_LIMITED: ["SlowDown", 503],
  SERVER_SHUTTING_DOWN: ["ServiceUnavailable", 503],
};

const OF_KIND: Record<string, string> = {
  InvalidArgument: "InvalidArgument",
  NotFound: "NoSuchKey",
  PermissionDenied: "AccessDenied",
  Unauthenticated: "AccessDenied",
  ConditionFailed: "PreconditionFailed",
  PayloadTooLarge: "EntityTooLarge",
  QuotaExceeded: "QuotaExceeded",
  Unsupported: "NotImplemented",
  Unavailable: "ServiceUnavailable",
  RateLimited: "SlowDown",
};

export interface S3Error {
  status: number;
  code: string;
  message: string;
  body: string;
}

/** The S3 error response for anything thrown while serving `resource`. */
export function s3Error(e: unknown, resource: string, requestId: string): S3Error {
  const error = isKuraError(e)
    ? e
    : new KuraError("UNEXPECTED", "internal error", { operation: "s3", cause: e });
  const fixed = S3_CODES[error.code];
  const status = fixed?.[1] ?? statusOf(error);
  const code =
    error.code === "S3_REQUEST_INVALID" && error.context.s3Code === "MalformedXML"
      ? "MalformedXML"
      : (fixed?.[0] ?? OF_KIND[error.kind] ?? "InternalError");
  const message = publicMessage(error);
  const body = xml({
    Error: { Code: code, Message: message, Resource: resource, RequestId: requestId, KuraCode: error.code },
  });
  return { status, code, message, body };
}
