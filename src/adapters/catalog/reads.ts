/**
 * The Catalog port's reads, once for both dialects: each method says which query of
 * `queries.ts` it runs, with which values, and what the rows become. An adapter extends
 * `CatalogReads` and supplies `run` — its connection, its statement cache, its error mapping
 * and its closed guard — and keeps only what is its own (opening, migrating, committing, the
 * outbox in commit order, the usage fold).
 */

import { KuraError } from "../../core/errors.js";
import { parseMessageBodyKey } from "../../core/message-keys.js";
import type {
  ArchiveQuery,
  AuditEntry,
  AuditQuery,
  AuditRecord,
  BlobRefPage,
  BodyBucket,
  BodyStats,
  ChangeRecord,
  ChatRow,
  DueMessagesQuery,
  ExpiredMessagesQuery,
  HistoryQuery,
  JobRecord,
  LeaseHolder,
  LeaseRequest,
  LegalHoldRow,
  MessageKey,
  MessageRow,
  MessageSizeCounts,
  MessageVersionRow,
  ObjectRow,
  Usage,
  UsageCheck,
} from "../../ports/catalog.js";
import type { StoredMessageText, StoredTextKey, TenantKeyRow } from "../../ports/key-provider.js";
import type { MailListQuery, MailRow } from "../../ports/mail-catalog.js";
import { changesExpired, checkLimit, checkPosition, checkTime, prefixUpperBound } from "./common.js";
import { LEASE_QUERIES } from "./leases.js";
import { LIFECYCLE_QUERIES, toLegalHold } from "./lifecycle.js";
import { MAIL_QUERIES, toMailRow } from "./mail.js";
import {
  AFTER,
  AUDIT_ACTION,
  AUDIT_AFTER,
  AUDIT_SINCE,
  AUDIT_TENANT,
  AUDIT_UNTIL,
  BELOW,
  HISTORY_AFTER,
  HISTORY_DELETED,
  HISTORY_DESC,
  HISTORY_SINCE,
  HISTORY_UNTIL,
  Q,
  type Query,
  type QueryParams,
} from "./queries.js";
import {
  type DbRow,
  messageFromValues,
  toAuditEntry,
  toBlobRefRow,
  toChatRow,
  toMessageRow,
  toMessageVersionRow,
  toObjectRow,
  toOutboxEvent,
} from "./rows.js";
import { JOB_QUERIES, jobParams, PURGE_TENANT_ROWS, toJob } from "./tenant-data.js";
import { TENANT_KEY_QUERIES, tenantKeyParams, toTenantKey } from "./tenant-keys.js";

/** Where a page of `listBlobRefs` resumes: a part (ref rows, version rows, message rows) and a position in it. */
interface RefCursor {
  readonly part: "r" | "v" | "m";
  readonly key?: string;
  readonly tenant?: string;
  readonly id?: string;
  readonly version?: number;
}

function parseRefCursor(after: string | undefined): RefCursor {
  if (after === undefined) return { part: "r" };
  let v: unknown;
  try {
    v = JSON.parse(after);
  } catch {
    v = undefined;
  }
  const bad = () =>
    new KuraError("CURSOR_INVALID", "not a cursor listBlobRefs returned", {
      operation: "catalog.listBlobRefs",
    });
  if (!Array.isArray(v) || typeof v[0] !== "string") throw bad();
  const [part, a, b, c] = v as unknown[];
  if (part === "r" && v.length === 1) return { part };
  if (part === "r" && v.length === 2 && typeof a === "string") return { part, key: a };
  if ((part === "v" || part === "m") && v.length === 1) return { part };
  if (part === "m" && v.length === 3 && typeof a === "string" && typeof b === "string")
    return { part, tenant: a, id: b };
  if (part === "v" && v.length === 4 && typeof a === "string" && typeof b === "string" && Number.isInteger(c))
    return { part, tenant: a, id: b, version: c as number };
  throw bad();
}

/**
 * The tenants and message ids that message body keys among `keys` name (each once): the rows
 * that may hold those bodies, looked up by primary key. Other keys name none.
 */
function messagesNamed(keys: readonly string[]): { tenants: string[]; ids: string[] } {
  const tenants = new Set<string>();
  const ids = new Set<string>();
  for (const key of keys) {
    const named = parseMessageBodyKey(key);
    if (named === undefined) continue;
    tenants.add(named.tenantId);
    ids.add(named.messageId);
  }
  return { tenants: [...tenants], ids: [...ids] };
}

