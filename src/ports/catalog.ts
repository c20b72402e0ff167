/**
 * The catalog plane: metadata and indexes of everything Kura stores (CAT-1/2, CONS-1/2,
 * TEN-1/4). Bodies live in the blob store; the catalog holds the index rows that point at them,
 * the outbox that feeds projectors, the audit log, jobs and usage counters.
 *
 * Writes go in {@link CatalogBatch}es: a batch applies all its operations or none. `commit` takes
 * several batches and applies them in ONE transaction (group commit: one fsync for many
 * writers), each batch isolated by a savepoint, so one failing batch fails alone.
 *
 * Every row carries `tenantId` and every read takes one: no method reads across tenants except
 * the outbox and maintenance scans, which are engine-internal and return tenant ids with rows.
 * Times are integers: milliseconds since the Unix epoch (UTC).
 *
 * What a layer may repeat or limit is {@link CATALOG_CALLS}: reads and idempotent calls only;
 * `commit` never.
 */
import type { PortCalls } from "./calls.js";
import { TENANT_KEY_CALLS, type TenantKeyStore } from "./key-provider.js";
import type { MailCatalogReads, MailOp } from "./mail-catalog.js";

export interface MessageRow {
  tenantId: string;
  /** UUIDv7, time-sortable. */
  id: string;
  chatId: string;
  role: string;
  contentType: string;
  /** First 200 characters of the text content (derived text: erasable and encryptable, SEC-2). */
  preview: string;
  /** Size of the body object in bytes. */
  sizeBytes: number;
  /** Hex SHA-256 of the body object. */
  checksum: string;
  /** Id of the configured blob store holding the body (a migration rewrites no rows, MSG-6). */
  storeId: string;
  blobKey: string;
  /** Current version: 1 at append, +1 per edit. */
  version: number;
  createdAt: number;
  updatedAt: number;
  deletedAt: number | null;
  expiresAt: number | null;
  idempotencyKey: string | null;
  /** Small user metadata, JSON-serialisable. */
  metadata: Record<string, unknown>;
}

export interface MessageVersionRow {
  tenantId: string;
  messageId: string;
  version: number;
  storeId: string;
  blobKey: string;
  sizeBytes: number;
  checksum: string;
  preview: string;
  createdAt: number;
}

export interface ChatRow {
  tenantId: string;
  chatId: string;
  createdAt: number;
  lastMessageAt: number;
}

/**
 * A stored body, whatever owns it. GC treats objects with no ref (after a grace period) as orphans.
 * An object body's ref is a row of its own (`putBlobRef`); a message body's is its message or
 * version row, which the reads below list as a ref of kind `message` (version 1) or
 * `message-version`, created when the row was.
 */
export interface BlobRefRow {
  tenantId: string;
  storeId: string;
  blobKey: string;
  sizeBytes: number;
  checksum: string;
  /** `message`, `message-version`, `object`, … */
  kind: string;
  createdAt: number;
}

/** One page of `Catalog.listBlobRefs`: more may follow while `next` is set. */
export interface BlobRefPage {
  refs: BlobRefRow[];
  next?: string;
}

/** A user object of the objects domain: `{tenant}/objects/{key}` in the blob store. */
export interface ObjectRow {
  tenantId: string;
  key: string;
  storeId: string;
  blobKey: string;
  sizeBytes: number;
  checksum: string;
  contentType: string;
  createdAt: number;
  updatedAt: number;
}

export interface OutboxEvent {
  tenantId: string;
  /** e.g. `message.appended`, `message.edited`, `message.deleted`, `object.put`. */
  type: string;
  /** The entity the event is about (message id, object key, …). */
  entityId: string;
  payload: Record<string, unknown>;
  createdAt: number;
}

/** An outbox event as read back, with its position. */
export interface OutboxRecord extends OutboxEvent {
  /** Monotonic per database; commit order is given by `cursor`, not by `seq`. */
  seq: number;
  /** Opaque, commit-safe position of this event: pass it back to read what follows. */
  cursor: string;
}

/**
 * Set in a commit failure's `context.outcome` when the transaction may have committed anyway
 * (the connection was lost while COMMIT was in flight). The write protocol then keeps the bodies
 * it wrote: a committed row may point at them, and orphan GC removes them if none does.
 */
export const COMMIT_OUTCOME_UNKNOWN = "unknown";

/** An event of one tenant's change feed. */
export interface ChangeRecord extends OutboxEvent {
  /**
   * The event's position in its tenant's feed: 1, 2, 3, … without gaps, in commit order. Other
   * tenants' writes never move it (a tenant learns nothing of their activity from it).
   */
  seq: number;
}

/** What `pruneOutbox` should keep. */
export interface OutboxPruneOptions {
  /**
   * Events created after this time (ms since the epoch) are kept: the tail the change feed
   * serves (`outbox.retention_hours`). `before = now` keeps only what a consumer still needs.
   */
  before: number;
  /**
   * Consumers that must have passed an event before it goes, besides every consumer with a
   * saved cursor. One that has no cursor yet has passed nothing, so nothing is pruned.
   */
  consumers?: readonly string[];
}

export interface OutboxPruneResult {
  /** Events deleted. */
  deleted: number;
}

/** A message's identity, as the catalog-wide key scan returns it. */
export interface MessageKey {
  tenantId: string;
  id: string;
}

