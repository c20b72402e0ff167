/**
 * The general-purpose KV API (KV-1) over HTTP: `PUT|GET|DELETE /v1/kv/{namespace}/{key}` with
 * `?ttl=` seconds and versions as ETags (`If-Match` = compare-and-set, `If-None-Match: *` =
 * create only), and `GET /v1/kv/{namespace}?prefix` to list. Values are any JSON.
 */
import type { FastifyRequest } from "fastify";
import { z } from "zod";
import { KuraError } from "../../core/errors.js";
import type { KvEntry } from "../../ports/kv-store.js";
import { type RouteSpec, SENT } from "../route.js";
import { cursorSchema, idSchema, limitSchema } from "../schemas.js";

const TAG = "kv";

export const kvEntrySchema = z.object({
  key: z.string(),
  value: z.unknown(),
  version: z.number().int().describe("Also sent as the ETag"),
  expires_at: z.string().nullable(),
});

export function kvEntryJson(e: KvEntry): z.infer<typeof kvEntrySchema> {
  return {
    key: e.key,
    value: e.value,
    version: e.version,
    expires_at: e.expiresAt === undefined ? null : new Date(e.expiresAt).toISOString(),
  };
}

export const versionEtag = (version: number) => `"${version}"`;

/** The ETag of a versioned entry, as the document describes it. */
export const VERSION_ETAG = 'The version, quoted ("7")';

/** The conditions `expectedVersion` reads, as the document describes them. */
export const VERSION_CONDITIONS = {
  "If-Match": 'A version ETag ("7"): write only that version, else 412',
  "If-None-Match": "Only *: write only if there is no value, else 412",
};

/**
 * The version a write must find: `If-Match: "7"` → 7, `If-None-Match: *` → 0 (absent),
 * neither → undefined (unconditional).
 */
export function expectedVersion(req: FastifyRequest): number | undefined {
  const ifMatch = req.headers["if-match"];
  const ifNoneMatch = req.headers["if-none-match"];
  if (ifMatch !== undefined) {
    const m = /^\s*(?:W\/)?"?(\d{1,15})"?\s*$/.exec(ifMatch);
    if (!m) {
      throw new KuraError("REQUEST_INVALID", 'If-Match must be a version ETag such as "7"', {
        operation: "http.kv",
      });
    }
    return Number(m[1]);
  }
  if (ifNoneMatch !== undefined) {
    if (ifNoneMatch.trim() !== "*") {
      throw new KuraError("REQUEST_INVALID", "If-None-Match may only be * on writes", {
        operation: "http.kv",
      });
    }
    return 0;
  }
  return undefined;
}

/** A JSON value was sent (Fastify leaves the body undefined when there is none). */
export const jsonValue = z.unknown().refine((v) => v !== undefined, { message: "a JSON value is required" });

export const ttlQuery = z
  .object({
    ttl: z.coerce
      .number()
      .int()
      .min(1)
      .max(315_360_000)
      .optional()
      .describe("Seconds until the value expires"),
  })
  .strict();

export function kvRoutes(): RouteSpec[] {
  const keyParams = z.object({ namespace: idSchema, key: z.string().min(1).max(1024) });
  type KeyParams = z.infer<typeof keyParams>;

  const put: RouteSpec<KeyParams, z.infer<typeof ttlQuery>, unknown> = {
    method: "PUT",
    path: "/v1/kv/{namespace}/{key...}",
    operationId: "kvPut",
    summary: "Store a JSON value (If-Match: version for compare-and-set, If-None-Match: * to create only)",
    tag: TAG,
    params: keyParams,
    query: ttlQuery,
    body: jsonValue,
    headers: VERSION_CONDITIONS,
    responses: {
      200: {
        description: "Stored; the new version is also the ETag",
        schema: z.object({ key: z.string(), version: z.number().int() }),
        headers: { ETag: VERSION_ETAG },
      },
      412: { description: "The version did not match (KV_VERSION_CONFLICT)" },
    },
    handler: async ({ tenant, params, query, body, req, reply }) => {
      const ifVersion = expectedVersion(req);
      const { version } = await tenant.kv(params.namespace).set(params.key, body, {
        ...(query.ttl !== undefined ? { ttlMs: query.ttl * 1000 } : {}),
        ...(ifVersion !== undefined ? { ifVersion } : {}),
      });
      reply.header("etag", versionEtag(version));
      return { data: { key: params.key, version } };
    },
  };

  const get: RouteSpec<KeyParams> = {
    method: "GET",
    path: "/v1/kv/{namespace}/{key...}",
    operationId: "kvGet",
    summary: "Read a value with its version (ETag) and expiry",
    tag: TAG,
    params: keyParams,
    responses: {
      200: { description: "The entry", schema: kvEntrySchema, headers: { ETag: VERSION_ETAG } },
      404: { description: "KV_KEY_NOT_FOUND" },
    },
    handler: async ({ tenant, params, reply }) => {
      const entry = await tenant.kv(params.namespace).getEntry(params.key);
      if (!entry) {
        throw new KuraError("KV_KEY_NOT_FOUND", `no value under ${params.key.slice(0, 200)}`, {
          operation: "kv.get",
        });
      }
      reply.header("etag", versionEtag(entry.version));
      return { data: kvEntryJson(entry) };
    },
  };

  const remove: RouteSpec<KeyParams> = {
    method: "DELETE",
    path: "/v1/kv/{namespace}/{key...}",
    operationId: "kvDelete",
    summary:
      "Delete a value (If-Match: version to delete only that version); deleting a missing key succeeds",
    tag: TAG,
    params: keyParams,
    headers: VERSION_CONDITIONS,
    responses: {
      204: { description: "Deleted (or was not there)" },
      412: { description: "The version did not match (KV_VERSION_CONFLICT)" },
    },
    handler: async ({ tenant, params, req, reply }) => {
      const ifVersion = expectedVersion(req);
      await tenant.kv(params.namespace).delete(params.key, ifVersion !== undefined ? { ifVersion } : {});
      reply.code(204).send();
      return SENT;
    },
  };

  const listQuery = z
    .object({ prefix: z.string().max(1024).optional(), cursor: cursorSchema, limit: limitSchema(1000) })
    .strict();
  const list: RouteSpec<{ namespace: string }, z.infer<typeof listQuery>> = {
    method: "GET",
    path: "/v1/kv/{namespace}",
    operationId: "kvList",
    summary: "Entries whose key starts with prefix, a page at a time",
    tag: TAG,
    params: z.object({ namespace: idSchema }),
    query: listQuery,
    responses: {
      200: {
        description: "A page",
        schema: z.object({ items: z.array(kvEntrySchema), next_cursor: z.string().nullable() }),
      },
    },
    handler: async ({ tenant, params, query }) => {
      const page = await tenant.kv(params.namespace).scan(query.prefix ?? "", {
        ...(query.cursor !== undefined ? { cursor: query.cursor } : {}),
        ...(query.limit !== undefined ? { limit: query.limit } : {}),
      });
      return { data: { items: page.items.map(kvEntryJson), next_cursor: page.cursor ?? null } };
    },
  };

  return [put, get, remove, list] as RouteSpec[];
}
