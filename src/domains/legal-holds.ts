/**
 * Legal holds of one tenant (LIFE-1): a hold names a chat, a user (the messages whose
 * `metadata.user_id` is that user) or a message, with a reason; while it exists, what it names is
 * never purged, expired or erased (an erase answers LEGAL_HOLD), though a soft delete still
 * works. Holds are catalog rows written through the write protocol, so each placement and
 * removal is audited and appears in the tenant's change feed (`legal_hold.created`,
 * `legal_hold.deleted`); `engine/legal-holds.ts` says what they cover.
 */
import { decodeCursor, encodeCursor } from "../core/cursor.js";
import { KuraError } from "../core/errors.js";
import { isMessageId, newMessageId } from "../core/ids.js";
import { assertValidId } from "../core/keys.js";
import type { EngineContext } from "../engine/context.js";
import type { LegalHoldRow } from "../ports/catalog.js";

export interface LegalHold {
  id: string;
  chatId: string | null;
  userId: string | null;
  messageId: string | null;
  reason: string;
  /** Who placed it (the caller's actor). */
  createdBy: string;
  createdAt: string;
}

/** What a hold names: exactly one of a chat, a user or a message. */
export interface LegalHoldInput {
  chatId?: string;
  userId?: string;
  messageId?: string;
  reason: string;
}

const MAX_REASON = 1000;

export class LegalHolds {
  constructor(
    private readonly ctx: EngineContext,
    private readonly tenantId: string,
    private readonly actor: string,
  ) {}

  /** Place a hold; a message hold needs the message to exist (MESSAGE_NOT_FOUND otherwise). */
  async create(input: LegalHoldInput): Promise<LegalHold> {
    const op = "legalHolds.create";
    const named = (["chatId", "userId", "messageId"] as const).filter((k) => input?.[k] !== undefined);
    if (named.length !== 1)
      throw new KuraError(
        "INVALID_ARGUMENT",
        "a legal hold names exactly one of chat_id, user_id or message_id",
        {
          operation: op,
        },
      );
    if (typeof input.reason !== "string" || input.reason.trim() === "" || input.reason.length > MAX_REASON)
      throw new KuraError("INVALID_ARGUMENT", `reason must be 1…${MAX_REASON} characters`, { operation: op });
    if (input.chatId !== undefined) assertValidId(input.chatId, "chat id", op);
    if (input.userId !== undefined) assertValidId(input.userId, "user id", op);
    if (input.messageId !== undefined) {
      const found = isMessageId(input.messageId)
        ? await this.ctx.catalog.getMessage(this.tenantId, input.messageId)
        : undefined;
      if (!found)
        throw new KuraError("MESSAGE_NOT_FOUND", `no message ${String(input.messageId).slice(0, 64)}`, {
          operation: op,
        });
    }
    const now = this.ctx.clock();
    const row: LegalHoldRow = {
      tenantId: this.tenantId,
      id: newMessageId(now),
      chatId: input.chatId ?? null,
      userId: input.userId ?? null,
      messageId: input.messageId ?? null,
      reason: input.reason,
      createdBy: this.actor,
      createdAt: now,
    };
    const names = { chat_id: row.chatId, user_id: row.userId, message_id: row.messageId };
    await this.ctx.protocol.write({
      at: now,
      actor: this.actor,
      changes: [
        {
          kind: "catalog",
          op: { op: "insertLegalHold", ...row },
          event: "legal_hold.created",
          entityId: row.id,
          payload: names,
          action: "legal_hold.create",
          details: { ...names, reason: row.reason },
        },
      ],
    });
    return toHold(row);
  }

  /** Behavior: LEGAL_HOLD_NOT_FOUND for an id the tenant has no hold of. */
  async get(id: string): Promise<LegalHold> {
    const row = typeof id === "string" ? await this.ctx.catalog.getLegalHold(this.tenantId, id) : undefined;
    if (!row) throw notFound(id, "legalHolds.get");
    return toHold(row);
  }

  /** The tenant's holds, oldest first, a page at a time. */
  async list(
    options: { cursor?: string; limit?: number } = {},
  ): Promise<{ items: LegalHold[]; nextCursor: string | undefined }> {
    const op = "legalHolds.list";
    const limit = options.limit ?? 100;
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > 1000)
      throw new KuraError("INVALID_ARGUMENT", "limit must be 1…1000", { operation: op });
    let afterId: string | undefined;
    if (options.cursor !== undefined) {
      const c = decodeCursor(options.cursor, { k: "lh1" });
      if (c === undefined || typeof c.a !== "string")
        throw new KuraError("CURSOR_INVALID", "the cursor was not produced by this listing", {
          operation: op,
        });
      afterId = c.a;
    }
    const rows = await this.ctx.catalog.listLegalHolds(this.tenantId, {
      limit: limit + 1,
      ...(afterId !== undefined ? { afterId } : {}),
    });
    const page = rows.slice(0, limit);
    const last = page.at(-1);
    return {
      items: page.map(toHold),
      nextCursor: rows.length > limit && last ? encodeCursor({ k: "lh1", a: last.id }) : undefined,
    };
  }

  /** Remove a hold (LEGAL_HOLD_NOT_FOUND if the tenant has none of this id). */
  async delete(id: string): Promise<void> {
    const row = await this.get(id);
    await this.ctx.protocol.write({
      at: this.ctx.clock(),
      actor: this.actor,
      changes: [
        {
          kind: "catalog",
          op: { op: "deleteLegalHold", tenantId: this.tenantId, id: row.id },
          event: "legal_hold.deleted",
          entityId: row.id,
          payload: {},
          action: "legal_hold.delete",
          details: { reason: row.reason },
        },
      ],
    });
  }
}

function notFound(id: unknown, operation: string): KuraError {
  return new KuraError("LEGAL_HOLD_NOT_FOUND", `no legal hold ${String(id).slice(0, 64)}`, { operation });
}

function toHold(r: LegalHoldRow): LegalHold {
  return {
    id: r.id,
    chatId: r.chatId,
    userId: r.userId,
    messageId: r.messageId,
    reason: r.reason,
    createdBy: r.createdBy,
    createdAt: new Date(r.createdAt).toISOString(),
  };
}