export interface AuditEntry {
  tenantId: string;
  /** Who: user id, `system`, `admin:<id>`. */
  actor: string;
  /** What: `message.append`, `message.delete`, … */
  action: string;
  /** The entity acted on. */
  target: string;
  at: number;
  details: Record<string, unknown>;
}

/** An audit entry as the log holds it: `seq` is its place in the log, increasing in insertion order. */
export interface AuditRecord extends AuditEntry {
  seq: number;
}

/** Which audit entries `auditEntries` reads: every filter given must hold. */
export interface AuditQuery {
  /** One tenant's entries only. */
  tenantId?: string;
  /** Entries of this action only (`tenant.create`, `message.append`, …), compared exactly. */
  action?: string;
  /** Entries at or after this time (ms). */
  since?: number;
  /** Entries before this time (ms). */
  until?: number;
  /** Entries after this `seq` (the last one of the previous page). */
  afterSeq?: number;
  limit: number;
}

/** The bodies the catalog references for one tenant, of one kind (ref rows and message bodies). */
export interface BodyStats {
  tenantId: string;
  /** `message`, `message-version`, `object`. */
  kind: string;
  bodies: number;
  bytes: number;
}

/**
 * A tenant's bodies of one kind in one cell of `bodyBuckets`: created in one age bucket and of
 * one size bucket. Bucket `i` of bounds `b` holds values below `b[i]` and at or above `b[i - 1]`;
 * bucket `b.length`, the rest.
 */
export interface BodyBucket {
  tenantId: string;
  kind: string;
  /** The bucket of the blob ref's `createdAt` among `createdBounds`. */
  created: number;
  /** The bucket of its `sizeBytes` among `sizeBounds`. */
  size: number;
  bodies: number;
  bytes: number;
}

/** How many of a tenant's live messages fall in each size bucket (`messageSizeHistogram`). */
export interface MessageSizeCounts {
  tenantId: string;
  /** `counts[i]`: bodies below `bounds[i]` (and at or above `bounds[i - 1]`); the last, the rest. */
  counts: number[];
}

/**
 * A tenant's usage as recorded (folded totals + deltas) beside what its stored rows add up to:
 * bytes and bodies of its blob refs, and its message rows (soft-deleted ones included).
 */
export interface UsageCheck {
  tenantId: string;
  recorded: Omit<Usage, "tenantId">;
  stored: Omit<Usage, "tenantId">;
}

export interface UsageDelta {
  tenantId: string;
  bytes: number;
  objects: number;
  messages: number;
}

export interface Usage {
  tenantId: string;
  bytes: number;
  objects: number;
  messages: number;
}

/**
 * Where a registered tenant stands: `active` serves, `suspended` refuses every call, `deleting`
 * refuses every call while a job removes its data (the record goes last).
 */
export type TenantStatus = "active" | "suspended" | "deleting";

/** A tenant's own identity provider (seed 003: each tenant its own user pool). */
export interface TenantJwt {
  issuer: string;
  jwksUrl: string;
  audience: string | null;
}

/** A tenant of the registry (TEN-2, TEN-3, TEN-5): its settings, not its data. */
export interface TenantRecord {
  tenantId: string;
  name: string | null;
  status: TenantStatus;
  /** A tier of the configuration (`tiers.{name}`), whose limits apply unless overridden. */
  tier: string;
  /** Overrides of the tier's limits by limit name (`max_storage_bytes`, …). */
  limits: Record<string, number>;
  /** Host names that resolve to this tenant, lower case; each belongs to one tenant at most. */
  domains: string[];
  jwt: TenantJwt | null;
  createdAt: number;
  updatedAt: number;
}

/** What an update of a tenant changes: the fields given, nothing else. */
export type TenantChange = Partial<
  Pick<TenantRecord, "name" | "status" | "tier" | "limits" | "domains" | "jwt">
>;

/** An API key of a tenant (TEN-5). Only a hash of its secret is ever stored. */
export interface ApiKeyRecord {
  keyId: string;
  tenantId: string;
  /** Hex SHA-256 of the secret. */
  secretHash: string;
  /** `read`, `write`, … */
  scopes: string[];
  createdAt: number;
  expiresAt: number | null;
  revokedAt: number | null;
}

/**
 * A background job's state of record (`jobs` table): what a job that must outlive a restart
 * (tenant deletion) keeps between its steps. `payload` is the job's own progress.
 */
export interface JobRecord {
  /** Whose job: a tenant, or a system name starting with `~` (no tenant's id does, IDS-1). */
  tenantId: string;
  jobId: string;
  /** What the job does (`tenant.delete`, …): `listJobs` finds them by it. */
  kind: string;
  /** The job's own state name (`pending`, `running`, …). */
  state: string;
  payload: Record<string, unknown>;
  /** When it should run (ms); 0 for as soon as possible. */
  runAt: number;
  attempts: number;
  createdAt: number;
  updatedAt: number;
}

/**
 * A legal hold (LIFE-1): while it exists, the data it names is never purged, expired or erased.
 * It names one of a chat, a user (messages whose `metadata.user_id` is that user) or a message.
 */
export interface LegalHoldRow {
  tenantId: string;
  /** UUIDv7. */
  id: string;
  chatId: string | null;
  userId: string | null;
  messageId: string | null;
  reason: string;
  /** Who placed it (the audit actor). */
  createdBy: string;
  createdAt: number;
}

