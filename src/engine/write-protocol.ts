/**
 * The write protocol (CONS-1) — the one place where Kura writes across planes:
 *
 *   1. validate (callers do it before calling in);
 *   2. write every body object (concurrently, bounded);
 *   3. apply ONE catalog batch — index rows + outbox + usage + audit — through the group committer;
 *   4. acknowledge.
 *
 * Body keys are unique to one attempt (fresh UUIDv7 ids, a random suffix on edits), so no two
 * writers ever share a key and cleanup only ever deletes what the same attempt created.
 * If step 2 fails, bodies already written are deleted. If step 3 is refused, all bodies are
 * deleted; if its outcome is unknown (connection lost around COMMIT) they stay for GC.
 * A crash between 2 and 3 leaves only orphan objects (no catalog row points at them), which the
 * GC job reclaims after a grace period. So no acknowledged write is lost (it is in the catalog
 * and its body was written first) and no index row points at a missing object.
 *
 * Removal runs the other way round: catalog rows first, bodies after; a body whose delete fails
 * is an orphan for GC, never a dangling row.
 *
 * Domains describe a write ({@link WriteDescription}): the rows it inserts or changes (each with
 * the body it stores), the bodies it stops pointing at, and per change an outbox event, an audit
 * entry and the change in the tenant's message count. This file alone turns that into the
 * catalog batch: it writes the bodies, fills each row's store, size and checksum from its put
 * (into rows of its own), records a blob ref per stored object body and removes those of dropped
 * ones (a message body's ref is its message or version row, which the catalog reads as one),
 * counts usage from the sizes the store reported, appends the events and audit entries, commits,
 * wakes the projectors, deletes the dropped bodies, and returns the rows it recorded.
 */

import { mapLimit } from "../core/concurrency.js";
import { isKuraError } from "../core/errors.js";
import {
  type BlobBody,
  type BlobStore,
  type PutManyItem,
  type PutOptions,
  type PutResult,
  putEach,
} from "../ports/blob-store.js";
import {
  type CatalogOp,
  COMMIT_OUTCOME_UNKNOWN,
  type MessageRow,
  type MessageVersionRow,
  type ObjectRow,
  type UsageDelta,
} from "../ports/catalog.js";
import type { GroupCommitter } from "./group-commit.js";

export type Probe = (point: string, detail: Readonly<Record<string, unknown>>) => void | Promise<void>;

/** A row as a domain describes it: where its body is stored and what it holds is the protocol's to fill. */
export type Unfilled<Row> = Omit<Row, "storeId" | "sizeBytes" | "checksum">;

/** A stored body, as the catalog knows it. */
export interface BodyRef {
  storeId: string;
  blobKey: string;
  sizeBytes: number;
}

/**
 * Catalog operations a domain may name itself. Rows that point at bodies, object blob refs, outbox
 * events, audit entries and usage are recorded by the protocol from the description, never
 * written by hand.
 */
export type PlainOp = Exclude<
  CatalogOp,
  {
    op:
      | "insertMessage"
      | "addMessageVersion"
      | "putObject"
      | "putBlobRef"
      | "deleteBlobRef"
      | "appendOutbox"
      | "appendAudit"
      | "addUsage";
  }
>;

/** What every change records: one outbox event and one audit entry about `entityId`. */
interface Recorded {
  /** Outbox event type (`message.appended`, `object.deleted`, …). */
  event: string;
  /** The message id, object key, … the event and the audit entry are about. */
  entityId: string;
  payload: Record<string, unknown>;
  /** Audit action (`message.append`, …). */
  action: string;
  details: Record<string, unknown>;
  /**
   * Bodies this change stops pointing at (the versions of an erased message, an object's
   * replaced body): their refs leave the catalog and their bytes the usage in the same batch,
   * and the bodies are deleted after the commit (best effort: a leftover is an orphan for GC).
   */
  drops?: readonly BodyRef[];
  /** Change in the tenant's message count (+1 append, −1 erase); bytes and objects follow the bodies. */
  messages?: number;
}

