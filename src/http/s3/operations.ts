/**
 * The S3 operations (API-7) over one tenant's domains: buckets are the first segment of the
 * object keys (`domains/buckets.ts`), objects are `tenant.objects` (the same write protocol,
 * limits, usage and audit as `/v1/objects`), multipart uploads are `tenant.multipart`. Each
 * function answers one request; `server.ts` routes to them and turns failures into S3 errors.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { KuraError } from "../../core/errors.js";
import type { ObjectInfo } from "../../domains/objects.js";
import type { TenantScope } from "../../domains/tenant.js";
import { decide } from "../ranges.js";
import { requestBody } from "./chunked.js";
import type { SignedRequest } from "./sigv4.js";
import { MAX_XML_BYTES, parseXml, xml } from "./xml.js";

/** S3's largest single PUT. */
const MAX_PUT_BYTES = 5 * 1024 ** 3;
/** After a common prefix in ListObjects v1's marker: sorts after every key under it. */
const PAST_PREFIX = "\u{10FFFF}";

export interface S3Call {
  req: IncomingMessage;
  res: ServerResponse;
  method: string;
  bucket: string | undefined;
  key: string | undefined;
  query: Record<string, string>;
  signed: SignedRequest;
  tenant: TenantScope;
  region: string;
}

function invalid(message: string): KuraError {
  return new KuraError("S3_REQUEST_INVALID", message, { operation: "s3.request" });
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function sendXml(res: ServerResponse, status: number, doc: Record<string, unknown>): void {
  const body = xml(doc);
  res.writeHead(status, { "content-type": "application/xml", "content-length": Buffer.byteLength(body) });
  res.end(body);
}

function sendEmpty(res: ServerResponse, status: number, headers: Record<string, string> = {}): void {
  res.writeHead(status, { ...headers, "content-length": "0" });
  res.end();
}

const iso = (ms: number | string) => new Date(ms).toISOString();
const httpDate = (iso: string) => new Date(iso).toUTCString();
/** The object key of `key` in `bucket`. */
const full = (bucket: string, key: string) => `${bucket}/${key}`;

function intParam(value: string | undefined, name: string, fallback: number, max: number): number {
  if (value === undefined || value === "") return fallback;
  const n = Number(value);
  if (!/^\d{1,9}$/.test(value) || n < 0) throw invalid(`${name} must be a non-negative integer`);
  return Math.min(n, max);
}

/** Keys in listings, URL-encoded when the client asked (`encoding-type=url`, as the AWS CLI does). */
function encoderOf(query: Record<string, string>): (s: string) => string {
  if (query["encoding-type"] === undefined) return (s) => s;
  if (query["encoding-type"] !== "url") throw invalid("encoding-type must be url");
  return (s) => encodeURIComponent(s).replace(/%2F/g, "/");
}

// --- service and buckets ----------------------------------------------------------------------

export async function listBuckets(c: S3Call): Promise<void> {
  const buckets = await c.tenant.buckets.list();
  sendXml(c.res, 200, {
    ListAllMyBucketsResult: {
      Owner: { ID: c.tenant.id, DisplayName: c.tenant.id },
      Buckets:
        buckets.length === 0
          ? ""
          : {
              Bucket: buckets.map((b) => ({ Name: b.name, CreationDate: iso(b.createdAt ?? 0) })),
            },
    },
  });
}

export async function createBucket(c: S3Call, bucket: string): Promise<void> {
  await drain(c.req);
  await c.tenant.buckets.create(bucket);
  sendEmpty(c.res, 200, { location: `/${bucket}` });
}

export async function headBucket(c: S3Call, bucket: string): Promise<void> {
  await c.tenant.buckets.assertExists(bucket, "s3.headBucket");
  sendEmpty(c.res, 200, { "x-amz-bucket-region": c.region });
}

export async function deleteBucket(c: S3Call, bucket: string): Promise<void> {
  await c.tenant.buckets.delete(bucket);
  sendEmpty(c.res, 204);
}

export async function bucketLocation(c: S3Call, bucket: string): Promise<void> {
  await c.tenant.buckets.assertExists(bucket, "s3.getBucketLocation");
  sendXml(c.res, 200, { LocationConstraint: { "#text": c.region === "us-east-1" ? "" : c.region } });
}

export async function bucketVersioning(c: S3Call, bucket: string): Promise<void> {
  await c.tenant.buckets.assertExists(bucket, "s3.getBucketVersioning");
  sendXml(c.res, 200, { VersioningConfiguration: "" });
}

/** ListObjectsV2 (`list-type=2`) and ListObjects (v1). */
export async function listObjects(c: S3Call, bucket: string, v2: boolean): Promise<void> {
  await c.tenant.buckets.assertExists(bucket, "s3.listObjects");
  const q = c.query;
  const enc = encoderOf(q);
  const prefix = q.prefix ?? "";
  const delimiter = q.delimiter === "" ? undefined : q.delimiter;
  const maxKeys = intParam(q["max-keys"], "max-keys", 1000, 1000);
  const marker = v2 ? q["start-after"] : q.marker;
  const token = v2 ? q["continuation-token"] : undefined;
  let startAfter: string | undefined;
  if (marker !== undefined && marker !== "") {
    startAfter = full(bucket, marker);
    if (delimiter !== undefined && marker.endsWith(delimiter)) startAfter += PAST_PREFIX;
  }
  const page =
    maxKeys === 0
      ? { items: [], prefixes: [], nextCursor: undefined }
      : await c.tenant.objects.list({
          prefix: full(bucket, prefix),
          limit: maxKeys,
          ...(delimiter !== undefined ? { delimiter } : {}),
          ...(token !== undefined && token !== "" ? { cursor: token } : {}),
          ...(startAfter !== undefined ? { startAfter } : {}),
        });
  const strip = (k: string) => k.slice(bucket.length + 1);
  const contents = page.items.map((o: ObjectInfo) => ({
    Key: enc(strip(o.key)),
    LastModified: o.updatedAt,
    ETag: o.etag,
    Size: o.size,
    StorageClass: "STANDARD",
    ...(v2 && q["fetch-owner"] !== "true" ? {} : { Owner: { ID: c.tenant.id, DisplayName: c.tenant.id } }),
  }));
  const common = page.prefixes.map((p) => ({ Prefix: enc(strip(p)) }));
  const truncated = page.nextCursor !== undefined;
  const base: Record<string, unknown> = {
    Name: bucket,
    Prefix: enc(prefix),
    ...(delimiter !== undefined ? { Delimiter: enc(delimiter) } : {}),
    MaxKeys: maxKeys,
    ...(q["encoding-type"] === "url" ? { EncodingType: "url" } : {}),
    IsTruncated: truncated,
  };
  if (v2) {
    Object.assign(base, {
      KeyCount: contents.length + common.length,
      ...(token !== undefined ? { ContinuationToken: token } : {}),
      ...(truncated ? { NextContinuationToken: page.nextCursor } : {}),
      ...(q["start-after"] !== undefined ? { StartAfter: enc(q["start-after"]) } : {}),
    });
  } else {
    const lastKey = [...page.items.map((o) => o.key), ...page.prefixes].sort().at(-1);
    Object.assign(base, {
      Marker: enc(q.marker ?? ""),
      ...(truncated && lastKey !== undefined ? { NextMarker: enc(strip(lastKey)) } : {}),
    });
  }
  sendXml(c.res, 200, {
    [v2 ? "ListBucketResult" : "ListBucketResult"]: {
      ...base,
      ...(contents.length > 0 ? { Contents: contents } : {}),
      ...(common.length > 0 ? { CommonPrefixes: common } : {}),
    },
  });
}

// --- objects ------------------------------------------------------------------------------------

function objectHeaders(info: ObjectInfo): Record<string, string> {
  return {
    etag: info.etag,
    "last-modified": httpDate(info.updatedAt),
    "content-type": info.contentType,
    "accept-ranges": "bytes",
    // Stored bodies never run as pages of this origin (presigned URLs open in browsers), as on /v1.
    "x-content-type-options": "nosniff",
    "content-security-policy": "sandbox",
  };
}

/** response-* query parameters of a (presigned) GET override the headers they name. */
function overrides(query: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of [
    "content-type",
    "content-disposition",
    "content-encoding",
    "content-language",
    "cache-control",
    "expires",
  ]) {
    const v = query[`response-${name}`];
    if (v !== undefined && /^[\x20-\x7e]{0,1024}$/.test(v)) out[name] = v;
  }
  return out;
}