/** What `checkNotHeld` asks about: messages by id, with their chat and user. */
export interface HeldQuery {
  tenantId: string;
  messageIds: readonly string[];
  chatIds: readonly string[];
  userIds: readonly string[];
}

/** Bodies due for the archive (`messagesToArchive`, `objectsToArchive`): stored before `before`. */
export interface ArchiveQuery {
  before: number;
  /** The last row of the previous page, as `{tenantId, id}` (message id or object key). */
  after?: { tenantId: string; id: string };
  limit: number;
}

/** A change of the registry, with the audit entry written in the same transaction (SEC-3). */
export interface RegistryWrite {
  audit?: AuditEntry;
}

/** One write: what the engine can ask of the catalog inside a batch. */
export type CatalogOp =
  | { op: "ensureTenant"; tenantId: string; at: number }
  /** Creates the chat if missing; moves `lastMessageAt` forward. */
  | { op: "touchChat"; tenantId: string; chatId: string; at: number }
  /**
   * Inserts the message row, which is also its version 1 until the first edit (no version row is
   * written: `listMessageVersions` lists version 1 from the message row while message_versions has
   * none, and the first `addMessageVersion` records it there). Fails the batch with
   * `IDEMPOTENCY_CONFLICT` if (tenant, idempotencyKey) exists, `CATALOG_DUPLICATE` if the id exists.
   */
  | { op: "insertMessage"; row: MessageRow }
  /**
   * Records a new version and makes it current (edit); on the first edit, version 1 is first
   * copied from the message row into message_versions. Fails with `CATALOG_STALE_VERSION` unless
   * the current version is `expectVersion`.
   */
  | { op: "addMessageVersion"; row: MessageVersionRow; expectVersion: number; updatedAt: number }
  /** Soft delete (`deletedAt` set) or undelete (`deletedAt: null`); `CATALOG_NOT_FOUND` if no such message. */
  | { op: "setMessageDeleted"; tenantId: string; id: string; deletedAt: number | null; updatedAt: number }
  /**
   * Removes the message row and all its versions (purge / erase). With `expectVersion` (the
   * version whose bodies the batch drops), fails with `CATALOG_NOT_FOUND` if there is no such
   * message and `CATALOG_STALE_VERSION` unless it is at that version: an erase racing another
   * erase, or an edit, must not take the same bodies out of usage twice or leave a new one behind.
   */
  | { op: "deleteMessage"; tenantId: string; id: string; expectVersion?: number }
  /**
   * Creates or replaces the object row. With `expectBlobKey` (compare-and-set) fails with
   * `CATALOG_STALE_VERSION` unless the current row's blobKey equals it (`null` = no row yet).
   */
  | { op: "putObject"; row: ObjectRow; expectBlobKey?: string | null }
  /** Removes the object row; with `expectBlobKey` only if it still points there (else `CATALOG_STALE_VERSION`). */
  | { op: "deleteObject"; tenantId: string; key: string; expectBlobKey?: string }
  /** A ref row for a body no message or version row points at (objects). */
  | { op: "putBlobRef"; row: BlobRefRow }
  | { op: "deleteBlobRef"; tenantId: string; storeId: string; blobKey: string }
  | { op: "appendOutbox"; event: OutboxEvent }
  | { op: "appendAudit"; entry: AuditEntry }
  /** Adds (possibly negative) deltas; written as delta rows and folded later (no hot row). */
  | { op: "addUsage"; delta: UsageDelta }
  /**
   * Fails the batch with `QUOTA_EXCEEDED` if the tenant's usage — with what this batch and the
   * batches committed before it added — is above `maxBytes` or `maxObjects` (TEN-3). Exact
   * against concurrent commits: on SQLite one writer applies them in turn; on PostgreSQL the
   * transaction holds the tenant's feed row (locked by its first statement for the events it
   * appends) and reads usage after it, so it sees every write of the tenant committed before.
   */
  | { op: "checkQuota"; tenantId: string; maxBytes?: number; maxObjects?: number }
  /**
   * Points a message version's body at a new key (the archive, LIFE-1): the version row (and the
   * message row, when that version is current) move from `fromBlobKey` to `blobKey` in
   * `storeId`, with the size and checksum given (the same bytes). Fails with `CATALOG_NOT_FOUND`
   * if there is no such message and `CATALOG_STALE_VERSION` unless it is at `expectVersion` and
   * the version's body is still `fromBlobKey`.
   */
  | {
      op: "moveMessageBody";
      tenantId: string;
      id: string;
      version: number;
      expectVersion: number;
      fromBlobKey: string;
      storeId: string;
      blobKey: string;
      sizeBytes: number;
      checksum: string;
    }
  /** Records a legal hold; `CATALOG_DUPLICATE` if the tenant has one of this id. */
  | ({ op: "insertLegalHold" } & LegalHoldRow)
  /** Removes a legal hold; `LEGAL_HOLD_NOT_FOUND` if the tenant has none of this id. */
  | { op: "deleteLegalHold"; tenantId: string; id: string }
  /**
   * Fails the batch with `LEGAL_HOLD` if a hold of the tenant names one of the messages, chats
   * or users (an erase, purge or expiry carries it). Exact against concurrent commits as
   * `checkQuota` is: hold writes append the tenant's events too, so they are ordered with it.
   */
  | ({ op: "checkNotHeld" } & HeldQuery)
  /**
   * Fails the batch with `LEASE_LOST` unless `owner` holds the lease `name` with this fencing
   * token at `now` (a job's writes carry it: a holder that lost its lease commits nothing more).
   * On PostgreSQL the lease row stays locked to the commit, so no takeover passes it meanwhile.
   */
  | { op: "checkLease"; name: string; owner: string; token: number; now: number }
  /** Mail rows (MAIL-1): `mail-catalog.ts`. */
  | MailOp;

