/**
 * The S3-compatible listener (API-7, ADR 0035): `kura serve --s3-port N` (`server.s3.port`)
 * serves the S3 REST API over the same Kura as the `/v1` server. A request is routed by path
 * (`/bucket/key`) or, under `server.s3.domain`, by host (`bucket.domain/key`); its SigV4
 * signature (header or presigned query) is checked against the access key's secret
 * (`sigv4.ts`); the key's tenant is admitted as on `/v1` and acts through its domains
 * (`operations.ts`), with the audit actor `key:<key id>`. Failures are S3 XML errors
 * (`errors.ts`). Nothing thrown while serving a request ends the process.
 */
import { randomBytes } from "node:crypto";
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from "node:http";
import { createServer as createHttpsServer, type ServerOptions as HttpsOptions } from "node:https";
import { KuraError } from "../../core/errors.js";
import type { Kura } from "../../kura.js";
import { s3Error } from "./errors.js";
import * as op from "./operations.js";
import { type RawRequest, verifySignature } from "./sigv4.js";

export interface S3ServerOptions {
  /** `server.s3.region`: what GetBucketLocation and HeadBucket answer. */
  region: string;
  /** `server.s3.domain`: virtual-host-style requests (`{bucket}.{domain}`); path-style always works. */
  domain: string | null;
  /** Keep-alive connections idle longer than this are closed. */
  idleTimeoutMs: number;
  /**
   * `server.body_timeout_ms`: a request body that sends nothing for this long has its
   * connection closed (the write it fed stores nothing); an upload that keeps moving is never cut.
   */
  bodyTimeoutMs?: number;
  https?: HttpsOptions;
  clock?: () => number;
  log?: (level: "warn" | "error", message: string, detail: Record<string, unknown>) => void;
}

/** Sub-resources of a bucket or object Kura does not offer: NotImplemented, not a wrong answer. */
const UNSUPPORTED = [
  "acl",
  "policy",
  "tagging",
  "cors",
  "lifecycle",
  "encryption",
  "object-lock",
  "replication",
  "website",
  "logging",
  "notification",
  "requestPayment",
  "accelerate",
  "analytics",
  "inventory",
  "metrics",
  "ownershipControls",
  "publicAccessBlock",
  "retention",
  "legal-hold",
  "torrent",
  "restore",
  "select",
  "versions",
  "attributes",
  "intelligent-tiering",
];

/** Decoded query parameters, first value of each (`+` is a plus: S3 clients encode spaces as %20). */
export function parseQuery(raw: string): Record<string, string> {
  const out: Record<string, string> = {};
  if (raw === "") return out;
  for (const pair of raw.split("&")) {
    if (pair === "") continue;
    const eq = pair.indexOf("=");
    const k = eq < 0 ? pair : pair.slice(0, eq);
    const v = eq < 0 ? "" : pair.slice(eq + 1);
    let key: string;
    let value: string;
    try {
      key = decodeURIComponent(k);
      value = decodeURIComponent(v);
    } catch {
      throw new KuraError("S3_REQUEST_INVALID", "the query string is not valid percent-encoded UTF-8", {
        operation: "s3.request",
      });
    }
    if (!(key in out)) out[key] = value;
  }
  return out;
}

function decodePart(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw new KuraError("S3_REQUEST_INVALID", "the path is not valid percent-encoded UTF-8", {
      operation: "s3.request",
    });
  }
}

