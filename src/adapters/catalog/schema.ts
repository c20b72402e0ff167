/**
 * The catalog's tables: the one definition both dialects are rendered from (CAT-1, CAT-2).
 * Migrations (`migrations.ts`) create these; a table is created by exactly one migration.
 *
 * Every row carries `tenant_id` except the engine-global tables (`outbox_consumers`, `leases`,
 * `schema_migrations`); times are milliseconds since the epoch; ids and keys are compared in
 * byte order on both dialects (see `dsl.ts`).
 */
import { index, type TableDef, table, withColumns } from "./dsl.js";

/** Tenants as migration 1 created them. */
export const TENANTS_V1 = table(
  "tenants",
  { tenant_id: "text", created_at: "int" },
  { primaryKey: ["tenant_id"] },
);

/**
 * Tenants. `feed_seq` (migration 3) is the last position issued in the tenant's change feed:
 * every outbox event gets the next one (`outbox.tenant_seq`), so the positions a tenant sees
 * count its own events only (NULL = none yet).
 */
export const TENANTS = withColumns(TENANTS_V1, { feed_seq: "int?" });

/** Placeholder until the user registry exists. */
export const USERS = table(
  "users",
  { tenant_id: "text", user_id: "text", created_at: "int", attributes: "json" },
  { primaryKey: ["tenant_id", "user_id"] },
);

export const CHATS = table(
  "chats",
  { tenant_id: "text", chat_id: "text", created_at: "int", last_message_at: "int" },
  { primaryKey: ["tenant_id", "chat_id"] },
);

/** The unique index whose violation means IDEMPOTENCY_CONFLICT rather than CATALOG_DUPLICATE. */
export const MESSAGES_IDEMPOTENCY_INDEX = "messages_idempotency";

export const MESSAGES = table(
  "messages",
  {
    tenant_id: "text",
    id: "text",
    chat_id: "text",
    role: "text",
    content_type: "text",
    // Derived text (SEC-2): encrypted under the key named by `text_kid` when encryption is on.
    preview: "text",
    text_kid: "text?",
    size_bytes: "int",
    checksum: "text",
    store_id: "text",
    blob_key: "text",
    version: "int",
    created_at: "int",
    updated_at: "int",
    deleted_at: "int?",
    expires_at: "int?",
    idempotency_key: "text?",
    metadata: "json",
  },
  {
    primaryKey: ["tenant_id", "id"],
    indexes: [
      index("messages_history", ["tenant_id", "chat_id", "created_at", "id"]),
      index(MESSAGES_IDEMPOTENCY_INDEX, ["tenant_id", "idempotency_key"], {
        unique: true,
        where: "idempotency_key IS NOT NULL",
      }),
      index("messages_deleted", ["deleted_at"], { where: "deleted_at IS NOT NULL" }),
      index("messages_expires", ["expires_at"], { where: "expires_at IS NOT NULL" }),
    ],
  },
);

export const MESSAGE_VERSIONS = table(
  "message_versions",
  {
    tenant_id: "text",
    message_id: "text",
    version: "int",
    store_id: "text",
    blob_key: "text",
    size_bytes: "int",
    checksum: "text",
    preview: "text",
    text_kid: "text?",
    created_at: "int",
  },
  { primaryKey: ["tenant_id", "message_id", "version"] },
);

export const OBJECTS = table(
  "objects",
  {
    tenant_id: "text",
    key: "text",
    store_id: "text",
    blob_key: "text",
    size_bytes: "int",
    checksum: "text",
    content_type: "text",
    created_at: "int",
    updated_at: "int",
  },
  { primaryKey: ["tenant_id", "key"] },
);

export const BLOB_REFS = table(
  "blob_refs",
  {
    store_id: "text",
    blob_key: "text",
    tenant_id: "text",
    size_bytes: "int",
    checksum: "text",
    kind: "text",
    created_at: "int",
  },
  { primaryKey: ["store_id", "blob_key"], indexes: [index("blob_refs_tenant", ["tenant_id"])] },
);

/**
 * The outbox as migration 1 created it. SQLite has one writer, so `seq` is commit order. PostgreSQL assigns `seq` at
 * insert time, not commit time; `txid` (the writing transaction) lets readers hold back events
 * of transactions still in flight (see `postgres/outbox.ts`).
 */
export const OUTBOX_V1 = table(
  "outbox",
  {
    seq: "seq",
    txid: "txid",
    tenant_id: "text",
    type: "text",
    entity_id: "text",
    payload: "json",
    created_at: "int",
  },
  { indexes: [index("outbox_txid_seq", ["txid", "seq"], { dialects: ["postgres"] })] },
);

/**
 * The outbox with `tenant_seq` (migration 3): the event's position in its tenant's change feed,
 * gap-free and in commit order per tenant (issued under the tenant row's lock). NULL only for
 * rows written before migration 3 that the migration could not number (none: it backfills).
 */