export interface CatalogBatch {
  ops: CatalogOp[];
}

/** Result of one batch in a group commit: applied, or the KuraError that rolled it back. */
export type BatchOutcome = { ok: true } | { ok: false; error: import("../core/errors.js").KuraError };

export interface HistoryQuery {
  order: "asc" | "desc";
  /** Position after which to continue: the last row of the previous page. */
  after?: { createdAt: number; id: string };
  /** Inclusive lower / exclusive upper bound on createdAt. */
  since?: number;
  until?: number;
  limit: number;
  includeDeleted?: boolean;
}

/** Soft-deleted messages due for purge: `deletedAt < before`, across tenants or of one. */
export interface DueMessagesQuery {
  before: number;
  limit: number;
  tenantId?: string;
}

/** Messages whose TTL ran out: `expiresAt < now`, across tenants. */
export interface ExpiredMessagesQuery {
  now: number;
  limit: number;
}

/** Who holds a named lease. */
export interface LeaseHolder {
  name: string;
  owner: string;
}

/** A lease asked for at `now` (ms), to hold until `now + ttlMs`. */
export interface LeaseRequest extends LeaseHolder {
  now: number;
  ttlMs: number;
}

/**
 * A catalog row as a backup archive holds it, the same in every dialect: column name → text,
 * integer or null (JSON columns as their stored text, so they round-trip verbatim).
 */
export type CatalogDumpRow = Record<string, string | number | null>;

/** A table a snapshot holds, with the columns its rows carry (no dialect-only column: `txid`). */
export interface CatalogDumpTable {
  name: string;
  columns: readonly string[];
}

/**
 * A read of every table at one point in time (`openSnapshot`), for backup: SQLite a read
 * transaction on a connection of its own, PostgreSQL a REPEATABLE READ READ ONLY transaction.
 */
export interface CatalogSnapshot {
  /** The schema version of the rows (the highest migration applied). */
  readonly schemaVersion: number;
  /**
   * The tables a backup holds: every table but the ones that describe this database rather
   * than the data (`schema_migrations`, `leases`, and `outbox_consumers`, whose cursors are a
   * dialect's own: the projectors of a restored catalog rebuild instead).
   */
  readonly tables: readonly CatalogDumpTable[];
  /**
   * Behavior: every row of `table` as of the snapshot exactly once, in pages of at most
   * `pageSize`; commits after the snapshot was taken are never seen; an unknown table is
   * `INVALID_ARGUMENT`.
   */
  rows(table: string, options: { pageSize: number }): AsyncIterable<CatalogDumpRow[]>;
  /** Behavior: ends the transaction; idempotent. */
  close(): Promise<void>;
}

export interface CatalogCapabilities {
  /** Several processes may open the catalog at once (PostgreSQL yes; SQLite in one process only). */
  readonly multiProcess: boolean;
  /**
   * The catalog is reached over a network (a server): its calls get the retry layer and a
   * client-side limit on reads (`layers/port-layers.ts`). Absent means embedded (false).
   */
  readonly remote?: boolean;
}

export interface Catalog extends MailCatalogReads, TenantKeyStore {
  readonly dialect: "sqlite" | "postgres";
  readonly capabilities: CatalogCapabilities;

  /**
   * Applies pending migrations (CAT-1). Called by `open`; idempotent.
   * Behavior: a migration applies whole or not at all (a failing one leaves the previous
   * version); a database whose version is newer than the code's is refused; every table of the
   * schema definition exists afterwards, with `tenant_id` where rows belong to a tenant.
   */
  migrate(): Promise<void>;
  /** Current schema version (the highest applied migration). Behavior: re-opening changes nothing. */
  schemaVersion(): Promise<number>;

  /**
   * Apply batches in one transaction, each batch all-or-nothing (savepoints).
   * Behavior: outcomes are in input order; a failed batch leaves no trace; if the transaction
   * itself cannot commit, every outcome is that error; durability as configured (DUR-1). A
   * statement that outlives the server's limit fails its batch with `OPERATION_TIMEOUT`, and the
   * batch leaves no trace. Never repeated by a layer (`once`): a failure during COMMIT leaves the
   * outcome unknown (`context.outcome`), and only the caller can settle it.
   */
  commit(batches: CatalogBatch[]): Promise<BatchOutcome[]>;

