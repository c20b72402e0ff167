/**
 * `azure`: Azure Blob Storage (block blobs), tested against azurite.
 *
 * - put: bodies up to `multipart_threshold_mb` go in one Put Blob; larger ones (and streams
 *   that turn out larger) are staged as blocks and committed with Put Block List, with the
 *   SHA-256 already in the commit's metadata (`blocks.ts`). `ifNoneMatch: "*"` is the service's
 *   own `If-None-Match: *` precondition, so conditional creates are atomic.
 * - get: one Get Blob; whole reads are verified against the expected or stored SHA-256.
 * - delete: Blob Batch requests of up to 256 deletes.
 * - copy: server-side Copy Blob pinned to the source's ETag.
 * - presign: service SAS signed with the account's shared key.
 *
 * The SDK is imported inside `create`, so configurations without Azure never load it.
 *
 * Over 450 lines and whole: one class implementing the BlobStore port over one SDK client, each
 * method one or two service calls; block staging is in `blocks.ts`, options in `options.ts`.
 */
import { PassThrough, Readable } from "node:stream";
import type {
  BlobClient,
  BlobServiceClient,
  BlockBlobClient,
  ContainerClient,
  StorageSharedKeyCredential,
} from "@azure/storage-blob";
import { collect, peek, sha256Hex, VerifyingStream, verifyBuffer } from "../../../core/checksum.js";
import { KuraError } from "../../../core/errors.js";
import { assertValidKey, assertValidPrefix } from "../../../core/keys.js";
import { closedError } from "../../../core/lifecycle.js";
import { configInvalid } from "../../../core/options.js";
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
import { slices, stageBlocks } from "./blocks.js";
import { type AzureErrorContext, pipeTranslated, translateAzureError } from "./errors.js";
import { type AzureOptions, parseAzureOptions } from "./options.js";

export type { AzureOptions } from "./options.js";

type AzureSdk = typeof import("@azure/storage-blob");

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
  urlScheme: "azure",
});

const MIB = 1024 * 1024;
/** Blob Batch accepts at most 256 sub-requests. */
const BATCH_SIZE = 256;
/** Azure blob names are at most 1024 characters. */
const MAX_NAME_CHARS = 1024;
/** SAS start time is set this far back, so a service clock slightly behind ours accepts it. */
const SAS_CLOCK_SKEW_MS = 5 * 60_000;

class AzureBlobStore implements BlobStore {
  readonly scheme = "azure";
  readonly location: string;
  readonly capabilities: BlobCapabilities;
  private readonly thresholdBytes: number;
  private readonly blockBytes: number;
  private closed = false;

  constructor(
    private readonly sdk: AzureSdk,
    private readonly options: AzureOptions,
    private readonly container: ContainerClient,
    /** Present when the store holds the account key: needed to sign SAS URLs. */
    private readonly sharedKey: StorageSharedKeyCredential | undefined,
    private readonly deps: BlobStoreDeps,
  ) {
    this.location =
      options.prefix === "" ? options.container : `${options.container}/${options.prefix.slice(0, -1)}`;
    this.capabilities = narrowCapabilities(CAPABILITIES, {
      ...deps.capabilityOverrides,
      ...(sharedKey ? {} : { presign: false, presignEnforced: false }),
    });
    this.thresholdBytes = options.multipart_threshold_mb * MIB;
    this.blockBytes = options.multipart_chunk_mb * MIB;
  }

  private open(operation: string): void {
    if (this.closed) throw closedError("the blob store", operation);
  }

  /** The blob name for a key (store prefix applied), refusing names Azure would not take. */
  private name(key: string, operation: string): string {
    const name = this.options.prefix + key;
    if (name.length > MAX_NAME_CHARS) {
      throw new KuraError(
        "KEY_INVALID",
        `the key is too long for Azure once the store prefix is added: ${key}`,
        {
          operation,
          context: { key: key.slice(0, 200), prefix: this.options.prefix },
        },
      );
    }
    return name;
  }

  private blob(key: string, operation: string): BlockBlobClient {
    return this.container.getBlockBlobClient(this.name(key, operation));
  }

  private ctx(operation: string, key?: string, conditionalCreate?: boolean): AzureErrorContext {
    return {
      operation,
      container: this.options.container,
      ...(key === undefined ? {} : { key }),
      ...(conditionalCreate ? { conditionalCreate } : {}),
    };
  }

  private fail(ctx: AzureErrorContext): (e: unknown) => never {
    return (e) => {
      throw translateAzureError(e, ctx);
    };
  }