/** One read: a query with its values and what its rows become; or, with nothing to ask, the answer. */
export type Read<T, R = DbRow> =
  | { readonly query: Query<R>; readonly params: QueryParams; readonly result: (rows: R[]) => T }
  | { readonly answer: T };

const rowsOf = <R>(rows: R[]): R[] => rows;

export abstract class CatalogReads {
  /**
   * Runs the read `build` describes. `build` is called once the catalog is known to be open, so
   * its argument checks fail after the closed check; any error it or the driver throws comes
   * back as a KuraError of `operation`.
   */
  protected abstract run<T, R>(operation: string, build: () => Read<T, R>): Promise<T>;

  /** Throws CURSOR_INVALID unless `cursor` is an outbox cursor of this dialect. */
  protected abstract checkCursor(cursor: string, operation: string): void;

  /** The rows of `query`, as they come. */
  protected rows<R>(operation: string, query: Query<R>, params: QueryParams = {}): Promise<R[]> {
    return this.run<R[], R>(operation, () => ({ query, params, result: rowsOf }));
  }

  schemaVersion(): Promise<number> {
    return this.run("catalog.schemaVersion", () => ({
      query: Q.schemaVersion,
      params: {},
      result: ([r]) => Number(r?.v ?? 0),
    }));
  }

  // --- messages and chats ------------------------------------------------------------------

  getMessage(tenantId: string, id: string): Promise<MessageRow | undefined> {
    return this.run("catalog.getMessage", () => ({
      query: Q.message,
      params: { tenant: tenantId, id },
      result: ([v]) => (v ? messageFromValues(v, tenantId) : undefined),
    }));
  }

  getMessages(tenantId: string, ids: readonly string[]): Promise<MessageRow[]> {
    return this.run<MessageRow[], readonly unknown[]>("catalog.getMessages", () =>
      ids.length === 0
        ? { answer: [] }
        : {
            query: Q.messages,
            params: { tenant: tenantId, ids },
            result: (rows) => rows.map((v) => messageFromValues(v, tenantId)),
          },
    );
  }

  findMessageByIdempotencyKey(tenantId: string, key: string): Promise<MessageRow | undefined> {
    return this.run("catalog.findMessageByIdempotencyKey", () => ({
      query: Q.messageByIdempotencyKey,
      params: { tenant: tenantId, key },
      result: ([v]) => (v ? messageFromValues(v, tenantId) : undefined),
    }));
  }

  history(tenantId: string, chatId: string, query: HistoryQuery): Promise<MessageRow[]> {
    return this.run("catalog.history", () => {
      const limit = checkLimit(query.limit, "catalog.history");
      const shape =
        (query.order === "desc" ? HISTORY_DESC : 0) |
        (query.includeDeleted ? HISTORY_DELETED : 0) |
        (query.since !== undefined ? HISTORY_SINCE : 0) |
        (query.until !== undefined ? HISTORY_UNTIL : 0) |
        (query.after ? HISTORY_AFTER : 0);
      return {
        query: Q.history(shape),
        params: {
          tenant: tenantId,
          chat: chatId,
          since: query.since,
          until: query.until,
          after_at: query.after?.createdAt,
          after_id: query.after?.id,
          limit,
        },
        result: (rows) => {
          const out = new Array<MessageRow>(rows.length);
          for (let i = 0; i < rows.length; i++)
            out[i] = messageFromValues(rows[i] as readonly unknown[], tenantId, chatId);
          return out;
        },
      };
    });
  }

  countMessages(
    tenantId: string,
    chatId: string,
    options: { includeDeleted?: boolean } = {},
  ): Promise<number> {
    return this.run("catalog.countMessages", () => ({
      query: options.includeDeleted ? Q.countMessages : Q.countLiveMessages,
      params: { tenant: tenantId, chat: chatId },
      result: ([r]) => Number(r?.n ?? 0),
    }));
  }

  listMessageVersions(tenantId: string, id: string): Promise<MessageVersionRow[]> {
    return this.run("catalog.listMessageVersions", () => ({
      query: Q.messageVersions,
      params: { tenant: tenantId, id },
      result: (rows) => rows.map(toMessageVersionRow),
    }));
  }

  getChat(tenantId: string, chatId: string): Promise<ChatRow | undefined> {
    return this.run("catalog.getChat", () => ({
      query: Q.chat,
      params: { tenant: tenantId, chat: chatId },
      result: ([r]) => (r ? toChatRow(r) : undefined),
    }));
  }