  /**
   * One message row, deleted or not; undefined if the tenant has no such message.
   * Behavior: the row reads back exactly as inserted (metadata, unicode and SQL metacharacters
   * verbatim); another tenant's message of the same id is never returned (TEN-1).
   */
  getMessage(tenantId: string, id: string): Promise<MessageRow | undefined>;
  /** Behavior: the rows for the ids that exist, in no particular order; a thousand ids in one call. */
  getMessages(tenantId: string, ids: readonly string[]): Promise<MessageRow[]>;
  /** Behavior: finds the message appended with this key in this tenant; keys of other tenants never match. */
  findMessageByIdempotencyKey(tenantId: string, key: string): Promise<MessageRow | undefined>;
  /**
   * A chat's messages ordered by (createdAt, id).
   * Behavior: pages both ways from `after` without skipping or repeating a row; `since` is
   * inclusive and `until` exclusive; deleted rows only with `includeDeleted`.
   */
  history(tenantId: string, chatId: string, query: HistoryQuery): Promise<MessageRow[]>;
  /** Behavior: counts the chat's live messages (deleted ones too with `includeDeleted`). */
  countMessages(tenantId: string, chatId: string, options?: { includeDeleted?: boolean }): Promise<number>;
  /** Behavior: every version of a message (version 1 included), oldest first; [] if there is no such message. */
  listMessageVersions(tenantId: string, id: string): Promise<MessageVersionRow[]>;
  /** Behavior: the chat `touchChat` created, with the latest `lastMessageAt` it was given. */
  getChat(tenantId: string, chatId: string): Promise<ChatRow | undefined>;
  /** Behavior: a tenant's chats in chat-id byte order after `afterChatId`, at most `limit`. */
  listChats(tenantId: string, options: { afterChatId?: string; limit: number }): Promise<ChatRow[]>;

  /** Behavior: the current row of an object key; undefined after `deleteObject`. */
  getObject(tenantId: string, key: string): Promise<ObjectRow | undefined>;
  /**
   * Behavior: a tenant's objects whose key starts with `prefix` (taken literally: `%` and `_` are
   * not wildcards), in UTF-8 byte order after `afterKey`, at most `limit`.
   */
  listObjects(
    tenantId: string,
    options: { prefix: string; afterKey?: string; limit: number },
  ): Promise<ObjectRow[]>;

  /**
   * Behavior: which of these blob keys (in one store) have a ref, whatever the tenant: a ref row,
   * or a message or version row whose body is the key (a message body key names its tenant and
   * message, `core/message-keys.ts`, so those rows are found by primary key). For GC and fsck.
   */
  existingBlobRefs(storeId: string, blobKeys: readonly string[]): Promise<Set<string>>;
  /**
   * Behavior: all refs in one store, every tenant's — ref rows and message bodies — each key
   * once over the pages, in no promised order (fsck). A page holds at most `limit` refs, maybe
   * fewer or none while `next` is still set; listing is done when `next` is absent. `after` is a
   * `next` this method returned; anything else is `CURSOR_INVALID`. Each page costs its size.
   */
  listBlobRefs(options: { storeId: string; after?: string; limit: number }): Promise<BlobRefPage>;

  /**
   * Behavior: soft-deleted messages with `deletedAt < before`, oldest deletion first, across
   * tenants or of one (purge); live messages never.
   */
  deletedMessagesBefore(query: DueMessagesQuery): Promise<MessageRow[]>;
  /** Behavior: messages whose `expiresAt < now` (TTL), across tenants, soonest expiry first. */
  expiredMessages(query: ExpiredMessagesQuery): Promise<MessageRow[]>;
  /**
   * Every message's key, across tenants, in (tenantId, id) byte order after `after`, a page at a
   * time (rebuilds of the message indexes). Deleted messages only with `includeDeleted`.
   */
  listMessageKeys(options: {
    after?: MessageKey;
    limit: number;
    includeDeleted?: boolean;
  }): Promise<MessageKey[]>;

  /**
   * Outbox events after `cursor` (undefined = from the start) in commit order, at most `limit`.
   * Behavior: an event committed after a read can never appear before that read's last cursor
   * (commit-safe: on PostgreSQL, events of transactions still in flight are held back).
   */
  readOutbox(cursor: string | undefined, limit: number): Promise<OutboxRecord[]>;
  /**
   * One tenant's change feed: its events with positions after `after`, oldest first; without
   * `after`, from the oldest event retained.
   *
   * Behavior: positions are gap-free and in commit order per tenant, so a reader that resumes
   * from the last position it saw misses nothing and sees nothing twice; on PostgreSQL an event
   * becomes visible only after every earlier position of the tenant has committed. An `after`
   * below `changesHorizon` (events after it were pruned) fails with `CHANGES_CURSOR_EXPIRED`
   * instead of returning a partial feed.
   */
  readChanges(tenantId: string, options: { after?: number; limit: number }): Promise<ChangeRecord[]>;
  /**
   * The last position of a tenant's change feed that was pruned (0 if none was): a reader that
   * resumes after a position below it would miss events. Everything after it is retained.
   */
  changesHorizon(tenantId: string): Promise<number>;
  /**
   * The cursor of the last event a reader can be handed now (commit-safe, like `readOutbox`),
   * or undefined if the outbox holds none. Everything committed later reads after it, so a
   * rebuild that captures it before scanning the catalog and then resumes from it misses nothing.
   */
  outboxHead(): Promise<string | undefined>;
  /**
   * Delete outbox events every consumer has passed, except the tail created after `before`
   * (OUT-1). Works in chunks, so no transaction grows with the outbox.
   *
   * Behavior: an event some consumer (saved cursor, or named in `consumers`) has not passed is
   * never deleted, nor is one of a transaction still in flight; each tenant's feed loses only a
   * prefix (after it, `readChanges` still sees positions without gaps), and `changesHorizon`
   * moves to the last position deleted.
   */
  pruneOutbox(options: OutboxPruneOptions): Promise<OutboxPruneResult>;
  /** Behavior: a consumer's saved cursor, undefined before its first save (projectors resume from it). */
  getConsumerCursor(consumer: string): Promise<string | undefined>;
  /** Behavior: saves or overwrites the cursor; a malformed cursor is `CURSOR_INVALID` and saves nothing. */
  setConsumerCursor(consumer: string, cursor: string): Promise<void>;
  /**
   * Behavior: removes the consumer's saved cursor (a retired node's), so it no longer holds back
   * `pruneOutbox`; removing one that has none succeeds.
   */
  deleteConsumerCursor(consumer: string): Promise<void>;
  /** Behavior: how many events wait after `cursor` (all of them for undefined): the lag metric. */
  outboxLag(cursor: string | undefined): Promise<number>;

