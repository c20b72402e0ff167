/**
 * Chat messages (MSG-1…7): every body in the blob store at
 * `{tenant}/messages/{yyyy}/{mm}/{dd}/{chat_id}/{message_id}.json`, its index row in the catalog,
 * both written by the write protocol (`engine/write-protocol.ts`).
 * Over 450 lines on purpose: one class, the messages API, whose operations share the body reads,
 * the hot-message cache and the history cursor kept beside them.
 */

import { createHash, randomBytes } from "node:crypto";
import { mapLimit } from "../core/concurrency.js";
import { decodeCursor, encodeCursor } from "../core/cursor.js";
import { KuraError } from "../core/errors.js";
import { isMessageId, newMessageId } from "../core/ids.js";
import { assertValidId } from "../core/keys.js";
import { messageBodyKey } from "../core/message-keys.js";
import { toMs } from "../core/time.js";
import { type EngineContext, storeFor } from "../engine/context.js";
import { eraseMessages } from "../engine/erase.js";
import { bodyCacheKey, hotMessageKey, isLive } from "../engine/message-rows.js";
import type { InsertMessage } from "../engine/write-protocol.js";
import type { HistoryQuery, MessageRow, MessageVersionRow } from "../ports/catalog.js";
import {
  type AppendInput,
  assertWithinLimit,
  type MessageContent,
  previewOf,
  validateAppend,
  validateContent,
} from "./message-content.js";

export type { AppendInput, ContentPart, MessageContent } from "./message-content.js";

/** The index entry of a message (what history returns by default). */
export interface MessageRef {
  id: string;
  chatId: string;
  role: string;
  preview: string;
  contentType: string;
  contentUrl: string;
  sizeBytes: number;
  checksum: string;
  version: number;
  createdAt: string;
  updatedAt: string;
  deletedAt: string | null;
  expiresAt: string | null;
  metadata: Record<string, unknown>;
}

export interface Message extends MessageRef {
  content: MessageContent;
}

export interface MessageVersion {
  version: number;
  contentUrl: string;
  sizeBytes: number;
  checksum: string;
  preview: string;
  createdAt: string;
}

export interface HistoryOptions {
  order?: "asc" | "desc";
  limit?: number;
  cursor?: string;
  /** ISO time or ms: messages created at or after. */
  since?: string | number;
  /** ISO time or ms: messages created before. */
  until?: string | number;
  includeContent?: boolean;
}

/** The object stored for each message body (seed 000 shape). */
interface BodyDocument {
  content: MessageContent;
  metadata: {
    chat_id: string;
    message_id: string;
    original_size: number;
    role: string;
    content_type: string;
    version: number;
  };
  created_at: string;
}

/** An append input after validation. */
interface Prepared {
  input: AppendInput;
  contentType: string;
  size: number;
}

/** The body document of a message's first version: what an append stores, byte for byte. */
function firstVersionDocument(chatId: string, id: string, createdAt: number, p: Prepared): BodyDocument {
  return {
    content: p.input.content,
    metadata: {
      chat_id: chatId,
      message_id: id,
      original_size: p.size,
      role: p.input.role,
      content_type: p.contentType,
      version: 1,
    },
    created_at: new Date(createdAt).toISOString(),
  };
}

/** JSON with object keys sorted, for comparing values regardless of key order. */
function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) =>
    v !== null && typeof v === "object" && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1)))
      : v,
  );
}

const MAX_BATCH = 10_000;
const MAX_HISTORY_LIMIT = 1000;
const READ_CONCURRENCY = 32;

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/**
 * A message erased between the read of its row and the commit of a change to it: the catalog's
 * CATALOG_NOT_FOUND is, to the caller, the message's MESSAGE_NOT_FOUND.
 */
function goneMessage(e: unknown, id: string, operation: string): unknown {
  if (!(e instanceof KuraError) || e.code !== "CATALOG_NOT_FOUND") return e;
  return new KuraError("MESSAGE_NOT_FOUND", `no message ${id}`, { operation, cause: e });
}

export class Messages {
  constructor(
    private readonly ctx: EngineContext,
    private readonly tenantId: string,
    /** Recorded as the audit entry's actor (SEC-3). */
    private readonly actor = "system",
  ) {}

