/**
 * Sessions (SESS-1) over HTTP: metadata entries in the KV store with the session TTL
 * (`PUT|GET|DELETE /v1/sessions/{sid}/meta/{key}`), files in the blob store streamed up and
 * down with Range (`PUT|GET|DELETE /v1/sessions/{sid}/files/{path}`), presigned file URLs, and
 * `DELETE /v1/sessions/{sid}` for both at once.
 */
import { z } from "zod";
import { KuraError } from "../../core/errors.js";
import type { SessionFile } from "../../domains/sessions.js";
import type { BlobInfo } from "../../ports/blob-store.js";
import { type BodyInfo, filenameOf, serveBody, servedBodyHeaders, servedBodyResponses } from "../ranges.js";
import { type RouteSpec, SENT } from "../route.js";
import { cursorSchema, idSchema, limitSchema } from "../schemas.js";
import { requestBody } from "../timeouts.js";
import {
  expectedVersion,
  jsonValue,
  kvEntryJson,
  kvEntrySchema,
  ttlQuery,
  VERSION_CONDITIONS,
  VERSION_ETAG,
  versionEtag,
} from "./kv.js";

const TAG = "sessions";

const fileSchema = z.object({
  path: z.string(),
  size: z.number().int(),
  content_type: z.string(),
  sha256: z.string().nullable(),
  last_modified: z.string(),
  expires_at: z.string().describe("When the lifecycle job removes it (retention.session_files_days)"),
});

function fileJson(f: SessionFile): z.infer<typeof fileSchema> {
  return {
    path: f.path,
    size: f.size,
    content_type: f.contentType,
    sha256: f.sha256 ?? null,
    last_modified: f.lastModified.toISOString(),
    expires_at: f.expiresAt.toISOString(),
  };
}