  async put(key: string, body: BlobBody, options: PutOptions = {}): Promise<PutResult> {
    this.open("blob.put");
    checkPutOptions(key, options);
    const client = this.blob(key, "blob.put");
    throwIfAborted(options.signal, "blob.put");
    const ctx = this.ctx("blob.put", key, options.ifNoneMatch === "*");
    const common = {
      abortSignal: options.signal,
      blobHTTPHeaders: { blobContentType: options.contentType ?? DEFAULT_CONTENT_TYPE },
      ...(options.ifNoneMatch === "*" ? { conditions: { ifNoneMatch: "*" } } : {}),
    };
    const userMetadata = options.metadata ?? {};

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
      const res = await client
        .upload(data, data.length, {
          ...common,
          metadata: { ...userMetadata, [SHA256_METADATA_KEY]: sha256 },
        })
        .catch(this.fail(ctx));
      return { key, size: data.length, sha256, etag: res.etag };
    }

    const staged = await stageBlocks(
      client,
      data ? slices(data, this.blockBytes) : (rest as AsyncIterable<Uint8Array>),
      {
        blockBytes: this.blockBytes,
        concurrency: this.options.upload_concurrency,
        signal: options.signal,
        translate: (e) => translateAzureError(e, ctx),
        bodyFailed: (e) => bodyFailed(key, e),
      },
    );
    const res = await client
      .commitBlockList(staged.blockIds, {
        ...common,
        metadata: { ...userMetadata, [SHA256_METADATA_KEY]: staged.sha256 },
      })
      .catch(this.fail(ctx));
    return { key, size: staged.size, sha256: staged.sha256, etag: res.etag };
  }

  async get(key: string, options: GetOptions = {}): Promise<GetResult> {
    this.open("blob.get");
    checkGetOptions(key, options);
    const client = this.blob(key, "blob.get");
    const ctx = this.ctx("blob.get", key);
    const translate = (e: unknown) => translateAzureError(e, ctx);
    const { range } = options;

    if (range) {
      const count = range.end === undefined ? undefined : range.end - range.start + 1;
      const res = await client
        .download(range.start, count, { abortSignal: options.signal })
        .catch(async (e: unknown) => {
          const err = translate(e);
          if (err.code !== "RANGE_INVALID") throw err;
          // 416: the range starts at or beyond the end. resolveRange says which (an empty
          // object read from 0 is an empty range, anything else is RANGE_INVALID).
          const info = await this.head(key, { signal: options.signal });
          resolveRange(key, range, info.size);
          return { info };
        });
      if ("info" in res) {
        return { info: res.info, body: Readable.from([]), range: resolveRange(key, range, res.info.size) };
      }
      const served = parseContentRange(res.contentRange);
      const info = this.info(key, { ...res, contentLength: served?.size ?? res.contentLength });
      const source = streamOf(res.readableStreamBody, ctx);
      let resolved: { start: number; end: number };
      try {
        // Some servers (azurite) answer a start exactly at the end with an empty 206 instead
        // of 416, and a read from 0 may come back as a plain 200: the size decides.
        resolved = resolveRange(key, range, info.size);
        if (served ? served.start !== resolved.start : range.start !== 0) {
          throw new KuraError("BLOB_BACKEND_ERROR", `Azure served another range than asked for ${key}`, {
            operation: "blob.get",
            context: { backend: "azure", key, asked: range, contentRange: res.contentRange },
          });
        }
      } catch (e) {
        (source as Readable).destroy();
        throw e;
      }
      const body = pipeTranslated(source, new PassThrough(), translate);
      return { info, body, range: resolved };
    }

    const res = await client.download(0, undefined, { abortSignal: options.signal }).catch(this.fail(ctx));
    const info = this.info(key, res);
    const expected = options.expectedSha256 ?? info.sha256;
    const dest = expected ? new VerifyingStream(expected, key, info.size) : new PassThrough();
    return {
      info,
      body: pipeTranslated(streamOf(res.readableStreamBody, ctx), dest, translate),
      range: undefined,
    };
  }

  async getBuffer(
    key: string,
    options: Omit<GetOptions, "range"> = {},
  ): Promise<{ info: BlobInfo; data: Buffer }> {
    this.open("blob.get");
    checkGetOptions(key, options);
    const client = this.blob(key, "blob.get");
    const ctx = this.ctx("blob.get", key);
    const res = await client.download(0, undefined, { abortSignal: options.signal }).catch(this.fail(ctx));
    const info = this.info(key, res);
    const data = await collect(
      pipeTranslated(streamOf(res.readableStreamBody, ctx), new PassThrough(), (e) =>
        translateAzureError(e, ctx),
      ),
    );
    verifyBuffer(data, options.expectedSha256 ?? info.sha256, key, "blob.get");
    return { info, data };
  }

  async head(key: string, options: { signal?: AbortSignal } = {}): Promise<BlobInfo> {
    this.open("blob.head");
    assertValidKey(key, "blob.head");
    const res = await this.blob(key, "blob.head")
      .getProperties({ abortSignal: options.signal })
      .catch(this.fail(this.ctx("blob.head", key)));
    return this.info(key, res);
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
    const clients = unique.map((key) => this.blob(key, "blob.delete"));
    if (clients.length === 0) return;
    if (clients.length === 1) {
      const key = unique[0] as string;
      await (clients[0] as BlobClient).delete({ abortSignal: options.signal }).catch((e: unknown) => {
        const err = translateAzureError(e, this.ctx("blob.delete", key));
        if (err.code !== "BLOB_NOT_FOUND") throw err;
      });
      return;
    }
    const batch = this.container.getBlobBatchClient();
    for (let i = 0; i < clients.length; i += BATCH_SIZE) {
      throwIfAborted(options.signal, "blob.delete");
      const group = clients.slice(i, i + BATCH_SIZE);
      const res = await batch
        .deleteBlobs(group, { abortSignal: options.signal })
        .catch(this.fail(this.ctx("blob.delete")));
      for (const [j, sub] of res.subResponses.entries()) {
        if (sub.status < 300 || (sub.status === 404 && sub.errorCode === "BlobNotFound")) continue;
        throw translateAzureError(
          { name: "RestError", statusCode: sub.status, code: sub.errorCode, message: sub.statusMessage },
          this.ctx("blob.delete", unique[i + j]),
        );
      }
    }
  }

  /** The backend's continuation token inside a cursor, which must come from a listing of `prefix`. */
  private cursorToken(prefix: string, cursor: string | undefined): string | undefined {
    const state = decodeCursor(this.scheme, cursor);
    if (state === undefined) return undefined;
    if (state.p !== prefix || typeof state.m !== "string" || state.m === "") {
      throw new KuraError("CURSOR_INVALID", "the cursor belongs to another listing", {
        operation: "blob.list",
        context: { prefix },
      });
    }
    return state.m;
  }

  async list(prefix: string, options: ListOptions = {}): Promise<ListPage> {
    this.open("blob.list");
    assertValidPrefix(prefix);
    const limit = listLimit(options);
    const marker = this.cursorToken(prefix, options.cursor);
    const pages = this.container
      .listBlobsFlat({
        prefix: this.options.prefix + prefix,
        includeMetadata: true,
        abortSignal: options.signal,
      })
      .byPage({ maxPageSize: limit, ...(marker ? { continuationToken: marker } : {}) });
    const next = await pages.next().catch(this.fail(this.ctx("blob.list")));
    const page = next.done ? undefined : next.value;
    const items = (page?.segment.blobItems ?? []).map((b) =>
      this.info(b.name.slice(this.options.prefix.length), {
        contentLength: b.properties.contentLength,
        contentType: b.properties.contentType,
        etag: b.properties.etag,
        lastModified: b.properties.lastModified,
        metadata: b.metadata,
      }),
    );
    const token = page?.continuationToken;
    return { items, cursor: token ? encodeCursor(this.scheme, { p: prefix, m: token }) : undefined };
  }

  async copy(
    sourceKey: string,
    targetKey: string,
    options: { signal?: AbortSignal } = {},
  ): Promise<PutResult> {
    this.open("blob.copy");
    assertValidKey(sourceKey, "blob.copy");
    assertValidKey(targetKey, "blob.copy");
    const source = this.blob(sourceKey, "blob.copy");
    const target = this.blob(targetKey, "blob.copy");
    const props = await source
      .getProperties({ abortSignal: options.signal })
      .catch(this.fail(this.ctx("blob.copy", sourceKey)));
    const info = this.info(sourceKey, props);
    // Without a stored checksum a server-side copy could not report one: copy through Kura.
    if (!this.capabilities.serverSideCopy || info.sha256 === undefined) {
      const { body } = await this.get(sourceKey, { signal: options.signal });
      return this.put(targetKey, body, {
        contentType: info.contentType,
        metadata: info.metadata,
        signal: options.signal,
      });
    }
    const ctx = this.ctx("blob.copy", targetKey);
    // Pinned to the ETag read above, so the checksum reported is the one of the bytes copied.
    const poller = await target
      .beginCopyFromURL(source.url, {
        abortSignal: options.signal,
        sourceConditions: { ifMatch: props.etag },
        intervalInMs: 500,
      })
      .catch(this.fail(ctx));
    const res = await poller.pollUntilDone().catch(this.fail(ctx));
    if (res.copyStatus !== undefined && res.copyStatus !== "success") {
      throw new KuraError(
        "BLOB_BACKEND_ERROR",
        `Azure copy of ${sourceKey} to ${targetKey} ended ${res.copyStatus}`,
        {
          operation: "blob.copy",
          context: {
            backend: "azure",
            container: this.options.container,
            sourceKey,
            targetKey,
            copyStatus: res.copyStatus,
          },
        },
      );
    }
    return { key: targetKey, size: info.size, sha256: info.sha256, etag: res.etag };
  }

  async presign(key: string, options: PresignOptions): Promise<PresignResult> {
    this.open("blob.presign");
    checkPresign(key, options, this.capabilities, this.scheme);
    const client = this.blob(key, "blob.presign");
    const sharedKey = this.sharedKey as StorageSharedKeyCredential;
    const now = this.deps.now?.() ?? Date.now();
    const expiresAt = new Date(now + options.expiresIn * 1000);
    const { BlobSASPermissions, generateBlobSASQueryParameters } = this.sdk;
    const sas = generateBlobSASQueryParameters(
      {
        containerName: this.options.container,
        blobName: client.name,
        permissions: BlobSASPermissions.parse(options.method === "GET" ? "r" : "cw"),
        startsOn: new Date(now - SAS_CLOCK_SKEW_MS),
        expiresOn: expiresAt,
      },
      sharedKey,
    ).toString();
    const headers: Record<string, string> =
      options.method === "PUT"
        ? {
            "x-ms-blob-type": "BlockBlob",
            ...(options.contentType ? { "content-type": options.contentType } : {}),
          }
        : {};
    return { url: `${client.url}?${sas}`, method: options.method, expiresAt, headers };
  }

  async close(): Promise<void> {
    // The SDK keeps no handles that need releasing; later calls are refused.
    this.closed = true;
  }

  private info(
    key: string,
    p: {
      contentLength?: number;
      contentType?: string;
      etag?: string;
      lastModified?: Date;
      metadata?: Record<string, string>;
    },
  ): BlobInfo {
    const { sha256, metadata } = splitMetadata(p.metadata);
    return {
      key,
      size: p.contentLength ?? 0,
      sha256,
      contentType: p.contentType ?? DEFAULT_CONTENT_TYPE,
      etag: p.etag,
      lastModified: p.lastModified ?? new Date(0),
      metadata,
    };
  }
}