  /** Append one message; a chat that does not exist yet is created. */
  async append(chatId: string, input: AppendInput): Promise<MessageRef> {
    const [ref] = await this.appendMany(chatId, [input]);
    return ref as MessageRef;
  }

  /**
   * Append several messages all-or-nothing: bodies written concurrently, one catalog
   * transaction. Inputs whose idempotency key was already used return the earlier message.
   */
  async appendMany(chatId: string, inputs: readonly AppendInput[]): Promise<MessageRef[]> {
    const op = "messages.append";
    assertValidId(chatId, "chat id", op);
    if (!Array.isArray(inputs) || inputs.length === 0 || inputs.length > MAX_BATCH) {
      throw new KuraError("MESSAGE_INVALID", `a batch holds 1…${MAX_BATCH} messages`, { operation: op });
    }
    const prepared: Prepared[] = inputs.map((input) => {
      const { contentType } = validateAppend(input);
      const size = assertWithinLimit(input.content, this.ctx.limits.maxMessageBytes, op);
      return { input, contentType, size };
    });
    const keys = prepared.map((p) => p.input.idempotencyKey).filter((k): k is string => k !== undefined);
    if (new Set(keys).size !== keys.length) {
      throw new KuraError("MESSAGE_INVALID", "idempotency keys within one batch must differ", {
        operation: op,
      });
    }

    for (let attempt = 0; ; attempt++) {
      // Earlier results for idempotency keys already used.
      const earlier = new Map<number, MessageRow>();
      await Promise.all(
        prepared.map(async (p, i) => {
          if (p.input.idempotencyKey === undefined) return;
          const row = await this.ctx.catalog.findMessageByIdempotencyKey(
            this.tenantId,
            p.input.idempotencyKey,
          );
          if (!row) return;
          if (row.chatId !== chatId) {
            throw new KuraError("IDEMPOTENCY_CONFLICT", "the idempotency key was used for another chat", {
              operation: op,
              context: { idempotencyKey: p.input.idempotencyKey },
            });
          }
          earlier.set(i, row);
        }),
      );
      await Promise.all(
        [...earlier].map(([i, row]) => this.assertSameRequest(row, prepared[i] as Prepared, op)),
      );
      const now = this.ctx.clock();
      const fresh: number[] = [];
      const changes: InsertMessage[] = [];
      // Shared by the batch's audit entries: the protocol records each one's size beside it.
      const details = { chatId };
      for (let i = 0; i < prepared.length; i++) {
        if (earlier.has(i)) continue;
        const p = prepared[i] as Prepared;
        const id = newMessageId(now);
        fresh.push(i);
        changes.push({
          kind: "message",
          row: {
            tenantId: this.tenantId,
            id,
            chatId,
            role: p.input.role,
            contentType: p.contentType,
            preview: previewOf(p.input.content),
            blobKey: this.bodyKey(chatId, id, now, 1),
            version: 1,
            createdAt: now,
            updatedAt: now,
            deletedAt: null,
            expiresAt: p.input.ttlSeconds === undefined ? null : now + p.input.ttlSeconds * 1000,
            idempotencyKey: p.input.idempotencyKey ?? null,
            metadata: p.input.metadata ?? {},
          },
          data: Buffer.from(JSON.stringify(firstVersionDocument(chatId, id, now, p)), "utf8"),
          contentType: "application/json",
          bodyFacts: "audit",
          messages: 1,
          event: "message.appended",
          entityId: id,
          payload: { chatId, version: 1, role: p.input.role },
          action: "message.append",
          details,
        });
      }
      const rows: MessageRow[] = new Array(prepared.length);
      if (changes.length > 0) {
        // The tenant's limits (TEN-3), before a body is written.
        await this.ctx.tenancy.checkWrite(this.tenantId, {
          bytes: changes.reduce((n, c) => n + (c.data as Buffer).length, 0),
          objects: 0,
          messageSizes: fresh.map((i) => (prepared[i] as Prepared).size),
        });
        let recorded: MessageRow[];
        try {
          recorded = await this.ctx.protocol.write({
            at: now,
            actor: this.actor,
            ops: [
              { op: "ensureTenant", tenantId: this.tenantId, at: now },
              { op: "touchChat", tenantId: this.tenantId, chatId, at: now },
            ],
            changes,
          });
        } catch (e) {
          // A concurrent append with the same idempotency key won: return its result instead.
          if (e instanceof KuraError && e.code === "IDEMPOTENCY_CONFLICT" && attempt === 0) continue;
          throw e;
        }
        // Write-through: projectors (search) and read-after-write find the bodies in memory.
        for (let k = 0; k < recorded.length; k++) {
          const row = recorded[k] as MessageRow;
          rows[fresh[k] as number] = row;
          const cached = this.ctx.bodyCache.set(
            bodyCacheKey(this.tenantId, row.id, 1),
            (changes[k] as InsertMessage).data as Buffer,
          );
          if (cached instanceof Promise) cached.catch(() => undefined);
        }
      }
      return prepared.map((_, i) => this.toRef((earlier.get(i) ?? rows[i]) as MessageRow));
    }
  }