  listChats(tenantId: string, options: { afterChatId?: string; limit: number }): Promise<ChatRow[]> {
    return this.run("catalog.listChats", () => ({
      query: Q.chats,
      params: {
        tenant: tenantId,
        after: options.afterChatId ?? "",
        limit: checkLimit(options.limit, "catalog.listChats"),
      },
      result: (rows) => rows.map(toChatRow),
    }));
  }

  // --- objects and blob refs ---------------------------------------------------------------

  getObject(tenantId: string, key: string): Promise<ObjectRow | undefined> {
    return this.run("catalog.getObject", () => ({
      query: Q.object,
      params: { tenant: tenantId, key },
      result: ([r]) => (r ? toObjectRow(r) : undefined),
    }));
  }

  listObjects(
    tenantId: string,
    options: { prefix: string; afterKey?: string; limit: number },
  ): Promise<ObjectRow[]> {
    return this.run("catalog.listObjects", () => {
      const limit = checkLimit(options.limit, "catalog.listObjects");
      const upper = prefixUpperBound(options.prefix);
      const shape = (options.afterKey !== undefined ? AFTER : 0) | (upper !== undefined ? BELOW : 0);
      return {
        query: Q.objects(shape),
        params: { tenant: tenantId, prefix: options.prefix, after: options.afterKey, upper, limit },
        result: (rows) => rows.map(toObjectRow),
      };
    });
  }

  existingBlobRefs(storeId: string, blobKeys: readonly string[]): Promise<Set<string>> {
    return this.run<Set<string>, DbRow>("catalog.existingBlobRefs", () =>
      blobKeys.length === 0
        ? { answer: new Set<string>() }
        : {
            query: Q.existingBlobRefs,
            params: { store: storeId, keys: blobKeys, ...messagesNamed(blobKeys) },
            result: (rows) => new Set(rows.map((r) => r.blob_key as string)),
          },
    );
  }

  async listBlobRefs(options: { storeId: string; after?: string; limit: number }): Promise<BlobRefPage> {
    const limit = checkLimit(options.limit, "catalog.listBlobRefs");
    const at = parseRefCursor(options.after);
    const store = options.storeId;
    if (at.part === "r") {
      const refs = await this.run("catalog.listBlobRefs", () => ({
        query: Q.blobRefRows(at.key !== undefined ? AFTER : 0),
        params: { store, after: at.key, limit },
        result: (rows) => rows.map(toBlobRefRow),
      }));
      const last = refs.at(-1);
      const next = refs.length < limit || last === undefined ? ["v"] : ["r", last.blobKey];
      return { refs, next: JSON.stringify(next) };
    }
    if (at.part === "v") {
      const rows = await this.run("catalog.listBlobRefs", () => ({
        query: Q.blobRefVersions(at.id !== undefined ? AFTER : 0),
        params: { store, after_tenant: at.tenant, after_id: at.id, after_version: at.version, limit },
        result: (rows) => rows,
      }));
      const last = rows.at(-1);
      const next =
        rows.length < limit || last === undefined
          ? ["m"]
          : ["v", String(last.tenant_id), String(last.pos_id), Number(last.pos_version)];
      return { refs: rows.map(toBlobRefRow), next: JSON.stringify(next) };
    }
    const rows = await this.run("catalog.listBlobRefs", () => ({
      query: Q.blobRefMessages(at.id !== undefined ? AFTER : 0),
      params: { store, after_tenant: at.tenant, after_id: at.id, limit },
      result: (rows) => rows,
    }));
    const last = rows.at(-1);
    const refs = rows.map(toBlobRefRow);
    if (rows.length < limit || last === undefined) return { refs };
    return { refs, next: JSON.stringify(["m", String(last.tenant_id), String(last.pos_id)]) };
  }

  // --- maintenance scans -------------------------------------------------------------------

  deletedMessagesBefore({ before, limit, tenantId }: DueMessagesQuery): Promise<MessageRow[]> {
    return this.run("catalog.deletedMessagesBefore", () => ({
      query: tenantId === undefined ? Q.deletedBefore : Q.tenantDeletedBefore,
      params: { tenant: tenantId, before, limit: checkLimit(limit, "catalog.deletedMessagesBefore") },
      result: (rows) => rows.map(toMessageRow),
    }));
  }

  expiredMessages({ now, limit }: ExpiredMessagesQuery): Promise<MessageRow[]> {
    return this.run("catalog.expiredMessages", () => ({
      query: Q.expired,
      params: { now, limit: checkLimit(limit, "catalog.expiredMessages") },
      result: (rows) => rows.map(toMessageRow),
    }));
  }

