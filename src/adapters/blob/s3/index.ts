/**
 * `s3`: blob store on Amazon S3 and S3-compatible servers (radosgw, MinIO, …), with the AWS
 * SDK v3. The SDK is loaded inside `create()`, so configs that never use S3 never load it.
 *
 * Decisions (docs/adr/0004-s3-adapter.md): one request attempt per call (retries belong to
 * Kura's retry layer), no SDK checksums unless the operation requires them (Kura computes its
 * own SHA-256 and keeps it in the object's `kura_sha256` metadata), multipart uploads through
 * lib-storage followed by a copy onto itself that records the SHA-256 known only at the end.
 */
import { createHash } from "node:crypto";
import { PassThrough, type Readable, type Transform } from "node:stream";
import type * as S3Sdk from "@aws-sdk/client-s3";
import type * as LibStorage from "@aws-sdk/lib-storage";
import type * as Presigner from "@aws-sdk/s3-request-presigner";
import {
  collect,
  HashingStream,
  peek,
  sha256Hex,
  toReadable,
  VerifyingStream,
  verifyBuffer,
} from "../../../core/checksum.js";
import { KuraError } from "../../../core/errors.js";
import { assertValidKey, assertValidPrefix } from "../../../core/keys.js";
import { closedError } from "../../../core/lifecycle.js";
import type {
  BlobBody,
  BlobCapabilities,
  BlobInfo,
  BlobStore,
  BlobStoreDefinition,
  BlobStoreDeps,
  ByteRange,
  GetOptions,
  GetResult,
  ListOptions,
  ListPage,
  PresignOptions,
  PresignResult,
  PutOptions,
  PutResult,
} from "../../../ports/blob-store.js";
import {
  alreadyExists,
  checkGetOptions,
  checkPresign,
  checkPutOptions,
  DEFAULT_CONTENT_TYPE,
  decodeCursor,
  encodeCursor,
  listLimit,
  narrowCapabilities,
  notFound,
  resolveRange,
  SHA256_METADATA_KEY,
  splitMetadata,
  throwIfAborted,
} from "../common.js";
import { s3HttpStatus, translateS3Error } from "./errors.js";
import { parseS3Options, type S3Options } from "./options.js";

export type { S3Options } from "./options.js";

const CAPABILITIES: BlobCapabilities = Object.freeze({
  rangeRead: true,
  conditionalCreate: true,
  multipart: true,
  presign: true,
  presignEnforced: true,
  serverSideCopy: true,
  checksumInMetadata: true,
  serverSideEncryption: true,
  remote: true,
  localFiles: false,
  urlScheme: "s3",
});

const MIB = 1024 * 1024;
/** DeleteObjects takes at most this many keys per request. */
const DELETE_BATCH = 1000;
/** Parts uploaded at once by a multipart upload. */
const UPLOAD_QUEUE = 4;
/** CopyObject copies at most 5 GiB in one request; larger objects keep their SHA-256 only in the catalog. */
const MAX_SINGLE_COPY_BYTES = 5 * 1024 * MIB;
/** S3 object names are at most 1,024 bytes of UTF-8, store prefix included. */
const MAX_S3_KEY_BYTES = 1024;

interface Sdk {
  s3: typeof S3Sdk;
  Upload: typeof LibStorage.Upload;
  getSignedUrl: typeof Presigner.getSignedUrl;
}

/** Headers and parameters that make S3 encrypt an object as the options ask. */
interface SseParams {
  ServerSideEncryption?: S3Sdk.ServerSideEncryption;
  SSEKMSKeyId?: string;
}

class S3BlobStore implements BlobStore {
  readonly scheme = "s3";
  readonly location: string;
  readonly capabilities: BlobCapabilities;
  private readonly bucket: string;
  private readonly prefix: string;
  private readonly sse: SseParams;
  private closed = false;

