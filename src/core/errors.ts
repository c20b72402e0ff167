/**
 * Kura's one error type. Every failure that crosses a module boundary is a `KuraError` with a
 * `kind` (what the caller can do about it) and a stable `code` (what exactly happened).
 *
 * Codes live in {@link ERROR_CODES}: a code is never reused or renamed once released, and
 * `docs/errors.md` documents every code (a test keeps the two in step, both directions).
 * Only `http/` maps kinds to status codes and only `cli/` maps them to exit codes.
 */

export type ErrorKind =
  | "InvalidArgument"
  | "NotFound"
  | "AlreadyExists"
  | "ConditionFailed"
  | "Conflict"
  | "PayloadTooLarge"
  | "QuotaExceeded"
  | "Unsupported"
  | "ConfigInvalid"
  | "Unauthenticated"
  | "PermissionDenied"
  | "RateLimited"
  | "Unavailable"
  | "Corrupt"
  | "Unexpected";

/** Kinds whose operations may succeed when simply tried again. */
const RETRYABLE_KINDS: ReadonlySet<ErrorKind> = new Set(["Unavailable", "RateLimited"]);

/**
 * The registry of error codes: code → [kind, one-line meaning]. The meaning is what
 * `docs/errors.md` expands on. Append only.
 */
export const ERROR_CODES = {
  // generic
  INVALID_ARGUMENT: ["InvalidArgument", "A parameter is missing, malformed or out of range."],
  UNSUPPORTED_OPERATION: ["Unsupported", "The backend does not declare the capability this operation needs."],
  UNEXPECTED: ["Unexpected", "A failure Kura did not anticipate; the cause is attached."],
  OPERATION_TIMEOUT: ["Unavailable", "The operation did not finish within its timeout."],
  OPERATION_ABORTED: ["Unavailable", "The caller aborted the operation."],
  CLOSED: [
    "Unavailable",
    "The store, index or Kura instance was closed: this instance will not serve again (not retryable here; another instance may).",
  ],
  // config
  CONFIG_INVALID: ["ConfigInvalid", "The configuration has one or more problems, each listed with its path."],
  CONFIG_FILE_UNREADABLE: ["ConfigInvalid", "The configuration file could not be read or parsed."],
  CONFIG_ENV_MISSING: [
    "ConfigInvalid",
    "An `env:VAR` reference names an environment variable that is not set.",
  ],
  CONFIG_CONFLICT: [
    "ConfigInvalid",
    "Two settings contradict each other (e.g. USE_S3=false with STORAGE_MODE=cloud).",
  ],
  // keys and urls
  KEY_INVALID: [
    "InvalidArgument",
    "An object key breaks the rules of BLOB-7: at most 1,024 bytes of UTF-8 (the caller's key; the tenant prefix is not counted), no empty, '.' or '..' segments, no leading or trailing '/', no trailing '.', no backslash, no control characters.",
  ],
  CURSOR_INVALID: ["InvalidArgument", "A pagination cursor was not produced by this store or was altered."],
  RANGE_INVALID: ["InvalidArgument", "A byte range is malformed or starts beyond the end of the object."],
  URL_INVALID: [
    "InvalidArgument",
    "A content URL is not a local://, s3://, gs:// or azure:// URL Kura understands.",
  ],
  URL_STORE_UNKNOWN: ["NotFound", "A content URL names a store that is not configured."],
  // blob plane
  BLOB_NOT_FOUND: ["NotFound", "No object exists under the key."],
  BLOB_ALREADY_EXISTS: ["AlreadyExists", "A conditional create found an object already under the key."],
  BLOB_CHECKSUM_MISMATCH: [
    "Corrupt",
    "The bytes read do not match the SHA-256 recorded when they were written.",
  ],
  BLOB_METADATA_CORRUPT: ["Corrupt", "The object's stored metadata (fs footer) is unreadable."],
  BLOB_BACKEND_UNAVAILABLE: [
    "Unavailable",
    "The blob backend could not be reached or answered with a transient error.",
  ],
  BLOB_ACCESS_DENIED: ["PermissionDenied", "The blob backend refused the credentials or the operation."],
  BLOB_BUCKET_NOT_FOUND: ["NotFound", "The configured bucket or container does not exist."],
  BLOB_PATH_CONFLICT: [
    "Conflict",
    "The filesystem holds something that is not a Kura object where the key points.",
  ],
  BLOB_BACKEND_ERROR: ["Unexpected", "The blob backend answered with an error Kura does not classify."],
  PRESIGN_INVALID: ["PermissionDenied", "A presigned URL's signature does not match (tampered or foreign)."],
  PRESIGN_EXPIRED: ["PermissionDenied", "A presigned URL is past its expiry."],
  // catalog plane
  CATALOG_UNAVAILABLE: ["Unavailable", "The catalog database could not be reached or is busy."],
  CATALOG_NOT_FOUND: ["NotFound", "A catalog write referred to a row that does not exist."],
  CATALOG_DUPLICATE: ["AlreadyExists", "A catalog row with this id already exists."],
  CATALOG_STALE_VERSION: ["Conflict", "An edit was based on a version that is no longer current."],
  IDEMPOTENCY_CONFLICT: ["Conflict", "Another write with the same idempotency key was stored first."],
  CATALOG_MIGRATION_FAILED: [
    "Unexpected",
    "A schema migration failed; the catalog was left at the previous version.",
  ],
  CATALOG_SCHEMA_TOO_NEW: ["Unavailable", "The catalog was migrated by a newer Kura than this one."],
  CATALOG_ERROR: ["Unexpected", "The catalog database answered with an error Kura does not classify."],
  // messages and objects domains
  MESSAGE_INVALID: [
    "InvalidArgument",
    "A message is malformed: empty content, bad role, parts, metadata, ttl or idempotency key.",
  ],
  MESSAGE_TOO_LARGE: [
    "PayloadTooLarge",
    "A message's counted content exceeds the size limit (MSG-3, 128 KiB by default); nothing was stored.",
  ],
  MESSAGE_NOT_FOUND: ["NotFound", "No message with this id exists for the tenant (or it was deleted)."],
  CHAT_NOT_FOUND: ["NotFound", "No chat with this id exists for the tenant."],
  OBJECT_NOT_FOUND: ["NotFound", "No object with this key exists for the tenant."],
  TENANT_INVALID: ["InvalidArgument", "A tenant id does not match the id rule (IDS-1)."],
  CONDITION_FAILED_CONCURRENT: [
    "ConditionFailed",
    "Another write to the same object landed first; nothing of this write was kept.",
  ],
  FAULT_INJECTED: ["Unavailable", "A failure injected by the fault-injection layer (tests only)."],
  // state plane (KV) and sessions
  KV_KEY_INVALID: [
    "InvalidArgument",
    "A KV key is empty, holds control characters, or is too long: the full key (tenant and namespace prefix included) is at most 1,024 bytes of UTF-8, and the message states the limit left for the caller's key.",
  ],
  KV_VALUE_TOO_LARGE: [
    "PayloadTooLarge",
    "A KV value's encoded size exceeds the store's limit (1 MiB by default); nothing was written.",
  ],
  KV_VERSION_CONFLICT: [
    "ConditionFailed",
    "A compare-and-set found another version than the one expected; nothing was written.",
  ],
  KV_NOT_A_COUNTER: [
    "InvalidArgument",
    "An increment met a value that is not a safe integer, or would leave the safe range.",
  ],
  KV_VALUE_CORRUPT: ["Corrupt", "A stored KV value could not be decoded."],
  KV_UNAVAILABLE: ["Unavailable", "The KV backend could not be reached or answered with a transient error."],
  KV_BACKEND_ERROR: ["Unexpected", "The KV backend answered with an error Kura does not classify."],
  SESSION_ID_INVALID: ["InvalidArgument", "A session id does not match the id rule (IDS-1)."],
  SESSION_PATH_INVALID: [
    "InvalidArgument",
    "A session file path breaks the object key rules (BLOB-7): traversal, empty segments, control characters, or length (the path gets 1,024 bytes minus its tenant and session ids; the message states the limit).",
  ],
  SESSION_FILE_NOT_FOUND: ["NotFound", "No file with this path exists in the session (or it expired)."],
  // HTTP service (kura serve)
  SEARCH_UNAVAILABLE: [
    "Unavailable",
    "The search index could not be opened or queried; search falls back to a catalog scan (SRCH-3).",
  ],
  NOT_IMPLEMENTED: [
    "Unsupported",
    "The HTTP route is part of the API but the capability behind it is not built yet.",
  ],
  REQUEST_INVALID: [
    "InvalidArgument",
    "An HTTP request is malformed: unparseable JSON, a field of the wrong type or shape, an unknown field.",
  ],
  REQUEST_TOO_LARGE: ["PayloadTooLarge", "An HTTP request body or header exceeds the route's size limit."],
  MEDIA_TYPE_UNSUPPORTED: ["InvalidArgument", "The request's Content-Type is not one the route accepts."],
  ROUTE_NOT_FOUND: ["NotFound", "No HTTP route matches the method and path."],
  RANGE_NOT_SATISFIABLE: ["InvalidArgument", "A Range header asks for bytes beyond the end of the object."],
  PRECONDITION_FAILED: [
    "ConditionFailed",
    "A conditional request header (If-None-Match, If-Match) did not hold; nothing was changed.",
  ],
  AUTH_REQUIRED: ["Unauthenticated", "The request carries no `Authorization: Bearer <token>` header."],
  AUTH_INVALID: [
    "Unauthenticated",
    "The bearer token is malformed, wrongly signed, uses a refused algorithm, names another issuer or audience, or has no exp, an iat in the future or a lifetime above auth.max_token_lifetime_seconds.",
  ],
  AUTH_EXPIRED: ["Unauthenticated", "The bearer token has expired (or is not valid yet)."],
  AUTH_KEYS_UNAVAILABLE: [
    "Unavailable",
    "The JWKS endpoint that holds the token's signing keys could not be reached.",
  ],
  TENANT_MISMATCH: [
    "PermissionDenied",
    "The token's tenant_id claim and the request's subdomain name different tenants.",
  ],
  TENANT_UNRESOLVED: [
    "PermissionDenied",
    "The token names no valid tenant (no tenant_id claim, or one the id rule refuses), or the subdomain is not a valid tenant id.",
  ],
  SERVER_SHUTTING_DOWN: [
    "Unavailable",
    "The server is shutting down and takes no new requests; retry elsewhere.",
  ],
  KV_KEY_NOT_FOUND: ["NotFound", "No value is stored under the KV key (or it expired)."],
  // vectors (VEC-1…5, MEM-1)
  VECTOR_DIMENSIONS_MISMATCH: [
    "InvalidArgument",
    "A vector's length differs from the dimensions the index (or the embedder) was configured with.",
  ],
  VECTOR_INVALID: ["InvalidArgument", "A vector component is not a finite number (NaN or infinite)."],
  VECTOR_INDEX_CORRUPT: [
    "Corrupt",
    "A persisted vector index is unreadable or inconsistent; rebuild it from its source.",
  ],
  VECTOR_QUANTIZATION_UNSUPPORTED: [
    "ConfigInvalid",
    "The vector quantization cannot serve the metric (i8 needs cosine: it clips components to [-1, 1]).",
  ],
  EMBEDDER_UNAVAILABLE: [
    "Unavailable",
    "The embeddings service could not be reached or kept failing (network, timeout, 429, 5xx) after retries.",
  ],
  EMBEDDER_FAILED: [
    "Unexpected",
    "The embeddings service refused the request (e.g. 400, 401, 404) or answered an unexpected shape.",
  ],
  VECTOR_UNAVAILABLE: [
    "Unavailable",
    "The vector index could not be opened; memories and vector search are unavailable until it can.",
  ],
  VECTOR_COLLECTION_NOT_FOUND: ["NotFound", "No vector collection of this name exists for the tenant."],
  VECTOR_COLLECTION_CONFLICT: [
    "Conflict",
    "The vector collection exists with other dimensions or another metric.",
  ],
  VECTOR_SEARCH_DISABLED: [
    "Unsupported",
    "Vector and hybrid search over messages need messages to be embedded (`vector.embed_messages: true`).",
  ],
  VECTOR_INDEX_CONFIG_CHANGED: [
    "ConfigInvalid",
    "A persisted vector index was built with other dimensions, metric or quantization than configured.",
  ],
  // trust: faults, hostile input, disk full (issue "nothing lost, nothing crashes")
  STORAGE_FULL: [
    "QuotaExceeded",
    "A backend ran out of space (disk full); nothing was written. Deletes still work to free space.",
  ],
  INVALID_UTF8: [
    "InvalidArgument",
    "A request body or value holds bytes that are not valid UTF-8, or a lone UTF-16 surrogate.",
  ],
  VALUE_TOO_DEEP: ["InvalidArgument", "A JSON value is nested deeper than Kura stores (64 levels)."],
  IDEMPOTENCY_MISMATCH: [
    "Conflict",
    "The idempotency key was used before with a different request body; the first result stands.",
  ],
  REQUEST_TIMEOUT: [
    "InvalidArgument",
    "The client sent the request body too slowly or went idle (body/idle timeout); nothing was written.",
  ],
  ADDRESS_UNAVAILABLE: [
    "ConfigInvalid",
    "`kura serve` cannot listen on the configured host and port (in use, not on this machine, or privileged).",
  ],
  SERVER_RUNNING: [
    "Conflict",
    "A command that must run alone (`kura reindex`) found a `kura serve` running against the same catalog.",
  ],
  NOT_READY: ["Unavailable", "A plane the request needs is not ready (see /readyz for which and why)."],
  CHANGES_CURSOR_EXPIRED: [
    "NotFound",
    "A change-feed cursor points before the retained tail of the feed: the events after it were pruned.",
  ],
  // lifecycle: legal holds (LIFE-1)
  LEGAL_HOLD: [
    "Conflict",
    "A legal hold covers the data (the message, its chat or its user): it cannot be erased until the hold is removed; a soft delete still works.",
  ],
  LEGAL_HOLD_NOT_FOUND: ["NotFound", "The tenant has no legal hold with this id."],
  LIFECYCLE_RUNNING: [
    "Conflict",
    "A lifecycle run (the job or another `kura lifecycle run`) holds the catalog's lifecycle lease; try again when it ends.",
  ],
  // mail (MAIL-1)
  MAIL_NOT_FOUND: ["NotFound", "The tenant has no mail message with this id in this mailbox."],
  MAIL_ATTACHMENT_NOT_FOUND: ["NotFound", "The mail message has no attachment with this id."],
  MAIL_UNPARSEABLE: [
    "InvalidArgument",
    "The body is not an RFC 5322 message at all (empty, or neither a header nor a header/body separator); nothing was stored.",
  ],
  // tenants: registry, admin identity, API keys, limits (TEN-2…5)
  TENANT_EXISTS: ["AlreadyExists", "A tenant with this id is already registered."],
  TENANT_NOT_FOUND: ["NotFound", "No tenant with this id is registered."],
  TENANT_DOMAIN_TAKEN: ["Conflict", "A domain given for the tenant already belongs to another tenant."],
  TENANT_ISSUER_TAKEN: [
    "Conflict",
    "The token issuer given for the tenant (jwt.issuer) already belongs to another tenant.",
  ],
  TENANT_SUSPENDED: [
    "PermissionDenied",
    "The tenant is suspended: every call for it is refused, reads included, until it is reactivated.",
  ],
  TENANT_DELETING: [
    "PermissionDenied",
    "The tenant is being deleted: every call for it is refused, and the registry cannot change it, until the deletion job has removed it.",
  ],
  TENANT_UNKNOWN: [
    "PermissionDenied",
    "The token names a tenant that is not registered, and tenants are not created on first use (auth.auto_create_tenants: false).",
  ],
  TIER_UNKNOWN: ["InvalidArgument", "The tier named is not configured (`tiers.{name}`)."],
  ADMIN_REQUIRED: [
    "PermissionDenied",
    "The route is an admin route and the caller is not the admin (a tenant token or API key), or an admin token was used on a tenant route.",
  ],
  API_KEY_INVALID: ["Unauthenticated", "The API key is malformed, unknown, revoked or expired."],
  API_KEY_NOT_FOUND: ["NotFound", "The tenant has no API key with this id."],
  SCOPE_DENIED: [
    "PermissionDenied",
    "The API key's scopes do not allow the request (a read-only key on a write).",
  ],
  PAYLOAD_TOO_LARGE: [
    "PayloadTooLarge",
    "A message or object exceeds the tenant's size limit (max_message_bytes, max_object_bytes); nothing was stored.",
  ],
  QUOTA_EXCEEDED: [
    "QuotaExceeded",
    "The write would take the tenant past its storage or object-count limit (max_storage_bytes, max_objects); nothing was stored.",
  ],
  RATE_LIMITED: [
    "RateLimited",
    "The tenant sent more requests per second than its limit (max_requests_per_second); retry after Retry-After seconds.",
  ],
  // consistency (CONS-3)
  BODY_MISSING: [
    "Corrupt",
    "The message's row exists but its body is gone from the blob store: its content cannot be read (kura fsck reports and marks it).",
  ],
  BODY_CORRUPT: [
    "Corrupt",
    "The message's body no longer matches the SHA-256 recorded when it was written: its content cannot be read (kura fsck reports and marks it).",
  ],
  // backup and restore (CONS-4)
  BACKUP_CORRUPT: [
    "Corrupt",
    "A backup archive entry does not match its recorded size or SHA-256, or the archive is cut short or not a Kura backup.",
  ],
  BACKUP_RUNNING: ["Conflict", "Another backup holds the catalog's body pin: one backup at a time."],
  BACKUP_UNSUPPORTED: [
    "Unsupported",
    "The archive asks for what this Kura cannot do: a newer archive format or catalog schema, a compression this Node.js lacks, or its base archives (an incremental one).",
  ],
  RESTORE_TARGET_NOT_EMPTY: [
    "ConditionFailed",
    "The restore target already holds data (catalog rows, KV entries or stored bodies); pass --force to restore into it anyway.",
  ],
  // online migration (issue 16)
  MIGRATION_RUNNING: ["Conflict", "Another online migration is under way: one at a time."],
  MIGRATION_NOT_FOUND: ["NotFound", "No online migration has this id."],
  MIGRATION_UNSUPPORTED: [
    "Unsupported",
    "The migration asks for a plane online migration does not move yet (the catalog or the KV store).",
  ],
  MIGRATION_FAILED: [
    "Unavailable",
    "The online migration failed (its target could not be opened, refused a write or differs after a copy); reads stay on the source.",
  ],
  MIGRATION_VERIFY_FAILED: [
    "Corrupt",
    "An object copied to the migration's target does not match the source (size or SHA-256), even after a second copy.",
  ],
  // nodes sharing a catalog (DIST-1)
  LEASE_LOST: [
    "Conflict",
    "A job's write carried a lease it no longer holds (it expired and another node took the job): nothing was written.",
  ],
  NODE_NOT_FOUND: ["NotFound", "No node of this id is registered on the catalog."],
  NODE_LIVE: [
    "Conflict",
    "The node is live (seen within 30 s): stop it before forgetting it, or pass --force.",
  ],
  // encryption at rest (SEC-2)
  TENANT_KEYS_DESTROYED: [
    "NotFound",
    "The tenant's data keys were destroyed (crypto-shredding): what it stored can never be read again.",
  ],
  ENCRYPTION_DISABLED: [
    "Unsupported",
    "The operation needs encryption at rest, which is off (no encryption section in the configuration).",
  ],
  MASTER_KEY_UNKNOWN: [
    "ConfigInvalid",
    "A tenant's data key is wrapped by a master key the configuration does not hold (encryption.master_key, encryption.previous_master_keys).",
  ],
  // resumable uploads (API-6, tus 1.0)
  UPLOAD_NOT_FOUND: ["NotFound", "The tenant has no upload with this id (or it expired and was cleaned up)."],
  UPLOAD_EXPIRED: [
    "NotFound",
    "The upload passed its expiry (retention.upload_expiry_hours after its last progress); its parts are removed by the expire-uploads job. Start a new upload.",
  ],
  UPLOAD_OFFSET_MISMATCH: [
    "Conflict",
    "The request's Upload-Offset is not where the upload stands (or another request moved it first); nothing of the request was kept. HEAD gives the offset to resume from.",
  ],
  UPLOAD_CHECKSUM_MISMATCH: [
    "InvalidArgument",
    "The request body does not match its Upload-Checksum; nothing of the request was kept.",
  ],
  UPLOAD_CHECKSUM_UNSUPPORTED: [
    "InvalidArgument",
    "Upload-Checksum names an algorithm Kura does not offer (sha256 is offered).",
  ],
  UPLOAD_LENGTH_EXCEEDED: [
    "PayloadTooLarge",
    "The upload would pass its declared length, the server's limit (limits.max_upload_bytes) or the tenant's (max_object_bytes, storage left), or its part count (5,000); nothing of the request was kept.",
  ],
  UPLOAD_INVALID: [
    "InvalidArgument",
    "An upload request is malformed: Upload-Length and Upload-Defer-Length both or neither, a length that changes, unparseable Upload-Metadata, or metadata that names no target (key, or session_id and path).",
  ],
  TUS_VERSION_UNSUPPORTED: [
    "ConditionFailed",
    "The request's Tus-Resumable header is missing or names a protocol version other than 1.0.0.",
  ],
  // S3-compatible endpoint (API-7)
  S3_BUCKET_NAME_INVALID: [
    "InvalidArgument",
    "A bucket name is not 3–63 lowercase letters, digits, dots and hyphens starting and ending with a letter or digit.",
  ],
  S3_BUCKET_NOT_FOUND: [
    "NotFound",
    "The tenant has no bucket of this name (no marker and no object under it).",
  ],
  S3_BUCKET_EXISTS: ["AlreadyExists", "The tenant already has a bucket of this name."],
  S3_BUCKET_NOT_EMPTY: [
    "Conflict",
    "The bucket still holds objects or multipart uploads in progress; only an empty bucket is deleted.",
  ],
  S3_UPLOAD_NOT_FOUND: [
    "NotFound",
    "The tenant has no multipart upload with this id for the key (completed, aborted or expired).",
  ],
  S3_PART_INVALID: [
    "InvalidArgument",
    "A part named by CompleteMultipartUpload was not uploaded or its ETag does not match; nothing was stored.",
  ],
  S3_PART_ORDER_INVALID: [
    "InvalidArgument",
    "CompleteMultipartUpload listed the parts out of ascending order (or one twice); nothing was stored.",
  ],
  S3_PART_TOO_SMALL: [
    "InvalidArgument",
    "A part other than the last is smaller than 5 MiB; nothing was stored.",
  ],
  S3_DIGEST_MISMATCH: [
    "InvalidArgument",
    "The body does not match its Content-MD5 or x-amz-checksum-* value (or the checksum is malformed); nothing was stored.",
  ],
  S3_CONTENT_SHA256_MISMATCH: [
    "InvalidArgument",
    "The body does not match the SHA-256 its x-amz-content-sha256 header (or a chunk signature) vouched for; nothing was stored.",
  ],
  S3_SIGNATURE_MISMATCH: [
    "PermissionDenied",
    "The request's SigV4 signature is not the one the key's secret gives: a wrong secret, or a request changed after signing.",
  ],
  S3_ACCESS_KEY_UNKNOWN: [
    "PermissionDenied",
    "The access key id is not a live API key of a tenant (unknown, revoked, expired, or issued before its secret could sign SigV4).",
  ],
  S3_REQUEST_TIME_SKEWED: [
    "PermissionDenied",
    "The request's X-Amz-Date is more than 15 minutes from the server's clock.",
  ],
  S3_AUTH_MALFORMED: [
    "InvalidArgument",
    "The Authorization header or the X-Amz-* query parameters are not a well-formed AWS4-HMAC-SHA256 signature.",
  ],
  S3_ACCESS_DENIED: [
    "PermissionDenied",
    "The S3 request is unsigned, its presigned URL expired, or its key's scopes do not allow it.",
  ],
  S3_REQUEST_INVALID: [
    "InvalidArgument",
    "An S3 request is malformed: XML that does not parse or has the wrong shape, a bad header or query parameter.",
  ],
  S3_NOT_IMPLEMENTED: [
    "Unsupported",
    "The S3 operation (or this form of it) is not offered by Kura's S3 endpoint.",
  ],
} as const satisfies Record<string, readonly [ErrorKind, string]>;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface KuraErrorInit {
  /** Override the kind the registry gives the code (rarely needed). */
  kind?: ErrorKind;
  /** The operation that failed, e.g. `blob.put`. */
  operation?: string;
  /** Facts that help a reader: key, backend, limits. Never secrets. */
  context?: Record<string, unknown>;
  cause?: unknown;
  /** Override whether retrying may help; defaults by kind. */
  retryable?: boolean;
}