export async function getObject(c: S3Call, bucket: string, key: string): Promise<void> {
  const head = c.method === "HEAD";
  const info = await c.tenant.objects.head(full(bucket, key)).catch(async (e: unknown) => {
    if (e instanceof KuraError && e.code === "OBJECT_NOT_FOUND")
      await c.tenant.buckets.assertExists(bucket, head ? "s3.headObject" : "s3.getObject");
    throw e;
  });
  const decision = decide(c.req.headers, c.method, {
    size: info.size,
    contentType: info.contentType,
    etag: info.etag,
    lastModified: info.updatedAt,
  });
  if (decision.status === 304) {
    sendEmpty(c.res, 304, { etag: info.etag, "last-modified": httpDate(info.updatedAt) });
    return;
  }
  if (head) {
    c.res.writeHead(200, {
      ...objectHeaders(info),
      "content-length": String(info.size),
      ...overrides(c.query),
    });
    c.res.end();
    return;
  }
  const range = decision.status === 206 ? decision.range : undefined;
  const got = await c.tenant.objects.get(full(bucket, key), range ? { range } : {});
  const headers: Record<string, string> = { ...objectHeaders(got.info), ...overrides(c.query) };
  if (got.range) {
    headers["content-range"] = `bytes ${got.range.start}-${got.range.end}/${got.info.size}`;
    headers["content-length"] = String(got.range.end - got.range.start + 1);
  } else headers["content-length"] = String(got.info.size);
  c.res.writeHead(got.range ? 206 : 200, headers);
  await sendStream(got.body, c.res);
}

