/**
 * Tenant self-service: usage (TEN-4), the audit log (SEC-3) and the change feed (CONS-2) —
 * the outbox read from a cursor, filtered to the calling tenant.
 */
import { z } from "zod";
import { decodeCursor, encodeCursor } from "../../core/cursor.js";
import { KuraError } from "../../core/errors.js";
import type { RouteSpec } from "../route.js";
import { auditJson, auditSchema, cursorSchema, limitSchema, usageJson, usageSchema } from "../schemas.js";

const TAG = "tenant";

const changeSchema = z.object({
  seq: z
    .number()
    .int()
    .describe(
      "Position in the calling tenant's feed: 1, 2, 3, … in commit order, counting its own events only",
    ),
  type: z.string().describe("message.appended, message.edited, message.deleted, object.put, …"),
  entity_id: z.string(),
  payload: z.record(z.string(), z.unknown()),
  created_at: z.string(),
});

/**
 * An event's payload or an audit entry's details as the wire names them: the catalog stores, and
 * the library hands out, Kura's own keys in camelCase (`chatId`, `version`, `size`; no caller data
 * goes into either), sent here in snake_case (`chat_id`).
 */
export function wireKeys(fields: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(fields).map(([k, v]) => [k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`), v]),
  );
}

/** The change feed's cursor: the last position read in the tenant's own feed. */
function encodeFeedCursor(position: number): string {
  return encodeCursor({ k: "f2", p: position });
}

function decodeFeedCursor(token: string): number {
  const c = decodeCursor(token, { k: "f2" });
  if (c === undefined || typeof c.p !== "number" || !Number.isSafeInteger(c.p) || c.p < 0)
    throw new KuraError(
      "CURSOR_INVALID",
      "the cursor was not produced by this change feed (cursors of earlier releases: read again from the start)",
      { operation: "changes.read" },
    );
  return c.p;
}

export function tenantRoutes(): RouteSpec[] {
  const usage: RouteSpec = {
    method: "GET",
    path: "/v1/usage",
    operationId: "usage",
    summary: "Bytes, objects and messages stored by the calling tenant",
    tag: TAG,
    responses: { 200: { description: "Usage", schema: usageSchema } },
    handler: async ({ tenant }) => ({ data: usageJson(await tenant.usage()) }),
  };

  const auditQuery = z
    .object({
      since: z
        .union([
          z
            .string()
            .regex(/^\d{1,15}$/)
            .transform(Number),
          z.iso.datetime({ offset: true }).transform((s) => Date.parse(s)),
        ])
        .optional()
        .describe("ISO time or epoch ms"),
      limit: limitSchema(1000),
    })
    .strict();
  const audit: RouteSpec<unknown, z.infer<typeof auditQuery>> = {
    method: "GET",
    path: "/v1/audit",
    operationId: "auditLog",
    summary: "The calling tenant's audit log (every mutation: who, what, when)",
    tag: TAG,
    query: auditQuery,
    responses: { 200: { description: "Entries", schema: z.object({ items: z.array(auditSchema) }) } },
    handler: async ({ tenant, query }) => {
      const entries = await tenant.audit({
        limit: query.limit ?? 100,
        ...(query.since !== undefined ? { since: query.since } : {}),
      });
      return { data: { items: entries.map((e) => auditJson({ ...e, details: wireKeys(e.details) })) } };
    },
  };

  const changesQuery = z.object({ since: cursorSchema, limit: limitSchema(1000) }).strict();
  const changes: RouteSpec<unknown, z.infer<typeof changesQuery>> = {
    method: "GET",
    path: "/v1/changes",
    operationId: "changes",
    summary: "The change feed: the calling tenant's events in commit order after a cursor",
    description:
      "Pass next_cursor back as since. A page may hold fewer items than limit (even none) while " +
      "more events follow; keep reading until a page returns the cursor you sent. Without since, " +
      "the feed starts at its oldest retained event: events are kept for outbox.retention_hours " +
      "once every projector has them, and a since older than that answers 410 " +
      "CHANGES_CURSOR_EXPIRED (read the current state again, then follow the feed without since).",
    tag: TAG,
    query: changesQuery,
    responses: {
      200: {
        description: "Events",
        schema: z.object({ items: z.array(changeSchema), next_cursor: z.string().nullable() }),
      },
      410: {
        description:
          "CHANGES_CURSOR_EXPIRED: events after since were pruned from the feed (outbox.retention_hours)",
      },
    },
    handler: async ({ tenant, query }) => {
      const after = query.since !== undefined ? decodeFeedCursor(query.since) : undefined;
      const records = await tenant.changes({
        limit: query.limit ?? 100,
        ...(after === undefined ? {} : { after }),
      });
      const items = records.map((r) => ({
        seq: r.seq,
        type: r.type,
        entity_id: r.entityId,
        payload: wireKeys(r.payload),
        created_at: new Date(r.createdAt).toISOString(),
      }));
      // An empty first page resumes where the retained feed starts, not before pruned events.
      const last = records.at(-1)?.seq ?? after ?? (await tenant.changesHorizon());
      return { data: { items, next_cursor: encodeFeedCursor(last) } };
    },
  };

  return [usage, audit, changes] as RouteSpec[];
}