  /** Behavior: a tenant's audit entries oldest first, from `since` (inclusive), at most `limit`. */
  auditLog(tenantId: string, options: { since?: number; limit: number }): Promise<AuditEntry[]>;
  /**
   * The audit log across tenants, for the admin (SEC-3): entries in `seq` order (the order they
   * were recorded), after `afterSeq`, at most `limit`, each filter given applied (`since`
   * inclusive, `until` exclusive).
   * Behavior: with no filter every tenant's entries come back; a page resumed after the last
   * `seq` of the previous one neither repeats nor skips an entry committed before the first
   * page was read; a tenant filter never returns another tenant's entries.
   */
  auditEntries(query: AuditQuery): Promise<AuditRecord[]>;
  /**
   * What the catalog references, per tenant and kind of body: their number and bytes
   * (`kura stats`). Reads every blob ref: for tools, not for requests.
   * Behavior: one row per tenant and kind with at least one blob ref: how many and their
   * summed `sizeBytes` (what the write protocol counts into `usage` objects and bytes); a
   * tenant without refs has no row.
   */
  bodyStats(): Promise<BodyStats[]>;
  /**
   * `bodyStats` split by when the bodies were written and by their size (`kura stats`' hot/cold
   * split, `kura stats --cost`): per tenant, kind, `createdAt` bucket (split at `createdBounds`,
   * ms) and `sizeBytes` bucket (split at `sizeBounds`). Reads every blob ref: for tools.
   * Behavior: each bounds list has 0..32 increasing safe integers (`sizeBounds` > 0), else
   * INVALID_ARGUMENT; with an empty list every body is in bucket 0 of it; only cells with at
   * least one body have a row; a tenant's and kind's rows add up to its `bodyStats` row.
   */
  bodyBuckets(options: {
    sizeBounds: readonly number[];
    createdBounds: readonly number[];
  }): Promise<BodyBucket[]>;
  /**
   * Per tenant, its live (not deleted) messages counted by body size into buckets split at
   * `bounds` (increasing, > 0): `bounds.length + 1` counts. Reads every message: for tools.
   * Behavior: the counts of a tenant add up to its live messages; a tenant without live
   * messages has no row.
   */
  messageSizeHistogram(options: { bounds: readonly number[] }): Promise<MessageSizeCounts[]>;

  /**
   * Usage = folded totals + pending deltas.
   * Behavior: exact through negative deltas, folding and concurrent commits; zeros for a tenant
   * with none.
   */
  usage(tenantId: string): Promise<Usage>;
  /**
   * Every tenant's usage as recorded beside the sum of what it stores (fsck's usage check, TEN-4).
   * Reads every blob ref and message row: for tools, not for requests.
   * Behavior: one row per tenant that has recorded usage, a blob ref or a message row, in
   * tenant-id order; all of it read in one statement (one snapshot), so a write committing
   * meanwhile is seen whole or not at all, and `recorded` equals `stored` for every tenant whose
   * writes all went through `commit`.
   */
  usageCheck(): Promise<UsageCheck[]>;
  /** Behavior: folds delta rows into totals without changing any tenant's `usage`; returns how many were folded. */
  foldUsage(): Promise<number>;

  // --- the tenant registry and API keys (TEN-2, TEN-5) -------------------------------------
  // Registry writes are transactions of their own, outside group commit: they are rare, and
  // each carries its audit entry (`RegistryWrite.audit`), applied with it or not at all.

  /**
   * Registers a tenant.
   * Behavior: the record reads back exactly as given (limits, domains, jwt, unicode names);
   * an id already registered fails with `TENANT_EXISTS`, and a domain another tenant holds
   * with `TENANT_DOMAIN_TAKEN` (matching is case-insensitive), each leaving nothing written —
   * no record, domain or audit entry. Registering a tenant does not touch its data, nor does
   * implicit creation of data (`ensureTenant`) register it.
   */
  createTenant(record: TenantRecord, write?: RegistryWrite): Promise<void>;
  /** Behavior: the registered record, undefined for an id never registered or removed. */
  getTenant(tenantId: string): Promise<TenantRecord | undefined>;
  /** Behavior: registered tenants in tenant-id byte order after `afterTenantId`, at most `limit`. */
  listTenants(options: { afterTenantId?: string; limit: number }): Promise<TenantRecord[]>;
  /**
   * Applies `change` and sets `updatedAt: at`; returns the new record, undefined (nothing
   * written, no audit) if the tenant is not registered.
   * Behavior: fields not in `change` keep their values; `domains` replaces the whole list and
   * fails with `TENANT_DOMAIN_TAKEN` if another tenant holds one, leaving the record as it was.
   */
  updateTenant(
    tenantId: string,
    change: TenantChange,
    options: RegistryWrite & { at: number },
  ): Promise<TenantRecord | undefined>;
  /**
   * Removes a tenant from the registry with its domains and API keys; true if it was registered.
   * Behavior: its data (messages, objects, usage, …) is untouched; the id can be registered again.
   */
  removeTenant(tenantId: string, write?: RegistryWrite): Promise<boolean>;
  /** Behavior: the tenant a domain (any letter case) belongs to, undefined if none. */
  tenantOfDomain(domain: string): Promise<string | undefined>;
  /**
   * Behavior: the tenant whose `jwt.issuer` is exactly `issuer`, undefined if none. An issuer
   * belongs to one tenant at most: `createTenant` or `updateTenant` giving a tenant an issuer
   * another holds fails with `TENANT_ISSUER_TAKEN` and writes nothing; `jwt: null` or
   * `removeTenant` frees it.
   */
  tenantOfIssuer(issuer: string): Promise<string | undefined>;
  /**
   * Behavior: a number that grows with every committed `updateTenant` and `removeTenant` that
   * changed a tenant (registering one does not change it: no node can hold a record of a tenant
   * not yet registered); never decreases, and a value read is never followed by a smaller one.
   * Nodes poll it to drop cached tenant records (ADR 0029).
   */
  registryVersion(): Promise<number>;