/** Pipes a stored body out; a failure mid-body (a checksum) destroys the socket instead of ending it. */
async function sendStream(body: Readable, res: ServerResponse): Promise<void> {
  try {
    await pipeline(body, res);
  } catch {
    res.destroy();
  }
}

function conditions(req: IncomingMessage): { ifNoneMatch?: "*"; ifMatch?: string } {
  const ifNoneMatch = header(req, "if-none-match");
  const ifMatch = header(req, "if-match");
  if (ifNoneMatch !== undefined && ifNoneMatch.trim() !== "*")
    throw new KuraError("S3_NOT_IMPLEMENTED", "on PUT, If-None-Match may only be *", {
      operation: "s3.putObject",
    });
  return {
    ...(ifNoneMatch !== undefined ? { ifNoneMatch: "*" as const } : {}),
    ...(ifMatch !== undefined ? { ifMatch } : {}),
  };
}

export async function putObject(c: S3Call, bucket: string, key: string): Promise<void> {
  await c.tenant.buckets.assertExists(bucket, "s3.putObject");
  const plan = requestBody(c.req, c.signed);
  if (plan.size !== undefined && plan.size > MAX_PUT_BYTES)
    throw new KuraError("PAYLOAD_TOO_LARGE", "Your proposed upload exceeds the maximum allowed size", {
      operation: "s3.putObject",
    });
  const info = await c.tenant.objects.put(full(bucket, key), plan.body, {
    contentType: header(c.req, "content-type") ?? "application/octet-stream",
    ...(plan.size !== undefined ? { size: plan.size } : {}),
    ...conditions(c.req),
  });
  sendEmpty(c.res, 200, { etag: info.etag });
}

