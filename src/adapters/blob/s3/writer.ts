/**
 * `s3` writes: a body up to the multipart threshold in one PutObject (with Content-MD5), a
 * longer stream through lib-storage's multipart upload followed by a copy onto itself that
 * records the SHA-256, and the abort that leaves no parts behind when anything fails.
 */
import { createHash } from "node:crypto";
import { PassThrough, type Readable } from "node:stream";
import { HashingStream, peek, sha256Hex, toReadable } from "../../../core/checksum.js";
import { KuraError } from "../../../core/errors.js";
import type { BlobBody, BlobCapabilities, PutOptions, PutResult } from "../../../ports/blob-store.js";
import { alreadyExists, DEFAULT_CONTENT_TYPE, SHA256_METADATA_KEY, throwIfAborted } from "../common.js";
import { quoteEtag, type S3Bucket } from "./client.js";
import { s3HttpStatus, translateS3Error } from "./errors.js";
import type { S3Options } from "./options.js";

const MIB = 1024 * 1024;
/** Parts uploaded at once by a multipart upload. */
const UPLOAD_QUEUE = 4;
/** CopyObject copies at most 5 GiB in one request; larger objects keep their SHA-256 only in the catalog. */
const MAX_SINGLE_COPY_BYTES = 5 * 1024 * MIB;

/** What the writer asks of its store: whether a key exists, and removing a half-written one. */
export interface S3WriterStore {
  readonly capabilities: BlobCapabilities;
  exists(key: string): Promise<boolean>;
  delete(key: string): Promise<void>;
}

/** Puts into one bucket; the store has checked the key, the options and that it is open. */
export class S3Writer {
  constructor(
    private readonly b: S3Bucket,
    private readonly options: S3Options,
    private readonly store: S3WriterStore,
  ) {}

  async put(key: string, body: BlobBody, options: PutOptions): Promise<PutResult> {
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
      Bucket: this.b.bucket,
      Key: this.b.objectKey(key),
      ContentType: options.contentType ?? DEFAULT_CONTENT_TYPE,
      Metadata: {
        ...(options.metadata ?? {}),
        ...(sha256 === undefined ? {} : { [SHA256_METADATA_KEY]: sha256 }),
      },
      ...this.b.sse,
    };
  }

  /** Without an atomic conditional create, check first (racy; see the ADR). */
  private async refuseIfExists(key: string, options: PutOptions): Promise<void> {
    if (options.ifNoneMatch !== "*" || this.store.capabilities.conditionalCreate) return;
    if (await this.store.exists(key)) throw alreadyExists(key);
  }

  private async putBuffer(key: string, data: Buffer, options: PutOptions): Promise<PutResult> {
    const b = this.b;
    const sha256 = sha256Hex(data);
    await this.refuseIfExists(key, options);
    const out = await b.call("blob.put", key, () =>
      b.client.send(
        new b.sdk.s3.PutObjectCommand({
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
    if (options.ifNoneMatch === "*" && (await this.store.exists(key))) throw alreadyExists(key);
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
    const upload = new this.b.sdk.Upload({
      client: this.b.client,
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
      throw translateS3Error(e, { operation: "blob.put", bucket: this.b.bucket, key });
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
    const b = this.b;
    try {
      const out = await b.client.send(
        new b.sdk.s3.CopyObjectCommand({
          ...this.putParams(key, options, sha256),
          CopySource: b.copySource(key),
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
      const error = translateS3Error(e, { operation: "blob.put", bucket: b.bucket, key });
      if (error.code === "BLOB_ALREADY_EXISTS" || error.code === "BLOB_NOT_FOUND") return etag; // replaced or deleted since
      // The object is there but unlabelled: remove it so a failed put leaves nothing behind.
      await this.store.delete(key).catch(() => undefined);
      throw error;
    }
  }

  private async abortUpload(key: string, uploadId: string | undefined): Promise<void> {
    if (uploadId === undefined) return;
    await this.b.client
      .send(
        new this.b.sdk.s3.AbortMultipartUploadCommand({
          Bucket: this.b.bucket,
          Key: this.b.objectKey(key),
          UploadId: uploadId,
        }),
      )
      .catch(() => undefined); // already aborted by lib-storage (NoSuchUpload), or the server is gone
  }
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
