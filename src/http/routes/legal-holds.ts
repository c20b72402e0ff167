/**
 * Legal holds (LIFE-1): `POST /v1/legal-holds` places one on a chat, a user (messages whose
 * `metadata.user_id` is that user) or a message, `GET /v1/legal-holds` lists the calling
 * tenant's (paged by `cursor` / `next_cursor`), `GET|DELETE /v1/legal-holds/{id}` reads or
 * removes one. A tenant sees only its own holds; what a hold covers is never purged, expired
 * or erased (an erase answers 409 LEGAL_HOLD).
 */
import { z } from "zod";
import type { LegalHold } from "../../domains/legal-holds.js";
import { type RouteSpec, SENT } from "../route.js";
import { cursorSchema, idSchema, limitSchema } from "../schemas.js";

const TAG = "lifecycle";

const holdSchema = z.object({
  id: z.string(),
  chat_id: z.string().nullable(),
  user_id: z.string().nullable(),
  message_id: z.string().nullable(),
  reason: z.string(),
  created_by: z.string().describe("Who placed it: the caller's identity, as the audit log records it"),
  created_at: z.string(),
});

function holdJson(h: LegalHold): z.infer<typeof holdSchema> {
  return {
    id: h.id,
    chat_id: h.chatId,
    user_id: h.userId,
    message_id: h.messageId,
    reason: h.reason,
    created_by: h.createdBy,
    created_at: h.createdAt,
  };
}

const NOT_FOUND = { description: "The tenant has no such hold (LEGAL_HOLD_NOT_FOUND)" };

export function legalHoldRoutes(): RouteSpec[] {
  const createBody = z
    .object({
      chat_id: idSchema.optional().describe("Hold every message of this chat"),
      user_id: idSchema.optional().describe("Hold every message whose metadata.user_id is this user"),
      message_id: z.string().min(1).max(64).optional().describe("Hold this message"),
      reason: z.string().min(1).max(1000).describe("Why (a case or matter reference)"),
    })
    .strict()
    .refine((b) => [b.chat_id, b.user_id, b.message_id].filter((x) => x !== undefined).length === 1, {
      message: "name exactly one of chat_id, user_id or message_id",
    });
  const create: RouteSpec<unknown, unknown, z.infer<typeof createBody>> = {
    method: "POST",
    path: "/v1/legal-holds",
    operationId: "createLegalHold",
    summary: "Place a legal hold on a chat, a user or a message",
    description:
      "While the hold exists, what it names is never purged, expired or erased (an erase answers " +
      "409 LEGAL_HOLD); a soft delete still hides it. A message hold needs the message to exist.",
    tag: TAG,
    body: createBody,
    responses: {
      201: { description: "Placed", schema: holdSchema },
      404: { description: "The message named does not exist (MESSAGE_NOT_FOUND)" },
    },
    handler: async ({ tenant, body }) => {
      const hold = await tenant.legalHolds.create({
        reason: body.reason,
        ...(body.chat_id !== undefined ? { chatId: body.chat_id } : {}),
        ...(body.user_id !== undefined ? { userId: body.user_id } : {}),
        ...(body.message_id !== undefined ? { messageId: body.message_id } : {}),
      });
      return { status: 201, data: holdJson(hold) };
    },
  };

  const listQuery = z.object({ limit: limitSchema(1000), cursor: cursorSchema }).strict();
  const list: RouteSpec<unknown, z.infer<typeof listQuery>> = {
    method: "GET",
    path: "/v1/legal-holds",
    operationId: "listLegalHolds",
    summary: "The calling tenant's legal holds, oldest first",
    description: "Pass next_cursor back as cursor for the next page; next_cursor is null on the last page.",
    tag: TAG,
    query: listQuery,
    responses: {
      200: {
        description: "A page of holds",
        schema: z.object({ items: z.array(holdSchema), next_cursor: z.string().nullable() }),
      },
    },
    handler: async ({ tenant, query }) => {
      const page = await tenant.legalHolds.list({
        limit: query.limit ?? 100,
        ...(query.cursor !== undefined ? { cursor: query.cursor } : {}),
      });
      return { data: { items: page.items.map(holdJson), next_cursor: page.nextCursor ?? null } };
    },
  };

  const params = z.object({ id: z.string().min(1).max(64) });
  const get: RouteSpec<z.infer<typeof params>> = {
    method: "GET",
    path: "/v1/legal-holds/{id}",
    operationId: "getLegalHold",
    summary: "One legal hold",
    tag: TAG,
    params,
    responses: { 200: { description: "The hold", schema: holdSchema }, 404: NOT_FOUND },
    handler: async ({ tenant, params: p }) => ({ data: holdJson(await tenant.legalHolds.get(p.id)) }),
  };

  const remove: RouteSpec<z.infer<typeof params>> = {
    method: "DELETE",
    path: "/v1/legal-holds/{id}",
    operationId: "deleteLegalHold",
    summary: "Remove a legal hold: what it held follows the retention policies again",
    tag: TAG,
    params,
    responses: { 204: { description: "Removed" }, 404: NOT_FOUND },
    handler: async ({ tenant, params: p, reply }) => {
      await tenant.legalHolds.delete(p.id);
      reply.code(204).send();
      return SENT;
    },
  };

  return [create, list, get, remove] as RouteSpec[];
}