export function sessionRoutes(): RouteSpec[] {
  const sid = z.object({ session_id: idSchema });
  const metaParams = z.object({ session_id: idSchema, key: z.string().min(1).max(1024) });
  const fileParams = z.object({ session_id: idSchema, path: z.string().min(1).max(4096) });
  type MetaParams = z.infer<typeof metaParams>;
  type FileParams = z.infer<typeof fileParams>;

  const putMeta: RouteSpec<MetaParams, z.infer<typeof ttlQuery>, unknown> = {
    method: "PUT",
    path: "/v1/sessions/{session_id}/meta/{key...}",
    operationId: "sessionPutMeta",
    summary: "Store a metadata entry with the session TTL (?ttl= seconds overrides; If-Match for CAS)",
    tag: TAG,
    params: metaParams,
    query: ttlQuery,
    body: jsonValue,
    headers: VERSION_CONDITIONS,
    responses: {
      200: {
        description: "Stored",
        schema: z.object({ key: z.string(), version: z.number().int() }),
        headers: { ETag: VERSION_ETAG },
      },
      412: { description: "The version did not match (KV_VERSION_CONFLICT)" },
    },
    handler: async ({ tenant, params, query, body, req, reply }) => {
      const ifVersion = expectedVersion(req);
      const { version } = await tenant.sessions.setMeta(params.session_id, params.key, body, {
        ...(query.ttl !== undefined ? { ttlSeconds: query.ttl } : {}),
        ...(ifVersion !== undefined ? { ifVersion } : {}),
      });
      reply.header("etag", versionEtag(version));
      return { data: { key: params.key, version } };
    },
  };

  const getMeta: RouteSpec<MetaParams> = {
    method: "GET",
    path: "/v1/sessions/{session_id}/meta/{key...}",
    operationId: "sessionGetMeta",
    summary: "A metadata entry with its version and expiry",
    tag: TAG,
    params: metaParams,
    responses: { 200: { description: "The entry", schema: kvEntrySchema, headers: { ETag: VERSION_ETAG } } },
    handler: async ({ tenant, params, reply }) => {
      const entry = await tenant.sessions.getMetaEntry(params.session_id, params.key);
      if (!entry) {
        throw new KuraError(
          "KV_KEY_NOT_FOUND",
          `session ${params.session_id} has no metadata ${params.key.slice(0, 200)}`,
          {
            operation: "sessions.getMeta",
          },
        );
      }
      reply.header("etag", versionEtag(entry.version));
      return { data: kvEntryJson(entry) };
    },
  };

  const deleteMeta: RouteSpec<MetaParams> = {
    method: "DELETE",
    path: "/v1/sessions/{session_id}/meta/{key...}",
    operationId: "sessionDeleteMeta",
    summary: "Delete a metadata entry (deleting a missing one succeeds)",
    tag: TAG,
    params: metaParams,
    responses: { 204: { description: "Deleted" } },
    handler: async ({ tenant, params, reply }) => {
      await tenant.sessions.deleteMeta(params.session_id, params.key);
      reply.code(204).send();
      return SENT;
    },
  };

  const listMeta: RouteSpec<z.infer<typeof sid>> = {
    method: "GET",
    path: "/v1/sessions/{session_id}/meta",
    operationId: "sessionListMeta",
    summary: "All live metadata of a session by key",
    tag: TAG,
    params: sid,
    responses: { 200: { description: "Metadata", schema: z.record(z.string(), z.unknown()) } },
    handler: async ({ tenant, params }) => ({ data: await tenant.sessions.listMeta(params.session_id) }),
  };

  const putFile: RouteSpec<FileParams> = {
    method: "PUT",
    path: "/v1/sessions/{session_id}/files/{path...}",
    operationId: "sessionPutFile",
    summary: "Store a session file (streamed)",
    tag: TAG,
    params: fileParams,
    rawBody: { contentType: "application/octet-stream", description: "The bytes" },
    responses: {
      200: {
        description: "Stored",
        schema: z.object({ path: z.string(), size: z.number().int(), sha256: z.string() }),
        headers: { ETag: "Quoted SHA-256 of the body" },
      },
    },
    handler: async ({ tenant, params, req, reply }) => {
      const contentType = req.headers["content-type"];
      const r = await tenant.sessions.putFile(
        params.session_id,
        params.path,
        requestBody(req),
        contentType ? { contentType } : {},
      );
      reply.header("etag", `"${r.sha256}"`);
      return { data: r };
    },
  };

  const getFile: RouteSpec<FileParams> = {
    method: "GET",
    path: "/v1/sessions/{session_id}/files/{path...}",
    operationId: "sessionGetFile",
    summary: "Download a session file (streamed; Range and conditional requests as for objects)",
    tag: TAG,
    params: fileParams,
    headers: servedBodyHeaders("GET"),
    responses: servedBodyResponses("GET"),
    handler: async ({ tenant, params, req, reply }) => {
      const infoOf = (info: BlobInfo): BodyInfo => ({
        size: info.size,
        contentType: info.contentType,
        etag: info.sha256 ? `"${info.sha256}"` : info.etag,
        lastModified: info.lastModified,
      });
      return serveBody(req, reply, {
        filename: filenameOf(params.path),
        // The domain offers no stat: open the file for its info and close it unread.
        info: async () => {
          const probe = await tenant.sessions.openFile(params.session_id, params.path);
          probe.body.destroy();
          return infoOf(probe.info);
        },
        open: async (range) => {
          const got = await tenant.sessions.openFile(params.session_id, params.path, range ? { range } : {});
          return { info: infoOf(got.info), body: got.body, range: got.range };
        },
      });
    },
  };

  const deleteFile: RouteSpec<FileParams> = {
    method: "DELETE",
    path: "/v1/sessions/{session_id}/files/{path...}",
    operationId: "sessionDeleteFile",
    summary: "Delete a session file (deleting a missing one succeeds)",
    tag: TAG,
    params: fileParams,
    responses: { 204: { description: "Deleted" } },
    handler: async ({ tenant, params, reply }) => {
      await tenant.sessions.deleteFile(params.session_id, params.path);
      reply.code(204).send();
      return SENT;
    },
  };

  const listFiles: RouteSpec<z.infer<typeof sid>> = {
    method: "GET",
    path: "/v1/sessions/{session_id}/files",
    operationId: "sessionListFiles",
    summary: "Every file of the session, in path order",
    tag: TAG,
    params: sid,
    responses: { 200: { description: "Files", schema: z.object({ items: z.array(fileSchema) }) } },
    handler: async ({ tenant, params }) => ({
      data: { items: (await tenant.sessions.listFiles(params.session_id)).map(fileJson) },
    }),
  };

  const presignBody = z
    .object({
      path: z.string().min(1).max(4096),
      method: z.enum(["GET", "PUT"]).default("GET"),
      expires_in: z.number().int().min(1).max(604_800).default(900),
      content_type: z.string().max(255).optional(),
    })
    .strict();
  const presign: RouteSpec<z.infer<typeof sid>, unknown, z.infer<typeof presignBody>> = {
    method: "POST",
    path: "/v1/sessions/{session_id}/files:presign",
    operationId: "sessionPresignFile",
    summary: "A URL to upload (PUT) or download (GET) a session file without credentials",
    tag: TAG,
    params: sid,
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
    },
    handler: async ({ tenant, params, body }) => {
      const r =
        body.method === "PUT"
          ? await tenant.sessions.presignUpload(params.session_id, body.path, {
              expiresIn: body.expires_in,
              ...(body.content_type !== undefined ? { contentType: body.content_type } : {}),
            })
          : await tenant.sessions.presignDownload(params.session_id, body.path, {
              expiresIn: body.expires_in,
            });
      return {
        data: { url: r.url, method: r.method, expires_at: r.expiresAt.toISOString(), headers: r.headers },
      };
    },
  };

  const listQuery = z.object({ cursor: cursorSchema, limit: limitSchema(1000) }).strict();
  const listSessions: RouteSpec<unknown, z.infer<typeof listQuery>> = {
    method: "GET",
    path: "/v1/sessions",
    operationId: "sessionList",
    summary: "Active sessions (those with live metadata), a page of metadata keys at a time",
    description:
      "Each item: a session id, how many of its metadata keys this page read, and the latest " +
      "expiry among them (null: a key without TTL). limit counts metadata keys, not sessions; a " +
      "session whose keys straddle two pages appears on both (merge by session_id). Sessions " +
      "with files but no live metadata are not listed.",
    tag: TAG,
    query: listQuery,
    responses: {
      200: {
        description: "A page",
        schema: z.object({
          items: z.array(
            z.object({ session_id: z.string(), keys: z.number().int(), expires_at: z.string().nullable() }),
          ),
          next_cursor: z.string().nullable(),
        }),
      },
    },
    handler: async ({ tenant, query }) => {
      const page = await tenant.sessions.list({
        ...(query.cursor !== undefined ? { cursor: query.cursor } : {}),
        ...(query.limit !== undefined ? { limit: query.limit } : {}),
      });
      return {
        data: {
          items: page.items.map((s) => ({
            session_id: s.sessionId,
            keys: s.keys,
            expires_at: s.expiresAt === undefined ? null : new Date(s.expiresAt).toISOString(),
          })),
          next_cursor: page.cursor ?? null,
        },
      };
    },
  };

  const getSession: RouteSpec<z.infer<typeof sid>> = {
    method: "GET",
    path: "/v1/sessions/{session_id}",
    operationId: "sessionGet",
    summary: "A session: its live metadata entries (version, expiry) and its files",
    tag: TAG,
    params: sid,
    responses: {
      200: {
        description: "The session (both lists empty for an unknown or expired one)",
        schema: z.object({
          session_id: z.string(),
          metadata: z.array(kvEntrySchema),
          files: z.array(fileSchema),
        }),
      },
    },
    handler: async ({ tenant, params }) => {
      const [metadata, files] = await Promise.all([
        tenant.sessions.metaEntries(params.session_id),
        tenant.sessions.listFiles(params.session_id),
      ]);
      return {
        data: {
          session_id: params.session_id,
          metadata: metadata.map(kvEntryJson),
          files: files.map(fileJson),
        },
      };
    },
  };

  const deleteSession: RouteSpec<z.infer<typeof sid>> = {
    method: "DELETE",
    path: "/v1/sessions/{session_id}",
    operationId: "sessionDelete",
    summary: "Delete a session's metadata and files",
    tag: TAG,
    params: sid,
    responses: {
      200: {
        description: "What was removed",
        schema: z.object({ metadata: z.number().int(), files: z.number().int() }),
      },
    },
    handler: async ({ tenant, params }) => ({ data: await tenant.sessions.delete(params.session_id) }),
  };

  return [
    listSessions,
    getSession,
    putMeta,
    getMeta,
    deleteMeta,
    listMeta,
    putFile,
    getFile,
    deleteFile,
    listFiles,
    presign,
    deleteSession,
  ] as RouteSpec[];
}