  listMessageKeys(options: {
    after?: MessageKey;
    limit: number;
    includeDeleted?: boolean;
  }): Promise<MessageKey[]> {
    return this.run("catalog.listMessageKeys", () => ({
      query: Q.messageKeys((options.includeDeleted ? HISTORY_DELETED : 0) | (options.after ? AFTER : 0)),
      params: {
        after_tenant: options.after?.tenantId,
        after_id: options.after?.id,
        limit: checkLimit(options.limit, "catalog.listMessageKeys"),
      },
      result: (rows) => rows.map((r) => ({ tenantId: r.tenant_id as string, id: r.id as string })),
    }));
  }

  // --- the change feed and consumers -------------------------------------------------------

  async readChanges(tenantId: string, options: { after?: number; limit: number }): Promise<ChangeRecord[]> {
    const operation = "catalog.readChanges";
    let after = 0;
    const rows = await this.run<DbRow[], DbRow>(operation, () => {
      after = checkPosition(options.after, operation);
      const limit = checkLimit(options.limit, operation);
      return { query: Q.changes, params: { tenant: tenantId, after, limit }, result: rowsOf };
    });
    // A page that does not start right after `after` may have lost its start to a prune.
    if (options.after !== undefined && Number(rows[0]?.tenant_seq ?? -1) !== after + 1) {
      const horizon = await this.changesHorizon(tenantId);
      if (after < horizon) throw changesExpired(after, horizon, operation);
    }
    return rows.map((r) => ({ ...toOutboxEvent(r), seq: Number(r.tenant_seq) }));
  }

  changesHorizon(tenantId: string): Promise<number> {
    return this.run("catalog.changesHorizon", () => ({
      query: Q.changesHorizon,
      params: { tenant: tenantId },
      result: ([r]) => Number(r?.h ?? 0),
    }));
  }

  getConsumerCursor(consumer: string): Promise<string | undefined> {
    return this.run("catalog.getConsumerCursor", () => ({
      query: Q.consumerCursor,
      params: { consumer },
      result: ([r]) => r?.cursor as string | undefined,
    }));
  }

  setConsumerCursor(consumer: string, cursor: string): Promise<void> {
    return this.run("catalog.setConsumerCursor", () => {
      this.checkCursor(cursor, "catalog.setConsumerCursor");
      return { query: Q.setConsumerCursor, params: { consumer, cursor }, result: () => undefined };
    });
  }

  /** Forgets a consumer's position (a node that left): it no longer holds back outbox pruning. */
  deleteConsumerCursor(consumer: string): Promise<void> {
    return this.run("catalog.deleteConsumerCursor", () => ({
      query: Q.deleteConsumerCursor,
      params: { consumer },
      result: () => undefined,
    }));
  }

  // --- audit, usage, leases ----------------------------------------------------------------

  auditLog(tenantId: string, options: { since?: number; limit: number }): Promise<AuditEntry[]> {
    return this.run("catalog.auditLog", () => ({
      query: Q.audit,
      params: {
        tenant: tenantId,
        since: options.since ?? Number.MIN_SAFE_INTEGER,
        limit: checkLimit(options.limit, "catalog.auditLog"),
      },
      result: (rows) => rows.map(toAuditEntry),
    }));
  }

  auditEntries(query: AuditQuery): Promise<AuditRecord[]> {
    return this.run("catalog.auditEntries", () => {
      const limit = checkLimit(query.limit, "catalog.auditEntries");
      const shape =
        (query.tenantId !== undefined ? AUDIT_TENANT : 0) |
        (query.action !== undefined ? AUDIT_ACTION : 0) |
        (query.since !== undefined ? AUDIT_SINCE : 0) |
        (query.until !== undefined ? AUDIT_UNTIL : 0) |
        (query.afterSeq !== undefined ? AUDIT_AFTER : 0);
      return {
        query: Q.auditEntries(shape),
        params: {
          tenant: query.tenantId,
          action: query.action,
          since: query.since,
          until: query.until,
          after: query.afterSeq,
          limit,
        },
        result: (rows) => rows.map((r) => ({ seq: Number(r.seq), ...toAuditEntry(r) })),
      };
    });
  }