export const OUTBOX = withColumns(OUTBOX_V1, { tenant_seq: "int?" }, [
  index("outbox_tenant_seq", ["tenant_id", "tenant_seq"]),
]);

export const OUTBOX_CONSUMERS = table(
  "outbox_consumers",
  { consumer: "text", cursor: "text" },
  { primaryKey: ["consumer"] },
);

export const AUDIT_LOG = table(
  "audit_log",
  {
    seq: "seq",
    tenant_id: "text",
    actor: "text",
    action: "text",
    target: "text",
    at: "int",
    details: "json",
  },
  { indexes: [index("audit_log_tenant_at", ["tenant_id", "at", "seq"])] },
);

/** Placeholder for the job queue (lifecycle, GC, reindex); leases below give exactly-once. */
export const JOBS = table(
  "jobs",
  {
    tenant_id: "text",
    job_id: "text",
    kind: "text",
    state: "text",
    payload: "json",
    run_at: "int",
    attempts: "int",
    created_at: "int",
    updated_at: "int",
  },
  { primaryKey: ["tenant_id", "job_id"], indexes: [index("jobs_due", ["state", "run_at"])] },
);

export const LEASES_V1 = table(
  "leases",
  { name: "text", owner: "text", expires_at: "int" },
  { primaryKey: ["name"] },
);

/**
 * Leases with a fencing token (migration 10): raised each time the lease changes hands (or is
 * taken again after it expired), kept while its holder renews it; a job's catalog writes carry
 * it (`checkLease`), so a holder that lost the lease can no longer commit.
 */
export const LEASES = withColumns(LEASES_V1, { token: "int?" });

/** Folded usage totals; writers never touch these rows (no hot row), only `foldUsage` does. */
export const USAGE = table(
  "usage",
  { tenant_id: "text", bytes: "int", objects: "int", messages: "int" },
  { primaryKey: ["tenant_id"] },
);

export const USAGE_DELTAS = table(
  "usage_deltas",
  { seq: "seq", tenant_id: "text", bytes: "int", objects: "int", messages: "int" },
  { indexes: [index("usage_deltas_tenant", ["tenant_id"])] },
);

/** Created by the migrator itself (before any migration runs), hence `IF NOT EXISTS`. */
export const SCHEMA_MIGRATIONS = table(
  "schema_migrations",
  { version: "int", name: "text", applied_at: "int" },
  { primaryKey: ["version"] },
);

// --- mail metadata (MAIL-1): placeholders, filled in by the mail domain -----------------------

export const MAIL_DOMAINS = table(
  "mail_domains",
  { tenant_id: "text", domain: "text", created_at: "int" },
  { primaryKey: ["tenant_id", "domain"] },
);

export const MAILBOXES = table(
  "mailboxes",
  { tenant_id: "text", mailbox_id: "text", address: "text", created_at: "int" },
  {
    primaryKey: ["tenant_id", "mailbox_id"],
    indexes: [index("mailboxes_address", ["tenant_id", "address"], { unique: true })],
  },
);

/** The placeholder migration 2 created (nothing wrote it); migration 8 replaces it by {@link MAIL_MESSAGES}. */
export const MAIL_MESSAGES_V1 = table(
  "mail_messages",
  {
    tenant_id: "text",
    mailbox_id: "text",
    message_id: "text",
    store_id: "text",
    blob_key: "text",
    size_bytes: "int",
    checksum: "text",
    header_message_id: "text?",
    // Derived text (SEC-2), like messages.preview.
    subject: "text?",
    from_addr: "text?",
    to_addrs: "json",
    text_kid: "text?",
    sent_at: "int?",
    received_at: "int",
    flags: "json",
    tags: "json",
    deleted_at: "int?",
  },
  {
    primaryKey: ["tenant_id", "mailbox_id", "message_id"],
    indexes: [index("mail_messages_received", ["tenant_id", "mailbox_id", "received_at", "message_id"])],
  },
);

// --- the tenant registry and API keys (migration 4; TEN-2, TEN-5) ---------------------------

/**
 * Registered tenants: their settings, apart from `tenants` (the row every write of the tenant
 * creates and locks for its feed positions), so an admin change never waits on writers. A
 * tenant with data but no row here is unregistered (created implicitly on first use).
 */
export const TENANT_REGISTRY = table(
  "tenant_registry",
  {
    tenant_id: "text",
    name: "text?",
    status: "text",
    tier: "text",
    limits: "json",
    domains: "json",
    jwt: "json?",
    created_at: "int",
    updated_at: "int",
  },
  { primaryKey: ["tenant_id"] },
);

/** Which tenant a domain belongs to: the primary key makes a domain one tenant's at most. */
export const TENANT_DOMAINS = table(
  "tenant_domains",
  { domain: "text", tenant_id: "text" },
  { primaryKey: ["domain"], indexes: [index("tenant_domains_tenant", ["tenant_id"])] },
);

