/**
 * Objects over HTTP (BLOB-1, BLOB-4, BLOB-5, API-4): streaming PUT/GET/HEAD/DELETE with Range,
 * ETag and If-None-Match, listing by prefix, and presigned URLs. Bodies are never buffered:
 * the request stream goes straight to the write protocol and the stored stream straight out.
 */
import { z } from "zod";
import { listenUrl, serverScheme } from "../../config/index.js";
import { isKuraError, KuraError } from "../../core/errors.js";
import { buildPresignedUrl } from "../../core/presign.js";
import type { ObjectInfo } from "../../domains/objects.js";
import type { TenantScope } from "../../domains/tenant.js";
import { type BodySource, filenameOf, serveBody, servedBodyHeaders, servedBodyResponses } from "../ranges.js";
import { type RouteSpec, SENT } from "../route.js";
import { cursorSchema, limitSchema, objectJson, objectSchema, pageSchema } from "../schemas.js";
import { requestBody } from "../timeouts.js";
import type { HttpDeps } from "./deps.js";
import { kuraPresignSecret } from "./presigned.js";

const TAG = "objects";
const keyParams = z.object({ key: z.string().min(1).max(4096).describe("Object key (BLOB-7 rules)") });
type KeyParams = z.infer<typeof keyParams>;