  constructor(
    private readonly sdk: Sdk,
    private readonly client: S3Sdk.S3Client,
    private readonly options: S3Options,
    private readonly deps: BlobStoreDeps,
  ) {
    this.bucket = options.bucket;
    this.prefix = options.prefix;
    this.location =
      options.prefix === "" ? options.bucket : `${options.bucket}/${options.prefix.slice(0, -1)}`;
    this.capabilities = narrowCapabilities(CAPABILITIES, deps.capabilityOverrides);
    this.sse =
      options.encryption === "sse-s3"
        ? { ServerSideEncryption: "AES256" }
        : options.encryption === "sse-kms"
          ? {
              ServerSideEncryption: "aws:kms",
              ...(options.kms_key_id ? { SSEKMSKeyId: options.kms_key_id } : {}),
            }
          : {};
  }

  private open(operation: string): void {
    if (this.closed) throw closedError("the blob store", operation);
  }

  private objectKey(key: string): string {
    return this.prefix + key;
  }

  /** BLOB-7, plus S3's own limit: the store prefix and the key share 1,024 bytes. */
  private checkKey(key: string, operation: string): void {
    assertValidKey(key, operation);
    if (this.prefix !== "" && Buffer.byteLength(this.prefix + key, "utf8") > MAX_S3_KEY_BYTES) {
      throw new KuraError(
        "KEY_INVALID",
        `invalid object key: with the store prefix ${JSON.stringify(this.prefix)} it exceeds S3's ${MAX_S3_KEY_BYTES} bytes`,
        { operation, context: { key: key.slice(0, 200), prefix: this.prefix } },
      );
    }
  }