  /**
   * A retried idempotency key must carry the same request (the Stripe convention): same role,
   * content type, metadata, expiry and content. The content is compared through the first
   * version's checksum — the body an identical request would have stored hashes the same.
   */
  private async assertSameRequest(row: MessageRow, p: Prepared, operation: string): Promise<void> {
    const expiresAt = p.input.ttlSeconds === undefined ? null : row.createdAt + p.input.ttlSeconds * 1000;
    let same =
      row.role === p.input.role &&
      row.contentType === p.contentType &&
      row.expiresAt === expiresAt &&
      canonicalJson(row.metadata) === canonicalJson(p.input.metadata ?? {});
    if (same) {
      const first =
        row.version === 1
          ? row.checksum
          : (await this.ctx.catalog.listMessageVersions(this.tenantId, row.id)).find((v) => v.version === 1)
              ?.checksum;
      const body = Buffer.from(JSON.stringify(firstVersionDocument(row.chatId, row.id, row.createdAt, p)));
      same = first === createHash("sha256").update(body).digest("hex");
    }
    if (!same) {
      throw new KuraError(
        "IDEMPOTENCY_MISMATCH",
        "the idempotency key was used before with a different request; use a new key for a new message",
        { operation, context: { idempotencyKey: p.input.idempotencyKey, messageId: row.id } },
      );
    }
  }

  /** A message with its content; deleted and expired messages are not found. */
  async get(id: string): Promise<Message> {
    const hotKey = hotMessageKey(this.tenantId, id);
    const cache = this.ctx.messageCache;
    const hot = cache?.get(hotKey);
    let row: MessageRow;
    if (cache?.validate) {
      // Other nodes write this catalog: the entry serves only the version the row has now, so an
      // edit or delete acknowledged anywhere is seen here at once (ADR 0039).
      row = await this.liveRow(id, "messages.get");
      if (hot && hot.row.version === row.version) {
        cache.hits++;
        return this.toMessage(row, hot.content as MessageContent);
      }
      cache.misses++;
    } else {
      if (hot && isLive(hot.row, this.ctx.clock())) {
        if (cache) cache.hits++;
        return this.toMessage(hot.row, hot.content as MessageContent);
      }
      if (cache) cache.misses++;
      row = await this.liveRow(id, "messages.get");
    }
    let body: Buffer | Promise<Buffer>;
    try {
      body = messageBody(
        this.ctx,
        row.storeId,
        row.blobKey,
        row.checksum,
        bodyCacheKey(row.tenantId, row.id, row.version),
      );
      if (body instanceof Promise) body = await body;
    } catch (e) {
      const moved = await this.movedRow(e, row);
      if (moved === undefined) throw await this.unlessGone(e, row);
      row = moved;
      body = await messageBody(
        this.ctx,
        row.storeId,
        row.blobKey,
        row.checksum,
        bodyCacheKey(row.tenantId, row.id, row.version),
      );
    }
    const content = contentOf(body);
    this.ctx.messageCache?.set(hotKey, { row, content });
    return this.toMessage(row, content);
  }

  /**
   * A body found missing because an erase or purge took it (with the row) after the row was
   * read is no lost body: the message is gone (MESSAGE_NOT_FOUND). Edits keep old bodies.
   */
  private async unlessGone(e: unknown, row: MessageRow): Promise<unknown> {
    if (!(e instanceof KuraError) || e.code !== "BODY_MISSING") return e;
    const now = await this.ctx.catalog.getMessage(this.tenantId, row.id);
    if (!now || !isLive(now, this.ctx.clock()))
      return new KuraError("MESSAGE_NOT_FOUND", `no message ${row.id}`, { operation: "messages.get" });
    return e;
  }

