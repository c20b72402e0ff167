/**
 * `s3`: blob store on Amazon S3 and S3-compatible servers (radosgw, MinIO, …), with the AWS
 * SDK v3. The SDK is loaded inside `create()`, so configs that never use S3 never load it.
 * This file holds the definition and the store (checks, delete, copy, presign); the client,
 * reads, writes and listing are in `client.ts`, `reader.ts`, `writer.ts` and `lister.ts`.
 *
 * Decisions (docs/adr/0004-s3-adapter.md): one request attempt per call (retries belong to
 * Kura's retry layer), no SDK checksums unless the operation requires them (Kura computes its
 * own SHA-256 and keeps it in the object's `kura_sha256` metadata), multipart uploads through
 * lib-storage followed by a copy onto itself that records the SHA-256 known only at the end.
 */
import { createHash } from "node:crypto";
import type * as S3Sdk from "@aws-sdk/client-s3";
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
  GetOptions,
  GetResult,
  ListOptions,
  ListPage,
  PresignOptions,
  PresignResult,
  PutOptions,
  PutResult,
} from "../../../ports/blob-store.js";
import { checkGetOptions, checkPresign, checkPutOptions, narrowCapabilities, notFound } from "../common.js";
import { createS3Client, loadSdk, quoteEtag, S3Bucket } from "./client.js";
import { s3HttpStatus, translateS3Error } from "./errors.js";
import { listS3Page } from "./lister.js";
import { parseS3Options, type S3Options } from "./options.js";
import { S3Reader } from "./reader.js";
import { S3Writer } from "./writer.js";

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

/** DeleteObjects takes at most this many keys per request. */
const DELETE_BATCH = 1000;
/** S3 object names are at most 1,024 bytes of UTF-8, store prefix included. */
const MAX_S3_KEY_BYTES = 1024;

class S3BlobStore implements BlobStore {
  readonly scheme = "s3";
  readonly location: string;
  readonly capabilities: BlobCapabilities;
  private readonly b: S3Bucket;
  private readonly reader: S3Reader;
  private readonly writer: S3Writer;
  private closed = false;

  constructor(
    bucket: S3Bucket,
    options: S3Options,
    private readonly deps: BlobStoreDeps,
  ) {
    this.b = bucket;
    this.location =
      options.prefix === "" ? options.bucket : `${options.bucket}/${options.prefix.slice(0, -1)}`;
    this.capabilities = narrowCapabilities(CAPABILITIES, deps.capabilityOverrides);
    this.reader = new S3Reader(bucket);
    this.writer = new S3Writer(bucket, options, this);
  }

  private open(operation: string): void {
    if (this.closed) throw closedError("the blob store", operation);
  }

  /** BLOB-7, plus S3's own limit: the store prefix and the key share 1,024 bytes. */
  private checkKey(key: string, operation: string): void {
    assertValidKey(key, operation);
    const prefix = this.b.prefix;
    if (prefix !== "" && Buffer.byteLength(prefix + key, "utf8") > MAX_S3_KEY_BYTES) {
      throw new KuraError(
        "KEY_INVALID",
        `invalid object key: with the store prefix ${JSON.stringify(prefix)} it exceeds S3's ${MAX_S3_KEY_BYTES} bytes`,
        { operation, context: { key: key.slice(0, 200), prefix } },
      );
    }
  }

  async put(key: string, body: BlobBody, options: PutOptions = {}): Promise<PutResult> {
    this.open("blob.put");
    checkPutOptions(key, options);
    this.checkKey(key, "blob.put");
    return this.writer.put(key, body, options);
  }

  async get(key: string, options: GetOptions = {}): Promise<GetResult> {
    this.open("blob.get");
    checkGetOptions(key, options);
    this.checkKey(key, "blob.get");
    return this.reader.get(key, options);
  }

  async getBuffer(
    key: string,
    options: Omit<GetOptions, "range"> = {},
  ): Promise<{ info: BlobInfo; data: Buffer }> {
    this.open("blob.get");
    checkGetOptions(key, options);
    this.checkKey(key, "blob.get");
    return this.reader.getBuffer(key, options);
  }

