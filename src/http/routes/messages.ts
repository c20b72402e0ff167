/**
 * Chats and messages (MSG-1…7) over HTTP: append, all-or-nothing batch, streamed append,
 * history, get, batch get, edit, versions, soft delete / erase, undelete, chat list.
 */
import { z } from "zod";
import { KuraError } from "../../core/errors.js";
import type { AppendInput, MessageContent } from "../../domains/messages.js";
import { actionSuffix, type RouteSpec, SENT } from "../route.js";
import {
  chatJson,
  chatSchema,
  contentSchema,
  cursorSchema,
  idSchema,
  limitSchema,
  messageJson,
  messageRefJson,
  messageRefSchema,
  messageSchema,
  messageVersionJson,
  messageVersionSchema,
  pageSchema,
} from "../schemas.js";
import { requestBody } from "../timeouts.js";
import type { HttpDeps } from "./deps.js";

const TAG = "messages";
const MAX_HTTP_BATCH = 1000;

const appendBody = z
  .object({
    role: z.string().describe("user, assistant, system, tool, …"),
    content: contentSchema,
    content_type: z
      .string()
      .max(255)
      .optional()
      .describe("Default text/plain for strings, application/json for parts"),
    metadata: z.record(z.string(), z.unknown()).optional(),
    ttl_seconds: z
      .number()
      .int()
      .positive()
      .optional()
      .describe("The message expires this long after creation"),
    idempotency_key: z
      .string()
      .max(256)
      .optional()
      .describe("A retried append with the same key returns the first result"),
  })
  .strict();

type AppendBody = z.infer<typeof appendBody>;

function toAppendInput(b: AppendBody): AppendInput {
  return {
    role: b.role,
    content: b.content as MessageContent,
    ...(b.content_type !== undefined ? { contentType: b.content_type } : {}),
    ...(b.metadata !== undefined ? { metadata: b.metadata } : {}),
    ...(b.ttl_seconds !== undefined ? { ttlSeconds: b.ttl_seconds } : {}),
    ...(b.idempotency_key !== undefined ? { idempotencyKey: b.idempotency_key } : {}),
  };
}

const chatParams = z.object({ chat_id: idSchema });
const messageParams = z.object({ id: z.string().max(64) });
const time = z
  .union([
    z
      .string()
      .regex(/^\d{1,15}$/)
      .transform(Number),
    z.string().max(64),
  ])
  .optional();

const historyQuery = z
  .object({
    limit: limitSchema(1000),
    cursor: cursorSchema,
    order: z.enum(["asc", "desc"]).optional().describe("desc (newest first, default) or asc"),
    since: time.describe("ISO time or epoch ms: messages created at or after"),
    until: time.describe("ISO time or epoch ms: messages created before"),
    include: z.enum(["content"]).optional().describe("content: include full bodies"),
  })
  .strict();

const streamQuery = z
  .object({
    role: z.string().max(32).optional().describe("Default assistant"),
    content_type: z.string().max(255).optional(),
    idempotency_key: z.string().max(256).optional(),
    ttl_seconds: z.coerce.number().int().positive().optional(),
  })
  .strict();

/** Bytes of JSON around a message's content that a request may add (escapes, metadata, fields). */
const JSON_OVERHEAD = 64 * 1024;

/** A message whose content is read may have lost its body for good (CONS-3, docs/http.md). */
const BODY_GONE = {
  description:
    "A message's body is lost (BODY_MISSING) or fails its checksum (BODY_CORRUPT): its content cannot be read; kura fsck reports it",
};