  private forget(id: string): void {
    this.ctx.messageCache?.delete(hotMessageKey(this.tenantId, id));
  }

  /** Several messages by id, read in parallel (bounded); ids not found are listed in `missing`. */
  async getMany(ids: readonly string[]): Promise<{ items: Message[]; missing: string[] }> {
    if (!Array.isArray(ids) || ids.length > MAX_HISTORY_LIMIT) {
      throw new KuraError("MESSAGE_INVALID", `ids must be an array of at most ${MAX_HISTORY_LIMIT}`, {
        operation: "messages.getMany",
      });
    }
    const valid = [...new Set(ids.filter(isMessageId))];
    const now = this.ctx.clock();
    const rows = (await this.ctx.catalog.getMessages(this.tenantId, valid)).filter((r) => isLive(r, now));
    const byId = new Map(rows.map((r) => [r.id, r]));
    const found = ids.filter((id) => byId.has(id));
    const contents = await mapLimit(found, READ_CONCURRENCY, (id) =>
      this.content(byId.get(id) as MessageRow),
    );
    return {
      items: found.map((id, i) => ({
        ...this.toRef(byId.get(id) as MessageRow),
        content: contents[i] as MessageContent,
      })),
      missing: ids.filter((id) => !byId.has(id)),
    };
  }

