/**
 * `GET /v1/admin/audit` (SEC-3): the audit log across tenants, for the admin identity only
 * (`kura token --admin`; a tenant's token or key gets 403 ADMIN_REQUIRED, an anonymous call
 * 401). Entries come in the order they were recorded, filtered by tenant, action and time, a
 * page at a time (`cursor` / `next_cursor`, as `GET /v1/admin/tenants` pages).
 */
import { z } from "zod";
import { decodeCursor, encodeCursor } from "../../core/cursor.js";
import { KuraError } from "../../core/errors.js";
import { ADMIN_AUDIT_STREAM, MAX_AUDIT_PAGE } from "../../domains/admin-audit.js";
import type { RouteSpec } from "../route.js";
import { auditJson, auditSchema, cursorSchema, idSchema, limitSchema } from "../schemas.js";
import type { HttpDeps } from "./deps.js";
import { wireKeys } from "./tenant.js";

const timeSchema = z
  .union([
    z
      .string()
      .regex(/^\d{1,15}$/)
      .transform(Number),
    z.iso.datetime({ offset: true }).transform((s) => Date.parse(s)),
  ])
  .optional();

const CURSOR_TAG = { k: "audit" } as const;

function decodeAuditCursor(cursor: string): number {
  const c = decodeCursor(cursor, CURSOR_TAG);
  if (c === undefined || typeof c.s !== "number" || !Number.isSafeInteger(c.s) || c.s < 0)
    throw new KuraError("CURSOR_INVALID", "the cursor was not produced by this listing", {
      operation: "http.adminAudit",
    });
  return c.s;
}

export function adminAuditRoutes({ kura }: HttpDeps): RouteSpec[] {
  const query = z
    .object({
      tenant_id: z
        .union([idSchema, z.literal(ADMIN_AUDIT_STREAM)])
        .optional()
        .describe(
          `Only this tenant's entries; ${ADMIN_AUDIT_STREAM}: tenant deletions, which outlive the tenant`,
        ),
      action: z
        .string()
        .regex(/^[\x21-\x7e]{1,128}$/, "must be 1–128 printable ASCII characters")
        .optional()
        .describe("Only this action (tenant.create, message.append, …), compared exactly"),
      since: timeSchema.describe("Entries at or after this time: ISO 8601 or epoch ms"),
      until: timeSchema.describe("Entries before this time: ISO 8601 or epoch ms"),
      limit: limitSchema(MAX_AUDIT_PAGE),
      cursor: cursorSchema,
    })
    .strict()
    .refine((q) => q.since === undefined || q.until === undefined || q.since <= q.until, {
      message: "since must not be after until",
      path: ["since"],
    });

  const list: RouteSpec<unknown, z.infer<typeof query>> = {
    method: "GET",
    path: "/v1/admin/audit",
    operationId: "adminAuditLog",
    summary: "The audit log across tenants, in the order recorded",
    description:
      "Every tenant's audit entries (each mutation and admin action: who, what, when), oldest " +
      "recorded first. Pass next_cursor back as cursor with the same filters for the next page; " +
      "next_cursor is null on the last page.",
    tag: "admin",
    auth: "admin",
    query,
    responses: {
      200: {
        description: "A page of entries",
        schema: z.object({
          items: z.array(auditSchema.extend({ tenant_id: z.string() })),
          next_cursor: z.string().nullable(),
        }),
      },
    },
    handler: async ({ query: q }) => {
      const page = await kura.tenants.auditLog({
        limit: q.limit ?? 100,
        ...(q.tenant_id !== undefined ? { tenantId: q.tenant_id } : {}),
        ...(q.action !== undefined ? { action: q.action } : {}),
        ...(q.since !== undefined ? { since: q.since } : {}),
        ...(q.until !== undefined ? { until: q.until } : {}),
        ...(q.cursor !== undefined ? { afterSeq: decodeAuditCursor(q.cursor) } : {}),
      });
      const last = page.items.at(-1)?.seq;
      return {
        data: {
          items: page.items.map((e) => ({
            tenant_id: e.tenantId,
            ...auditJson({ ...e, details: wireKeys(e.details) }),
          })),
          next_cursor: page.more && last !== undefined ? encodeCursor({ ...CURSOR_TAG, s: last }) : null,
        },
      };
    },
  };
  return [list] as RouteSpec[];
}