export async function deleteObject(c: S3Call, bucket: string, key: string): Promise<void> {
  await c.tenant.objects.delete(full(bucket, key));
  sendEmpty(c.res, 204);
}

/** A request body read whole (XML documents), verified like any body. */
async function readWhole(c: S3Call): Promise<string> {
  const plan = requestBody(c.req, c.signed);
  const parts: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of plan.body) {
    size += chunk.length;
    if (size > MAX_XML_BYTES) throw invalid("the XML body is too large");
    parts.push(chunk);
  }
  return Buffer.concat(parts).toString("utf8");
}

async function drain(req: IncomingMessage): Promise<void> {
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_XML_BYTES) throw invalid("the body is too large");
  }
}

const text = (v: unknown): string | undefined =>
  typeof v === "string" ? v : typeof v === "number" ? String(v) : undefined;

export async function deleteObjects(c: S3Call, bucket: string): Promise<void> {
  await c.tenant.buckets.assertExists(bucket, "s3.deleteObjects");
  const doc = parseXml(await readWhole(c), "Delete");
  const objects = (doc.Object ?? []) as Record<string, unknown>[];
  if (!Array.isArray(objects) || objects.length === 0 || objects.length > 1000)
    throw invalid("Delete must name 1…1000 objects");
  const quiet = text(doc.Quiet) === "true";
  const deleted: { Key: string }[] = [];
  const errors: { Key: string; Code: string; Message: string }[] = [];
  for (const o of objects) {
    const key = text(o?.Key);
    if (key === undefined) throw invalid("each Object needs a Key");
    try {
      await c.tenant.objects.delete(full(bucket, key));
      if (!quiet) deleted.push({ Key: key });
    } catch (e) {
      if (!(e instanceof KuraError) || e.kind === "Unavailable" || e.kind === "Unexpected") throw e;
      errors.push({
        Key: key,
        Code: e.code === "KEY_INVALID" ? "InvalidArgument" : "AccessDenied",
        Message: e.message,
      });
    }
  }
  sendXml(c.res, 200, {
    DeleteResult: {
      ...(deleted.length > 0 ? { Deleted: deleted } : {}),
      ...(errors.length > 0 ? { Error: errors } : {}),
    },
  });
}

