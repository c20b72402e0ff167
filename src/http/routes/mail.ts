/**
 * Mail over HTTP (MAIL-1): `POST /v1/mailboxes/{mailbox_id}/messages` takes a raw RFC 5322
 * message (`Content-Type: message/rfc822`), read up to the tenant's `max_mail_bytes`; the
 * message's JSON, its exact bytes (`/raw`) and attachments are read back; flags change in the
 * catalog; `/copy` and `/move` name the target mailbox; threads are read across mailboxes.
 */
import { z } from "zod";
import { KuraError } from "../../core/errors.js";
import type { MailInfo } from "../../domains/mail.js";
import type { TenantScope } from "../../domains/tenant.js";
import { type BodySource, serveBody, servedBodyHeaders, servedBodyResponses } from "../ranges.js";
import { type RouteSpec, SENT } from "../route.js";
import { cursorSchema, idSchema, limitSchema } from "../schemas.js";
import { requestBody } from "../timeouts.js";

const TAG = "mail";

const addressSchema = z.object({ name: z.string(), address: z.string() });
const attachmentSchema = z.object({
  id: z.string(),
  filename: z.string().nullable(),
  content_type: z.string(),
  disposition: z.string().describe("attachment or inline"),
  content_id: z.string().nullable().describe("Content-ID without angle brackets (cid: references)"),
  size: z.number(),
  sha256: z.string(),
});
export const mailSchema = z.object({
  id: z.string(),
  mailbox_id: z.string(),
  message_id: z.string().nullable().describe("The Message-ID header, without angle brackets"),
  subject: z.string().nullable(),
  from: addressSchema.nullable(),
  to: z.array(addressSchema),
  cc: z.array(addressSchema),
  date: z.string().nullable().describe("The Date header (ISO 8601); null when missing or unreadable"),
  received_at: z.string(),
  size: z.number().describe("Bytes of the raw message as delivered"),
  sha256: z.string(),
  flags: z.array(z.string()),
  attachments: z.array(attachmentSchema),
  thread_id: z.string(),
  in_reply_to: z.string().nullable(),
  references: z.array(z.string()),
  headers: z.record(z.string(), z.string()).describe("Decoded header fields, by lower-case name"),
  problems: z
    .array(z.string())
    .describe("What was malformed but accepted: missing-date, invalid-date, missing-message-id, …"),
});

export function mailJson(m: MailInfo): z.infer<typeof mailSchema> {
  return {
    id: m.id,
    mailbox_id: m.mailboxId,
    message_id: m.messageId,
    subject: m.subject,
    from: m.from,
    to: m.to,
    cc: m.cc,
    date: m.date,
    received_at: m.receivedAt,
    size: m.size,
    sha256: m.sha256,
    flags: m.flags,
    attachments: m.attachments.map((a) => ({
      id: a.id,
      filename: a.filename,
      content_type: a.contentType,
      disposition: a.disposition,
      content_id: a.contentId,
      size: a.size,
      sha256: a.sha256,
    })),
    thread_id: m.threadId,
    in_reply_to: m.inReplyTo,
    references: m.references,
    headers: m.headers,
    problems: m.problems,
  };
}

const mailPageSchema = z.object({ items: z.array(mailSchema), next_cursor: z.string().nullable() });
const mailboxParams = z.object({ mailbox_id: idSchema });
const messageParams = z.object({ mailbox_id: idSchema, id: z.string().min(1).max(64) });
const attachmentParams = messageParams.extend({ attachment_id: z.string().min(1).max(16) });
type MessageParams = z.infer<typeof messageParams>;
const NOT_FOUND = { description: "No such message in this mailbox of the tenant (MAIL_NOT_FOUND)" };
/** `message/rfc822`, with or without parameters. */
const RFC822 = /^message\/rfc822\s*(;.*)?$/i;

function rawSource(tenant: TenantScope, p: MessageParams): BodySource {
  const headers = (m: MailInfo) => ({
    size: m.size,
    contentType: "message/rfc822",
    etag: `"${m.sha256}"`,
    lastModified: m.receivedAt,
  });
  return {
    filename: `${p.id}.eml`,
    info: async () => headers(await tenant.mail.get(p.mailbox_id, p.id)),
    open: async (range) => {
      const got = await tenant.mail.raw(p.mailbox_id, p.id, range ? { range } : {});
      return { info: headers(got.info), body: got.body, range: got.range };
    },
  };
}