  /**
   * Stores an API key.
   * Behavior: reads back exactly as given; a key id that exists (any tenant's) fails with
   * `CATALOG_DUPLICATE` and writes nothing.
   */
  createApiKey(key: ApiKeyRecord, write?: RegistryWrite): Promise<void>;
  /** Behavior: the key of this id whatever its tenant (authentication), revoked or not; undefined if none. */
  getApiKey(keyId: string): Promise<ApiKeyRecord | undefined>;
  /** Behavior: a tenant's keys, revoked ones included, in key-id byte order; never another tenant's. */
  listApiKeys(tenantId: string): Promise<ApiKeyRecord[]>;
  /**
   * Revokes a key of `tenantId` at `at`; true if it was live until then.
   * Behavior: false (nothing written, no audit) for an unknown key, another tenant's key or one
   * already revoked (its first `revokedAt` stays).
   */
  revokeApiKey(tenantId: string, keyId: string, options: RegistryWrite & { at: number }): Promise<boolean>;

  // --- lifecycle (LIFE-1): legal holds and the archive --------------------------------------

  /** Behavior: the tenant's hold of this id, undefined if none (another tenant's never). */
  getLegalHold(tenantId: string, id: string): Promise<LegalHoldRow | undefined>;
  /** Behavior: a tenant's holds in id order (oldest first: ids are UUIDv7) after `afterId`, at most `limit`. */
  listLegalHolds(tenantId: string, options: { afterId?: string; limit: number }): Promise<LegalHoldRow[]>;
  /**
   * Messages created before `before` whose current body is not yet under `{tenant}/archive/`,
   * across tenants, in (tenantId, id) byte order after `after`, at most `limit`.
   * Behavior: a message whose body was moved there (`moveMessageBody`) is never returned again.
   */
  messagesToArchive(query: ArchiveQuery): Promise<MessageRow[]>;
  /** Behavior: as `messagesToArchive`, for objects last written (`updatedAt`) before `before`, by (tenantId, key). */
  objectsToArchive(query: ArchiveQuery): Promise<ObjectRow[]>;

  // --- tenant deletion: a tenant's rows, and the jobs that remove them ----------------------

  /**
   * Deletes up to `limit` rows carrying `tenantId` (tenant deletion), from every table that has
   * a tenant column except the registry record itself (`removeTenant` goes last): messages and
   * their versions, chats, objects, blob refs, outbox events, the audit log, usage and its
   * deltas, mail metadata, jobs, domains, API keys, the change-feed row. Returns how many rows
   * it deleted; 0 means none is left.
   * Behavior: another tenant's rows are never touched (ids are compared exactly, so `a` never
   * covers `ab`); called until it returns 0, it leaves no row with the tenant's id but the
   * registry record; the ids may then be written again and start empty (the change feed at 1).
   */
  purgeTenantRows(tenantId: string, options: { limit: number }): Promise<number>;
  /** Behavior: creates or replaces the job of (tenantId, jobId); reads back exactly as saved. */
  saveJob(job: JobRecord): Promise<void>;
  /** Behavior: the saved job, undefined if none (or deleted). */
  getJob(tenantId: string, jobId: string): Promise<JobRecord | undefined>;
  /** Behavior: jobs of one kind in (tenantId, jobId) byte order after `after`, at most `limit`. */
  listJobs(options: {
    kind: string;
    after?: { tenantId: string; jobId: string };
    limit: number;
  }): Promise<JobRecord[]>;
  /** Behavior: removes the job; true if it existed. */
  deleteJob(tenantId: string, jobId: string): Promise<boolean>;

  /**
   * A named lease for jobs (exactly-once across nodes, LIFE-1/DIST-1): true if `owner` now holds
   * `name` until `now + ttlMs` (it was free, expired, or already held by `owner`).
   * Behavior: one owner at a time; of concurrent attempts on a free lease exactly one wins.
   */
  tryLease(lease: LeaseRequest): Promise<boolean>;
  /**
   * `tryLease` with the lease's fencing token: the token if `owner` now holds `name`, else
   * undefined. Behavior: the token rises each time the lease is taken while free, expired or
   * another owner's (a release keeps it, so it never goes back); renewing one's own keeps it.
   */
  takeLease(lease: LeaseRequest): Promise<number | undefined>;
  /** Behavior: frees the lease if `owner` holds it; another owner's lease is left alone. */
  releaseLease(lease: LeaseHolder): Promise<void>;