/** The body a change stores, under its row's `blobKey`, in the protocol's store. */
interface StoresBody {
  /** Bytes, or a stream (which is consumed once: such writes are never retried). */
  data: BlobBody;
  contentType: string;
  metadata?: Record<string, string>;
  /**
   * What the entries record of the body as its put reported it: `audit` adds its `size` to the
   * audit details; `audit+event` also adds `size` and `sha256` to the event payload.
   */
  bodyFacts?: "audit" | "audit+event";
}

/** A new message and its first version (`insertMessage`); the row is its body's ref (kind `message`). */
export interface InsertMessage extends Recorded, StoresBody {
  kind: "message";
  row: Unfilled<MessageRow>;
}

/** A new version made current (`addMessageVersion`, CATALOG_STALE_VERSION unless the current one is `expectVersion`). */
export interface AddMessageVersion extends Recorded, StoresBody {
  kind: "message-version";
  row: Unfilled<MessageVersionRow>;
  expectVersion: number;
  updatedAt: number;
}

/** An object row created or moved to a new body (`putObject`, compare-and-set on `expectBlobKey`). */
export interface PutObject extends Recorded, StoresBody {
  kind: "object";
  row: Unfilled<ObjectRow>;
  expectBlobKey: string | null;
}

/**
 * A message version's body copied to a new key, the same bytes (`moveMessageBody`: the archive,
 * LIFE-1): its row points there once the batch commits, the version stays; `drops` names the
 * old body, deleted after the commit like any dropped body (a crash in between leaves an orphan).
 */
export interface MoveMessageBody extends Recorded, StoresBody {
  kind: "message-body";
  row: { tenantId: string; messageId: string; version: number; blobKey: string };
  /** Where the version's body is now: the move fails (CATALOG_STALE_VERSION) if it is not. */
  fromBlobKey: string;
  /** The message's current version, as read: an edit or erase in between fails the move. */
  expectVersion: number;
}

/**
 * A body with no row of its own: its ref row (of kind `refKind`) is what points at it, and the
 * rows that name it are the write's `catalog` changes (mail: the raw message and each
 * attachment, named by the mail row). It records no event or audit entry of its own (the
 * change naming it does), and counts as an object in usage and `max_objects`.
 */
export interface StoreBody extends StoresBody {
  kind: "body";
  row: { tenantId: string; blobKey: string; refKind: string };
}

/**
 * A change that stores no body: soft delete and undelete, erase and purge, object delete. Its
 * operation names the tenant its event and audit entry belong to (checks without one, such as
 * `checkLease`, go in the description's `ops`).
 */
export interface CatalogChange extends Recorded {
  kind: "catalog";
  op: Extract<PlainOp, { tenantId: string }>;
}

/**
 * One change of a write. Messages: an append batch is one `message` change per message, an edit
 * one `message-version`; soft delete and undelete are `catalog` changes (`setMessageDeleted`);
 * erase, purge and expiry are `catalog` changes (`deleteMessage`) dropping every version's body.
 * Objects: a put is an `object` change dropping the body it replaces, a delete a `catalog` change
 * (`deleteObject`) dropping its body. A plane whose rows point at bodies of their own (session
 * files, mail, completed uploads) adds a kind here with its row type, and a case in `batch`.
 */
export type Change =
  | InsertMessage
  | AddMessageVersion
  | PutObject
  | MoveMessageBody
  | StoreBody
  | CatalogChange;

/** The row the protocol recorded for a change: filled from the put of its body. */
export type RecordedRow<C extends Change> = C extends InsertMessage
  ? MessageRow
  : C extends AddMessageVersion
    ? MessageVersionRow
    : C extends PutObject
      ? ObjectRow
      : undefined;