  bodyStats(): Promise<BodyStats[]> {
    return this.run("catalog.bodyStats", () => ({
      query: Q.bodyStats,
      params: {},
      result: (rows) =>
        rows.map((r) => ({
          tenantId: String(r.tenant_id),
          kind: String(r.kind),
          bodies: Number(r.bodies),
          bytes: Number(r.bytes),
        })),
    }));
  }

  bodyBuckets(options: {
    sizeBounds: readonly number[];
    createdBounds: readonly number[];
  }): Promise<BodyBucket[]> {
    return this.run("catalog.bodyBuckets", () => {
      const { sizeBounds, createdBounds } = options;
      const increasing = (bounds: readonly number[], min: number) =>
        bounds.length <= 32 &&
        bounds.every((b, i) => Number.isSafeInteger(b) && b > (i === 0 ? min : (bounds[i - 1] as number)));
      if (!increasing(sizeBounds, 0) || !increasing(createdBounds, Number.MIN_SAFE_INTEGER - 1))
        throw new KuraError("INVALID_ARGUMENT", "bounds must be 0..32 increasing integers (sizes positive)", {
          operation: "catalog.bodyBuckets",
        });
      const params: Record<string, number> = {};
      sizeBounds.forEach((b, i) => {
        params[`s${i}`] = b;
      });
      createdBounds.forEach((b, i) => {
        params[`c${i}`] = b;
      });
      return {
        query: Q.bodyBuckets(64 * createdBounds.length + sizeBounds.length),
        params,
        result: (rows) =>
          rows.map((r) => ({
            tenantId: String(r.tenant_id),
            kind: String(r.kind),
            created: Number(r.created),
            size: Number(r.size),
            bodies: Number(r.bodies),
            bytes: Number(r.bytes),
          })),
      };
    });
  }

  messageSizeHistogram(options: { bounds: readonly number[] }): Promise<MessageSizeCounts[]> {
    return this.run("catalog.messageSizeHistogram", () => {
      const { bounds } = options;
      const increasing = bounds.every(
        (b, i) => Number.isSafeInteger(b) && b > (i === 0 ? 0 : (bounds[i - 1] as number)),
      );
      if (bounds.length === 0 || bounds.length > 32 || !increasing)
        throw new KuraError("INVALID_ARGUMENT", "bounds must be 1..32 increasing positive integers", {
          operation: "catalog.messageSizeHistogram",
        });
      const params: Record<string, number> = {};
      bounds.forEach((b, i) => {
        params[`b${i}`] = b;
      });
      return {
        query: Q.messageSizes(bounds.length),
        params,
        result: (rows) => {
          const out: MessageSizeCounts[] = [];
          for (const r of rows) {
            const tenantId = String(r.tenant_id);
            let last = out.at(-1);
            if (last?.tenantId !== tenantId) {
              last = { tenantId, counts: new Array<number>(bounds.length + 1).fill(0) };
              out.push(last);
            }
            last.counts[Number(r.bucket)] = Number(r.n);
          }
          return out;
        },
      };
    });
  }

  usage(tenantId: string): Promise<Usage> {
    return this.run("catalog.usage", () => ({
      query: Q.usage,
      params: { tenant: tenantId },
      result: ([r]) => ({
        tenantId,
        bytes: Number(r?.bytes ?? 0),
        objects: Number(r?.objects ?? 0),
        messages: Number(r?.messages ?? 0),
      }),
    }));
  }

  usageCheck(): Promise<UsageCheck[]> {
    return this.run("catalog.usageCheck", () => ({
      query: Q.usageCheck,
      params: {},
      result: (rows) =>
        rows.map((r) => ({
          tenantId: String(r.tenant_id),
          recorded: {
            bytes: Number(r.recorded_bytes),
            objects: Number(r.recorded_objects),
            messages: Number(r.recorded_messages),
          },
          stored: {
            bytes: Number(r.stored_bytes),
            objects: Number(r.stored_objects),
            messages: Number(r.stored_messages),
          },
        })),
    }));
  }

  async tryLease(lease: LeaseRequest): Promise<boolean> {
    return (await this.leaseTaken("catalog.tryLease", lease)) !== undefined;
  }

  takeLease(lease: LeaseRequest): Promise<number | undefined> {
    return this.leaseTaken("catalog.takeLease", lease);
  }

  private leaseTaken(
    operation: string,
    { name, owner, now, ttlMs }: LeaseRequest,
  ): Promise<number | undefined> {
    return this.run(operation, () => ({
      query: LEASE_QUERIES.take,
      params: { name, owner, until: now + ttlMs, now },
      result: ([r]) => (r === undefined ? undefined : Number(r.token)),
    }));
  }