  /** A chat's messages, newest first by default, a page at a time. */
  async history(
    chatId: string,
    options: HistoryOptions = {},
  ): Promise<{ items: (MessageRef | Message)[]; nextCursor: string | undefined }> {
    const op = "messages.history";
    assertValidId(chatId, "chat id", op);
    const order = options.order ?? "desc";
    if (order !== "asc" && order !== "desc")
      throw new KuraError("INVALID_ARGUMENT", "order must be asc or desc", { operation: op });
    const limit = options.limit ?? 50;
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_HISTORY_LIMIT) {
      throw new KuraError("INVALID_ARGUMENT", `limit must be 1…${MAX_HISTORY_LIMIT}`, { operation: op });
    }
    const after =
      options.cursor === undefined ? undefined : decodeHistoryCursor(options.cursor, chatId, order);
    const query: HistoryQuery = { order, limit: limit + 1 };
    if (after) query.after = after;
    if (options.since !== undefined) query.since = toMs(options.since, "since", "messages.history");
    if (options.until !== undefined) query.until = toMs(options.until, "until", "messages.history");
    const rows = await this.ctx.catalog.history(this.tenantId, chatId, query);
    // A chat with messages exists (chats are never deleted); only an empty page asks.
    if (rows.length === 0 && !(await this.ctx.catalog.getChat(this.tenantId, chatId))) {
      throw new KuraError("CHAT_NOT_FOUND", `no chat ${chatId}`, { operation: op, context: { chatId } });
    }
    const now = this.ctx.clock();
    const page = rows.slice(0, limit);
    const last = page.at(-1);
    const nextCursor = rows.length > limit && last ? encodeHistoryCursor(chatId, order, last) : undefined;
    const live = page.filter((r) => isLive(r, now));
    if (!options.includeContent) {
      const items = new Array<MessageRef>(live.length);
      for (let i = 0; i < live.length; i++) items[i] = this.toRef(live[i] as MessageRow);
      return { items, nextCursor };
    }
    const contents = await mapLimit(live, READ_CONCURRENCY, (r) => this.content(r));
    return {
      items: live.map((r, i) => ({ ...this.toRef(r), content: contents[i] as MessageContent })),
      nextCursor,
    };
  }

  async count(chatId: string): Promise<number> {
    assertValidId(chatId, "chat id", "messages.count");
    return this.ctx.catalog.countMessages(this.tenantId, chatId);
  }

  /** Edit = a new immutable version (MSG-5); earlier versions stay readable through `versions`. */
  async edit(
    id: string,
    content: MessageContent,
    options: { contentType?: string } = {},
  ): Promise<MessageRef> {
    const op = "messages.edit";
    validateContent(content);
    const size = assertWithinLimit(content, this.ctx.limits.maxMessageBytes, op);
    for (let attempt = 0; ; attempt++) {
      const row = await this.liveRow(id, op);
      const now = this.ctx.clock();
      const version = row.version + 1;
      const contentType = options.contentType ?? row.contentType;
      const key = this.bodyKey(row.chatId, row.id, row.createdAt, version);
      const doc: BodyDocument = {
        content,
        metadata: {
          chat_id: row.chatId,
          message_id: row.id,
          original_size: size,
          role: row.role,
          content_type: contentType,
          version,
        },
        created_at: new Date(row.createdAt).toISOString(),
      };
      const preview = previewOf(content);
      const data = Buffer.from(JSON.stringify(doc));
      // The tenant's limits (TEN-3), before the new version's body is written.
      await this.ctx.tenancy.checkWrite(this.tenantId, {
        bytes: data.length,
        objects: 0,
        messageSizes: [size],
      });
      let recorded: MessageVersionRow;
      try {
        [recorded] = (await this.ctx.protocol.write({
          at: now,
          actor: this.actor,
          changes: [
            {
              kind: "message-version",
              row: { tenantId: this.tenantId, messageId: id, version, blobKey: key, preview, createdAt: now },
              expectVersion: row.version,
              updatedAt: now,
              data,
              contentType: "application/json",
              event: "message.edited",
              entityId: id,
              payload: { chatId: row.chatId, version },
              action: "message.edit",
              details: { version },
            },
          ],
        })) as [MessageVersionRow];
      } catch (e) {
        if (e instanceof KuraError && e.code === "CATALOG_STALE_VERSION" && attempt < 3) continue;
        throw goneMessage(e, id, "messages.edit");
      }
      this.forget(id);
      return this.toRef({
        ...row,
        version,
        blobKey: key,
        storeId: recorded.storeId,
        sizeBytes: recorded.sizeBytes,
        checksum: recorded.checksum,
        preview,
        contentType,
        updatedAt: now,
      });
    }
  }

  /** Every version of a message, oldest first. */
  async versions(id: string): Promise<MessageVersion[]> {
    await this.liveRow(id, "messages.versions");
    const rows = await this.ctx.catalog.listMessageVersions(this.tenantId, id);
    return rows
      .sort((a, b) => a.version - b.version)
      .map((v) => ({
        version: v.version,
        contentUrl: this.ctx.urls.urlFor(v.storeId, v.blobKey),
        sizeBytes: v.sizeBytes,
        checksum: v.checksum,
        preview: v.preview,
        createdAt: new Date(v.createdAt).toISOString(),
      }));
  }

  /** The content of one version. */
  async versionContent(id: string, version: number): Promise<MessageContent> {
    await this.liveRow(id, "messages.versions");
    const v = (await this.ctx.catalog.listMessageVersions(this.tenantId, id)).find(
      (x) => x.version === version,
    );
    if (!v)
      throw new KuraError("MESSAGE_NOT_FOUND", `message ${id} has no version ${version}`, {
        operation: "messages.versions",
      });
    return this.readBody(v.storeId, v.blobKey, v.checksum, bodyCacheKey(this.tenantId, id, version));
  }

  /** Soft delete: hidden from reads and search, purged after the retention period (MSG-5). */
  async delete(id: string): Promise<void> {
    await this.setDeleted(id, true);
  }

  /** Undo a soft delete before the purge. */
  async undelete(id: string): Promise<void> {
    await this.setDeleted(id, false);
  }

  private async setDeleted(id: string, deleted: boolean): Promise<void> {
    const op = deleted ? "messages.delete" : "messages.undelete";
    const row = await this.row(id, op);
    if (deleted === (row.deletedAt !== null)) return;
    const now = this.ctx.clock();
    this.forget(id);
    const write = this.ctx.protocol.write({
      at: now,
      actor: this.actor,
      changes: [
        {
          kind: "catalog",
          op: {
            op: "setMessageDeleted",
            tenantId: this.tenantId,
            id,
            deletedAt: deleted ? now : null,
            updatedAt: now,
          },
          event: deleted ? "message.deleted" : "message.undeleted",
          entityId: id,
          payload: { chatId: row.chatId },
          action: op,
          details: {},
        },
      ],
    });
    await write.catch((e: unknown) => {
      throw goneMessage(e, id, op);
    });
    // Again after the commit: a get racing with it may have cached the old row.
    this.forget(id);
  }

  /**
   * Purge this tenant's soft-deleted messages older than the retention period
   * (`retention.deleted_messages_days`, default 30) — what the lifecycle job does for every
   * tenant; messages a legal hold covers stay. Returns how many were purged.
   */
  async purge(options: { olderThanDays?: number } = {}): Promise<number> {
    const days = options.olderThanDays ?? this.ctx.retention.deletedMessagesDays;
    if (!Number.isFinite(days) || days < 0) {
      throw new KuraError("INVALID_ARGUMENT", "olderThanDays must be >= 0", { operation: "messages.purge" });
    }
    const before = this.ctx.clock() - days * 86_400_000;
    let purged = 0;
    // Messages a legal hold keeps (or an undelete saved) stay due: each read asks past them.
    let left = 0;
    for (;;) {
      const rows = await this.ctx.catalog.deletedMessagesBefore({
        before,
        limit: 200 + left,
        tenantId: this.tenantId,
      });
      if (rows.length <= left) return purged;
      const removed = await eraseMessages(this.ctx, rows, "message.purged", this.actor);
      purged += removed.length;
      left = rows.length - removed.length;
      if (removed.length === 0) return purged;
    }
  }

  /** Erase now, everywhere (GDPR): rows, every version's body, cached bodies. */
  async erase(id: string): Promise<void> {
    const row = await this.row(id, "messages.erase");
    await eraseMessages(this.ctx, [row], "message.erased", this.actor);
  }

  /** Where a version's body goes (`messageBodyKey`): a fresh random suffix per edit attempt. */
  private bodyKey(chatId: string, id: string, createdAt: number, version: number): string {
    const attempt = version === 1 ? "" : randomBytes(6).toString("hex");
    return messageBodyKey({ tenantId: this.tenantId, chatId, id, createdAt, version, attempt });
  }

  /** The row, including soft-deleted ones; unknown or malformed ids are MESSAGE_NOT_FOUND. */
  private async row(id: string, operation: string): Promise<MessageRow> {
    const row = isMessageId(id) ? await this.ctx.catalog.getMessage(this.tenantId, id) : undefined;
    if (!row)
      throw new KuraError("MESSAGE_NOT_FOUND", `no message ${String(id).slice(0, 64)}`, { operation });
    return row;
  }

  private async liveRow(id: string, operation: string): Promise<MessageRow> {
    const row = await this.row(id, operation);
    if (!isLive(row, this.ctx.clock()))
      throw new KuraError("MESSAGE_NOT_FOUND", `no message ${id}`, { operation });
    return row;
  }

  private async content(row: MessageRow): Promise<MessageContent> {
    const read = (r: MessageRow) =>
      this.readBody(r.storeId, r.blobKey, r.checksum, bodyCacheKey(r.tenantId, r.id, r.version));
    try {
      return await read(row);
    } catch (e) {
      const moved = await this.movedRow(e, row);
      if (moved === undefined) throw e;
      return read(moved);
    }
  }

  /**
   * The row as it is now when a body read from `row` found no body because the lifecycle moved
   * it to the archive meanwhile (same version, another key); undefined for any other failure.
   */
  private async movedRow(e: unknown, row: MessageRow): Promise<MessageRow | undefined> {
    if (!(e instanceof KuraError) || e.code !== "BODY_MISSING") return undefined;
    const now = await this.ctx.catalog.getMessage(this.tenantId, row.id);
    return now && now.version === row.version && now.blobKey !== row.blobKey ? now : undefined;
  }

  private async readBody(
    storeId: string,
    key: string,
    checksum: string,
    cacheKey: string,
  ): Promise<MessageContent> {
    return contentOf(await messageBody(this.ctx, storeId, key, checksum, cacheKey));
  }

  private toMessage(row: MessageRow, content: MessageContent): Message {
    const message = this.toRef(row) as Message;
    message.content = content;
    return message;
  }

  private toRef(row: MessageRow): MessageRef {
    const created = iso(row.createdAt) as string;
    return {
      id: row.id,
      chatId: row.chatId,
      role: row.role,
      preview: row.preview,
      contentType: row.contentType,
      contentUrl: this.ctx.urls.urlFor(row.storeId, row.blobKey),
      sizeBytes: row.sizeBytes,
      checksum: row.checksum,
      version: row.version,
      createdAt: created,
      updatedAt: row.updatedAt === row.createdAt ? created : (iso(row.updatedAt) as string),
      deletedAt: iso(row.deletedAt),
      expiresAt: iso(row.expiresAt),
      metadata: row.metadata,
    };
  }
}

