/**
 * The admin API over the tenant registry (TEN-2, TEN-3, TEN-5): `/v1/admin/tenants`. Only the
 * admin identity (`kura token --admin`: `role: "admin"`, no tenant) may call these routes; a
 * tenant's token or key gets 403 ADMIN_REQUIRED, an anonymous call 401.
 */
import { z } from "zod";
import { TIER_LIMIT_NAMES } from "../../config/schema.js";
import { decodeCursor, encodeCursor } from "../../core/cursor.js";
import { KuraError } from "../../core/errors.js";
import { type ApiKeyInfo, KEY_SCOPES, type TenantInfo, type TenantUpdate } from "../../domains/tenants.js";
import type { Principal } from "../auth.js";
import { type RouteSpec, SENT } from "../route.js";
import { cursorSchema, idSchema, limitSchema } from "../schemas.js";
import type { HttpDeps } from "./deps.js";

const TAG = "admin";
const isoTime = z.string().describe("ISO 8601 time (UTC)");

const limitsSchema = z
  .object(
    Object.fromEntries(TIER_LIMIT_NAMES.map((n) => [n, z.number().int().min(1).optional()])) as Record<
      (typeof TIER_LIMIT_NAMES)[number],
      z.ZodOptional<z.ZodNumber>
    >,
  )
  .strict()
  .describe(
    "max_storage_bytes and max_objects (507 QUOTA_EXCEEDED), max_message_bytes and max_object_bytes " +
      "(413 PAYLOAD_TOO_LARGE), max_requests_per_second (429 RATE_LIMITED); a limit left out is none",
  );

const jwtSchema = z
  .object({
    issuer: z.string().min(1).max(1024).describe("The iss claim of the tenant's own tokens"),
    jwks_url: z
      .string()
      .regex(/^https?:\/\/\S+$/i, "must be an http(s) URL")
      .max(2048),
    audience: z.string().min(1).max(1024).nullable().optional(),
  })
  .strict()
  .describe("The tenant's own identity provider (seed 003: each tenant its own user pool)");

const domainsSchema = z.array(z.string().min(1).max(253)).max(100).describe("Host names of the tenant");
const nameSchema = z.string().max(200).nullable();

const progressSchema = z
  .object({
    phase: z
      .enum(["search", "collections", "kv", "catalog", "blob", "finishing"])
      .describe("The plane the job is clearing, in this order"),
    search: z.number().int().describe("Search entries and message embeddings removed (by message)"),
    vectors: z.number().int().describe("Vector collections dropped and memory embeddings removed"),
    kv: z.number().int().describe("KV keys deleted (sessions, state, namespaces, memories)"),
    catalog: z.number().int().describe("Catalog rows deleted"),
    blob: z.number().int().describe("Bodies deleted from the blob stores"),
    requested_at: isoTime,
  })
  .describe("What the deletion job has removed so far (status deleting only)");

const tenantSchema = z.object({
  tenant_id: z.string(),
  name: z.string().nullable(),
  status: z
    .enum(["active", "suspended", "deleting"])
    .describe("deleting: a job is removing the tenant's data; every call for it answers 403 TENANT_DELETING"),
  tier: z.string(),
  limits: limitsSchema.describe("The tenant's own overrides of its tier's limits"),
  effective_limits: limitsSchema.describe("The limits in force: the tier's, then the overrides"),
  domains: z.array(z.string()),
  jwt: z.object({ issuer: z.string(), jwks_url: z.string(), audience: z.string().nullable() }).nullable(),
  created_at: isoTime,
  updated_at: isoTime,
  progress: progressSchema.optional(),
});

export function tenantJson(t: TenantInfo): z.infer<typeof tenantSchema> {
  return {
    tenant_id: t.tenantId,
    name: t.name,
    status: t.status,
    tier: t.tier,
    limits: t.limits,
    effective_limits: t.effectiveLimits,
    domains: t.domains,
    jwt: t.jwt === null ? null : { issuer: t.jwt.issuer, jwks_url: t.jwt.jwksUrl, audience: t.jwt.audience },
    created_at: new Date(t.createdAt).toISOString(),
    updated_at: new Date(t.updatedAt).toISOString(),
    ...(t.deletion
      ? {
          progress: {
            phase: t.deletion.phase,
            search: t.deletion.search,
            vectors: t.deletion.vectors,
            kv: t.deletion.kv,
            catalog: t.deletion.catalog,
            blob: t.deletion.blob,
            requested_at: new Date(t.deletion.requestedAt).toISOString(),
          },
        }
      : {}),
  };
}

const jwtOf = (jwt: z.infer<typeof jwtSchema> | null) =>
  jwt === null ? null : { issuer: jwt.issuer, jwksUrl: jwt.jwks_url, audience: jwt.audience ?? null };

/** The audit actor of an admin call: `admin:<sub>`, or `admin`. */
export function adminActor(principal: Principal): string {
  const sub = principal.subject;
  return typeof sub === "string" && /^[\x21-\x7e]{1,180}$/.test(sub) ? `admin:${sub}` : "admin";
}

const NOT_FOUND = { description: "No such tenant is registered (TENANT_NOT_FOUND)" };