export interface WriteDescription<C extends Change = Change> {
  /** When: the blob refs, events and audit entries of the write carry this time (rows their own). */
  at: number;
  /** Recorded as the audit entries' actor (SEC-3). */
  actor: string;
  /** Applied before the changes' own operations (ensureTenant, touchChat, …). */
  ops?: readonly PlainOp[];
  changes: readonly C[];
}

export interface WriteProtocolOptions {
  /** Where new bodies go, and its id in the catalog. */
  store: BlobStore;
  storeId: string;
  /** Every configured store by id: dropped bodies are deleted from theirs. */
  stores: ReadonlyMap<string, BlobStore>;
  committer: GroupCommitter;
  /** Called after every commit (each one appends outbox events): wakes the projectors. */
  wake: () => void;
  probe?: Probe | undefined;
  /**
   * A tenant's storage quotas (TEN-3 `max_storage_bytes`, `max_objects`). A write that adds
   * bytes or bodies to a tenant with one carries a `checkQuota` after its usage, so the catalog
   * refuses it (QUOTA_EXCEEDED, its bodies deleted) if racing writes took the room meanwhile.
   */
  quotas?: (tenantId: string) => Promise<Quota>;
  /**
   * Whether a backup pins the bodies (`backup-pin.ts`), asked after a commit that drops some:
   * while it does, they stay for orphan GC instead of being deleted. Absent: never pinned.
   */
  pinned?: () => Promise<boolean>;
}

/** A tenant's storage limits; absent = none. */
export interface Quota {
  maxBytes?: number | undefined;
  maxObjects?: number | undefined;
}

/** Streamed bodies in flight per write (a stream cannot go through `putMany`). */
const STREAM_CONCURRENCY = 8;

type Stored = InsertMessage | AddMessageVersion | PutObject | MoveMessageBody | StoreBody;

export class WriteProtocol {
  private readonly store: BlobStore;
  private readonly storeId: string;
  private readonly stores: ReadonlyMap<string, BlobStore>;
  private readonly committer: GroupCommitter;
  private readonly wake: () => void;
  private readonly probe: Probe | undefined;
  private readonly quotas: WriteProtocolOptions["quotas"];
  private readonly pinned: WriteProtocolOptions["pinned"];

  constructor(options: WriteProtocolOptions) {
    this.pinned = options.pinned;
    this.store = options.store;
    this.storeId = options.storeId;
    this.stores = options.stores;
    this.committer = options.committer;
    this.wake = options.wake;
    this.probe = options.probe;
    this.quotas = options.quotas;
  }

  /**
   * Steps 2–4 for a described write; resolves with the recorded rows, one per change (undefined
   * for catalog-only changes), once the batch is committed.
   */
  async write<C extends Change>(description: WriteDescription<C>): Promise<RecordedRow<C>[]> {
    const { changes } = description;
    if (changes.length === 0 && !description.ops?.length) return [];
    const stored: Stored[] = [];
    const keys: string[] = [];
    for (const c of changes) {
      if (c.kind !== "catalog") {
        stored.push(c);
        keys.push(c.row.blobKey);
      }
    }
    if (keys.length === 0) return this.writeBodies(description, stored, keys);
    for (const k of keys) this.inFlight.add(k);
    try {
      return await this.writeBodies(description, stored, keys);
    } finally {
      for (const k of keys) this.inFlight.delete(k);
    }
  }

  /**
   * Whether a body key belongs to a write of this process still under way (its body may be
   * written, its commit not yet settled): such a body has no ref yet and is no orphan. Keys are
   * unique to one attempt, so a key leaves this set for good.
   */
  writing(key: string): boolean {
    return this.inFlight.has(key);
  }

  private readonly inFlight = new Set<string>();