  /** Run one SDK call, translating whatever it throws. */
  private async call<T>(operation: string, key: string | undefined, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      throw translateS3Error(e, { operation, bucket: this.bucket, ...(key === undefined ? {} : { key }) });
    }
  }

  // ---- put ---------------------------------------------------------------------------------

  async put(key: string, body: BlobBody, options: PutOptions = {}): Promise<PutResult> {
    this.open("blob.put");
    checkPutOptions(key, options);
    this.checkKey(key, "blob.put");
    throwIfAborted(options.signal, "blob.put");
    if (body instanceof Uint8Array) {
      return this.putBuffer(key, Buffer.from(body.buffer, body.byteOffset, body.byteLength), options);
    }
    let peeked: Awaited<ReturnType<typeof peek>>;
    try {
      peeked = await peek(toReadable(body), this.options.multipart_threshold_mb * MIB);
    } catch (e) {
      throw bodyFailed(key, e);
    }
    throwIfAborted(options.signal, "blob.put");
    if (peeked.ended) return this.putBuffer(key, peeked.head, options);
    return this.putMultipart(key, peeked.rest, options);
  }

  private putParams(key: string, options: PutOptions, sha256: string | undefined) {
    return {
      Bucket: this.bucket,
      Key: this.objectKey(key),
      ContentType: options.contentType ?? DEFAULT_CONTENT_TYPE,
      Metadata: {
        ...(options.metadata ?? {}),
        ...(sha256 === undefined ? {} : { [SHA256_METADATA_KEY]: sha256 }),
      },
      ...this.sse,
    };
  }

  /** Without an atomic conditional create, check first (racy; see the ADR). */
  private async refuseIfExists(key: string, options: PutOptions): Promise<void> {
    if (options.ifNoneMatch !== "*" || this.capabilities.conditionalCreate) return;
    if (await this.exists(key)) throw alreadyExists(key);
  }

  private async putBuffer(key: string, data: Buffer, options: PutOptions): Promise<PutResult> {
    const sha256 = sha256Hex(data);
    await this.refuseIfExists(key, options);
    const out = await this.call("blob.put", key, () =>
      this.client.send(
        new this.sdk.s3.PutObjectCommand({
          ...this.putParams(key, options, sha256),
          Body: data,
          ContentLength: data.length,
          // The backend checks the transport against it (every S3 server supports Content-MD5).
          ContentMD5: createHash("md5").update(data).digest("base64"),
          ...(options.ifNoneMatch === "*" ? { IfNoneMatch: "*" } : {}),
        }),
        { abortSignal: options.signal },
      ),
    );
    return { key, size: data.length, sha256, etag: quoteEtag(out.ETag) };
  }

  /**
   * A stream above the threshold: lib-storage uploads it in parts while it is hashed; once
   * complete, a copy onto itself records the SHA-256 in the metadata. A failure anywhere
   * aborts the multipart upload, so no parts are left behind.
   */
  private async putMultipart(key: string, source: Readable, options: PutOptions): Promise<PutResult> {
    // On AWS, IfNoneMatch on CompleteMultipartUpload makes the create atomic; servers that ignore
    // it (radosgw 16) get this check only, which a concurrent writer can race (see the ADR).
    if (options.ifNoneMatch === "*" && (await this.exists(key))) throw alreadyExists(key);
    let bodyError: unknown;
    const hashing = new HashingStream();
    // lib-storage takes a numeric `size` on its Body for the length, and HashingStream has one
    // (its running count), so the upload reads from a plain PassThrough behind it.
    const uploadBody = new PassThrough();
    source.once("error", (e) => {
      bodyError = e;
      uploadBody.destroy(e);
    });
    source.pipe(hashing).pipe(uploadBody);

    // Aborting ends the body with an error: lib-storage then aborts the multipart upload and
    // waits for that before `done()` rejects, so nothing is left behind when we return.
    const onAbort = () => uploadBody.destroy(new Error("aborted"));
    options.signal?.addEventListener("abort", onAbort, { once: true });
    const upload = new this.sdk.Upload({
      client: this.client,
      params: {
        ...this.putParams(key, options, undefined),
        Body: uploadBody,
        ...(options.ifNoneMatch === "*" ? { IfNoneMatch: "*" } : {}),
      },
      partSize: this.options.multipart_chunk_mb * MIB,
      queueSize: UPLOAD_QUEUE,
      leavePartsOnError: false,
    });
    let completedEtag: string | undefined;
    try {
      completedEtag = quoteEtag((await upload.done()).ETag);
    } catch (e) {
      source.destroy();
      uploadBody.destroy();
      // lib-storage has aborted the upload already; this covers an abort that failed (idempotent).
      await this.abortUpload(key, upload.uploadId);
      if (bodyError !== undefined) throw bodyFailed(key, bodyError);
      if (options.signal?.aborted)
        throw new KuraError("OPERATION_ABORTED", "blob.put was aborted", {
          operation: "blob.put",
          context: { key },
          cause: e,
        });
      throw translateS3Error(e, { operation: "blob.put", bucket: this.bucket, key });
    } finally {
      options.signal?.removeEventListener("abort", onAbort);
    }

    const sha256 = hashing.sha256();
    const size = hashing.size;
    if (size > MAX_SINGLE_COPY_BYTES) return { key, size, sha256, etag: completedEtag };
    const etag = await this.recordChecksum(key, options, sha256, completedEtag);
    return { key, size, sha256, etag };
  }

  /**
   * Copy the just-completed object onto itself with `kura_sha256` added. `CopySourceIfMatch`
   * makes sure the bytes hashed are the bytes labelled: if another writer replaced the object
   * meanwhile, theirs is the newer version and ours counts as overwritten.
   */
  private async recordChecksum(
    key: string,
    options: PutOptions,
    sha256: string,
    etag: string | undefined,
  ): Promise<string | undefined> {
    try {
      const out = await this.client.send(
        new this.sdk.s3.CopyObjectCommand({
          ...this.putParams(key, options, sha256),
          CopySource: this.copySource(key),
          MetadataDirective: "REPLACE",
          ...(etag === undefined ? {} : { CopySourceIfMatch: etag }),
        }),
        { abortSignal: options.signal },
      );
      return quoteEtag(out.CopyObjectResult?.ETag) ?? etag;
    } catch (e) {
      // A server that cannot copy this object (radosgw 16 cannot copy SSE-KMS objects) keeps it
      // unlabelled: the put still returns the SHA-256, which the caller records (see the ADR).
      if (s3HttpStatus(e) === 501) return etag;
      const error = translateS3Error(e, { operation: "blob.put", bucket: this.bucket, key });
      if (error.code === "BLOB_ALREADY_EXISTS" || error.code === "BLOB_NOT_FOUND") return etag; // replaced or deleted since
      // The object is there but unlabelled: remove it so a failed put leaves nothing behind.
      await this.delete(key).catch(() => undefined);
      throw error;
    }
  }

  private async abortUpload(key: string, uploadId: string | undefined): Promise<void> {
    if (uploadId === undefined) return;
    await this.client
      .send(
        new this.sdk.s3.AbortMultipartUploadCommand({
          Bucket: this.bucket,
          Key: this.objectKey(key),
          UploadId: uploadId,
        }),
      )
      .catch(() => undefined); // already aborted by lib-storage (NoSuchUpload), or the server is gone
  }

  // ---- get / head --------------------------------------------------------------------------

  async get(key: string, options: GetOptions = {}): Promise<GetResult> {
    this.open("blob.get");
    checkGetOptions(key, options);
    this.checkKey(key, "blob.get");
    const { info, body, range } = await this.fetchObject(key, options.range, options.signal);
    if (range) return { info, body: this.guard(key, body, new PassThrough()), range };
    const expected = options.expectedSha256 ?? info.sha256;
    const dest = expected === undefined ? new PassThrough() : new VerifyingStream(expected, key, info.size);
    return { info, body: this.guard(key, body, dest), range: undefined };
  }

  async getBuffer(
    key: string,
    options: Omit<GetOptions, "range"> = {},
  ): Promise<{ info: BlobInfo; data: Buffer }> {
    this.open("blob.get");
    checkGetOptions(key, options);
    this.checkKey(key, "blob.get");
    const { info, body } = await this.fetchObject(key, undefined, options.signal);
    const data = await collect(this.guard(key, body, new PassThrough()));
    verifyBuffer(data, options.expectedSha256 ?? info.sha256, key, "blob.get");
    return { info, data };
  }

  /** GetObject, with the object's info and the raw (unverified, untranslated) body stream. */
  private async fetchObject(
    key: string,
    range: ByteRange | undefined,
    signal: AbortSignal | undefined,
  ): Promise<{ info: BlobInfo; body: Readable; range: { start: number; end: number } | undefined }> {
    let out: S3Sdk.GetObjectCommandOutput;
    try {
      out = await this.client.send(
        new this.sdk.s3.GetObjectCommand({
          Bucket: this.bucket,
          Key: this.objectKey(key),
          // Always `bytes=start-[end]`: suffix ranges (`bytes=-N`) are served wrongly by some
          // servers. `bytes=0-` is the whole object: asked for without a Range header, which
          // also spares empty objects S3's 416.
          ...(range && (range.start > 0 || range.end !== undefined)
            ? { Range: `bytes=${range.start}-${range.end ?? ""}` }
            : {}),
        }),
        { abortSignal: signal },
      );
    } catch (e) {
      const error = translateS3Error(e, { operation: "blob.get", bucket: this.bucket, key });
      if (error.code === "RANGE_INVALID" && range) {
        // S3 refuses every range of an empty object; the port allows start 0 there.
        const info = await this.head(key, signal ? { signal } : {});
        return { info, body: emptyReadable(), range: resolveRange(key, range, info.size) };
      }
      throw error;
    }
    const body = (out.Body as Readable | undefined) ?? emptyReadable();
    const total = out.ContentRange === undefined ? undefined : totalFromContentRange(out.ContentRange);
    const info = this.info(key, out, total ?? out.ContentLength ?? 0);
    return { info, body, range: range ? resolveRange(key, range, info.size) : undefined };
  }

  /**
   * Pipe the SDK's response stream into `dest`, turning a dropped connection into a translated
   * error on `dest` (so a reader never sees a clean end) and releasing the connection when the
   * reader stops early.
   */
  private guard(key: string, source: Readable, dest: Transform): Readable {
    source.once("error", (e) =>
      dest.destroy(translateS3Error(e, { operation: "blob.get", bucket: this.bucket, key })),
    );
    dest.once("close", () => {
      if (!source.readableEnded) source.destroy();
    });
    source.pipe(dest);
    return dest;
  }

  async head(key: string, options: { signal?: AbortSignal } = {}): Promise<BlobInfo> {
    this.open("blob.head");
    this.checkKey(key, "blob.head");
    const out = await this.call("blob.head", key, () =>
      this.client.send(new this.sdk.s3.HeadObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key) }), {
        abortSignal: options.signal,
      }),
    );
    return this.info(key, out, out.ContentLength ?? 0);
  }

  async exists(key: string): Promise<boolean> {
    try {
      await this.head(key);
      return true;
    } catch (e) {
      if (e instanceof KuraError && e.code === "BLOB_NOT_FOUND") return false;
      throw e;
    }
  }

  private info(
    key: string,
    out: { ContentType?: string; ETag?: string; LastModified?: Date; Metadata?: Record<string, string> },
    size: number,
  ): BlobInfo {
    const { sha256, metadata } = splitMetadata(fromS3Metadata(out.Metadata));
    return {
      key,
      size,
      sha256,
      contentType: out.ContentType ?? DEFAULT_CONTENT_TYPE,
      etag: quoteEtag(out.ETag),
      lastModified: out.LastModified ?? new Date(0),
      metadata,
    };
  }

  // ---- delete / list / copy ----------------------------------------------------------------

  async delete(keys: string | readonly string[], options: { signal?: AbortSignal } = {}): Promise<void> {
    this.open("blob.delete");
    const list = typeof keys === "string" ? [keys] : [...keys];
    for (const key of list) this.checkKey(key, "blob.delete");
    if (list.length === 1) {
      const key = list[0]!;
      await this.call("blob.delete", key, () =>
        this.client.send(
          new this.sdk.s3.DeleteObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key) }),
          {
            abortSignal: options.signal,
          },
        ),
      );
      return;
    }
    for (let i = 0; i < list.length; i += DELETE_BATCH) {
      const batch = list.slice(i, i + DELETE_BATCH);
      const out = await this.call("blob.delete", undefined, () =>
        this.client.send(
          new this.sdk.s3.DeleteObjectsCommand({
            Bucket: this.bucket,
            Delete: { Objects: batch.map((k) => ({ Key: this.objectKey(k) })), Quiet: true },
          }),
          { abortSignal: options.signal },
        ),
      );
      // Per-key failures come back in a 200 response; a missing key is not one of them.
      const failed = (out.Errors ?? []).filter((e) => e.Code !== "NoSuchKey");
      const first = failed[0];
      if (first) {
        const key = first.Key?.startsWith(this.prefix) ? first.Key.slice(this.prefix.length) : first.Key;
        throw translateS3Error(
          Object.assign(new Error(first.Message ?? first.Code ?? "delete failed"), { Code: first.Code }),
          {
            operation: "blob.delete",
            bucket: this.bucket,
            ...(key === undefined ? {} : { key }),
          },
        );
      }
    }
  }

  async list(prefix: string, options: ListOptions = {}): Promise<ListPage> {
    this.open("blob.list");
    assertValidPrefix(prefix);
    const limit = listLimit(options);
    const state = decodeCursor(this.scheme, options.cursor);
    if (state !== undefined && (state.p !== prefix || typeof state.t !== "string")) {
      throw new KuraError("CURSOR_INVALID", "the cursor belongs to another listing", {
        operation: "blob.list",
        context: { prefix },
      });
    }
    const out = await this.call("blob.list", undefined, () =>
      this.client.send(
        new this.sdk.s3.ListObjectsV2Command({
          Bucket: this.bucket,
          Prefix: this.objectKey(prefix),
          MaxKeys: limit,
          ...(state?.t ? { ContinuationToken: state.t } : {}),
        }),
        { abortSignal: options.signal },
      ),
    );
    // S3 lists in UTF-8 byte order already. A listing carries no content type or metadata
    // (that would take one HEAD per key): items have the defaults and `sha256` undefined.
    const items: BlobInfo[] = (out.Contents ?? [])
      .filter((o) => o.Key?.startsWith(this.prefix))
      .map((o) => ({
        key: o.Key!.slice(this.prefix.length),
        size: o.Size ?? 0,
        sha256: undefined,
        contentType: DEFAULT_CONTENT_TYPE,
        etag: quoteEtag(o.ETag),
        lastModified: o.LastModified ?? new Date(0),
        metadata: {},
      }));
    const next = out.IsTruncated ? out.NextContinuationToken : undefined;
    return { items, cursor: next ? encodeCursor(this.scheme, { p: prefix, t: next }) : undefined };
  }

  /** `bucket/key` for CopySource, every segment URI-encoded. */
  private copySource(key: string): string {
    return `${encodeURIComponent(this.bucket)}/${this.objectKey(key).split("/").map(encodeURIComponent).join("/")}`;
  }

  async copy(
    sourceKey: string,
    targetKey: string,
    options: { signal?: AbortSignal } = {},
  ): Promise<PutResult> {
    this.open("blob.copy");
    this.checkKey(sourceKey, "blob.copy");
    this.checkKey(targetKey, "blob.copy");
    const source = await this.head(sourceKey, options).catch((e: unknown) => {
      throw e instanceof KuraError && e.code === "BLOB_NOT_FOUND" ? notFound(sourceKey, "blob.copy", e) : e;
    });
    let out: S3Sdk.CopyObjectCommandOutput;
    try {
      out = await this.client.send(
        new this.sdk.s3.CopyObjectCommand({
          Bucket: this.bucket,
          Key: this.objectKey(targetKey),
          CopySource: this.copySource(sourceKey),
          MetadataDirective: "COPY",
          // The SHA-256 reported is the source's as of the HEAD above; the copy must be of that version.
          ...(source.etag === undefined ? {} : { CopySourceIfMatch: source.etag }),
          ...this.sse,
        }),
        { abortSignal: options.signal },
      );
    } catch (e) {
      // A server that cannot copy this object server-side (radosgw 16 with SSE-KMS): stream it.
      if (s3HttpStatus(e) === 501) return this.copyThrough(source, targetKey, options);
      const error = translateS3Error(e, { operation: "blob.copy", bucket: this.bucket, key: sourceKey });
      if (error.code === "BLOB_ALREADY_EXISTS") {
        throw new KuraError(
          "BLOB_BACKEND_UNAVAILABLE",
          `${sourceKey} changed while it was being copied; try again`,
          {
            operation: "blob.copy",
            context: { key: sourceKey, target: targetKey },
            cause: e,
          },
        );
      }
      if (error.code === "BLOB_NOT_FOUND") throw notFound(sourceKey, "blob.copy", e);
      throw error;
    }
    const etag = quoteEtag(out.CopyObjectResult?.ETag);
    if (source.sha256 !== undefined)
      return { key: targetKey, size: source.size, sha256: source.sha256, etag };
    // An object without a recorded checksum (written by something else): hash the copy.
    const hash = createHash("sha256");
    let size = 0;
    for await (const chunk of (await this.get(targetKey, options)).body as AsyncIterable<Buffer>) {
      hash.update(chunk);
      size += chunk.length;
    }
    return { key: targetKey, size, sha256: hash.digest("hex"), etag };
  }

  /** Copy by reading and writing through Kura, verified against the source's SHA-256. */
  private async copyThrough(
    source: BlobInfo,
    targetKey: string,
    options: { signal?: AbortSignal },
  ): Promise<PutResult> {
    const { body } = await this.get(source.key, {
      ...(source.sha256 ? { expectedSha256: source.sha256 } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
    });
    return this.put(targetKey, body, {
      contentType: source.contentType,
      metadata: source.metadata,
      ...(options.signal ? { signal: options.signal } : {}),
    });
  }

  // ---- presign / close ---------------------------------------------------------------------

  async presign(key: string, options: PresignOptions): Promise<PresignResult> {
    this.open("blob.presign");
    checkPresign(key, options, this.capabilities, this.scheme);
    this.checkKey(key, "blob.presign");
    const now = this.deps.now?.() ?? Date.now();
    const headers: Record<string, string> = {};
    const command =
      options.method === "GET"
        ? new this.sdk.s3.GetObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key) })
        : new this.sdk.s3.PutObjectCommand({
            Bucket: this.bucket,
            Key: this.objectKey(key),
            ...(options.contentType ? { ContentType: options.contentType } : {}),
            ...this.sse,
          });
    if (options.method === "PUT") {
      if (options.contentType) headers["content-type"] = options.contentType;
      // The presigner keeps SSE headers out of the query string: the uploader must send them.
      if (this.sse.ServerSideEncryption)
        headers["x-amz-server-side-encryption"] = this.sse.ServerSideEncryption;
      if (this.sse.SSEKMSKeyId) headers["x-amz-server-side-encryption-aws-kms-key-id"] = this.sse.SSEKMSKeyId;
    }
    const url = await this.call("blob.presign", key, () =>
      this.sdk.getSignedUrl(this.client, command, {
        expiresIn: options.expiresIn,
        signingDate: new Date(now),
      }),
    );
    return { url, method: options.method, expiresAt: new Date(now + options.expiresIn * 1000), headers };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.client.destroy();
  }
}