/** Bucket and key of a request: from the host under `domain`, else from the path. */
export function locate(
  host: string,
  rawPath: string,
  domain: string | null,
): { bucket: string | undefined; key: string | undefined } {
  const name = host.replace(/:\d+$/, "").toLowerCase();
  const path = rawPath.replace(/^\//, "");
  if (domain && name.endsWith(`.${domain.toLowerCase()}`)) {
    const bucket = name.slice(0, -(domain.length + 1));
    return { bucket, key: path === "" ? undefined : decodePart(path) };
  }
  if (path === "") return { bucket: undefined, key: undefined };
  const slash = path.indexOf("/");
  if (slash < 0) return { bucket: decodePart(path), key: undefined };
  const key = path.slice(slash + 1);
  return { bucket: decodePart(path.slice(0, slash)), key: key === "" ? undefined : decodePart(key) };
}

function notImplemented(what: string): KuraError {
  return new KuraError("S3_NOT_IMPLEMENTED", `${what} is not offered by Kura's S3 endpoint`, {
    operation: "s3",
  });
}

/** The operation a request names, run. */
async function dispatch(c: op.S3Call): Promise<void> {
  const { method, bucket, key, query, req } = c;
  const has = (name: string) => query[name] !== undefined;
  const sub = UNSUPPORTED.find(has);
  if (sub !== undefined) throw notImplemented(`the ${sub} sub-resource`);
  if (bucket === undefined) {
    if (method === "GET") return op.listBuckets(c);
    throw notImplemented(`${method} on the service`);
  }
  if (key === undefined) {
    c.tenant.buckets.checkName(bucket, "s3.bucket");
    if (method === "PUT" && !has("versioning")) return op.createBucket(c, bucket);
    if (method === "HEAD") return op.headBucket(c, bucket);
    if (method === "DELETE") return op.deleteBucket(c, bucket);
    if (method === "POST" && has("delete")) return op.deleteObjects(c, bucket);
    if (method === "GET") {
      if (has("location")) return op.bucketLocation(c, bucket);
      if (has("versioning")) return op.bucketVersioning(c, bucket);
      if (has("uploads")) return op.listUploads(c, bucket);
      return op.listObjects(c, bucket, query["list-type"] === "2");
    }
    throw notImplemented(`${method} on a bucket`);
  }
  const copy = req.headers["x-amz-copy-source"] !== undefined;
  switch (method) {
    case "GET":
      return has("uploadId") ? op.listParts(c, bucket, key) : op.getObject(c, bucket, key);
    case "HEAD":
      return op.getObject(c, bucket, key);
    case "PUT":
      if (has("uploadId") || has("partNumber"))
        return copy ? op.uploadPartCopy(c, bucket, key) : op.uploadPart(c, bucket, key);
      return copy ? op.copyObject(c, bucket, key) : op.putObject(c, bucket, key);
    case "DELETE":
      return has("uploadId") ? op.abortUpload(c, bucket, key) : op.deleteObject(c, bucket, key);
    case "POST":
      if (has("uploads")) return op.createUpload(c, bucket, key);
      if (has("uploadId")) return op.completeUpload(c, bucket, key);
      throw notImplemented("POST on an object (browser form uploads)");
    default:
      throw notImplemented(`${method}`);
  }
}

const WRITES = new Set(["PUT", "POST", "DELETE"]);

export function createS3Server(kura: Kura, options: S3ServerOptions): Server {
  const clock = options.clock ?? Date.now;
  const log = options.log ?? (() => {});
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const requestId = randomBytes(8).toString("hex").toUpperCase();
    res.setHeader("x-amz-request-id", requestId);
    res.setHeader("x-amz-id-2", requestId);
    res.setHeader("server", "Kura");
    const url = req.url ?? "/";
    const q = url.indexOf("?");
    const rawPath = q < 0 ? url : url.slice(0, q);
    let resource = rawPath;
    const method = req.method ?? "GET";
    try {
      const query = parseQuery(q < 0 ? "" : url.slice(q + 1));
      const host = String(req.headers.host ?? "");
      const { bucket, key } = locate(host, rawPath, options.domain);
      resource = bucket === undefined ? "/" : `/${bucket}${key === undefined ? "" : `/${key}`}`;
      const raw: RawRequest = { method, rawPath, query, headers: req.headers };
      const signed = await verifySignature(kura.tenants, raw, clock());
      if (WRITES.has(method) && !signed.identity.scopes.includes("write"))
        throw new KuraError("S3_ACCESS_DENIED", "this key may only read (scope read)", {
          operation: "s3.auth",
        });
      await kura.tenants.admit(signed.identity.tenantId);
      const tenant = kura.tenant(signed.identity.tenantId, { actor: `key:${signed.identity.keyId}` });
      await dispatch({ req, res, method, bucket, key, query, signed, tenant, region: options.region });
    } catch (e) {
      const error = s3Error(e, resource, requestId);
      if (error.status >= 500) log("error", "S3 request failed", { err: e, requestId, method, resource });
      if (res.headersSent) {
        res.destroy();
        return;
      }
      // A body the request did not finish sending is not read: the connection closes after the answer.
      const unread = !req.complete;
      const headers: Record<string, string> = { "content-type": "application/xml" };
      if (unread) headers.connection = "close";
      if (method === "HEAD") {
        res.writeHead(error.status, { ...headers, "content-length": "0" });
        res.end();
      } else {
        res.writeHead(error.status, { ...headers, "content-length": String(Buffer.byteLength(error.body)) });
        res.end(error.body);
      }
    }
  };
  const listener = (req: IncomingMessage, res: ServerResponse) => {
    req.on("error", () => {});
    res.on("error", () => {});
    const bodyTimeout = options.bodyTimeoutMs;
    const stalled = () => {
      if (!req.complete) req.socket.destroy();
    };
    if (bodyTimeout !== undefined && !req.complete) req.socket.setTimeout(bodyTimeout, stalled);
    handle(req, res)
      .catch((e: unknown) => {
        log("error", "S3 request pipeline failed", { err: e });
        res.destroy();
      })
      .finally(() => {
        if (bodyTimeout !== undefined) {
          req.socket.setTimeout(0);
          req.socket.off("timeout", stalled);
        }
      });
  };
  const server = options.https ? createHttpsServer(options.https, listener) : createHttpServer(listener);
  // A long upload or a CompleteMultipartUpload of large parts may be silent for a while; idle
  // keep-alive connections still close.
  server.requestTimeout = 0;
  server.keepAliveTimeout = options.idleTimeoutMs;
  server.on("clientError", (_err, socket) => {
    if (socket.writable) socket.end("HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n");
    else socket.destroy();
  });
  return server;
}
