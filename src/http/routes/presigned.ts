import { z } from "zod";
import { KuraError } from "../../core/errors.js";
import { ID_PATTERN } from "../../core/keys.js";
import { verifyPresignedRequest } from "../../core/presign.js";
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
import { sessionFileOf } from "./sessions.js";

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

  /** Session files (`{tenant}/sessions/…`) may live in their own store (`sessions.dir` with fs). */
  const storeFor = (key: string) => {
    const slash = key.indexOf("/");
    return sessionFileOf(key.slice(slash + 1)) ? deps.kura.sessionFiles : deps.kura.store;
  };

  const verify = async (method: string, url: string) => {
    const secret = await kuraPresignSecret(deps);
    if (!secret) {
      // This backend serves its own presigned URLs: Kura never signed this one.
      throw new KuraError("PRESIGN_INVALID", "presigned URL rejected: not signed by this server", {
        operation: "presign.verify",
      });
    }
    return verifyPresignedRequest(secret, { method, url }, deps.clock());
  };

  /** The body a verified presigned GET (or HEAD) URL names, served like every other body. */
  const presignedSource = async (method: "GET" | "HEAD", url: string): Promise<BodySource> => {
    const claims = await verify(method, url);
    if (claims.method !== "GET") {
      throw new KuraError("PRESIGN_INVALID", "presigned URL rejected: method does not match", {
        operation: "presign.verify",
      });
    }
    const store = storeFor(claims.key);
    const infoOf = (info: BlobInfo): BodyInfo => ({
      size: info.size,
      contentType: info.contentType,
      etag: info.sha256 ? `"${info.sha256}"` : info.etag,
      lastModified: info.lastModified,
    });
    return {
      filename: filenameOf(claims.key),
      info: async () => infoOf(await store.head(claims.key)),
      open: async (range) => {
        const got = await store.get(claims.key, range ? { range } : {});
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
    handler: async ({ req, reply }) => serveBody(req, reply, await presignedSource("GET", req.url)),
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
    handler: async ({ req, reply }) => serveBody(req, reply, await presignedSource("HEAD", req.url)),
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
      const claims = await verify("PUT", req.url);
      const invalid = (why: string) =>
        new KuraError("PRESIGN_INVALID", `presigned URL rejected: ${why}`, { operation: "presign.verify" });
      const slash = claims.key.indexOf("/");
      const tenantId = claims.key.slice(0, slash);
      const rest = claims.key.slice(slash + 1);
      const session = sessionFileOf(rest);
      if (slash < 0 || !ID_PATTERN.test(tenantId) || (!rest.startsWith("objects/") && !session)) {
        throw invalid("not an upload URL");
      }
      const contentType = req.headers["content-type"];
      if (claims.contentType !== undefined && contentType !== claims.contentType) {
        throw invalid("Content-Type differs from the signed one");
      }
      const tenant = deps.kura.tenant(tenantId);
      const options = contentType ? { contentType } : {};
      if (session) {
        const r = await tenant.sessions.putFile(session.sessionId, session.path, requestBody(req), options);
        reply.header("etag", `"${r.sha256}"`);
        return { data: r };
      }
      const info = await tenant.objects.put(rest.slice("objects/".length), requestBody(req), options);
      reply.header("etag", info.etag);
      return { data: objectJson(info) };
    },
  };

  return [head, get, put] as RouteSpec[];
}