/** `bytes 2-5/36` → its numbers. */
function parseContentRange(
  header: string | undefined,
): { start: number; end: number; size: number } | undefined {
  const m = header === undefined ? null : /^bytes (\d+)-(\d+)\/(\d+)$/.exec(header);
  if (!m) return undefined;
  return { start: Number(m[1]), end: Number(m[2]), size: Number(m[3]) };
}

function streamOf(body: NodeJS.ReadableStream | undefined, ctx: AzureErrorContext): NodeJS.ReadableStream {
  if (body) return body;
  throw new KuraError("BLOB_BACKEND_ERROR", `Azure returned no body for ${ctx.key ?? "the object"}`, {
    operation: ctx.operation,
    context: { backend: "azure", container: ctx.container, key: ctx.key },
  });
}

/** The caller's body stream failed: nothing was committed. */
function bodyFailed(key: string, cause: unknown): KuraError {
  if (cause instanceof KuraError) return cause;
  const detail = cause instanceof Error ? cause.message : String(cause);
  return new KuraError("INVALID_ARGUMENT", `the body stream for ${key} failed: ${detail}`, {
    operation: "blob.put",
    context: { key },
    cause,
  });
}

async function createAzureStore(options: AzureOptions, deps: BlobStoreDeps): Promise<BlobStore> {
  const sdk = await import("@azure/storage-blob");
  // Kura's retry layer owns retries; the SDK tries each request once.
  const pipeline = { retryOptions: { maxTries: 1 } };
  let service: BlobServiceClient;
  let sharedKey: StorageSharedKeyCredential | undefined;
  if (options.connection_string !== undefined) {
    try {
      service = sdk.BlobServiceClient.fromConnectionString(options.connection_string, pipeline);
    } catch {
      // The SDK's message may quote the string, which holds the key: keep it out.
      throw configInvalid([
        { path: "storage.options.connection_string", message: "is not a valid Azure connection string" },
      ]);
    }
    sharedKey = service.credential instanceof sdk.StorageSharedKeyCredential ? service.credential : undefined;
  } else {
    const account = options.account_name as string;
    sharedKey = new sdk.StorageSharedKeyCredential(account, options.account_key as string);
    const endpoint = options.endpoint ?? `https://${account}.blob.core.windows.net`;
    service = new sdk.BlobServiceClient(endpoint, sharedKey, pipeline);
  }
  const container = service.getContainerClient(options.container);
  if (options.create_container) {
    await container.createIfNotExists().catch((e: unknown) => {
      throw translateAzureError(e, { operation: "blob.open", container: options.container });
    });
  }
  return new AzureBlobStore(sdk, options, container, sharedKey, deps);
}

export const azureBlobStore: BlobStoreDefinition<AzureOptions> = {
  scheme: "azure",
  capabilities: CAPABILITIES,
  parseOptions: parseAzureOptions,
  create: (options, deps = {}) => createAzureStore(options, deps),
};
