/**
 * The wire shapes of the HTTP API. JSON over HTTP is snake_case, as the specification has it (MSG-1's index
 * entry `{id, chat_id, role, preview, content_type, content_url, size_bytes, checksum,
 * created_at}`) and the seed envelope; the library's camelCase objects are mapped here, once.
 */
import { z } from "zod";
import type { Chat } from "../domains/chats.js";
import type { Message, MessageRef, MessageVersion } from "../domains/messages.js";
import type { ObjectInfo } from "../domains/objects.js";
import type { AuditEntry, Usage } from "../ports/catalog.js";

const isoTime = z.string().describe("ISO 8601 time (UTC)");

export const contentSchema = z
  .union([
    z.string(),
    z.array(
      z.union([
        z.object({ type: z.literal("text"), text: z.string() }).strict(),
        z
          .object({ type: z.literal("image_url"), image_url: z.object({ url: z.string() }).strict() })
          .strict(),
      ]),
    ),
  ])
  .describe(
    "A string, or parts: text and image_url (http(s) image URLs up to 2 KB are not counted against the size limit).",
  );

export const messageRefSchema = z.object({
  id: z.string().describe("UUIDv7"),
  chat_id: z.string(),
  role: z.string(),
  preview: z.string().describe("First 200 characters of the text"),
  content_type: z.string(),
  content_url: z.string().describe("local://, s3://, gs:// or azure:// URL of the body"),
  size_bytes: z.number().int(),
  checksum: z.string().describe("Hex SHA-256 of the stored body"),
  version: z.number().int(),
  created_at: isoTime,
  updated_at: isoTime,
  expires_at: isoTime.nullable(),
  metadata: z.record(z.string(), z.unknown()),
});

export const messageSchema = messageRefSchema.extend({ content: contentSchema });

export function messageRefJson(m: MessageRef): z.infer<typeof messageRefSchema> {
  return {
    id: m.id,
    chat_id: m.chatId,
    role: m.role,
    preview: m.preview,
    content_type: m.contentType,
    content_url: m.contentUrl,
    size_bytes: m.sizeBytes,
    checksum: m.checksum,
    version: m.version,
    created_at: m.createdAt,
    updated_at: m.updatedAt,
    expires_at: m.expiresAt,
    metadata: m.metadata,
  };
}

export function messageJson(m: Message): z.infer<typeof messageSchema> {
  return { ...messageRefJson(m), content: m.content as z.infer<typeof contentSchema> };
}

export const messageVersionSchema = z.object({
  version: z.number().int(),
  content_url: z.string(),
  size_bytes: z.number().int(),
  checksum: z.string(),
  preview: z.string(),
  created_at: isoTime,
});

export function messageVersionJson(v: MessageVersion): z.infer<typeof messageVersionSchema> {
  return {
    version: v.version,
    content_url: v.contentUrl,
    size_bytes: v.sizeBytes,
    checksum: v.checksum,
    preview: v.preview,
    created_at: v.createdAt,
  };
}

export const objectSchema = z.object({
  key: z.string(),
  size: z.number().int(),
  sha256: z.string(),
  content_type: z.string(),
  etag: z.string(),
  content_url: z.string(),
  created_at: isoTime,
  updated_at: isoTime,
});

export function objectJson(o: ObjectInfo): z.infer<typeof objectSchema> {
  return {
    key: o.key,
    size: o.size,
    sha256: o.sha256,
    content_type: o.contentType,
    etag: o.etag,
    content_url: o.contentUrl,
    created_at: o.createdAt,
    updated_at: o.updatedAt,
  };
}

export const chatSchema = z.object({ chat_id: z.string(), created_at: isoTime, last_message_at: isoTime });

export function chatJson(c: Chat): z.infer<typeof chatSchema> {
  return { chat_id: c.chatId, created_at: c.createdAt, last_message_at: c.lastMessageAt };
}

export const auditSchema = z.object({
  actor: z.string(),
  action: z.string(),
  target: z.string(),
  at: isoTime,
  details: z.record(z.string(), z.unknown()),
});

export function auditJson(a: AuditEntry): z.infer<typeof auditSchema> {
  return {
    actor: a.actor,
    action: a.action,
    target: a.target,
    at: new Date(a.at).toISOString(),
    details: a.details,
  };
}

export const usageSchema = z.object({
  tenant_id: z.string(),
  bytes: z.number().int(),
  objects: z.number().int(),
  messages: z.number().int(),
});

export function usageJson(u: Usage): z.infer<typeof usageSchema> {
  return { tenant_id: u.tenantId, bytes: u.bytes, objects: u.objects, messages: u.messages };
}

/** A page of items with the cursor of the next page (`null` on the last page). */
export function pageSchema<T extends z.ZodType>(item: T) {
  return z.object({ items: z.array(item), next_cursor: z.string().nullable() });
}

// --- request pieces ---------------------------------------------------------------------------

export const idSchema = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, "must match ^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$");
export const limitSchema = (max: number) =>
  z.coerce.number().int().min(1).max(max).optional().describe(`Page size, 1…${max}`);
export const cursorSchema = z.string().max(2048).optional().describe("Opaque cursor from next_cursor");
