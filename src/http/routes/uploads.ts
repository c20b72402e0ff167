/**
 * Resumable uploads over tus 1.0 (API-6, https://tus.io/protocols/resumable-upload): core
 * protocol and the creation, creation-with-upload, creation-defer-length, termination,
 * expiration and checksum (sha256) extensions, over `tenant.uploads` (domains/uploads.ts).
 * Authentication and tenancy are those of `/v1/objects`; an upload of another tenant is 404.
 * Responses are tus's own (no envelope on success); errors keep the API-2 envelope.
 */
import { z } from "zod";
import { listenUrl, serverScheme } from "../../config/index.js";
import { KuraError } from "../../core/errors.js";
import { CHECKSUM_ALGORITHMS, type UploadChecksum, type UploadInfo } from "../../domains/uploads.js";
import { type HeaderSpec, type RouteSpec, SENT } from "../route.js";
import { requestBody } from "../timeouts.js";
import type { HttpDeps } from "./deps.js";

const TAG = "uploads";
export const TUS_VERSION = "1.0.0";
export const TUS_EXTENSIONS = [
  "creation",
  "creation-with-upload",
  "creation-defer-length",
  "termination",
  "expiration",
  "checksum",
] as const;
const OFFSET_TYPE = "application/offset+octet-stream";

/** Request and response headers of the protocol, as the OpenAPI document describes them. */
export const TUS_REQUEST_HEADERS = [
  "Tus-Resumable",
  "Upload-Length",
  "Upload-Defer-Length",
  "Upload-Offset",
  "Upload-Metadata",
  "Upload-Checksum",
] as const;
export const TUS_RESPONSE_HEADERS = [
  "Tus-Resumable",
  "Tus-Version",
  "Tus-Extension",
  "Tus-Max-Size",
  "Tus-Checksum-Algorithm",
  "Location",
  "Upload-Offset",
  "Upload-Length",
  "Upload-Defer-Length",
  "Upload-Metadata",
  "Upload-Expires",
] as const;

const integer = { type: "integer", minimum: 0 };
const H = {
  resumable: { description: "Must be 1.0.0 (else 412 TUS_VERSION_UNSUPPORTED)" },
  length: { description: "The upload's total size in bytes", schema: integer },
  defer: { description: "1: the length is not known yet (creation-defer-length)", schema: { const: "1" } },
  offset: {
    description: "Where the bytes of this request start (must be the upload's offset)",
    schema: integer,
  },
  metadata: {
    description:
      "Comma-separated `key base64value` pairs: `key` (object key) or `session_id` + `path` (a session file) name the target; `filetype` is its Content-Type",
  },
  checksum: {
    description:
      "`sha256 <base64 digest>` of this request's bytes (checksum extension): 460 when they differ",
  },
} satisfies Record<string, HeaderSpec>;

const idParams = z.object({ id: z.string().min(1).max(128).describe("The upload id (from Location)") });
type IdParams = z.infer<typeof idParams>;