  private async writeBodies<C extends Change>(
    description: WriteDescription<C>,
    stored: Stored[],
    keys: string[],
  ): Promise<RecordedRow<C>[]> {
    const { changes } = description;
    // A write that stores bodies adds usage: its tenants' quotas, read while the bodies go out.
    const quotas = stored.length > 0 && this.quotas ? this.quotasOf(stored) : undefined;
    quotas?.catch(() => undefined);
    const results = stored.length > 0 ? await this.putAll(stored, keys) : [];
    if (stored.length > 0) await this.probe?.("protocol.bodies-written", { keys });
    const rows: RecordedRow<C>[] = new Array(changes.length);
    let ops: CatalogOp[];
    try {
      ops = this.batch(
        description,
        results,
        rows as (MessageRow | MessageVersionRow | ObjectRow)[],
        await quotas,
      );
    } catch (e) {
      if (stored.length > 0) await this.store.delete(keys).catch(() => undefined);
      throw e;
    }
    try {
      await this.committer.commit({ ops });
    } catch (e) {
      // Every key here was made for this attempt alone (fresh ids, per-attempt suffixes), so the
      // cleanup can never touch a body another write committed. When the outcome is unknown (the
      // connection dropped while COMMIT was in flight) the bodies stay: a committed row may point
      // at them, and GC removes them after the grace period if none does.
      if (stored.length > 0 && !outcomeUnknown(e)) await this.store.delete(keys).catch(() => undefined);
      throw e;
    }
    if (stored.length > 0) await this.probe?.("protocol.committed", { keys });
    this.wake();
    await this.deleteDropped(changes);
    return rows;
  }