  releaseLease({ name, owner }: LeaseHolder): Promise<void> {
    return this.run("catalog.releaseLease", () => ({
      query: LEASE_QUERIES.release,
      params: { name, owner },
      result: () => undefined,
    }));
  }

  leaseOwner(name: string, now: number): Promise<string | undefined> {
    return this.run("catalog.leaseOwner", () => ({
      query: Q.leaseOwner,
      params: { name, now },
      result: ([r]) => (r === undefined ? undefined : String(r.owner)),
    }));
  }

  /** Whether any table a backup holds has a row (`dump.ts`): one statement, both dialects. */
  holdsData(): Promise<boolean> {
    return this.run("catalog.holdsData", () => ({
      query: Q.holdsData,
      params: {},
      result: ([r]) => Number(r?.held ?? 0) === 1,
    }));
  }

  // --- lifecycle: legal holds and the archive (`lifecycle.ts`) ------------------------------

  getLegalHold(tenantId: string, id: string): Promise<LegalHoldRow | undefined> {
    return this.run("catalog.getLegalHold", () => ({
      query: LIFECYCLE_QUERIES.getHold,
      params: { tenant: tenantId, id },
      result: ([r]) => (r ? toLegalHold(r) : undefined),
    }));
  }

  listLegalHolds(tenantId: string, options: { afterId?: string; limit: number }): Promise<LegalHoldRow[]> {
    return this.run("catalog.listLegalHolds", () => ({
      query: LIFECYCLE_QUERIES.listHolds,
      // "" sorts before every id: from the start.
      params: {
        tenant: tenantId,
        after: options.afterId ?? "",
        limit: checkLimit(options.limit, "catalog.listLegalHolds"),
      },
      result: (rows) => rows.map(toLegalHold),
    }));
  }

  messagesToArchive(q: ArchiveQuery): Promise<MessageRow[]> {
    return this.run("catalog.messagesToArchive", () => ({
      query: LIFECYCLE_QUERIES.messagesToArchive,
      params: {
        before: checkTime(q.before, "before", "catalog.messagesToArchive"),
        after_tenant: q.after?.tenantId ?? "",
        after_id: q.after?.id ?? "",
        limit: checkLimit(q.limit, "catalog.messagesToArchive"),
      },
      result: (rows) => rows.map(toMessageRow),
    }));
  }

  objectsToArchive(q: ArchiveQuery): Promise<ObjectRow[]> {
    return this.run("catalog.objectsToArchive", () => ({
      query: LIFECYCLE_QUERIES.objectsToArchive,
      params: {
        before: checkTime(q.before, "before", "catalog.objectsToArchive"),
        after_tenant: q.after?.tenantId ?? "",
        after_id: q.after?.id ?? "",
        limit: checkLimit(q.limit, "catalog.objectsToArchive"),
      },
      result: (rows) => rows.map(toObjectRow),
    }));
  }

  // --- tenant deletion (`tenant-data.ts`) ---------------------------------------------------

  async purgeTenantRows(tenantId: string, options: { limit: number }): Promise<number> {
    const operation = "catalog.purgeTenantRows";
    let left = checkLimit(options.limit, operation);
    let deleted = 0;
    for (const q of PURGE_TENANT_ROWS) {
      if (left === 0) break;
      const limit = left;
      const n = await this.run(operation, () => ({
        query: q,
        params: { tenant: tenantId, limit },
        result: (rows) => rows.length,
      }));
      deleted += n;
      left -= n;
    }
    return deleted;
  }

  saveJob(job: JobRecord): Promise<void> {
    return this.run("catalog.saveJob", () => ({
      query: JOB_QUERIES.save,
      params: jobParams(job),
      result: () => undefined,
    }));
  }

  getJob(tenantId: string, jobId: string): Promise<JobRecord | undefined> {
    return this.run("catalog.getJob", () => ({
      query: JOB_QUERIES.get,
      params: { tenant: tenantId, job: jobId },
      result: ([r]) => (r ? toJob(r) : undefined),
    }));
  }

  listJobs(options: {
    kind: string;
    after?: { tenantId: string; jobId: string };
    limit: number;
  }): Promise<JobRecord[]> {
    return this.run("catalog.listJobs", () => ({
      query: JOB_QUERIES.list,
      params: {
        kind: options.kind,
        // "" sorts before every id: from the start.
        tenant: options.after?.tenantId ?? "",
        job: options.after?.jobId ?? "",
        limit: checkLimit(options.limit, "catalog.listJobs"),
      },
      result: (rows) => rows.map(toJob),
    }));
  }