/**
 * Metadata names as Kura wrote them. Some servers (radosgw) return `_` in `x-amz-meta-` names
 * as `-`; Kura's names never contain `-` (see common.ts), so mapping back is lossless.
 */
function fromS3Metadata(raw: Record<string, string> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(raw ?? {})) out[name.toLowerCase().replaceAll("-", "_")] = value;
  return out;
}

/** ETags in their HTTP form, `"…"`: some servers leave the quotes off in XML bodies. */
function quoteEtag(etag: string | undefined): string | undefined {
  if (etag === undefined || etag === "" || etag.startsWith('"') || etag.startsWith("W/")) return etag;
  return `"${etag}"`;
}

function emptyReadable(): Readable {
  const r = new PassThrough();
  r.end();
  return r;
}

/** `bytes 2-5/36` → 36. */
function totalFromContentRange(header: string | undefined): number | undefined {
  const m = header === undefined ? null : /\/(\d+)\s*$/.exec(header);
  return m ? Number(m[1]) : undefined;
}

/** The caller's body stream failed: nothing was stored, and the spent stream cannot be retried. */
function bodyFailed(key: string, e: unknown): KuraError {
  if (e instanceof KuraError) return e.withOperation("blob.put");
  const message = e instanceof Error ? e.message : String(e);
  return new KuraError("OPERATION_ABORTED", `the body stream failed before its end: ${message}`, {
    operation: "blob.put",
    context: { key },
    cause: e,
    retryable: false,
  });
}