  /**
   * The catalog batch of a write, in one pass over its changes: the described operations, then
   * per change its row (filled from `results`, in the order of the stored changes, and put in
   * `rows`), the refs it adds and removes, its event and audit entry; last, usage per tenant.
   */
  private batch(
    description: WriteDescription,
    results: readonly PutResult[],
    rows: (MessageRow | MessageVersionRow | ObjectRow | undefined)[],
    quotas?: ReadonlyMap<string, Quota>,
  ): CatalogOp[] {
    const { at, actor, changes } = description;
    const ops: CatalogOp[] = description.ops ? description.ops.slice() : [];
    const usage: UsageDelta[] = [];
    /** Objects (not message bodies) a tenant gains: what `max_objects` holds back (TEN-3). */
    const newObjects = new Map<string, number>();
    let delta: UsageDelta | undefined;
    let put = 0;
    for (let i = 0; i < changes.length; i++) {
      const c = changes[i] as Change;
      const tenantId = c.kind === "catalog" ? c.op.tenantId : c.row.tenantId;
      if (delta?.tenantId !== tenantId) {
        delta = usage.find((u) => u.tenantId === tenantId);
        if (delta === undefined) {
          delta = { tenantId, bytes: 0, objects: 0, messages: 0 };
          usage.push(delta);
        }
      }
      let payload = c.kind === "body" ? {} : c.payload;
      let details = c.kind === "body" ? {} : c.details;
      if (c.kind === "catalog") {
        ops.push(c.op);
      } else {
        const result = results[put++] as PutResult;
        const { size, sha256 } = result;
        if (c.kind === "message") {
          const row = messageRow(c.row, this.storeId, result);
          rows[i] = row;
          ops.push({ op: "insertMessage", row });
        } else if (c.kind === "message-version") {
          const row = versionRow(c.row, this.storeId, result);
          rows[i] = row;
          ops.push({ op: "addMessageVersion", row, expectVersion: c.expectVersion, updatedAt: c.updatedAt });
        } else if (c.kind === "message-body") {
          ops.push({
            op: "moveMessageBody",
            tenantId,
            id: c.row.messageId,
            version: c.row.version,
            expectVersion: c.expectVersion,
            fromBlobKey: c.fromBlobKey,
            storeId: this.storeId,
            blobKey: c.row.blobKey,
            sizeBytes: size,
            checksum: sha256,
          });
        } else if (c.kind === "body") {
          // Nothing but its ref (below): the rows naming it are the write's catalog changes.
          newObjects.set(tenantId, (newObjects.get(tenantId) ?? 0) + 1);
        } else {
          const row = objectRow(c.row, this.storeId, result);
          rows[i] = row;
          ops.push({ op: "putObject", row, expectBlobKey: c.expectBlobKey });
          if (!c.drops?.length) newObjects.set(tenantId, (newObjects.get(tenantId) ?? 0) + 1);
        }
        // A message body's ref is its message or version row; an object's is a blob_refs row.
        if (c.kind === "object" || c.kind === "body")
          ops.push({
            op: "putBlobRef",
            row: {
              tenantId,
              storeId: this.storeId,
              blobKey: c.row.blobKey,
              sizeBytes: size,
              checksum: sha256,
              kind: c.kind === "body" ? c.row.refKind : "object",
              createdAt: at,
            },
          });
        delta.bytes += size;
        delta.objects += 1;
        if (c.kind === "body") continue;
        if (c.bodyFacts !== undefined) {
          details = { ...details, size };
          if (c.bodyFacts === "audit+event") payload = { ...payload, size, sha256 };
        }
      }
      if (c.drops !== undefined) {
        const refRows = !messageBodies(c);
        for (const d of c.drops) {
          if (refRows) ops.push({ op: "deleteBlobRef", tenantId, storeId: d.storeId, blobKey: d.blobKey });
          delta.bytes -= d.sizeBytes;
          delta.objects -= 1;
        }
      }
      if (c.messages !== undefined) delta.messages += c.messages;
      ops.push(
        {
          op: "appendOutbox",
          event: { tenantId, type: c.event, entityId: c.entityId, payload, createdAt: at },
        },
        {
          op: "appendAudit",
          entry: { tenantId, actor, action: c.action, target: c.entityId, at, details },
        },
      );
    }
    for (const u of usage) {
      if (u.bytes !== 0 || u.objects !== 0 || u.messages !== 0) ops.push({ op: "addUsage", delta: u });
      // Only what the write grows is checked: shrinking never fails, even past a lowered limit;
      // `max_objects`, as before the write (Tenancy.checkWrite), only when objects are added.
      const q = quotas?.get(u.tenantId);
      const maxBytes = u.bytes > 0 ? q?.maxBytes : undefined;
      const maxObjects = u.objects > 0 && (newObjects.get(u.tenantId) ?? 0) > 0 ? q?.maxObjects : undefined;
      if (maxBytes !== undefined || maxObjects !== undefined)
        ops.push({
          op: "checkQuota",
          tenantId: u.tenantId,
          ...(maxBytes === undefined ? {} : { maxBytes }),
          ...(maxObjects === undefined ? {} : { maxObjects }),
        });
    }
    return ops;
  }

  /** The quotas of the tenants whose bodies a write stores. */
  private async quotasOf(stored: readonly Stored[]): Promise<Map<string, Quota>> {
    const quotas = new Map<string, Quota>();
    for (const c of stored) {
      const tenantId = c.row.tenantId;
      if (!quotas.has(tenantId))
        quotas.set(tenantId, await (this.quotas as (t: string) => Promise<Quota>)(tenantId));
    }
    return quotas;
  }

  /**
   * Every body of the write, in one `putMany` when the store offers it (fs: one hand-off to its
   * writer thread), else a put each. Either way all or nothing: a failure leaves no body behind.
   */
  private putAll(stored: readonly Stored[], keys: readonly string[]): Promise<PutResult[]> {
    const items = new Array<PutManyItem>(stored.length);
    for (let i = 0; i < stored.length; i++) {
      const body = stored[i] as Stored;
      if (!(body.data instanceof Uint8Array)) return putEachBody(this.store, stored, keys);
      const item: PutManyItem = { key: keys[i] as string, body: body.data, contentType: body.contentType };
      if (body.metadata) item.metadata = body.metadata;
      items[i] = item;
    }
    return this.store.putMany ? this.store.putMany(items) : putEach(this.store, items);
  }