function encodeHistoryCursor(chatId: string, order: string, row: MessageRow): string {
  return encodeCursor({ k: "h1", ch: chatId, o: order, c: row.createdAt, i: row.id });
}

function decodeHistoryCursor(
  cursor: string,
  chatId: string,
  order: string,
): { createdAt: number; id: string } {
  const c = decodeCursor(cursor, { k: "h1", ch: chatId, o: order });
  if (c === undefined || !Number.isSafeInteger(c.c) || !isMessageId(c.i))
    throw new KuraError("CURSOR_INVALID", "the cursor was not produced by this history query", {
      operation: "messages.history",
    });
  return { createdAt: c.c as number, id: c.i as string };
}

/**
 * The current content of a message row, through the body cache and verified against the row's
 * checksum (for engine-side readers such as the search projector, which already hold the row).
 */
export async function readMessageContent(ctx: EngineContext, row: MessageRow): Promise<MessageContent> {
  return contentOf(
    await messageBody(
      ctx,
      row.storeId,
      row.blobKey,
      row.checksum,
      bodyCacheKey(row.tenantId, row.id, row.version),
    ),
  );
}

function contentOf(body: Buffer): MessageContent {
  return (JSON.parse(body.toString("utf8")) as BodyDocument).content;
}

/**
 * A body verified against the catalog's checksum: from the body cache, else from the store —
 * read on this thread when the store offers it for small objects (`getBufferSync`: local files,
 * where that is cheaper than the thread pool and the layers' timers), else through `getBuffer`.
 * Answers without a promise when nothing had to wait, so a cold get of a small body costs one
 * turn of the event loop for the catalog and none for the body.
 */