/** `x-amz-copy-source`: `[/]bucket/key` (URL-encoded), in the caller's tenant. */
function copySource(c: S3Call): { bucket: string; key: string } {
  const raw = header(c.req, "x-amz-copy-source") ?? "";
  let decoded: string;
  try {
    decoded = decodeURIComponent(raw.split("?")[0] ?? "");
  } catch {
    throw invalid("x-amz-copy-source is not valid percent-encoded UTF-8");
  }
  if (raw.includes("?versionId=") && !raw.endsWith("?versionId=null"))
    throw new KuraError("S3_NOT_IMPLEMENTED", "object versions are not offered", { operation: "s3.copy" });
  const path = decoded.replace(/^\//, "");
  const slash = path.indexOf("/");
  if (slash <= 0 || slash === path.length - 1) throw invalid("x-amz-copy-source must be bucket/key");
  return { bucket: path.slice(0, slash), key: path.slice(slash + 1) };
}

/** x-amz-copy-source-if-* against the source object. */
function checkCopyConditions(c: S3Call, source: ObjectInfo): void {
  const get = (n: string) => header(c.req, `x-amz-copy-source-if-${n}`);
  const headers: Record<string, string> = {};
  for (const [from, to] of [
    ["match", "if-match"],
    ["none-match", "if-none-match"],
    ["modified-since", "if-modified-since"],
    ["unmodified-since", "if-unmodified-since"],
  ] as const) {
    const v = get(from);
    if (v !== undefined) headers[to] = v;
  }
  if (Object.keys(headers).length === 0) return;
  const decision = decide(headers, "HEAD", {
    size: source.size,
    contentType: source.contentType,
    etag: source.etag,
    lastModified: source.updatedAt,
  });
  if (decision.status === 304)
    throw new KuraError("PRECONDITION_FAILED", "the copy source does not match the conditions", {
      operation: "s3.copy",
    });
}

export async function copyObject(c: S3Call, bucket: string, key: string): Promise<void> {
  const src = copySource(c);
  await c.tenant.buckets.assertExists(bucket, "s3.copyObject");
  await c.tenant.buckets.assertExists(src.bucket, "s3.copyObject");
  const got = await c.tenant.objects.get(full(src.bucket, src.key));
  checkCopyConditions(c, got.info);
  const replace = header(c.req, "x-amz-metadata-directive") === "REPLACE";
  await drain(c.req);
  let info: ObjectInfo;
  try {
    info = await c.tenant.objects.put(full(bucket, key), got.body, {
      contentType: replace ? (header(c.req, "content-type") ?? got.info.contentType) : got.info.contentType,
      size: got.info.size,
    });
  } finally {
    got.body.destroy();
  }
  sendXml(c.res, 200, { CopyObjectResult: { LastModified: info.updatedAt, ETag: info.etag } });
}

// --- multipart ----------------------------------------------------------------------------------

export async function createUpload(c: S3Call, bucket: string, key: string): Promise<void> {
  await c.tenant.buckets.assertExists(bucket, "s3.createMultipartUpload");
  await drain(c.req);
  const contentType = header(c.req, "content-type");
  const uploadId = await c.tenant.multipart.create(full(bucket, key), contentType ? { contentType } : {});
  sendXml(c.res, 200, { InitiateMultipartUploadResult: { Bucket: bucket, Key: key, UploadId: uploadId } });
}

function partNumberOf(c: S3Call): number {
  const v = c.query.partNumber ?? "";
  if (!/^\d{1,5}$/.test(v)) throw invalid("partNumber must be 1…10000");
  return Number(v);
}

export async function uploadPart(c: S3Call, bucket: string, key: string): Promise<void> {
  const plan = requestBody(c.req, c.signed);
  const part = await c.tenant.multipart.uploadPart(
    c.query.uploadId ?? "",
    full(bucket, key),
    partNumberOf(c),
    plan.body,
    plan.size !== undefined ? { size: plan.size } : {},
  );
  sendEmpty(c.res, 200, { etag: part.etag });
}

export async function uploadPartCopy(c: S3Call, bucket: string, key: string): Promise<void> {
  const src = copySource(c);
  const uploadId = c.query.uploadId ?? "";
  const partNumber = partNumberOf(c);
  await c.tenant.multipart.state(uploadId, full(bucket, key), "s3.uploadPartCopy");
  const rangeHeader = header(c.req, "x-amz-copy-source-range");
  let range: { start: number; end: number } | undefined;
  if (rangeHeader !== undefined) {
    const m = /^bytes=(\d{1,15})-(\d{1,15})$/.exec(rangeHeader.trim());
    if (!m || Number(m[2]) < Number(m[1])) throw invalid("x-amz-copy-source-range must be bytes=first-last");
    range = { start: Number(m[1]), end: Number(m[2]) };
  }
  const source = await c.tenant.objects.head(full(src.bucket, src.key));
  checkCopyConditions(c, source);
  if (range && range.end >= source.size)
    throw new KuraError("RANGE_NOT_SATISFIABLE", "the copy source range is beyond the object", {
      operation: "s3.uploadPartCopy",
    });
  await drain(c.req);
  const got = await c.tenant.objects.get(full(src.bucket, src.key), range ? { range } : {});
  try {
    const part = await c.tenant.multipart.uploadPart(uploadId, full(bucket, key), partNumber, got.body, {
      size: range ? range.end - range.start + 1 : got.info.size,
    });
    sendXml(c.res, 200, {
      CopyPartResult: { LastModified: iso(part.lastModified.getTime()), ETag: part.etag },
    });
  } finally {
    got.body.destroy();
  }
}

export async function listParts(c: S3Call, bucket: string, key: string): Promise<void> {
  const uploadId = c.query.uploadId ?? "";
  const after = intParam(c.query["part-number-marker"], "part-number-marker", 0, 10_000);
  const max = intParam(c.query["max-parts"], "max-parts", 1000, 1000);
  const { parts, truncated } = await c.tenant.multipart.listParts(uploadId, full(bucket, key), {
    after,
    limit: Math.max(max, 1),
  });
  const owner = { ID: c.tenant.id, DisplayName: c.tenant.id };
  sendXml(c.res, 200, {
    ListPartsResult: {
      Bucket: bucket,
      Key: key,
      UploadId: uploadId,
      Initiator: owner,
      Owner: owner,
      StorageClass: "STANDARD",
      PartNumberMarker: after,
      ...(parts.length > 0 ? { NextPartNumberMarker: parts.at(-1)?.partNumber } : {}),
      MaxParts: max,
      IsTruncated: truncated,
      ...(parts.length > 0
        ? {
            Part: parts.map((p) => ({
              PartNumber: p.partNumber,
              LastModified: iso(p.lastModified.getTime()),
              ETag: p.etag,
              Size: p.size,
            })),
          }
        : {}),
    },
  });
}

export async function listUploads(c: S3Call, bucket: string): Promise<void> {
  await c.tenant.buckets.assertExists(bucket, "s3.listMultipartUploads");
  const q = c.query;
  const enc = encoderOf(q);
  const max = intParam(q["max-uploads"], "max-uploads", 1000, 1000);
  const prefix = q.prefix ?? "";
  const { uploads, truncated } = await c.tenant.multipart.list({
    prefix: full(bucket, prefix),
    ...(q["key-marker"] ? { keyMarker: full(bucket, q["key-marker"]) } : {}),
    ...(q["upload-id-marker"] ? { uploadIdMarker: q["upload-id-marker"] } : {}),
    limit: Math.max(max, 1),
  });
  const last = uploads.at(-1);
  const owner = { ID: c.tenant.id, DisplayName: c.tenant.id };
  sendXml(c.res, 200, {
    ListMultipartUploadsResult: {
      Bucket: bucket,
      KeyMarker: enc(q["key-marker"] ?? ""),
      UploadIdMarker: q["upload-id-marker"] ?? "",
      ...(truncated && last
        ? { NextKeyMarker: enc(last.key.slice(bucket.length + 1)), NextUploadIdMarker: last.uploadId }
        : {}),
      Prefix: enc(prefix),
      MaxUploads: max,
      IsTruncated: truncated,
      ...(uploads.length > 0
        ? {
            Upload: uploads.map((u) => ({
              Key: enc(u.key.slice(bucket.length + 1)),
              UploadId: u.uploadId,
              Initiator: owner,
              Owner: owner,
              StorageClass: "STANDARD",
              Initiated: iso(u.createdAt),
            })),
          }
        : {}),
    },
  });
}

export async function completeUpload(c: S3Call, bucket: string, key: string): Promise<void> {
  const doc = parseXml(await readWhole(c), "CompleteMultipartUpload");
  const parts = ((doc.Part ?? []) as Record<string, unknown>[]).map((p) => {
    const n = text(p?.PartNumber);
    const etag = text(p?.ETag);
    if (n === undefined || !/^\d{1,5}$/.test(n) || etag === undefined)
      throw invalid("each Part needs PartNumber and ETag");
    return { partNumber: Number(n), etag };
  });
  const info = await c.tenant.multipart.complete(c.query.uploadId ?? "", full(bucket, key), parts);
  sendXml(c.res, 200, {
    CompleteMultipartUploadResult: {
      Location: `/${bucket}/${key}`,
      Bucket: bucket,
      Key: key,
      ETag: info.etag,
    },
  });
}

export async function abortUpload(c: S3Call, bucket: string, key: string): Promise<void> {
  await c.tenant.multipart.abort(c.query.uploadId ?? "", full(bucket, key));
  sendEmpty(c.res, 204);
}