  deleteJob(tenantId: string, jobId: string): Promise<boolean> {
    return this.run("catalog.deleteJob", () => ({
      query: JOB_QUERIES.delete,
      params: { tenant: tenantId, job: jobId },
      result: (rows) => rows.length > 0,
    }));
  }

  // --- tenants' data keys (`tenant-keys.ts`, SEC-2) -------------------------------------------

  tenantKeys(tenantId: string): Promise<TenantKeyRow[]> {
    return this.run("catalog.tenantKeys", () => ({
      query: TENANT_KEY_QUERIES.ofTenant,
      params: { tenant: tenantId },
      result: (rows) => rows.map(toTenantKey),
    }));
  }

  listTenantKeys(options: {
    after?: { tenantId: string; version: number };
    limit: number;
  }): Promise<TenantKeyRow[]> {
    return this.run("catalog.listTenantKeys", () => ({
      query: TENANT_KEY_QUERIES.list,
      // "" and 0 sort before every row: from the start.
      params: {
        after_tenant: options.after?.tenantId ?? "",
        after_version: options.after?.version ?? 0,
        limit: checkLimit(options.limit, "catalog.listTenantKeys"),
      },
      result: (rows) => rows.map(toTenantKey),
    }));
  }

  insertTenantKey(row: TenantKeyRow): Promise<boolean> {
    return this.run("catalog.insertTenantKey", () => ({
      query: TENANT_KEY_QUERIES.insert,
      params: tenantKeyParams(row),
      result: (rows) => rows.length > 0,
    }));
  }

  updateTenantKey(update: {
    tenantId: string;
    version: number;
    state: "active" | "retired";
    wrapped?: { wrapped: string; masterKeyId: string };
    at: number;
  }): Promise<boolean> {
    const params = { tenant: update.tenantId, version: update.version, state: update.state, at: update.at };
    return this.run("catalog.updateTenantKey", () =>
      update.wrapped
        ? {
            query: TENANT_KEY_QUERIES.rewrap,
            params: { ...params, wrapped: update.wrapped.wrapped, masterKeyId: update.wrapped.masterKeyId },
            result: (rows) => rows.length > 0,
          }
        : { query: TENANT_KEY_QUERIES.setState, params, result: (rows) => rows.length > 0 },
    );
  }

  destroyTenantKeys(tenantId: string, at: number): Promise<number> {
    return this.run("catalog.destroyTenantKeys", () => ({
      query: TENANT_KEY_QUERIES.destroy,
      params: { tenant: tenantId, at },
      result: (rows) => rows.length,
    }));
  }
  async storedMessageText(
    tenantId: string,
    options: { after?: StoredTextKey; limit: number },
  ): Promise<StoredMessageText[]> {
    const limit = checkLimit(options.limit, "catalog.storedMessageText");
    const after = options.after ?? { table: "messages", id: "", version: 0 };
    const text = (v: unknown) => (typeof v === "string" ? v : JSON.stringify(v ?? {}));
    if (after.table === "messages") {
      const rows = await this.run("catalog.storedMessageText", () => ({
        query: TENANT_KEY_QUERIES.messageText,
        params: { tenant: tenantId, after: after.id, limit },
        result: (rs) =>
          rs.map(
            (r): StoredMessageText => ({
              table: "messages",
              tenantId,
              id: String(r.id),
              version: 0,
              preview: String(r.preview),
              metadata: text(r.metadata),
            }),
          ),
      }));
      if (rows.length > 0) return rows;
    }
    const from = after.table === "messages" ? { id: "", version: 0 } : after;
    return this.run("catalog.storedMessageText", () => ({
      query: TENANT_KEY_QUERIES.versionText,
      params: { tenant: tenantId, after: from.id, after_version: from.version, limit },
      result: (rs) =>
        rs.map(
          (r): StoredMessageText => ({
            table: "message_versions",
            tenantId,
            id: String(r.id),
            version: Number(r.version),
            preview: String(r.preview),
          }),
        ),
    }));
  }

  replaceMessageText(row: StoredMessageText, expectPreview: string): Promise<boolean> {
    return this.run("catalog.replaceMessageText", () =>
      row.table === "messages"
        ? {
            query: TENANT_KEY_QUERIES.replaceMessageText,
            params: {
              tenant: row.tenantId,
              id: row.id,
              preview: row.preview,
              metadata: row.metadata ?? "{}",
              expect: expectPreview,
            },
            result: (rs) => rs.length > 0,
          }
        : {
            query: TENANT_KEY_QUERIES.replaceVersionText,
            params: {
              tenant: row.tenantId,
              id: row.id,
              version: row.version,
              preview: row.preview,
              expect: expectPreview,
            },
            result: (rs) => rs.length > 0,
          },
    );
  }

