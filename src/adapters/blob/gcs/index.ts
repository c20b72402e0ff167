/**
 * `gcs`: Google Cloud Storage through its JSON API, tested against the firebase-tools storage
 * emulator.
 *
 * - put: bodies up to `multipart_threshold_mb` go in one multipart request that carries the
 *   SHA-256 in the object's metadata; larger ones (and streams that turn out larger) through a
 *   resumable session, after which the SHA-256 is added with a metadata patch pinned to the
 *   generation just written. `ifNoneMatch: "*"` is the service's `ifGenerationMatch=0`.
 * - get: the object's metadata first (so a missing key fails before any byte, and ranges are
 *   checked against the size), then the media of exactly that generation.
 * - delete: parallel single deletes (the SDK has no batch API).
 * - copy: server-side rewrite of the source generation whose checksum was read.
 * - presign: V4 signed URLs.
 *
 * The SDK is imported inside `create`, so configurations without GCS never load it.
 *
 * Over 450 lines and whole: one class implementing the BlobStore port over one SDK client, each
 * method one or two service calls; options are in `options.ts`.
 */
import { PassThrough, Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { Bucket, File, FileMetadata, StorageOptions } from "@google-cloud/storage";
import {
  collect,
  HashingStream,
  peek,
  sha256Hex,
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
  checkGetOptions,
  checkPresign,
  checkPutOptions,
  DEFAULT_CONTENT_TYPE,
  decodeCursor,
  encodeCursor,
  listLimit,
  narrowCapabilities,
  resolveRange,
  SHA256_METADATA_KEY,
  splitMetadata,
  throwIfAborted,
} from "../common.js";
import { type GcsErrorContext, pipeTranslated, translateGcsError } from "./errors.js";
import { type GcsOptions, parseGcsOptions } from "./options.js";

export type { GcsOptions } from "./options.js";

const CAPABILITIES: BlobCapabilities = Object.freeze({
  rangeRead: true,
  conditionalCreate: true,
  multipart: true,
  presign: true,
  presignEnforced: true,
  serverSideCopy: true,
  checksumInMetadata: true,
  serverSideEncryption: false,
  remote: true,
  localFiles: false,
  urlScheme: "gs",
});

const MIB = 1024 * 1024;
/** GCS object names are at most 1024 bytes of UTF-8. */
const MAX_NAME_BYTES = 1024;
/** How long a failed put waits for its resumable session to be cancelled. */
const CANCEL_TIMEOUT_MS = 5000;

class GcsBlobStore implements BlobStore {
  readonly scheme = "gcs";
  readonly location: string;
  readonly capabilities: BlobCapabilities;
  private readonly thresholdBytes: number;
  private closed = false;

  constructor(
    private readonly options: GcsOptions,
    private readonly bucket: Bucket,
    private readonly deps: BlobStoreDeps,
  ) {
    this.location =
      options.prefix === "" ? options.bucket : `${options.bucket}/${options.prefix.slice(0, -1)}`;
    this.capabilities = narrowCapabilities(CAPABILITIES, deps.capabilityOverrides);
    this.thresholdBytes = options.multipart_threshold_mb * MIB;
  }

  private open(operation: string): void {
    if (this.closed) throw closedError("the blob store", operation);
  }

  /** The object name for a key (store prefix applied), refusing names GCS would not take. */
  private name(key: string, operation: string): string {
    const name = this.options.prefix + key;
    if (Buffer.byteLength(name, "utf8") > MAX_NAME_BYTES) {
      throw new KuraError(
        "KEY_INVALID",
        `the key is too long for GCS once the store prefix is added: ${key}`,
        {
          operation,
          context: { key: key.slice(0, 200), prefix: this.options.prefix },
        },
      );
    }
    return name;
  }

  private file(key: string, operation: string, generation?: string | number): File {
    const name = this.name(key, operation);
    return generation === undefined ? this.bucket.file(name) : this.bucket.file(name, { generation });
  }

  private ctx(operation: string, key?: string, conditionalCreate?: boolean): GcsErrorContext {
    return {
      operation,
      bucket: this.options.bucket,
      ...(key === undefined ? {} : { key }),
      ...(conditionalCreate ? { conditionalCreate } : {}),
    };
  }

  private fail(ctx: GcsErrorContext): (e: unknown) => never {
    return (e) => {
      throw translateGcsError(e, ctx);
    };
  }

  async put(key: string, body: BlobBody, options: PutOptions = {}): Promise<PutResult> {
    this.open("blob.put");
    checkPutOptions(key, options);
    const file = this.file(key, "blob.put");
    throwIfAborted(options.signal, "blob.put");
    const conditional = options.ifNoneMatch === "*";
    const ctx = this.ctx("blob.put", key, conditional);
    const userMetadata = options.metadata ?? {};
    const common = {
      contentType: options.contentType ?? DEFAULT_CONTENT_TYPE,
      gzip: false,
      ...(conditional ? { preconditionOpts: { ifGenerationMatch: 0 } } : {}),
    };

    // A stream is read up to the threshold: if it ends there it is sent like a buffer.
    let data: Buffer | undefined;
    let rest: AsyncIterable<Uint8Array> | undefined;
    if (body instanceof Uint8Array) {
      data = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
    } else {
      const peeked = await peek(body, this.thresholdBytes + 1).catch((e: unknown) => {
        throw bodyFailed(key, e);
      });
      if (peeked.ended) data = peeked.head;
      else rest = peeked.rest;
    }

    if (data !== undefined && data.length <= this.thresholdBytes) {
      const sha256 = sha256Hex(data);
      const ws = file.createWriteStream({
        ...common,
        resumable: false,
        metadata: { metadata: { ...userMetadata, [SHA256_METADATA_KEY]: sha256 } },
      });
      await pipeline(Readable.from([data]), ws, { signal: options.signal }).catch(this.fail(ctx));
      return { key, size: data.length, sha256, etag: file.metadata.etag };
    }

    // Resumable session: nothing is visible under the key until the last byte is in.
    let bodyError: unknown;
    async function* guarded(source: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
      try {
        yield* source;
      } catch (e) {
        bodyError = e;
        throw e;
      }
    }
    const hashing = new HashingStream();
    let sessionUri: string | undefined;
    const ws = file.createWriteStream({
      ...common,
      resumable: true,
      metadata: { metadata: { ...userMetadata } },
      ...(this.options.multipart_chunk_mb > 0 ? { chunkSize: this.options.multipart_chunk_mb * MIB } : {}),
    });
    ws.on("uri", (uri: string) => {
      sessionUri = uri;
    });
    const source = data ? Readable.from([data]) : Readable.from(guarded(rest as AsyncIterable<Uint8Array>));
    try {
      await pipeline(source, hashing, ws, { signal: options.signal });
    } catch (e) {
      await cancelSession(sessionUri);
      throw bodyError !== undefined ? bodyFailed(key, bodyError) : translateGcsError(e, ctx);
    }
    const sha256 = hashing.sha256();
    const generation = file.metadata.generation;
    let etag = file.metadata.etag;
    if (this.capabilities.checksumInMetadata && generation !== undefined) {
      try {
        const [patched] = await file.setMetadata(
          { metadata: { [SHA256_METADATA_KEY]: sha256 } },
          { ifGenerationMatch: generation },
        );
        etag = patched.etag;
      } catch (e) {
        const err = translateGcsError(e, this.ctx("blob.put", key));
        // 412: a later put replaced the generation already; ours is gone, nothing to fix.
        if (err.context.httpStatus !== 412) {
          // The put did not complete as promised: take back the generation it wrote.
          await this.file(key, "blob.put", generation)
            .delete({ ifGenerationMatch: generation })
            .catch(() => undefined);
          throw err;
        }
      }
    }
    return { key, size: hashing.size, sha256, etag };
  }

  /** Metadata of the live generation of `key`. */
  private async metadata(key: string, operation: string): Promise<FileMetadata> {
    const [meta] = await this.file(key, operation)
      .getMetadata()
      .catch(this.fail(this.ctx(operation, key)));
    return meta;
  }

  async get(key: string, options: GetOptions = {}): Promise<GetResult> {
    this.open("blob.get");
    checkGetOptions(key, options);
    const ctx = this.ctx("blob.get", key);
    const translate = (e: unknown) => translateGcsError(e, ctx);
    const meta = await this.metadata(key, "blob.get");
    throwIfAborted(options.signal, "blob.get");
    const info = this.info(key, meta);
    // Read exactly the generation whose size and checksum were just read.
    const file = this.file(key, "blob.get", meta.generation);
    if (options.range) {
      const range = resolveRange(key, options.range, info.size);
      if (range.end < range.start) return { info, body: Readable.from([]), range };
      const source = file.createReadStream({
        start: range.start,
        end: range.end,
        validation: false,
        decompress: false,
      });
      return { info, body: pipeTranslated(source, new PassThrough(), translate), range };
    }
    const expected = options.expectedSha256 ?? info.sha256;
    const dest = expected ? new VerifyingStream(expected, key, info.size) : new PassThrough();
    const source = file.createReadStream({ validation: false, decompress: false });
    return { info, body: pipeTranslated(source, dest, translate), range: undefined };
  }

  async getBuffer(
    key: string,
    options: Omit<GetOptions, "range"> = {},
  ): Promise<{ info: BlobInfo; data: Buffer }> {
    this.open("blob.get");
    checkGetOptions(key, options);
    const ctx = this.ctx("blob.get", key);
    const meta = await this.metadata(key, "blob.get");
    throwIfAborted(options.signal, "blob.get");
    const info = this.info(key, meta);
    const source = this.file(key, "blob.get", meta.generation).createReadStream({
      validation: false,
      decompress: false,
    });
    const data = await collect(pipeTranslated(source, new PassThrough(), (e) => translateGcsError(e, ctx)));
    verifyBuffer(data, options.expectedSha256 ?? info.sha256, key, "blob.get");
    return { info, data };
  }

  async head(key: string, _options: { signal?: AbortSignal } = {}): Promise<BlobInfo> {
    this.open("blob.head");
    assertValidKey(key, "blob.head");
    return this.info(key, await this.metadata(key, "blob.head"));
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
    const list = typeof keys === "string" ? [keys] : [...keys];
    for (const key of list) assertValidKey(key, "blob.delete");
    const unique = [...new Set(list)];
    const files = unique.map((key) => ({ key, file: this.file(key, "blob.delete") }));
    let next = 0;
    let failure: KuraError | undefined;
    const worker = async (): Promise<void> => {
      while (next < files.length && failure === undefined) {
        const { key, file } = files[next++] as { key: string; file: File };
        if (options.signal?.aborted) {
          failure ??= new KuraError("OPERATION_ABORTED", "blob.delete was aborted", {
            operation: "blob.delete",
          });
          return;
        }
        await file.delete().catch((e: unknown) => {
          const err = translateGcsError(e, this.ctx("blob.delete", key));
          // Deleting a missing key succeeds; a missing bucket does not.
          if (err.code !== "BLOB_NOT_FOUND") failure ??= err;
        });
      }
    };
    await Promise.all(
      Array.from({ length: Math.min(this.options.delete_concurrency, files.length) }, worker),
    );
    if (failure) throw failure;
  }

  /** The backend's continuation token inside a cursor, which must come from a listing of `prefix`. */
  private cursorToken(prefix: string, cursor: string | undefined): string | undefined {
    const state = decodeCursor(this.scheme, cursor);
    if (state === undefined) return undefined;
    if (state.p !== prefix || typeof state.t !== "string" || state.t === "") {
      throw new KuraError("CURSOR_INVALID", "the cursor belongs to another listing", {
        operation: "blob.list",
        context: { prefix },
      });
    }
    return state.t;
  }

  async list(prefix: string, options: ListOptions = {}): Promise<ListPage> {
    this.open("blob.list");
    assertValidPrefix(prefix);
    const limit = listLimit(options);
    const token = this.cursorToken(prefix, options.cursor);
    const [files, nextQuery] = await this.bucket
      .getFiles({
        prefix: this.options.prefix + prefix,
        maxResults: limit,
        autoPaginate: false,
        ...(token ? { pageToken: token } : {}),
      })
      .catch(this.fail(this.ctx("blob.list")));
    const items = files.map((f) => this.info(f.name.slice(this.options.prefix.length), f.metadata));
    const nextToken = (nextQuery as { pageToken?: unknown } | null | undefined)?.pageToken;
    return {
      items,
      cursor:
        typeof nextToken === "string" && nextToken
          ? encodeCursor(this.scheme, { p: prefix, t: nextToken })
          : undefined,
    };
  }

  async copy(
    sourceKey: string,
    targetKey: string,
    options: { signal?: AbortSignal } = {},
  ): Promise<PutResult> {
    this.open("blob.copy");
    assertValidKey(sourceKey, "blob.copy");
    assertValidKey(targetKey, "blob.copy");
    const target = this.file(targetKey, "blob.copy");
    const meta = await this.metadata(sourceKey, "blob.copy");
    const info = this.info(sourceKey, meta);
    throwIfAborted(options.signal, "blob.copy");
    // Without a stored checksum a server-side copy could not report one: copy through Kura.
    if (!this.capabilities.serverSideCopy || info.sha256 === undefined) {
      const { body } = await this.get(sourceKey, { signal: options.signal });
      return this.put(targetKey, body, {
        contentType: info.contentType,
        metadata: info.metadata,
        signal: options.signal,
      });
    }
    // The rewrite reads exactly the generation whose checksum is reported.
    const [copied, response] = await this.file(sourceKey, "blob.copy", meta.generation)
      .copy(target)
      .catch(this.fail(this.ctx("blob.copy", targetKey)));
    const resource = (response as { resource?: FileMetadata } | undefined)?.resource;
    return {
      key: targetKey,
      size: info.size,
      sha256: info.sha256,
      etag: resource?.etag ?? copied.metadata.etag,
    };
  }

  async presign(key: string, options: PresignOptions): Promise<PresignResult> {
    this.open("blob.presign");
    checkPresign(key, options, this.capabilities, this.scheme);
    const file = this.file(key, "blob.presign");
    const now = this.deps.now?.() ?? Date.now();
    const expiresAt = new Date(now + options.expiresIn * 1000);
    const contentType = options.method === "PUT" ? options.contentType : undefined;
    const [url] = await file
      .getSignedUrl({
        version: "v4",
        action: options.method === "GET" ? "read" : "write",
        accessibleAt: new Date(now),
        expires: expiresAt,
        ...(contentType ? { contentType } : {}),
      })
      .catch(this.fail(this.ctx("blob.presign", key)));
    // A content type that was signed must be sent exactly.
    return {
      url,
      method: options.method,
      expiresAt,
      headers: contentType ? { "content-type": contentType } : {},
    };
  }

  async close(): Promise<void> {
    // The SDK keeps no handles that need releasing; later calls are refused.
    this.closed = true;
  }

  private info(key: string, meta: FileMetadata): BlobInfo {
    const raw: Record<string, string> = {};
    for (const [k, v] of Object.entries(meta.metadata ?? {}))
      if (v !== null && v !== undefined) raw[k] = String(v);
    const { sha256, metadata } = splitMetadata(raw);
    const updated = meta.updated ?? meta.timeCreated;
    return {
      key,
      size: Number(meta.size ?? 0),
      sha256,
      contentType: meta.contentType ?? DEFAULT_CONTENT_TYPE,
      etag: meta.etag,
      lastModified: updated ? new Date(updated) : new Date(0),
      metadata,
    };
  }
}

/** Cancel a resumable session (DELETE on its URI), so its bytes are dropped now, not in a week. */
async function cancelSession(uri: string | undefined): Promise<void> {
  if (uri === undefined) return;
  // The session URI is its own authorisation; failure only means the service cleans up later.
  await fetch(uri, { method: "DELETE", signal: AbortSignal.timeout(CANCEL_TIMEOUT_MS) }).then(
    (res) => res.body?.cancel(),
    () => undefined,
  );
}

/** The caller's body stream failed: no object was finalised. */
function bodyFailed(key: string, cause: unknown): KuraError {
  if (cause instanceof KuraError) return cause;
  const detail = cause instanceof Error ? cause.message : String(cause);
  return new KuraError("INVALID_ARGUMENT", `the body stream for ${key} failed: ${detail}`, {
    operation: "blob.put",
    context: { key },
    cause,
  });
}

async function createGcsStore(options: GcsOptions, deps: BlobStoreDeps): Promise<BlobStore> {
  const { Storage } = await import("@google-cloud/storage");
  const storageOptions: StorageOptions = {
    // Kura's retry layer owns retries; the SDK tries each request once.
    retryOptions: { autoRetry: false, maxRetries: 0 },
    ...(options.project_id ? { projectId: options.project_id } : {}),
    ...(options.endpoint
      ? { apiEndpoint: options.endpoint, useAuthWithCustomEndpoint: options.endpoint_auth }
      : {}),
    ...(options.credentials_file ? { keyFilename: options.credentials_file } : {}),
    ...(options.credentials_json ? { credentials: JSON.parse(options.credentials_json) } : {}),
  };
  const storage = new Storage(storageOptions);
  return new GcsBlobStore(options, storage.bucket(options.bucket), deps);
}

export const gcsBlobStore: BlobStoreDefinition<GcsOptions> = {
  scheme: "gcs",
  capabilities: CAPABILITIES,
  parseOptions: parseGcsOptions,
  create: (options, deps = {}) => createGcsStore(options, deps),
};