export class KuraError extends Error {
  readonly kind: ErrorKind;
  readonly code: ErrorCode;
  readonly retryable: boolean;
  readonly operation: string | undefined;
  readonly context: Readonly<Record<string, unknown>>;

  constructor(code: ErrorCode, message: string, init: KuraErrorInit = {}) {
    super(message, init.cause === undefined ? undefined : { cause: init.cause });
    this.name = "KuraError";
    this.code = code;
    this.kind = init.kind ?? ERROR_CODES[code][0];
    this.retryable = init.retryable ?? RETRYABLE_KINDS.has(this.kind);
    this.operation = init.operation;
    this.context = Object.freeze({ ...(init.context ?? {}) });
  }

  /** A copy with the operation filled in when it was not known where the error was made. */
  withOperation(operation: string): KuraError {
    if (this.operation) return this;
    return new KuraError(this.code, this.message, {
      kind: this.kind,
      operation,
      context: { ...this.context },
      cause: this.cause,
      retryable: this.retryable,
    });
  }

  toJSON(): Record<string, unknown> {
    return {
      name: this.name,
      kind: this.kind,
      code: this.code,
      message: this.message,
      retryable: this.retryable,
      operation: this.operation,
      context: this.context,
    };
  }
}

export function isKuraError(e: unknown, kind?: ErrorKind): e is KuraError {
  return e instanceof KuraError && (kind === undefined || e.kind === kind);
}

/** Wrap anything thrown into a KuraError, keeping KuraErrors as they are. */
export function toKuraError(e: unknown, operation: string): KuraError {
  if (e instanceof KuraError) return e.withOperation(operation);
  const message = e instanceof Error ? e.message : String(e);
  return new KuraError("UNEXPECTED", `${operation}: ${message}`, { operation, cause: e });
}