  ping(): Promise<void> {
    return this.run("catalog.ping", () => ({ query: Q.ping, params: {}, result: () => undefined }));
  }

  // --- mail (`mail.ts`, MAIL-1) --------------------------------------------------------------

  getMail(tenantId: string, id: string): Promise<MailRow | undefined> {
    return this.run("catalog.getMail", () => ({
      query: MAIL_QUERIES.get,
      params: { tenant: tenantId, id },
      result: ([r]) => (r ? toMailRow(r) : undefined),
    }));
  }

  listMail(tenantId: string, q: MailListQuery): Promise<MailRow[]> {
    return this.run("catalog.listMail", () => {
      const limit = checkLimit(q.limit, "catalog.listMail");
      const query = q.after
        ? MAIL_QUERIES.listAfter
        : q.since !== undefined
          ? MAIL_QUERIES.listSince
          : MAIL_QUERIES.list;
      return {
        query,
        params: {
          tenant: tenantId,
          mailbox: q.mailboxId,
          since: q.since,
          after_at: q.after?.receivedAt,
          after_id: q.after?.id,
          limit,
        },
        result: (rows) => rows.map(toMailRow),
      };
    });
  }

  listMailThread(
    tenantId: string,
    threadId: string,
    options: { after?: { receivedAt: number; id: string }; limit: number },
  ): Promise<MailRow[]> {
    return this.run("catalog.listMailThread", () => ({
      query: options.after ? MAIL_QUERIES.threadAfter : MAIL_QUERIES.thread,
      params: {
        tenant: tenantId,
        thread: threadId,
        after_at: options.after?.receivedAt,
        after_id: options.after?.id,
        limit: checkLimit(options.limit, "catalog.listMailThread"),
      },
      result: (rows) => rows.map(toMailRow),
    }));
  }

  mailThreadsOf(tenantId: string, headerIds: readonly string[]): Promise<Map<string, string>> {
    return this.run<Map<string, string>, DbRow>("catalog.mailThreadsOf", () =>
      headerIds.length === 0
        ? { answer: new Map<string, string>() }
        : {
            query: MAIL_QUERIES.threadsOf,
            params: { tenant: tenantId, ids: [...headerIds] },
            result: (rows) => new Map(rows.map((r) => [String(r.header_message_id), String(r.thread_id)])),
          },
    );
  }

  listMailKeys(options: {
    after?: { tenantId: string; id: string };
    limit: number;
  }): Promise<Array<{ tenantId: string; id: string }>> {
    return this.run("catalog.listMailKeys", () => ({
      query: options.after ? MAIL_QUERIES.keysAfter : MAIL_QUERIES.keys,
      params: {
        after_tenant: options.after?.tenantId,
        after_id: options.after?.id,
        limit: checkLimit(options.limit, "catalog.listMailKeys"),
      },
      result: (rows) => rows.map((r) => ({ tenantId: String(r.tenant_id), id: String(r.id) })),
    }));
  }

  listTenantMail(tenantId: string, options: { beforeId?: string; limit: number }): Promise<MailRow[]> {
    return this.run("catalog.listTenantMail", () => ({
      query: options.beforeId === undefined ? MAIL_QUERIES.tenantNewest : MAIL_QUERIES.tenantBefore,
      params: {
        tenant: tenantId,
        before: options.beforeId,
        limit: checkLimit(options.limit, "catalog.listTenantMail"),
      },
      result: (rows) => rows.map(toMailRow),
    }));
  }

  countMailSharing(tenantId: string, blobKey: string): Promise<number> {
    return this.run("catalog.countMailSharing", () => ({
      query: MAIL_QUERIES.sharing,
      params: { tenant: tenantId, key: blobKey },
      result: ([r]) => Number(r?.n ?? 0),
    }));
  }

  mailboxBytes(tenantId: string, mailboxId: string): Promise<number> {
    return this.run("catalog.mailboxBytes", () => ({
      query: MAIL_QUERIES.mailboxBytes,
      params: { tenant: tenantId, mailbox: mailboxId },
      result: ([r]) => Number(r?.n ?? 0),
    }));
  }
}