function messageBody(
  ctx: EngineContext,
  storeId: string,
  key: string,
  checksum: string,
  cacheKey: string,
): Buffer | Promise<Buffer> {
  try {
    const body = cachedOrFetched(ctx, storeId, key, checksum, cacheKey);
    return body instanceof Promise
      ? body.catch((e: unknown) => {
          throw bodyError(e);
        })
      : body;
  } catch (e) {
    throw bodyError(e);
  }
}

/**
 * A body that is gone (BLOB_NOT_FOUND) or whose bytes fail their checksum is a lost message
 * body, not a missing object or an internal error: BODY_MISSING / BODY_CORRUPT (410), which
 * `kura fsck` reports. Errors name the message, never the stored key.
 */
function bodyError(e: unknown): unknown {
  if (!(e instanceof KuraError)) return e;
  if (e.code === "BLOB_NOT_FOUND")
    return new KuraError("BODY_MISSING", "the message's body is missing from the blob store", {
      operation: "messages.read",
      cause: e,
    });
  if (e.code === "BLOB_CHECKSUM_MISMATCH" || e.code === "BLOB_METADATA_CORRUPT")
    return new KuraError("BODY_CORRUPT", "the message's body does not match its recorded checksum", {
      operation: "messages.read",
      cause: e,
    });
  return e;
}

function cachedOrFetched(
  ctx: EngineContext,
  storeId: string,
  key: string,
  checksum: string,
  cacheKey: string,
): Buffer | Promise<Buffer> {
  const cached = ctx.bodyCache.get(cacheKey);
  if (cached instanceof Promise)
    return cached.then((hit) => hit ?? fetchBody(ctx, storeId, key, checksum, cacheKey));
  return cached ?? fetchBody(ctx, storeId, key, checksum, cacheKey);
}

function fetchBody(
  ctx: EngineContext,
  storeId: string,
  key: string,
  checksum: string,
  cacheKey: string,
): Buffer | Promise<Buffer> {
  const store = storeFor(ctx, storeId);
  const options = { expectedSha256: checksum };
  const small = store.getBufferSync?.(key, options);
  if (small) {
    const stored = ctx.bodyCache.set(cacheKey, small.data);
    return stored instanceof Promise ? stored.then(() => small.data) : small.data;
  }
  return store.getBuffer(key, options).then(async ({ data }) => {
    await ctx.bodyCache.set(cacheKey, data);
    return data;
  });
}