export function adminRoutes(_deps: HttpDeps): RouteSpec[] {
  const { kura } = _deps;
  const idParams = z.object({ id: idSchema });
  type IdParams = z.infer<typeof idParams>;

  const createBody = z
    .object({
      tenant_id: idSchema,
      name: nameSchema.optional(),
      domains: domainsSchema.optional(),
      tier: z.string().min(1).max(64).optional().describe("A configured tier (tiers.{name}); default free"),
      limits: limitsSchema.optional(),
      jwt: jwtSchema.nullable().optional(),
    })
    .strict();
  const create: RouteSpec<unknown, unknown, z.infer<typeof createBody>> = {
    method: "POST",
    path: "/v1/admin/tenants",
    operationId: "createTenant",
    summary: "Register a tenant",
    tag: TAG,
    auth: "admin",
    body: createBody,
    responses: {
      201: { description: "Registered", schema: tenantSchema },
      409: {
        description:
          "The tenant is registered (TENANT_EXISTS) or a domain is another's (TENANT_DOMAIN_TAKEN)",
      },
    },
    handler: async ({ body, principal }) => {
      const info = await kura.tenants.create(
        {
          tenantId: body.tenant_id,
          ...(body.name !== undefined ? { name: body.name } : {}),
          ...(body.domains !== undefined ? { domains: body.domains } : {}),
          ...(body.tier !== undefined ? { tier: body.tier } : {}),
          ...(body.limits !== undefined ? { limits: body.limits } : {}),
          ...(body.jwt !== undefined ? { jwt: jwtOf(body.jwt) } : {}),
        },
        { actor: adminActor(principal) },
      );
      return { status: 201, data: tenantJson(info) };
    },
  };

  const listQuery = z.object({ limit: limitSchema(1000), cursor: cursorSchema }).strict();
  const list: RouteSpec<unknown, z.infer<typeof listQuery>> = {
    method: "GET",
    path: "/v1/admin/tenants",
    operationId: "listTenants",
    summary: "Registered tenants, in id order",
    tag: TAG,
    auth: "admin",
    query: listQuery,
    responses: {
      200: {
        description: "A page of tenants",
        schema: z.object({ items: z.array(tenantSchema), next_cursor: z.string().nullable() }),
      },
    },
    handler: async ({ query }) => {
      let after: string | undefined;
      if (query.cursor !== undefined) {
        const c = decodeCursor(query.cursor, { k: "tenants" });
        if (c === undefined || typeof c.a !== "string")
          throw new KuraError("CURSOR_INVALID", "the cursor was not produced by this listing", {
            operation: "http.listTenants",
          });
        after = c.a;
      }
      const page = await kura.tenants.list({
        limit: query.limit ?? 100,
        ...(after === undefined ? {} : { after }),
      });
      const last = page.items.at(-1)?.tenantId;
      return {
        data: {
          items: page.items.map(tenantJson),
          next_cursor: page.more && last !== undefined ? encodeCursor({ k: "tenants", a: last }) : null,
        },
      };
    },
  };

  const get: RouteSpec<IdParams> = {
    method: "GET",
    path: "/v1/admin/tenants/{id}",
    operationId: "getTenant",
    summary: "A registered tenant, with the limits in force",
    tag: TAG,
    auth: "admin",
    params: idParams,
    responses: { 200: { description: "The tenant", schema: tenantSchema }, 404: NOT_FOUND },
    handler: async ({ params }) => ({ data: tenantJson(await kura.tenants.get(params.id)) }),
  };

  const updateBody = z
    .object({
      status: z
        .enum(["active", "suspended"])
        .optional()
        .describe("suspended: every call for the tenant answers 403"),
      name: nameSchema.optional(),
      domains: domainsSchema.optional().describe("Replaces the list whole"),
      tier: z.string().min(1).max(64).optional(),
      limits: limitsSchema.optional().describe("Replaces the overrides whole ({}: the tier's limits)"),
      jwt: jwtSchema.nullable().optional(),
    })
    .strict();
  const update: RouteSpec<IdParams, unknown, z.infer<typeof updateBody>> = {
    method: "PATCH",
    path: "/v1/admin/tenants/{id}",
    operationId: "updateTenant",
    summary: "Suspend or reactivate a tenant, change its tier, limits, name, domains or identity provider",
    tag: TAG,
    auth: "admin",
    params: idParams,
    body: updateBody,
    responses: {
      200: { description: "The tenant as changed", schema: tenantSchema },
      404: NOT_FOUND,
      409: { description: "A domain belongs to another tenant (TENANT_DOMAIN_TAKEN)" },
    },
    handler: async ({ params, body, principal }) => {
      const change: TenantUpdate = {
        ...(body.status !== undefined ? { status: body.status } : {}),
        ...(body.name !== undefined ? { name: body.name } : {}),
        ...(body.domains !== undefined ? { domains: body.domains } : {}),
        ...(body.tier !== undefined ? { tier: body.tier } : {}),
        ...(body.limits !== undefined ? { limits: body.limits } : {}),
        ...(body.jwt !== undefined ? { jwt: jwtOf(body.jwt) } : {}),
      };
      const info = await kura.tenants.update(params.id, change, { actor: adminActor(principal) });
      return { data: tenantJson(info) };
    },
  };

  const remove: RouteSpec<IdParams> = {
    method: "DELETE",
    path: "/v1/admin/tenants/{id}",
    operationId: "deleteTenant",
    summary: "Delete a tenant and all its data (in the background)",
    description:
      "Answers at once with status deleting; from then on every call for the tenant answers 403 " +
      "TENANT_DELETING and registering the id answers 409 TENANT_EXISTS. A job (which resumes after " +
      "a restart) removes the tenant from every plane: messages and all their versions' bodies, " +
      "objects, KV, sessions and their files, search entries, vector collections and memories, " +
      "usage, its audit log, API keys and domains. GET shows its progress until it is done, then " +
      "answers 404 and the id may be registered again, empty. The request and the completion are " +
      "audited in the admin stream (tenant ~admin, target the tenant's id). Deleting a tenant " +
      "already being deleted answers 202 again and changes nothing.",
    tag: TAG,
    auth: "admin",
    params: idParams,
    responses: {
      202: { description: "Deletion under way (or already done)", schema: tenantSchema },
      404: NOT_FOUND,
    },
    handler: async ({ params, principal }) => {
      const info = await kura.tenants.delete(params.id, { actor: adminActor(principal) });
      return { status: 202, data: tenantJson(info) };
    },
  };

  const keyFields = {
    key_id: z.string(),
    scopes: z.array(z.string()),
    created_at: isoTime,
    expires_at: isoTime.nullable(),
  };
  const keySchema = z.object({ ...keyFields, revoked_at: isoTime.nullable() });
  const keyJson = (k: ApiKeyInfo) => ({
    key_id: k.keyId,
    scopes: k.scopes,
    created_at: new Date(k.createdAt).toISOString(),
    expires_at: k.expiresAt === null ? null : new Date(k.expiresAt).toISOString(),
  });

  const keyBody = z
    .object({
      scopes: z
        .array(z.enum(KEY_SCOPES))
        .min(1)
        .describe("read: GET, HEAD and the POSTs that only read (search, batch get, …); write: everything"),
      expires_at: z.iso
        .datetime({ offset: true })
        .nullable()
        .optional()
        .describe("When the key stops working"),
    })
    .strict();
  const createKey: RouteSpec<IdParams, unknown, z.infer<typeof keyBody>> = {
    method: "POST",
    path: "/v1/admin/tenants/{id}/keys",
    operationId: "createApiKey",
    summary: "Issue an API key for a tenant (its secret is shown only in this answer)",
    description:
      "Use the secret as Authorization: Bearer <secret> or X-API-Key: <secret>. Only its SHA-256 is stored.",
    tag: TAG,
    auth: "admin",
    params: idParams,
    body: keyBody,
    responses: {
      201: {
        description: "Issued",
        schema: z.object({ ...keyFields, secret: z.string().describe("kura_<key_id>_…: shown once") }),
      },
      404: NOT_FOUND,
    },
    handler: async ({ params, body, principal }) => {
      const key = await kura.tenants.createKey(
        params.id,
        {
          scopes: body.scopes,
          expiresAt:
            body.expires_at === undefined || body.expires_at === null ? null : Date.parse(body.expires_at),
        },
        { actor: adminActor(principal) },
      );
      return { status: 201, data: { ...keyJson(key), secret: key.secret } };
    },
  };

  const listKeys: RouteSpec<IdParams> = {
    method: "GET",
    path: "/v1/admin/tenants/{id}/keys",
    operationId: "listApiKeys",
    summary: "A tenant's API keys (ids and scopes, never secrets), revoked ones included",
    tag: TAG,
    auth: "admin",
    params: idParams,
    responses: {
      200: { description: "The keys", schema: z.object({ items: z.array(keySchema) }) },
      404: NOT_FOUND,
    },
    handler: async ({ params }) => {
      const keys = await kura.tenants.listKeys(params.id);
      return {
        data: {
          items: keys.map((k) => ({
            ...keyJson(k),
            revoked_at: k.revokedAt === null ? null : new Date(k.revokedAt).toISOString(),
          })),
        },
      };
    },
  };

  const keyParams = z.object({ id: idSchema, key_id: idSchema });
  const revokeKey: RouteSpec<z.infer<typeof keyParams>> = {
    method: "DELETE",
    path: "/v1/admin/tenants/{id}/keys/{key_id}",
    operationId: "revokeApiKey",
    summary: "Revoke an API key: its next request fails, on every node",
    tag: TAG,
    auth: "admin",
    params: keyParams,
    responses: {
      204: { description: "Revoked (or was already)" },
      404: { description: "The tenant has no such key (API_KEY_NOT_FOUND)" },
    },
    handler: async ({ params, principal, reply }) => {
      await kura.tenants.revokeKey(params.id, params.key_id, { actor: adminActor(principal) });
      reply.code(204).send();
      return SENT;
    },
  };

  return [list, create, get, update, remove, createKey, listKeys, revokeKey] as RouteSpec[];
}
