/**
 * Encryption at rest (SEC-2), for the admin identity only: `POST /v1/admin/tenants/{id}/keys:rotate`
 * (a new data key version: new writes use it, old data stays readable and the `reencrypt-keys`
 * job moves it) and `POST /v1/admin/tenants/{id}:shred` (crypto-shredding: the tenant's data
 * keys destroyed on every node, after which every read of its data answers 410
 * TENANT_KEYS_DESTROYED and search finds nothing). 501 ENCRYPTION_DISABLED without `encryption`.
 */
import { z } from "zod";
import { actionSuffix, type RouteSpec } from "../route.js";
import { adminActor } from "./admin.js";
import type { HttpDeps } from "./deps.js";

const params = z.object({
  id: z
    .string()
    .min(1)
    .max(64)
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/),
});

export function adminKeyRoutes({ kura }: HttpDeps): RouteSpec[] {
  const rotate: RouteSpec<z.infer<typeof params>> = {
    method: "POST",
    path: "/v1/admin/tenants/{id}/keys:rotate",
    operationId: "rotateTenantKeys",
    summary: "Rotate a tenant's data key",
    description:
      "Creates the tenant's next data key version: new writes are encrypted with it (on other " +
      "nodes within encryption.refresh_ms), data sealed under earlier versions stays readable, and " +
      "the reencrypt-keys maintenance job seals it again under the new version.",
    tag: "admin",
    auth: "admin",
    params,
    responses: {
      200: {
        description: "The new version",
        schema: z.object({ tenant_id: z.string(), version: z.number().int() }),
      },
      410: { description: "The tenant's keys were destroyed (TENANT_KEYS_DESTROYED)" },
      501: { description: "Encryption at rest is off (ENCRYPTION_DISABLED)" },
    },
    handler: async ({ params: p, principal }) => {
      const r = await kura.encryption.rotate(p.id, { actor: adminActor(principal) });
      return { data: { tenant_id: r.tenantId, version: r.version } };
    },
  };
  const shred: RouteSpec<z.infer<typeof params>> = {
    method: "POST",
    path: "/v1/admin/tenants/{id}:shred",
    url: "/v1/admin/tenants/:idAction",
    mapParams: actionSuffix("idAction", "shred", "id"),
    operationId: "shredTenant",
    summary: "Destroy a tenant's data keys (crypto-shredding)",
    description:
      "Destroys every data key of the tenant: what it stored — bodies, KV values, previews, search " +
      "entries — stays on disk as ciphertext no key opens. Every read then answers 410 " +
      "TENANT_KEYS_DESTROYED (on other nodes within encryption.refresh_ms), search finds nothing, and " +
      "no new data is accepted for the tenant. Cannot be undone.",
    tag: "admin",
    auth: "admin",
    params,
    responses: {
      200: {
        description: "How many key versions were destroyed",
        schema: z.object({ tenant_id: z.string(), destroyed_keys: z.number().int() }),
      },
      501: { description: "Encryption at rest is off (ENCRYPTION_DISABLED)" },
    },
    handler: async ({ params: p, principal }) => {
      const r = await kura.encryption.shred(p.id, { actor: adminActor(principal) });
      return { data: { tenant_id: r.tenantId, destroyed_keys: r.destroyedKeys } };
    },
  };
  return [rotate, shred] as RouteSpec[];
}