/** API keys: the secret only as a SHA-256 hash; looked up by key id whatever the tenant. */
export const API_KEYS = table(
  "api_keys",
  {
    key_id: "text",
    tenant_id: "text",
    secret_hash: "text",
    scopes: "json",
    created_at: "int",
    expires_at: "int?",
    revoked_at: "int?",
  },
  { primaryKey: ["key_id"], indexes: [index("api_keys_tenant", ["tenant_id", "key_id"])] },
);

// --- tenant issuers and the registry version (migration 5; TEN-2) ---------------------------

/**
 * Which tenant a token issuer (`jwt.issuer`, seed 003: each tenant its own user pool) belongs
 * to: the primary key makes an issuer one tenant's at most, so a token's `iss` selects one tenant.
 */
export const TENANT_ISSUERS = table(
  "tenant_issuers",
  { issuer: "text", tenant_id: "text" },
  { primaryKey: ["issuer"], indexes: [index("tenant_issuers_tenant", ["tenant_id"])] },
);

/**
 * One row (`id` 1) counting the changes of registered tenants (update, removal), bumped in the
 * change's transaction: every node polls it to drop its cached tenant records (ADR 0029).
 */
export const REGISTRY_VERSION = table(
  "registry_version",
  { id: "int", version: "int" },
  { primaryKey: ["id"] },
);

// --- legal holds (migration 6; LIFE-1) -------------------------------------------------------

/**
 * Legal holds: while a row names a chat, a user or a message of its tenant, that data is never
 * purged, expired or erased. Few per tenant; read whole by the lifecycle engine.
 */
export const LEGAL_HOLDS = table(
  "legal_holds",
  {
    tenant_id: "text",
    id: "text",
    chat_id: "text?",
    user_id: "text?",
    message_id: "text?",
    reason: "text",
    created_by: "text",
    created_at: "int",
  },
  { primaryKey: ["tenant_id", "id"] },
);

// --- mail storage (migration 8; MAIL-1) ------------------------------------------------------

/**
 * Stored mail: one row per message in a mailbox, keyed by its id alone (a move changes
 * `mailbox_id`, nothing else). The raw `.eml` (`blob_key`) and each attachment (in
 * `attachments`) are bodies with a `blob_refs` row of their own; a copy is a new row naming
 * the same bodies, and the bodies go with the last row naming them (`mail_blob` finds those).
 * `search_text` is derived text (SEC-2, like `messages.preview`): what the full-text index holds.
 */
export const MAIL_MESSAGES = table(
  "mail_messages",
  {
    tenant_id: "text",
    id: "text",
    mailbox_id: "text",
    store_id: "text",
    blob_key: "text",
    size_bytes: "int",
    checksum: "text",
    header_message_id: "text?",
    subject: "text?",
    from_addr: "json?",
    to_addrs: "json",
    cc_addrs: "json",
    sent_at: "int?",
    received_at: "int",
    flags: "json",
    attachments: "json",
    thread_id: "text",
    in_reply_to: "text?",
    refs: "json",
    headers: "json",
    problems: "json",
    search_text: "text",
    text_kid: "text?",
  },
  {
    primaryKey: ["tenant_id", "id"],
    indexes: [
      index("mail_messages_mailbox", ["tenant_id", "mailbox_id", "received_at", "id"]),
      index("mail_messages_blob", ["tenant_id", "blob_key"]),
      index("mail_messages_header_id", ["tenant_id", "header_message_id"]),
      index("mail_messages_thread", ["tenant_id", "thread_id", "received_at", "id"]),
    ],
  },
);

/**
 * Tenants' data keys (SEC-2): one row per key version, the key wrapped by the master key named by
 * `master_key_id` (`wrapped` is null once destroyed). `key_id` names the tenant's key lineage
 * and goes in every encrypted object's header with the version. `state`: `active` (the newest
 * version: new writes), `retired` (readable; re-encryption moves its data to the active one),
 * `destroyed` (crypto-shredded: every version of the tenant at once).
 */
export const TENANT_KEYS = table(
  "tenant_keys",
  {
    tenant_id: "text",
    version: "int",
    key_id: "text",
    state: "text",
    wrapped: "text?",
    master_key_id: "text",
    created_at: "int",
    updated_at: "int",
  },
  { primaryKey: ["tenant_id", "version"] },
);

/** Every table, for checks that the migrations create exactly these. */
export const ALL_TABLES: readonly TableDef[] = Object.freeze([
  TENANTS,
  USERS,
  CHATS,
  MESSAGES,
  MESSAGE_VERSIONS,
  OBJECTS,
  BLOB_REFS,
  OUTBOX,
  OUTBOX_CONSUMERS,
  AUDIT_LOG,
  JOBS,
  LEASES,
  USAGE,
  USAGE_DELTAS,
  SCHEMA_MIGRATIONS,
  MAIL_DOMAINS,
  MAILBOXES,
  MAIL_MESSAGES,
  TENANT_REGISTRY,
  TENANT_DOMAINS,
  API_KEYS,
  TENANT_ISSUERS,
  REGISTRY_VERSION,
  LEGAL_HOLDS,
  TENANT_KEYS,
]);