async function loadSdk(): Promise<Sdk> {
  const [s3, storage, presigner] = await Promise.all([
    import("@aws-sdk/client-s3"),
    import("@aws-sdk/lib-storage"),
    import("@aws-sdk/s3-request-presigner"),
  ]);
  return { s3, Upload: storage.Upload, getSignedUrl: presigner.getSignedUrl };
}

export const s3BlobStore: BlobStoreDefinition<S3Options> = {
  scheme: "s3",
  capabilities: CAPABILITIES,
  parseOptions: parseS3Options,
  create: async (options, deps = {}) => {
    const sdk = await loadSdk();
    const client = new sdk.s3.S3Client({
      region: options.region,
      ...(options.endpoint ? { endpoint: options.endpoint } : {}),
      forcePathStyle: options.force_path_style,
      ...(options.credentials === "static"
        ? {
            credentials: {
              accessKeyId: options.access_key_id ?? "",
              secretAccessKey: options.secret_access_key ?? "",
              ...(options.session_token ? { sessionToken: options.session_token } : {}),
            },
          }
        : {}),
      // One attempt per call: Kura's retry layer owns the retry policy.
      maxAttempts: 1,
      // Kura hashes every body itself; SDK-added checksums (aws-chunked trailers) break
      // several S3-compatible servers.
      requestChecksumCalculation: "WHEN_REQUIRED",
      responseChecksumValidation: "WHEN_REQUIRED",
      // Options for the SDK's own Node handler (@smithy/node-http-handler): the timeout runs
      // until the response starts, so streaming a large body is not cut off.
      requestHandler: { requestTimeout: options.request_timeout_ms, throwOnRequestTimeout: true },
    });
    return new S3BlobStore(sdk, client, options, deps);
  },
};