  async head(key: string, options: { signal?: AbortSignal } = {}): Promise<BlobInfo> {
    this.open("blob.head");
    this.checkKey(key, "blob.head");
    return this.reader.head(key, options.signal);
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

  async delete(keys: string | readonly string[], options: { signal?: AbortSignal } = {}): Promise<void> {
    this.open("blob.delete");
    const b = this.b;
    const list = typeof keys === "string" ? [keys] : [...keys];
    for (const key of list) this.checkKey(key, "blob.delete");
    if (list.length === 1) {
      const key = list[0]!;
      await b.call("blob.delete", key, () =>
        b.client.send(new b.sdk.s3.DeleteObjectCommand({ Bucket: b.bucket, Key: b.objectKey(key) }), {
          abortSignal: options.signal,
        }),
      );
      return;
    }
    for (let i = 0; i < list.length; i += DELETE_BATCH) {
      const batch = list.slice(i, i + DELETE_BATCH);
      const out = await b.call("blob.delete", undefined, () =>
        b.client.send(
          new b.sdk.s3.DeleteObjectsCommand({
            Bucket: b.bucket,
            Delete: { Objects: batch.map((k) => ({ Key: b.objectKey(k) })), Quiet: true },
          }),
          { abortSignal: options.signal },
        ),
      );
      // Per-key failures come back in a 200 response; a missing key is not one of them.
      const failed = (out.Errors ?? []).filter((e) => e.Code !== "NoSuchKey");
      const first = failed[0];
      if (first) {
        const key = first.Key?.startsWith(b.prefix) ? first.Key.slice(b.prefix.length) : first.Key;
        throw translateS3Error(
          Object.assign(new Error(first.Message ?? first.Code ?? "delete failed"), { Code: first.Code }),
          {
            operation: "blob.delete",
            bucket: b.bucket,
            ...(key === undefined ? {} : { key }),
          },
        );
      }
    }
  }

  async list(prefix: string, options: ListOptions = {}): Promise<ListPage> {
    this.open("blob.list");
    assertValidPrefix(prefix);
    return listS3Page(this.b, this.scheme, prefix, options);
  }

  async copy(
    sourceKey: string,
    targetKey: string,
    options: { signal?: AbortSignal } = {},
  ): Promise<PutResult> {
    this.open("blob.copy");
    this.checkKey(sourceKey, "blob.copy");
    this.checkKey(targetKey, "blob.copy");
    const b = this.b;
    const source = await this.head(sourceKey, options).catch((e: unknown) => {
      throw e instanceof KuraError && e.code === "BLOB_NOT_FOUND" ? notFound(sourceKey, "blob.copy", e) : e;
    });
    let out: S3Sdk.CopyObjectCommandOutput;
    try {
      out = await b.client.send(
        new b.sdk.s3.CopyObjectCommand({
          Bucket: b.bucket,
          Key: b.objectKey(targetKey),
          CopySource: b.copySource(sourceKey),
          MetadataDirective: "COPY",
          // The SHA-256 reported is the source's as of the HEAD above; the copy must be of that version.
          ...(source.etag === undefined ? {} : { CopySourceIfMatch: source.etag }),
          ...b.sse,
        }),
        { abortSignal: options.signal },
      );
    } catch (e) {
      // A server that cannot copy this object server-side (radosgw 16 with SSE-KMS): stream it.
      if (s3HttpStatus(e) === 501) return this.copyThrough(source, targetKey, options);
      const error = translateS3Error(e, { operation: "blob.copy", bucket: b.bucket, key: sourceKey });
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

  async presign(key: string, options: PresignOptions): Promise<PresignResult> {
    this.open("blob.presign");
    checkPresign(key, options, this.capabilities, this.scheme);
    this.checkKey(key, "blob.presign");
    const b = this.b;
    const now = this.deps.now?.() ?? Date.now();
    const headers: Record<string, string> = {};
    const command =
      options.method === "GET"
        ? new b.sdk.s3.GetObjectCommand({ Bucket: b.bucket, Key: b.objectKey(key) })
        : new b.sdk.s3.PutObjectCommand({
            Bucket: b.bucket,
            Key: b.objectKey(key),
            ...(options.contentType ? { ContentType: options.contentType } : {}),
            ...b.sse,
          });
    if (options.method === "PUT") {
      if (options.contentType) headers["content-type"] = options.contentType;
      // The presigner keeps SSE headers out of the query string: the uploader must send them.
      if (b.sse.ServerSideEncryption) headers["x-amz-server-side-encryption"] = b.sse.ServerSideEncryption;
      if (b.sse.SSEKMSKeyId) headers["x-amz-server-side-encryption-aws-kms-key-id"] = b.sse.SSEKMSKeyId;
    }
    const url = await b.call("blob.presign", key, () =>
      b.sdk.getSignedUrl(b.client, command, {
        expiresIn: options.expiresIn,
        signingDate: new Date(now),
      }),
    );
    return { url, method: options.method, expiresAt: new Date(now + options.expiresIn * 1000), headers };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.b.client.destroy();
  }
}

export const s3BlobStore: BlobStoreDefinition<S3Options> = {
  scheme: "s3",
  capabilities: CAPABILITIES,
  parseOptions: parseS3Options,
  create: async (options, deps = {}) => {
    const sdk = await loadSdk();
    return new S3BlobStore(new S3Bucket(sdk, createS3Client(sdk, options), options), options, deps);
  },
};