  /**
   * Behavior: the owner holding `name` at `now` (its lease not expired), undefined if none.
   * Deleters of bodies ask it for the backup pin (`engine/backup-pin.ts`) after their commit.
   */
  leaseOwner(name: string, now: number): Promise<string | undefined>;

  // --- backup and restore (CONS-4): rows as they are, in every dialect ----------------------

  /**
   * A consistent read of every table for a backup, until its `close`. It holds a transaction
   * (SQLite: the WAL is not checkpointed past it meanwhile): close it when done.
   * Behavior: writes committed after it opened are not seen by it, and go on meanwhile.
   */
  openSnapshot(): Promise<CatalogSnapshot>;
  /**
   * Inserts rows read from a snapshot (of this or another dialect) into `table`, in one
   * transaction; returns how many were new. Columns the table lacks are an error, columns the
   * rows lack are NULL; `seq` columns keep their values and later inserts continue above them.
   * Behavior: a row whose key exists is left as it is (a repeated load changes nothing); an
   * unknown table is `INVALID_ARGUMENT`; every table of a snapshot loads into an empty catalog
   * of either dialect and reads back equal.
   */
  loadRows(table: string, rows: readonly CatalogDumpRow[]): Promise<number>;
  /**
   * Behavior: whether any table a snapshot holds has a row (a restore's target must not,
   * unless forced); a freshly migrated catalog holds none.
   */
  holdsData(): Promise<boolean>;

  /** Behavior: resolves while the catalog is reachable (/readyz); `CLOSED` once closed. */
  ping(): Promise<void>;
  /** Behavior: idempotent; afterwards reads reject and commits fail with `CLOSED`. */
  close(): Promise<void>;
}

/**
 * What a layer may do with each catalog method (`ports/calls.ts`). Reads may be repeated and
 * limited client-side; `migrate`, `setConsumerCursor`, `tryLease` and `releaseLease` give the
 * same state and answer however often they run (a lease held by the asking owner is granted
 * again, to the same `now + ttlMs`); `commit` may have applied when it fails, and `pruneOutbox`
 * and `foldUsage` report counts a repeat would get wrong, so none of these three is repeated.
 */
export const CATALOG_CALLS: PortCalls<Catalog> = Object.freeze({
  ...TENANT_KEY_CALLS,
  migrate: "idempotent",
  schemaVersion: "read",
  commit: "once",
  getMessage: "read",
  getMessages: "read",
  findMessageByIdempotencyKey: "read",
  history: "read",
  countMessages: "read",
  listMessageVersions: "read",
  getChat: "read",
  listChats: "read",
  getObject: "read",
  listObjects: "read",
  existingBlobRefs: "read",
  listBlobRefs: "read",
  deletedMessagesBefore: "read",
  expiredMessages: "read",
  listMessageKeys: "read",
  readOutbox: "read",
  readChanges: "read",
  changesHorizon: "read",
  outboxHead: "read",
  pruneOutbox: "once",
  getConsumerCursor: "read",
  setConsumerCursor: "idempotent",
  deleteConsumerCursor: "idempotent",
  outboxLag: "read",
  auditLog: "read",
  auditEntries: "read",
  bodyStats: "read",
  bodyBuckets: "read",
  messageSizeHistogram: "read",
  usage: "read",
  usageCheck: "read",
  foldUsage: "once",
  // A repeated registry write would fail (TENANT_EXISTS, CATALOG_DUPLICATE) or audit twice.
  createTenant: "once",
  getTenant: "read",
  listTenants: "read",
  updateTenant: "once",
  removeTenant: "once",
  tenantOfDomain: "read",
  tenantOfIssuer: "read",
  registryVersion: "read",
  createApiKey: "once",
  getApiKey: "read",
  listApiKeys: "read",
  revokeApiKey: "once",
  getLegalHold: "read",
  listLegalHolds: "read",
  messagesToArchive: "read",
  objectsToArchive: "read",
  // Each call deletes what is there; a repeat finds less (or nothing) and reports that.
  purgeTenantRows: "idempotent",
  saveJob: "idempotent",
  getJob: "read",
  listJobs: "read",
  deleteJob: "once",
  tryLease: "idempotent",
  takeLease: "idempotent",
  releaseLease: "idempotent",
  leaseOwner: "read",
  openSnapshot: "read",
  // Rows whose key exists are left alone: a repeat inserts nothing more.
  loadRows: "idempotent",
  holdsData: "read",
  ping: "read",
  getMail: "read",
  listMail: "read",
  listMailThread: "read",
  mailThreadsOf: "read",
  listMailKeys: "read",
  listTenantMail: "read",
  countMailSharing: "read",
  mailboxBytes: "read",
});

export interface CatalogDefinition<Options> {
  readonly dialect: "sqlite" | "postgres";
  parseOptions(raw: unknown): Options;
  create(options: Options, deps?: CatalogDeps): Promise<Catalog>;
}

export interface CatalogDeps {
  durability?: "os" | "fsync";
  /** Observation/fault points (`catalog.commit`, …), as for blob stores. */
  probe?: (point: string, detail: Readonly<Record<string, unknown>>) => void | Promise<void>;
}