export function messageRoutes(deps: HttpDeps): RouteSpec[] {
  const maxContent = deps.config.limits.max_message_bytes;
  const appendLimit = 4 * maxContent + JSON_OVERHEAD;

  const append: RouteSpec<z.infer<typeof chatParams>, unknown, AppendBody> = {
    method: "POST",
    path: "/v1/chats/{chat_id}/messages",
    operationId: "appendMessage",
    summary: "Append a message (the chat is created on first use)",
    tag: TAG,
    params: chatParams,
    body: appendBody,
    bodyLimit: appendLimit,
    responses: {
      201: { description: "Stored", schema: messageRefSchema },
      409: { description: "idempotency_key already names a different request (IDEMPOTENCY_MISMATCH)" },
      413: { description: "Content above the message size limit (MESSAGE_TOO_LARGE); nothing stored" },
    },
    handler: async ({ tenant, params, body }) => {
      const ref = await tenant.messages.append(params.chat_id, toAppendInput(body));
      deps.metrics.observeMessage("append", ref.sizeBytes);
      return { status: 201, data: messageRefJson(ref) };
    },
  };

  const batchBody = z.object({ messages: z.array(appendBody).min(1).max(MAX_HTTP_BATCH) }).strict();
  const batch: RouteSpec<z.infer<typeof chatParams>, unknown, z.infer<typeof batchBody>> = {
    method: "POST",
    path: "/v1/chats/{chat_id}/messages:batch",
    operationId: "appendMessages",
    summary: `Append up to ${MAX_HTTP_BATCH} messages, all or nothing`,
    tag: TAG,
    params: chatParams,
    body: batchBody,
    bodyLimit: 32 * 1024 * 1024,
    responses: {
      201: { description: "All stored", schema: z.object({ items: z.array(messageRefSchema) }) },
      409: { description: "An idempotency_key already names a different request (IDEMPOTENCY_MISMATCH)" },
    },
    handler: async ({ tenant, params, body }) => {
      const refs = await tenant.messages.appendMany(params.chat_id, body.messages.map(toAppendInput));
      for (const r of refs) deps.metrics.observeMessage("append", r.sizeBytes);
      return { status: 201, data: { items: refs.map(messageRefJson) } };
    },
  };

  const stream: RouteSpec<z.infer<typeof chatParams>, z.infer<typeof streamQuery>, unknown> = {
    method: "POST",
    path: "/v1/chats/{chat_id}/messages:stream",
    operationId: "streamMessage",
    summary: "Append a message whose text arrives as a chunked request body (MSG-7)",
    description:
      "The body (UTF-8 text, any length of chunks) is stored as one message when the request ends; " +
      "nothing is visible before, and a stream the client aborts stores nothing.",
    tag: TAG,
    params: chatParams,
    query: streamQuery,
    rawBody: { contentType: "text/plain", description: "The message text, streamed" },
    responses: { 201: { description: "Stored when the stream ended", schema: messageRefSchema } },
    handler: async ({ tenant, params, query, req, reply }) => {
      const decoder = new TextDecoder("utf-8", { fatal: true });
      const parts: string[] = [];
      let bytes = 0;
      const notUtf8 = (cause: unknown) =>
        new KuraError("INVALID_UTF8", "the streamed body must be valid UTF-8 text", {
          operation: "messages.stream",
          cause,
        });
      for await (const chunk of requestBody(req)) {
        bytes += (chunk as Buffer).length;
        if (bytes > maxContent) {
          reply.header("connection", "close");
          throw new KuraError("MESSAGE_TOO_LARGE", `the streamed message exceeds ${maxContent} bytes`, {
            operation: "messages.stream",
            context: { limit: maxContent },
          });
        }
        try {
          parts.push(decoder.decode(chunk as Buffer, { stream: true }));
        } catch (e) {
          reply.header("connection", "close");
          throw notUtf8(e);
        }
      }
      if (!req.raw.complete) {
        throw new KuraError("OPERATION_ABORTED", "the stream was aborted; nothing was stored", {
          operation: "messages.stream",
        });
      }
      try {
        parts.push(decoder.decode());
      } catch (e) {
        throw notUtf8(e);
      }
      const text = parts.join("");
      const ref = await tenant.messages.append(params.chat_id, {
        role: query.role ?? "assistant",
        content: text,
        ...(query.content_type ? { contentType: query.content_type } : {}),
        ...(query.idempotency_key ? { idempotencyKey: query.idempotency_key } : {}),
        ...(query.ttl_seconds ? { ttlSeconds: query.ttl_seconds } : {}),
      });
      deps.metrics.observeMessage("stream", ref.sizeBytes);
      return { status: 201, data: messageRefJson(ref) };
    },
  };

  const history: RouteSpec<z.infer<typeof chatParams>, z.infer<typeof historyQuery>, unknown> = {
    method: "GET",
    path: "/v1/chats/{chat_id}/messages",
    operationId: "chatHistory",
    summary: "A chat's messages, newest first by default, a page at a time",
    tag: TAG,
    params: chatParams,
    query: historyQuery,
    responses: {
      200: {
        description: "A page of index entries (with content when include=content)",
        schema: pageSchema(z.union([messageSchema, messageRefSchema])),
      },
      410: BODY_GONE,
    },
    handler: async ({ tenant, params, query }) => {
      const page = await tenant.messages.history(params.chat_id, {
        ...(query.limit !== undefined ? { limit: query.limit } : {}),
        ...(query.cursor !== undefined ? { cursor: query.cursor } : {}),
        ...(query.order !== undefined ? { order: query.order } : {}),
        ...(query.since !== undefined ? { since: query.since } : {}),
        ...(query.until !== undefined ? { until: query.until } : {}),
        includeContent: query.include === "content",
      });
      return {
        data: {
          items: page.items.map((m) => ("content" in m ? messageJson(m) : messageRefJson(m))),
          next_cursor: page.nextCursor ?? null,
        },
      };
    },
  };

  const chatsQuery = z.object({ limit: limitSchema(1000), cursor: cursorSchema }).strict();
  const listChats: RouteSpec<unknown, z.infer<typeof chatsQuery>, unknown> = {
    method: "GET",
    path: "/v1/chats",
    operationId: "listChats",
    summary: "The tenant's chats in id order",
    tag: TAG,
    query: chatsQuery,
    responses: { 200: { description: "A page of chats", schema: pageSchema(chatSchema) } },
    handler: async ({ tenant, query }) => {
      const page = await tenant.chats.list({
        limit: query.limit ?? 100,
        ...(query.cursor !== undefined ? { cursor: query.cursor } : {}),
      });
      return { data: { items: page.items.map(chatJson), next_cursor: page.nextCursor ?? null } };
    },
  };

  const deleteChat: RouteSpec = {
    method: "DELETE",
    path: "/v1/chats/{chat_id}",
    operationId: "deleteChat",
    summary: "Delete a chat and its messages",
    tag: TAG,
    params: chatParams,
    responses: { 204: { description: "Deleted" } },
    notImplemented:
      "deleting a whole chat is not in the library yet; delete or erase its messages one by one",
  };

  const get: RouteSpec<z.infer<typeof messageParams>> = {
    method: "GET",
    path: "/v1/messages/{id}",
    operationId: "getMessage",
    summary: "A message with its content",
    tag: TAG,
    params: messageParams,
    responses: { 200: { description: "The message", schema: messageSchema }, 410: BODY_GONE },
    handler: async ({ tenant, params }) => ({ data: messageJson(await tenant.messages.get(params.id)) }),
  };

  const versions: RouteSpec<z.infer<typeof messageParams>> = {
    method: "GET",
    path: "/v1/messages/{id}/versions",
    operationId: "messageVersions",
    summary: "Every version of a message, oldest first",
    tag: TAG,
    params: messageParams,
    responses: {
      200: { description: "Versions", schema: z.object({ items: z.array(messageVersionSchema) }) },
    },
    handler: async ({ tenant, params }) => ({
      data: { items: (await tenant.messages.versions(params.id)).map(messageVersionJson) },
    }),
  };

  const batchGetBody = z.object({ ids: z.array(z.string().max(64)).min(1).max(1000) }).strict();
  const batchGet: RouteSpec<unknown, unknown, z.infer<typeof batchGetBody>> = {
    method: "POST",
    path: "/v1/messages:batchGet",
    operationId: "batchGetMessages",
    summary: "Several messages by id; ids not found are listed in missing",
    tag: TAG,
    body: batchGetBody,
    bodyLimit: 256 * 1024,
    responses: {
      200: {
        description: "Found messages and missing ids",
        schema: z.object({ items: z.array(messageSchema), missing: z.array(z.string()) }),
      },
      410: BODY_GONE,
    },
    handler: async ({ tenant, body }) => {
      const { items, missing } = await tenant.messages.getMany(body.ids);
      return { data: { items: items.map(messageJson), missing } };
    },
  };

  const editBody = z
    .object({ content: contentSchema, content_type: z.string().max(255).optional() })
    .strict();
  const edit: RouteSpec<z.infer<typeof messageParams>, unknown, z.infer<typeof editBody>> = {
    method: "PATCH",
    path: "/v1/messages/{id}",
    operationId: "editMessage",
    summary: "Edit: store a new immutable version (history kept)",
    tag: TAG,
    params: messageParams,
    body: editBody,
    bodyLimit: appendLimit,
    responses: {
      200: { description: "The new version's index entry", schema: messageRefSchema },
      409: { description: "Another edit came first (CATALOG_STALE_VERSION): retry from the current version" },
    },
    handler: async ({ tenant, params, body }) => {
      const ref = await tenant.messages.edit(
        params.id,
        body.content as MessageContent,
        body.content_type !== undefined ? { contentType: body.content_type } : {},
      );
      deps.metrics.observeMessage("edit", ref.sizeBytes);
      return { data: messageRefJson(ref) };
    },
  };

  const deleteQuery = z
    .object({
      mode: z.enum(["soft", "erase"]).optional().describe("soft (default) or erase: remove everywhere now"),
    })
    .strict();
  const remove: RouteSpec<z.infer<typeof messageParams>, z.infer<typeof deleteQuery>> = {
    method: "DELETE",
    path: "/v1/messages/{id}",
    operationId: "deleteMessage",
    summary: "Soft delete (purged after retention), or ?mode=erase to erase now (GDPR)",
    tag: TAG,
    params: messageParams,
    query: deleteQuery,
    responses: {
      204: { description: "Deleted" },
      409: { description: "mode=erase: a legal hold covers the message, its chat or its user (LEGAL_HOLD)" },
    },
    handler: async ({ tenant, params, query, reply }) => {
      if (query.mode === "erase") await tenant.messages.erase(params.id);
      else await tenant.messages.delete(params.id);
      reply.code(204).send();
      return SENT;
    },
  };

  const undelete: RouteSpec<z.infer<typeof messageParams>> = {
    method: "POST",
    path: "/v1/messages/{id}:undelete",
    url: "/v1/messages/:idAction",
    mapParams: actionSuffix("idAction", "undelete", "id"),
    operationId: "undeleteMessage",
    summary: "Undo a soft delete before the purge",
    tag: TAG,
    params: messageParams,
    responses: { 200: { description: "Visible again", schema: messageRefSchema } },
    handler: async ({ tenant, params }) => {
      await tenant.messages.undelete(params.id);
      const { content: _, ...ref } = await tenant.messages.get(params.id);
      return { data: messageRefJson(ref) };
    },
  };

  return [
    append,
    batch,
    stream,
    history,
    listChats,
    deleteChat,
    get,
    versions,
    batchGet,
    edit,
    remove,
    undelete,
  ] as RouteSpec[];
}