function one(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function invalid(message: string, operation: string): KuraError {
  return new KuraError("UPLOAD_INVALID", message, { operation });
}

function parseInteger(value: string | undefined, name: string, operation: string): number | undefined {
  if (value === undefined) return undefined;
  const n = /^\d{1,16}$/.test(value.trim()) ? Number(value.trim()) : Number.NaN;
  if (!Number.isSafeInteger(n)) throw invalid(`${name} must be an integer ≥ 0`, operation);
  return n;
}

/** `Upload-Metadata`: pairs of an ASCII key and an optional base64 value (UTF-8), keys unique. */
export function parseMetadata(header: string | undefined, operation: string): Record<string, string> {
  const out: Record<string, string> = {};
  if (header === undefined || header.trim() === "") return out;
  if (header.length > 16_384) throw invalid("Upload-Metadata is longer than 16 KiB", operation);
  for (const pair of header.split(",")) {
    const [key, value, ...rest] = pair.trim().split(" ");
    if (!key || !/^[\x21-\x2b\x2d-\x7e]+$/.test(key) || rest.length > 0) {
      throw invalid("Upload-Metadata must be comma-separated `key base64value` pairs", operation);
    }
    if (Object.hasOwn(out, key)) throw invalid(`Upload-Metadata names ${key} twice`, operation);
    if (value !== undefined && !/^[A-Za-z0-9+/]*={0,2}$/.test(value)) {
      throw invalid(`Upload-Metadata: the value of ${key} is not base64`, operation);
    }
    let text: string;
    try {
      text = new TextDecoder("utf-8", { fatal: true }).decode(Buffer.from(value ?? "", "base64"));
    } catch {
      throw invalid(`Upload-Metadata: the value of ${key} is not UTF-8`, operation);
    }
    out[key] = text;
  }
  return out;
}

function encodeMetadata(metadata: Readonly<Record<string, string>>): string {
  return Object.entries(metadata)
    .map(([k, v]) => (v === "" ? k : `${k} ${Buffer.from(v, "utf8").toString("base64")}`))
    .join(",");
}

function parseChecksum(header: string | undefined, operation: string): UploadChecksum | undefined {
  if (header === undefined) return undefined;
  const m = /^\s*([A-Za-z0-9-]{1,32})\s+([A-Za-z0-9+/_=-]{1,512})\s*$/.exec(header);
  if (!m) {
    throw new KuraError(
      "UPLOAD_CHECKSUM_UNSUPPORTED",
      "Upload-Checksum must be `<algorithm> <base64 digest>`",
      {
        operation,
      },
    );
  }
  return { algorithm: (m[1] as string).toLowerCase(), digest: m[2] as string };
}

export function uploadRoutes(deps: HttpDeps): RouteSpec[] {
  const base = () =>
    deps.config.server.public_url ??
    deps.kura.serverUrl ??
    listenUrl(deps.config.server.host, deps.config.server.port, serverScheme(deps.config.server));

  /** Refuses a request without `Tus-Resumable: 1.0.0`; every tus response names the version. */
  const speaking = (
    req: { headers: Record<string, string | string[] | undefined> },
    reply: { header(n: string, v: string): unknown },
    operation: string,
  ) => {
    reply.header("tus-resumable", TUS_VERSION);
    if (one(req.headers["tus-resumable"]) !== TUS_VERSION) {
      reply.header("tus-version", TUS_VERSION);
      throw new KuraError("TUS_VERSION_UNSUPPORTED", `send Tus-Resumable: ${TUS_VERSION}`, { operation });
    }
  };

  /** Whether the request carries a body (Content-Length above 0, or chunked). */
  const hasBody = (headers: Record<string, string | string[] | undefined>) =>
    headers["transfer-encoding"] !== undefined || Number(one(headers["content-length"]) ?? 0) > 0;

  const checkType = (contentType: string | undefined, operation: string) => {
    if ((contentType ?? "").split(";")[0]?.trim().toLowerCase() !== OFFSET_TYPE) {
      throw new KuraError("MEDIA_TYPE_UNSUPPORTED", `upload bytes must be sent as ${OFFSET_TYPE}`, {
        operation,
      });
    }
  };

  const sizeOf = (headers: Record<string, string | string[] | undefined>) => {
    const n = Number(one(headers["content-length"]) ?? Number.NaN);
    return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
  };

  const expires = (info: UploadInfo) => info.expiresAt.toUTCString();

  const options: RouteSpec = {
    method: "OPTIONS",
    path: "/v1/uploads",
    operationId: "uploadOptions",
    summary: "What the tus server offers: versions, extensions, largest upload, checksum algorithms",
    tag: TAG,
    auth: false,
    responses: {
      204: {
        description: "The server's tus capabilities",
        headers: {
          "Tus-Resumable": "1.0.0",
          "Tus-Version": "1.0.0",
          "Tus-Extension": TUS_EXTENSIONS.join(","),
          "Tus-Max-Size": "limits.max_upload_bytes",
          "Tus-Checksum-Algorithm": CHECKSUM_ALGORITHMS.join(","),
        },
      },
    },
    handler: async ({ reply }) => {
      reply
        .code(204)
        .header("tus-resumable", TUS_VERSION)
        .header("tus-version", TUS_VERSION)
        .header("tus-extension", TUS_EXTENSIONS.join(","))
        .header("tus-max-size", String(deps.config.limits.max_upload_bytes))
        .header("tus-checksum-algorithm", CHECKSUM_ALGORITHMS.join(","))
        .send();
      return SENT;
    },
  };

  const create: RouteSpec = {
    method: "POST",
    path: "/v1/uploads",
    operationId: "createUpload",
    summary: "Start a resumable upload (tus creation; with a body, creation-with-upload)",
    description:
      "Upload-Metadata names the target: `key` (an object key, as in /v1/objects/{key}) or " +
      "`session_id` and `path` (a session file), and `filetype` its Content-Type. The tenant's limits " +
      "are checked against Upload-Length before anything is stored. A body (Content-Type " +
      "application/offset+octet-stream) is the upload's first bytes. The object or session file " +
      "appears only once every byte is in, whole.",
    tag: TAG,
    headers: {
      "Tus-Resumable": H.resumable,
      "Upload-Length": H.length,
      "Upload-Defer-Length": H.defer,
      "Upload-Metadata": H.metadata,
      "Upload-Checksum": H.checksum,
    },
    rawBody: { contentType: OFFSET_TYPE, description: "Optional: the upload's first bytes" },
    responses: {
      201: {
        description: "Created; Location is the upload's URL",
        headers: {
          Location: "Absolute URL of the upload",
          "Tus-Resumable": "1.0.0",
          "Upload-Offset": "Bytes stored so far",
          "Upload-Expires": "When the upload expires unless it makes progress (RFC 9110 date)",
        },
      },
      409: { description: "Creation-with-upload lost a race with another request (UPLOAD_OFFSET_MISMATCH)" },
      412: { description: "Tus-Resumable missing or not 1.0.0 (TUS_VERSION_UNSUPPORTED)" },
      460: { description: "The body does not match Upload-Checksum (UPLOAD_CHECKSUM_MISMATCH)" },
    },
    handler: async ({ tenant, req, reply }) => {
      const op = "uploads.create";
      speaking(req, reply, op);
      const length = parseInteger(one(req.headers["upload-length"]), "Upload-Length", op);
      const defer = one(req.headers["upload-defer-length"]);
      if (defer !== undefined && defer.trim() !== "1") throw invalid("Upload-Defer-Length must be 1", op);
      const metadata = parseMetadata(one(req.headers["upload-metadata"]), op);
      const withBody = hasBody(req.headers);
      if (withBody) checkType(req.headers["content-type"], op);
      const checksum = parseChecksum(one(req.headers["upload-checksum"]), op);
      const size = sizeOf(req.headers);
      const info = await tenant.uploads.create({
        ...(length !== undefined ? { length } : {}),
        deferLength: defer !== undefined,
        metadata,
        ...(withBody
          ? {
              body: {
                body: requestBody(req),
                ...(size !== undefined ? { size } : {}),
                ...(checksum ? { checksum } : { keepPartial: true }),
              },
            }
          : {}),
      });
      reply
        .code(201)
        .header("location", `${base()}/v1/uploads/${info.id}`)
        .header("upload-offset", String(info.offset))
        .header("upload-expires", expires(info))
        .send();
      return SENT;
    },
  };

  const head: RouteSpec<IdParams> = {
    method: "HEAD",
    path: "/v1/uploads/{id}",
    operationId: "headUpload",
    summary:
      "Where an upload stands (tus core): Upload-Offset, Upload-Length, Upload-Metadata, Upload-Expires",
    tag: TAG,
    params: idParams,
    headers: { "Tus-Resumable": H.resumable },
    responses: {
      200: {
        description: "The upload's state (no body)",
        headers: {
          "Tus-Resumable": "1.0.0",
          "Upload-Offset": "Bytes stored so far",
          "Upload-Length": "The total size, once known",
          "Upload-Defer-Length": "1 while the length is not known",
          "Upload-Metadata": "The metadata given at creation",
          "Upload-Expires": "When the upload expires unless it makes progress",
          "Cache-Control": "no-store",
        },
      },
      404: { description: "No such upload for the tenant (UPLOAD_NOT_FOUND)" },
      410: { description: "The upload expired (UPLOAD_EXPIRED)" },
      412: { description: "Tus-Resumable missing or not 1.0.0 (TUS_VERSION_UNSUPPORTED)" },
    },
    handler: async ({ tenant, params, req, reply }) => {
      speaking(req, reply, "uploads.head");
      const info = await tenant.uploads.head(params.id);
      reply.header("cache-control", "no-store").header("upload-offset", String(info.offset));
      if (info.length === undefined) reply.header("upload-defer-length", "1");
      else reply.header("upload-length", String(info.length));
      if (Object.keys(info.metadata).length > 0)
        reply.header("upload-metadata", encodeMetadata(info.metadata));
      reply.header("upload-expires", expires(info)).code(200).send();
      return SENT;
    },
  };

  const patch: RouteSpec<IdParams> = {
    method: "PATCH",
    path: "/v1/uploads/{id}",
    operationId: "patchUpload",
    summary: "Append bytes at Upload-Offset (tus core); the last bytes complete the upload",
    description:
      "The bytes are stored whole before the offset moves: a request cut off by a server crash " +
      "leaves the offset where it was (one cut off by the client keeps what arrived, unless it " +
      "carries Upload-Checksum). On completion the parts are streamed, each verified against its " +
      "SHA-256, into the object's (or session file's) write, with the tenant's limits, usage and audit.",
    tag: TAG,
    params: idParams,
    headers: {
      "Tus-Resumable": H.resumable,
      "Upload-Offset": H.offset,
      "Upload-Length": { ...H.length, description: "Sets the length of a deferred-length upload" },
      "Upload-Checksum": H.checksum,
    },
    rawBody: { contentType: OFFSET_TYPE, description: "The bytes from Upload-Offset on" },
    responses: {
      204: {
        description: "Stored",
        headers: {
          "Tus-Resumable": "1.0.0",
          "Upload-Offset": "The new offset",
          "Upload-Expires": "When the upload expires unless it makes progress",
        },
      },
      404: { description: "No such upload for the tenant (UPLOAD_NOT_FOUND)" },
      409: { description: "Upload-Offset is not the upload's offset (UPLOAD_OFFSET_MISMATCH)" },
      410: { description: "The upload expired (UPLOAD_EXPIRED)" },
      412: { description: "Tus-Resumable missing or not 1.0.0 (TUS_VERSION_UNSUPPORTED)" },
      460: { description: "The body does not match Upload-Checksum (UPLOAD_CHECKSUM_MISMATCH)" },
    },
    handler: async ({ tenant, params, req, reply }) => {
      const op = "uploads.append";
      speaking(req, reply, op);
      checkType(req.headers["content-type"], op);
      const offset = parseInteger(one(req.headers["upload-offset"]), "Upload-Offset", op);
      if (offset === undefined) throw invalid("Upload-Offset is required", op);
      const length = parseInteger(one(req.headers["upload-length"]), "Upload-Length", op);
      const checksum = parseChecksum(one(req.headers["upload-checksum"]), op);
      const size = sizeOf(req.headers);
      const info = await tenant.uploads.append(params.id, {
        offset,
        body: requestBody(req),
        ...(size !== undefined ? { size } : {}),
        ...(length !== undefined ? { length } : {}),
        ...(checksum ? { checksum } : { keepPartial: true }),
      });
      reply
        .code(204)
        .header("upload-offset", String(info.offset))
        .header("upload-expires", expires(info))
        .send();
      return SENT;
    },
  };

  const remove: RouteSpec<IdParams> = {
    method: "DELETE",
    path: "/v1/uploads/{id}",
    operationId: "terminateUpload",
    summary: "End an upload and remove what it stored (tus termination)",
    tag: TAG,
    params: idParams,
    headers: { "Tus-Resumable": H.resumable },
    responses: {
      204: { description: "Terminated", headers: { "Tus-Resumable": "1.0.0" } },
      404: { description: "No such upload for the tenant (UPLOAD_NOT_FOUND)" },
      412: { description: "Tus-Resumable missing or not 1.0.0 (TUS_VERSION_UNSUPPORTED)" },
    },
    handler: async ({ tenant, params, req, reply }) => {
      speaking(req, reply, "uploads.terminate");
      await tenant.uploads.terminate(params.id);
      reply.code(204).send();
      return SENT;
    },
  };

  return [options, create, head, patch, remove] as RouteSpec[];
}