  /** After the commit: the bodies the write stopped pointing at, from their stores (best effort). */
  private async deleteDropped(changes: readonly Change[]): Promise<void> {
    let byStore: Map<string, string[]> | undefined;
    for (const c of changes) {
      if (c.kind === "body" || c.drops === undefined) continue;
      for (const d of c.drops) {
        byStore ??= new Map();
        const keys = byStore.get(d.storeId);
        if (keys) keys.push(d.blobKey);
        else byStore.set(d.storeId, [d.blobKey]);
      }
    }
    if (byStore === undefined) return;
    // A backup's snapshot taken before this commit may still need them: orphan GC takes them later.
    if (this.pinned && (await this.pinned())) return;
    for (const [storeId, keys] of byStore) {
      await (this.stores.get(storeId) ?? this.store).delete(keys).catch(() => undefined);
    }
  }
}

/**
 * Whether a change's bodies are message bodies, referenced by the message and version rows
 * alone (no `blob_refs` row: the rows hold the store, key, size, checksum and tenant, and the
 * rows going is the refs going).
 */
function messageBodies(c: Change): boolean {
  return c.kind === "catalog" ? c.op.op === "deleteMessage" : c.kind !== "object";
}

/** A write with a streamed body: a put each, and what was written removed again on failure. */
async function putEachBody(
  store: BlobStore,
  stored: readonly Stored[],
  keys: readonly string[],
): Promise<PutResult[]> {
  const written: string[] = [];
  try {
    return await mapLimit(stored, STREAM_CONCURRENCY, async (body, i) => {
      // Every key is unique to this attempt: the store may create it in place (`freshKey`).
      const options: PutOptions = { contentType: body.contentType, freshKey: true };
      if (body.metadata) options.metadata = body.metadata;
      const result = await store.put(keys[i] as string, body.data, options);
      written.push(keys[i] as string);
      return result;
    });
  } catch (failure) {
    if (written.length > 0) await store.delete(written).catch(() => undefined);
    throw failure;
  }
}

function messageRow(r: Unfilled<MessageRow>, storeId: string, put: PutResult): MessageRow {
  return {
    tenantId: r.tenantId,
    id: r.id,
    chatId: r.chatId,
    role: r.role,
    contentType: r.contentType,
    preview: r.preview,
    sizeBytes: put.size,
    checksum: put.sha256,
    storeId,
    blobKey: r.blobKey,
    version: r.version,
    createdAt: r.createdAt,
    updatedAt: r.updatedAt,
    deletedAt: r.deletedAt,
    expiresAt: r.expiresAt,
    idempotencyKey: r.idempotencyKey,
    metadata: r.metadata,
  };
}

function versionRow(r: Unfilled<MessageVersionRow>, storeId: string, put: PutResult): MessageVersionRow {
  return {
    tenantId: r.tenantId,
    messageId: r.messageId,
    version: r.version,
    storeId,
    blobKey: r.blobKey,
    sizeBytes: put.size,
    checksum: put.sha256,
    preview: r.preview,
    createdAt: r.createdAt,
  };
}

function objectRow(r: Unfilled<ObjectRow>, storeId: string, put: PutResult): ObjectRow {
  return {
    tenantId: r.tenantId,
    key: r.key,
    storeId,
    blobKey: r.blobKey,
    sizeBytes: put.size,
    checksum: put.sha256,
    contentType: r.contentType,
    createdAt: r.createdAt,
    updatedAt: r.updatedAt,
  };
}

/**
 * Whether a failed commit may still have committed: the catalog says so (the connection was lost
 * while COMMIT was in flight). Every other failure was a rollback.
 */
function outcomeUnknown(e: unknown): boolean {
  return isKuraError(e) && e.context.outcome === COMMIT_OUTCOME_UNKNOWN;
}
