/**
 * A tenant's chats (MSG-4): created by the first append to them, listed in chat-id order a page
 * at a time, with when each began and when its latest message came.
 */
import { decodeCursor, encodeCursor } from "../core/cursor.js";
import { KuraError } from "../core/errors.js";
import type { EngineContext } from "../engine/context.js";
import type { ChatRow } from "../ports/catalog.js";

export interface Chat {
  chatId: string;
  /** ISO 8601 times. */
  createdAt: string;
  lastMessageAt: string;
}

export interface ChatPage {
  items: Chat[];
  /** Pass back as `cursor` for the next page; absent on the last one. */
  nextCursor?: string;
}

const MAX_LIMIT = 1000;

export class Chats {
  constructor(
    private readonly ctx: EngineContext,
    private readonly tenantId: string,
  ) {}

  async list(options: { limit?: number; cursor?: string } = {}): Promise<ChatPage> {
    const limit = options.limit ?? 100;
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT)
      throw new KuraError("INVALID_ARGUMENT", `limit must be an integer in 1..${MAX_LIMIT}`, {
        operation: "chats.list",
      });
    let after: string | undefined;
    if (options.cursor !== undefined) {
      const c = decodeCursor(options.cursor, { k: "c1" });
      if (c === undefined || typeof c.a !== "string")
        throw new KuraError("CURSOR_INVALID", "the cursor was not produced by this listing", {
          operation: "chats.list",
        });
      after = c.a;
    }
    const rows = await this.ctx.catalog.listChats(this.tenantId, {
      limit: limit + 1,
      ...(after !== undefined ? { afterChatId: after } : {}),
    });
    const page = rows.slice(0, limit);
    const last = page.at(-1);
    return {
      items: page.map(toChat),
      ...(rows.length > limit && last ? { nextCursor: encodeCursor({ k: "c1", a: last.chatId }) } : {}),
    };
  }
}

function toChat(row: ChatRow): Chat {
  return {
    chatId: row.chatId,
    createdAt: new Date(row.createdAt).toISOString(),
    lastMessageAt: new Date(row.lastMessageAt).toISOString(),
  };
}