const MIME = /^[A-Za-z0-9!#$&^_.+-]{1,127}\/[A-Za-z0-9!#$&^_.+-]{1,127}(\s*;[\x20-\x7e]{0,200})?$/;

function contentTypeOf(header: string | undefined): string {
  if (header === undefined || header === "") return "application/octet-stream";
  if (!MIME.test(header)) {
    throw new KuraError("REQUEST_INVALID", "Content-Type must be a MIME type", { operation: "objects.put" });
  }
  return header;
}

const headersOf = (info: ObjectInfo) => ({
  size: info.size,
  contentType: info.contentType,
  etag: info.etag,
  lastModified: info.updatedAt,
});

/** An object as a served body: GET and HEAD answer through `serveBody`, like every body route. */
function source(tenant: TenantScope, key: string): BodySource {
  return {
    filename: filenameOf(key),
    info: async () => headersOf(await tenant.objects.head(key)),
    open: async (range) => {
      const got = await tenant.objects.get(key, range ? { range } : {});
      return { info: headersOf(got.info), body: got.body, range: got.range };
    },
  };
}

export function objectRoutes(deps: HttpDeps): RouteSpec[] {
  const put: RouteSpec<KeyParams> = {
    method: "PUT",
    path: "/v1/objects/{key...}",
    operationId: "putObject",
    summary:
      "Store an object (streamed; replaces any object under the key unless If-None-Match: *, or only one If-Match names)",
    tag: TAG,
    params: keyParams,
    rawBody: {
      contentType: "application/octet-stream",
      description: "The bytes; any Content-Type is stored as given",
    },
    headers: {
      "If-None-Match": "Only *: store only if no object has the key, else 412 (anything else is 400)",
      "If-Match":
        "An ETag (or a list of them, or *): store only while the current object has it, else 412; a put that replaces it meanwhile also fails this one with 412",
    },
    responses: {
      200: { description: "Stored", schema: objectSchema, headers: { ETag: "Quoted SHA-256 of the body" } },
      412: {
        description:
          "If-None-Match: * and an object exists, or If-Match and the object differs or is missing (PRECONDITION_FAILED)",
      },
    },
    handler: async ({ tenant, params, req, reply }) => {
      const ifNoneMatch = req.headers["if-none-match"];
      if (ifNoneMatch !== undefined && ifNoneMatch.trim() !== "*") {
        throw new KuraError("REQUEST_INVALID", "on PUT, If-None-Match may only be *", {
          operation: "objects.put",
        });
      }
      const ifMatch = req.headers["if-match"];
      if (ifMatch !== undefined && (ifMatch.trim() === "" || ifMatch.length > 1024)) {
        throw new KuraError("REQUEST_INVALID", "If-Match must be * or a list of ETags", {
          operation: "objects.put",
        });
      }
      const contentType = contentTypeOf(req.headers["content-type"]);
      let info: ObjectInfo;
      try {
        const length = Number(req.headers["content-length"] ?? Number.NaN);
        info = await tenant.objects.put(params.key, requestBody(req), {
          contentType,
          ...(Number.isSafeInteger(length) && length >= 0 ? { size: length } : {}),
          ...(ifNoneMatch !== undefined ? { ifNoneMatch: "*" as const } : {}),
          ...(ifMatch !== undefined ? { ifMatch } : {}),
        });
      } catch (e) {
        if (isKuraError(e) && e.code === "PRECONDITION_FAILED") reply.header("connection", "close");
        if (isKuraError(e) && e.code === "BLOB_ALREADY_EXISTS") {
          reply.header("connection", "close");
          throw new KuraError("PRECONDITION_FAILED", `an object already exists under ${params.key}`, {
            operation: "objects.put",
            cause: e,
          });
        }
        throw e;
      }
      reply.header("etag", info.etag);
      return { data: objectJson(info) };
    },
  };

  const head: RouteSpec<KeyParams> = {
    method: "HEAD",
    path: "/v1/objects/{key...}",
    operationId: "headObject",
    summary: "An object's headers: Content-Length, Content-Type, ETag, Last-Modified",
    tag: TAG,
    params: keyParams,
    headers: servedBodyHeaders("HEAD"),
    responses: { ...servedBodyResponses("HEAD"), 404: { description: "No such object (no body)" } },
    handler: async ({ tenant, params, req, reply }) => serveBody(req, reply, source(tenant, params.key)),
  };

  const get: RouteSpec<KeyParams> = {
    method: "GET",
    path: "/v1/objects/{key...}",
    operationId: "getObject",
    summary: "Download an object (streamed), or a byte range of it with Range: bytes=…",
    description:
      "Whole downloads are verified against the SHA-256 recorded at write time; a body that fails " +
      "the check aborts the connection instead of ending cleanly. Conditional requests follow RFC 9110 " +
      "(If-Match, If-Unmodified-Since → 412; If-None-Match, If-Modified-Since → 304; If-Range); " +
      "several ranges are answered with the whole body (200). Types a browser would run (HTML, SVG, " +
      "XML, JavaScript, …) are sent with Content-Disposition: attachment.",
    tag: TAG,
    params: keyParams,
    headers: servedBodyHeaders("GET"),
    responses: servedBodyResponses("GET"),
    handler: async ({ tenant, params, req, reply }) => serveBody(req, reply, source(tenant, params.key)),
  };

  const remove: RouteSpec<KeyParams> = {
    method: "DELETE",
    path: "/v1/objects/{key...}",
    operationId: "deleteObject",
    summary: "Delete an object (deleting a missing key succeeds)",
    tag: TAG,
    params: keyParams,
    responses: { 204: { description: "Deleted (or was not there)" } },
    handler: async ({ tenant, params, reply }) => {
      await tenant.objects.delete(params.key);
      reply.code(204).send();
      return SENT;
    },
  };

  const listQuery = z
    .object({
      prefix: z.string().max(1024).optional(),
      delimiter: z
        .string()
        .min(1)
        .max(16)
        .optional()
        .describe("Group keys by it: those with it after the prefix are listed once in common_prefixes"),
      cursor: cursorSchema,
      limit: limitSchema(1000),
    })
    .strict();
  const list: RouteSpec<unknown, z.infer<typeof listQuery>> = {
    method: "GET",
    path: "/v1/objects",
    operationId: "listObjects",
    summary: "Objects whose key starts with prefix, in key order, a page at a time",
    description:
      "With delimiter, keys that contain it after the prefix are not listed; each distinct common " +
      "prefix (the key up to and including the delimiter's first occurrence after the prefix) is, once, " +
      "in common_prefixes. A page holds at most limit entries of both kinds together.",
    tag: TAG,
    query: listQuery,
    responses: {
      200: {
        description: "A page of objects",
        schema: pageSchema(objectSchema).extend({
          common_prefixes: z.array(z.string()).describe("With delimiter: the common prefixes on this page"),
        }),
      },
    },
    handler: async ({ tenant, query }) => {
      const page = await tenant.objects.list({
        ...(query.prefix !== undefined ? { prefix: query.prefix } : {}),
        ...(query.delimiter !== undefined ? { delimiter: query.delimiter } : {}),
        ...(query.cursor !== undefined ? { cursor: query.cursor } : {}),
        ...(query.limit !== undefined ? { limit: query.limit } : {}),
      });
      return {
        data: {
          items: page.items.map(objectJson),
          common_prefixes: page.prefixes,
          next_cursor: page.nextCursor ?? null,
        },
      };
    },
  };

  const presignBody = z
    .object({
      key: z.string().min(1).max(4096),
      method: z.enum(["GET", "PUT"]).default("GET"),
      expires_in: z.number().int().min(1).max(604_800).default(3600).describe("Seconds, 1…604800"),
      content_type: z.string().max(255).optional().describe("PUT: the Content-Type the uploader must send"),
    })
    .strict();
  const presign: RouteSpec<unknown, unknown, z.infer<typeof presignBody>> = {
    method: "POST",
    path: "/v1/objects:presign",
    operationId: "presignObject",
    summary: "A URL to GET (or, on the fs backend, PUT) an object without credentials until it expires",
    description:
      "GET works on every backend that presigns. PUT is offered where Kura itself serves the URL " +
      "(fs): the upload then goes through the same write protocol as PUT /v1/objects. On other " +
      "backends a presigned PUT would bypass the catalog, so it answers 501.",
    tag: TAG,
    body: presignBody,
    bodyLimit: 16 * 1024,
    responses: {
      200: {
        description: "The URL",
        schema: z.object({
          url: z.string(),
          method: z.enum(["GET", "PUT"]),
          expires_at: z.string(),
          headers: z.record(z.string(), z.string()),
        }),
      },
      404: { description: "No object under the key (OBJECT_NOT_FOUND)" },
      501: { description: "PUT on a backend that serves its own presigned URLs (NOT_IMPLEMENTED)" },
    },
    handler: async ({ tenant, body }) => {
      if (body.method === "GET") {
        const r = await tenant.objects.presign(body.key, { expiresIn: body.expires_in });
        return {
          data: { url: r.url, method: r.method, expires_at: r.expiresAt.toISOString(), headers: r.headers },
        };
      }
      const secret = await kuraPresignSecret(deps);
      if (!secret) {
        throw new KuraError(
          "NOT_IMPLEMENTED",
          "presigned PUT is only offered where Kura serves the URL (fs backend)",
          {
            operation: "objects.presign",
          },
        );
      }
      // Checks the key the same way a PUT would (KEY_INVALID → 400) without touching anything.
      await tenant.objects.head(body.key).catch((e: unknown) => {
        if (!(isKuraError(e) && e.code === "OBJECT_NOT_FOUND")) throw e;
      });
      const expires = Math.floor(deps.clock() / 1000) + body.expires_in;
      if (body.content_type !== undefined) contentTypeOf(body.content_type);
      // The base the fs store signs its own URLs with: its public_url, else this server's URL.
      const configured = deps.config.storage.options.public_url;
      const base =
        typeof configured === "string"
          ? configured
          : (deps.kura.serverUrl ??
            listenUrl(deps.config.server.host, deps.config.server.port, serverScheme(deps.config.server)));
      const url = buildPresignedUrl(base, secret, {
        method: "PUT",
        key: `${tenant.id}/objects/${body.key}`,
        expires,
        ...(body.content_type !== undefined ? { contentType: body.content_type } : {}),
      });
      return {
        data: {
          url,
          method: "PUT",
          expires_at: new Date(expires * 1000).toISOString(),
          headers: body.content_type !== undefined ? { "content-type": body.content_type } : {},
        },
      };
    },
  };

  return [head, get, put, remove, list, presign] as RouteSpec[];
}