export function mailRoutes(): RouteSpec[] {
  const store: RouteSpec<z.infer<typeof mailboxParams>> = {
    method: "POST",
    path: "/v1/mailboxes/{mailbox_id}/messages",
    operationId: "storeMail",
    summary: "Store an RFC 5322 message as delivered",
    description:
      "The body is the raw message (Content-Type: message/rfc822), stored byte for byte; its " +
      "attachments are extracted. The mailbox is created by its first message. A message a mail " +
      "server would accept is stored even when malformed (its `problems` say what was wrong); an " +
      "empty body or one with no header at all is 400 MAIL_UNPARSEABLE. Over the tenant's " +
      "max_mail_bytes (default 25 MiB): 413; past max_mailbox_bytes or the tenant's storage quota: 507.",
    tag: TAG,
    params: mailboxParams,
    rawBody: { contentType: "message/rfc822", description: "The raw message, exactly as delivered" },
    responses: {
      201: { description: "Stored", schema: mailSchema },
      415: { description: "The Content-Type is not message/rfc822 (MEDIA_TYPE_UNSUPPORTED)" },
    },
    handler: async ({ tenant, params, req }) => {
      const type = req.headers["content-type"];
      if (type === undefined || !RFC822.test(type))
        throw new KuraError("MEDIA_TYPE_UNSUPPORTED", "the body must be Content-Type: message/rfc822", {
          operation: "mail.store",
        });
      const m = await tenant.mail.store(params.mailbox_id, requestBody(req));
      return { status: 201, data: mailJson(m) };
    },
  };

  const listQuery = z
    .object({
      limit: limitSchema(1000),
      cursor: cursorSchema,
      since: z.string().max(64).optional().describe("Received at or after (ISO 8601 or ms)"),
      flag: z.string().max(65).optional().describe("Only messages carrying this flag (\\Seen, a keyword)"),
    })
    .strict();
  const list: RouteSpec<z.infer<typeof mailboxParams>, z.infer<typeof listQuery>> = {
    method: "GET",
    path: "/v1/mailboxes/{mailbox_id}/messages",
    operationId: "listMail",
    summary: "A mailbox's messages, oldest first, paged",
    description:
      "With `flag`, a page may hold fewer than `limit` items while `next_cursor` is set (at most " +
      "5,000 messages are looked at per request).",
    tag: TAG,
    params: mailboxParams,
    query: listQuery,
    responses: { 200: { description: "A page", schema: mailPageSchema } },
    handler: async ({ tenant, params, query }) => {
      const since =
        query.since === undefined ? undefined : /^\d+$/.test(query.since) ? Number(query.since) : query.since;
      const page = await tenant.mail.list(params.mailbox_id, {
        ...(query.limit !== undefined ? { limit: query.limit } : {}),
        ...(query.cursor !== undefined ? { cursor: query.cursor } : {}),
        ...(since !== undefined ? { since } : {}),
        ...(query.flag !== undefined ? { flag: query.flag } : {}),
      });
      return { data: { items: page.items.map(mailJson), next_cursor: page.nextCursor ?? null } };
    },
  };

  const get: RouteSpec<MessageParams> = {
    method: "GET",
    path: "/v1/mailboxes/{mailbox_id}/messages/{id}",
    operationId: "getMail",
    summary: "A message's decoded envelope, flags, thread and attachments",
    tag: TAG,
    params: messageParams,
    responses: { 200: { description: "The message", schema: mailSchema }, 404: NOT_FOUND },
    handler: async ({ tenant, params }) => ({
      data: mailJson(await tenant.mail.get(params.mailbox_id, params.id)),
    }),
  };

  const raw: RouteSpec<MessageParams> = {
    method: "GET",
    path: "/v1/mailboxes/{mailbox_id}/messages/{id}/raw",
    operationId: "getMailRaw",
    summary: "The exact bytes delivered (message/rfc822), verified against their SHA-256",
    tag: TAG,
    params: messageParams,
    headers: servedBodyHeaders("GET"),
    responses: { ...servedBodyResponses("GET"), 404: NOT_FOUND },
    handler: async ({ tenant, params, req, reply }) => serveBody(req, reply, rawSource(tenant, params)),
  };

  const attachment: RouteSpec<z.infer<typeof attachmentParams>> = {
    method: "GET",
    path: "/v1/mailboxes/{mailbox_id}/messages/{id}/attachments/{attachment_id}",
    operationId: "getMailAttachment",
    summary: "One attachment's decoded bytes",
    tag: TAG,
    params: attachmentParams,
    headers: servedBodyHeaders("GET"),
    responses: {
      ...servedBodyResponses("GET"),
      404: { description: "No such message or attachment (MAIL_NOT_FOUND, MAIL_ATTACHMENT_NOT_FOUND)" },
    },
    handler: async ({ tenant, params, req, reply }) => {
      const first = await tenant.mail.attachment(params.mailbox_id, params.id, params.attachment_id);
      first.body.destroy();
      const headers = {
        size: first.attachment.size,
        contentType: first.attachment.contentType,
        etag: `"${first.attachment.sha256}"`,
        lastModified: undefined,
      };
      return serveBody(req, reply, {
        filename: first.attachment.filename ?? `attachment-${params.attachment_id}`,
        info: async () => headers,
        open: async (range) => {
          const got = await tenant.mail.attachment(params.mailbox_id, params.id, params.attachment_id, {
            ...(range ? { range } : {}),
          });
          return { info: headers, body: got.body, range: got.range };
        },
      });
    },
  };

  const flagsBody = z
    .object({
      add: z.array(z.string().max(65)).max(64).optional(),
      remove: z.array(z.string().max(65)).max(64).optional(),
    })
    .strict();
  const flags: RouteSpec<MessageParams, unknown, z.infer<typeof flagsBody>> = {
    method: "PATCH",
    path: "/v1/mailboxes/{mailbox_id}/messages/{id}/flags",
    operationId: "setMailFlags",
    summary: "Add and remove flags (catalog only; the body is untouched)",
    tag: TAG,
    params: messageParams,
    body: flagsBody,
    responses: { 200: { description: "The message with its flags now", schema: mailSchema }, 404: NOT_FOUND },
    handler: async ({ tenant, params, body }) => ({
      data: mailJson(
        await tenant.mail.setFlags(params.mailbox_id, params.id, {
          ...(body.add ? { add: body.add } : {}),
          ...(body.remove ? { remove: body.remove } : {}),
        }),
      ),
    }),
  };

  const transferBody = z.object({ mailbox_id: idSchema.describe("The target mailbox") }).strict();
  const transfer = (
    action: "copy" | "move",
  ): RouteSpec<MessageParams, unknown, z.infer<typeof transferBody>> => ({
    method: "POST",
    path: `/v1/mailboxes/{mailbox_id}/messages/{id}/${action}`,
    operationId: action === "copy" ? "copyMail" : "moveMail",
    summary:
      action === "copy"
        ? "Copy a message to another mailbox (a new id; the body is shared, not copied)"
        : "Move a message to another mailbox (its id stays)",
    tag: TAG,
    params: messageParams,
    body: transferBody,
    responses: {
      [action === "copy" ? 201 : 200]: {
        description: "The message in the target mailbox",
        schema: mailSchema,
      },
      404: NOT_FOUND,
    },
    handler: async ({ tenant, params, body }) => {
      const m =
        action === "copy"
          ? await tenant.mail.copy(params.mailbox_id, params.id, body.mailbox_id)
          : await tenant.mail.move(params.mailbox_id, params.id, body.mailbox_id);
      return { status: action === "copy" ? 201 : 200, data: mailJson(m) };
    },
  });

  const remove: RouteSpec<MessageParams> = {
    method: "DELETE",
    path: "/v1/mailboxes/{mailbox_id}/messages/{id}",
    operationId: "deleteMail",
    summary: "Delete a message (its body goes with the last message sharing it)",
    tag: TAG,
    params: messageParams,
    responses: { 204: { description: "Deleted" }, 404: NOT_FOUND },
    handler: async ({ tenant, params, reply }) => {
      await tenant.mail.delete(params.mailbox_id, params.id);
      reply.code(204).send();
      return SENT;
    },
  };

  const threadQuery = z.object({ limit: limitSchema(1000), cursor: cursorSchema }).strict();
  const thread: RouteSpec<{ thread_id: string }, z.infer<typeof threadQuery>> = {
    method: "GET",
    path: "/v1/mail/threads/{thread_id}",
    operationId: "getMailThread",
    summary: "A thread's messages across the tenant's mailboxes, oldest first",
    tag: TAG,
    params: z.object({ thread_id: idSchema }),
    query: threadQuery,
    responses: { 200: { description: "A page", schema: mailPageSchema } },
    handler: async ({ tenant, params, query }) => {
      const page = await tenant.mail.thread(params.thread_id, {
        ...(query.limit !== undefined ? { limit: query.limit } : {}),
        ...(query.cursor !== undefined ? { cursor: query.cursor } : {}),
      });
      return { data: { items: page.items.map(mailJson), next_cursor: page.nextCursor ?? null } };
    },
  };

  return [
    store,
    list,
    get,
    raw,
    attachment,
    flags,
    transfer("copy"),
    transfer("move"),
    remove,
    thread,
  ] as RouteSpec[];
}
