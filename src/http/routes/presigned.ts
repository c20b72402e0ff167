import { z } from "zod";
import type { BlobInfo } from "../../ports/blob-store.js";
import {
  type BodyInfo,
  type BodySource,
  filenameOf,
  serveBody,
  servedBodyHeaders,
  servedBodyResponses,
} from "../ranges.js";
import type { RouteSpec } from "../route.js";
import { objectJson, objectSchema } from "../schemas.js";
import { requestBody } from "../timeouts.js";
import type { HttpDeps } from "./deps.js";

const TAG = "objects";

const PRESIGN_REFUSED = {
  description: "Tampered or not signed here (PRESIGN_INVALID), or expired (PRESIGN_EXPIRED)",
};

/**
 * The secret the fs stores sign presigned URLs with, for the server that verifies them;
 * undefined for stores whose presigned URLs their backend serves (S3, GCS, Azure).
 */
export async function kuraPresignSecret(deps: HttpDeps): Promise<Buffer | undefined> {
  return deps.kura.presignSecret;
}

export function presignedRoutes(deps: HttpDeps): RouteSpec[] {
  const keyParams = z.object({ key: z.string().min(1).max(4096) });

  /** The body a verified presigned GET (or HEAD) URL names, served like every other body. */
  const presignedSource = (method: "GET" | "HEAD", url: string): BodySource => {
    const target = deps.kura.presigned.download(method, url, deps.clock());
    const infoOf = (info: BlobInfo): BodyInfo => ({
      size: info.size,
      contentType: info.contentType,
      etag: info.sha256 ? `"${info.sha256}"` : info.etag,
      lastModified: info.lastModified,
    });
    return {
      filename: filenameOf(target.key),
      info: async () => infoOf(await target.head()),
      open: async (range) => {
        const got = await target.get(range);
        return { info: infoOf(got.info), body: got.body, range: got.range };
      },
    };
  };

  const get: RouteSpec<z.infer<typeof keyParams>> = {
    method: "GET",
    path: "/v1/presigned/{key...}",
    operationId: "getPresigned",
    summary: "Download through a presigned URL (no bearer token; the signature is the credential)",
    tag: TAG,
    auth: false,
    params: keyParams,
    headers: servedBodyHeaders("GET"),
    responses: { ...servedBodyResponses("GET"), 403: PRESIGN_REFUSED },
    handler: async ({ req, reply }) => serveBody(req, reply, presignedSource("GET", req.url)),
  };

  const head: RouteSpec<z.infer<typeof keyParams>> = {
    method: "HEAD",
    path: "/v1/presigned/{key...}",
    operationId: "headPresigned",
    summary: "Headers of an object through a presigned GET URL",
    tag: TAG,
    auth: false,
    params: keyParams,
    headers: servedBodyHeaders("HEAD"),
    responses: { ...servedBodyResponses("HEAD"), 403: PRESIGN_REFUSED },
    handler: async ({ req, reply }) => serveBody(req, reply, presignedSource("HEAD", req.url)),
  };

  const put: RouteSpec<z.infer<typeof keyParams>> = {
    method: "PUT",
    path: "/v1/presigned/{key...}",
    operationId: "putPresigned",
    summary: "Upload through a presigned PUT URL from POST /v1/objects:presign",
    tag: TAG,
    auth: false,
    params: keyParams,
    rawBody: { contentType: "application/octet-stream", description: "The bytes" },
    responses: {
      403: PRESIGN_REFUSED,
      200: {
        description: "Stored (an object, or a session file)",
        headers: { ETag: "Quoted SHA-256 of the body" },
        schema: z.union([
          objectSchema,
          z.object({ path: z.string(), size: z.number().int(), sha256: z.string() }),
        ]),
      },
    },
    handler: async ({ req, reply }) => {
      const contentType = req.headers["content-type"];
      const stored = await deps.kura.presigned.upload(req.url, requestBody(req), contentType, deps.clock());
      if (stored.kind === "session-file") {
        reply.header("etag", `"${stored.file.sha256}"`);
        return { data: stored.file };
      }
      reply.header("etag", stored.object.etag);
      return { data: objectJson(stored.object) };
    },
  };

  return [head, get, put] as RouteSpec[];
}
