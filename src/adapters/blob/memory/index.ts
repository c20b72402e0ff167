/**
 * `memory`: the reference blob store. Everything the port promises, held in a Map; used by
 * tests and as the model the conformance suite is first checked against.
 */
import { Readable } from "node:stream";
import { z } from "zod";
import { collect, sha256Hex, toReadable, VerifyingStream, verifyBuffer } from "../../../core/checksum.js";
import { KuraError } from "../../../core/errors.js";
import { assertValidKey, assertValidPrefix, compareUtf8 } from "../../../core/keys.js";
import { closedError } from "../../../core/lifecycle.js";
import { parseOptions } from "../../../core/options.js";
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
  throwIfAborted,
} from "../common.js";

export const memoryOptionsSchema = z
  .object({
    /** Name shown in content URLs (`local://…` is used for fs; memory uses `memory://{name}/key`). */
    name: z.string().min(1).default("memory"),
  })
  .strict();
export type MemoryOptions = z.infer<typeof memoryOptionsSchema>;

const CAPABILITIES: BlobCapabilities = Object.freeze({
  rangeRead: true,
  conditionalCreate: true,
  multipart: false,
  presign: false,
  presignEnforced: false,
  serverSideCopy: true,
  checksumInMetadata: true,
  serverSideEncryption: false,
  remote: false,
  localFiles: false,
  urlScheme: "memory",
});

interface Entry {
  data: Buffer;
  info: BlobInfo;
}

class MemoryBlobStore implements BlobStore {
  readonly scheme = "memory";
  readonly location: string;
  readonly capabilities: BlobCapabilities;
  private readonly objects = new Map<string, Entry>();
  private closed = false;

  constructor(
    options: MemoryOptions,
    private readonly deps: BlobStoreDeps,
  ) {
    this.location = options.name;
    this.capabilities = narrowCapabilities(CAPABILITIES, deps.capabilityOverrides);
  }

  private open(operation: string): void {
    if (this.closed) throw closedError("the blob store", operation);
  }

  async put(key: string, body: BlobBody, options: PutOptions = {}): Promise<PutResult> {
    this.open("blob.put");
    checkPutOptions(key, options);
    throwIfAborted(options.signal, "blob.put");
    const data = body instanceof Uint8Array ? Buffer.from(body) : await collect(toReadable(body));
    throwIfAborted(options.signal, "blob.put");
    if (options.ifNoneMatch === "*" && this.objects.has(key)) throw alreadyExists(key);
    const sha256 = sha256Hex(data);
    const info: BlobInfo = {
      key,
      size: data.length,
      sha256,
      contentType: options.contentType ?? DEFAULT_CONTENT_TYPE,
      etag: `"${sha256.slice(0, 32)}"`,
      lastModified: new Date(this.deps.now?.() ?? Date.now()),
      metadata: { ...(options.metadata ?? {}) },
    };
    this.objects.set(key, { data, info });
    return { key, size: data.length, sha256, etag: info.etag };
  }

  private entry(key: string, operation: string): Entry {
    const entry = this.objects.get(key);
    if (!entry) throw notFound(key, operation);
    return entry;
  }

  async get(key: string, options: GetOptions = {}): Promise<GetResult> {
    this.open("blob.get");
    checkGetOptions(key, options);
    const { data, info } = this.entry(key, "blob.get");
    if (options.range) {
      const range = resolveRange(key, options.range, data.length);
      const slice = data.subarray(range.start, range.end + 1);
      return { info: cloneInfo(info), body: Readable.from([slice]), range };
    }
    const expected = options.expectedSha256 ?? info.sha256;
    const body = Readable.from(data.length ? [data] : []);
    return {
      info: cloneInfo(info),
      body: expected ? body.pipe(new VerifyingStream(expected, key, data.length)) : body,
      range: undefined,
    };
  }

  async getBuffer(
    key: string,
    options: Omit<GetOptions, "range"> = {},
  ): Promise<{ info: BlobInfo; data: Buffer }> {
    this.open("blob.get");
    checkGetOptions(key, options);
    const { data, info } = this.entry(key, "blob.get");
    verifyBuffer(data, options.expectedSha256 ?? info.sha256, key, "blob.get");
    return { info: cloneInfo(info), data: Buffer.from(data) };
  }

  async head(key: string): Promise<BlobInfo> {
    this.open("blob.head");
    assertValidKey(key, "blob.head");
    return cloneInfo(this.entry(key, "blob.head").info);
  }

  async exists(key: string): Promise<boolean> {
    this.open("blob.head");
    assertValidKey(key, "blob.head");
    return this.objects.has(key);
  }

  async delete(keys: string | readonly string[]): Promise<void> {
    this.open("blob.delete");
    const list = typeof keys === "string" ? [keys] : keys;
    for (const key of list) assertValidKey(key, "blob.delete");
    for (const key of list) this.objects.delete(key);
  }

  async list(prefix: string, options: ListOptions = {}): Promise<ListPage> {
    this.open("blob.list");
    assertValidPrefix(prefix);
    const limit = listLimit(options);
    const after = decodeCursor(this.scheme, options.cursor)?.after;
    const keys = [...this.objects.keys()]
      .filter((k) => k.startsWith(prefix) && (after === undefined || compareUtf8(k, after) > 0))
      .sort(compareUtf8);
    const page = keys.slice(0, limit);
    const last = page.at(-1);
    return {
      items: page.map((k) => cloneInfo(this.entry(k, "blob.list").info)),
      cursor:
        keys.length > limit && last !== undefined ? encodeCursor(this.scheme, { after: last }) : undefined,
    };
  }

  async copy(sourceKey: string, targetKey: string): Promise<PutResult> {
    this.open("blob.copy");
    assertValidKey(sourceKey, "blob.copy");
    assertValidKey(targetKey, "blob.copy");
    const { data, info } = this.entry(sourceKey, "blob.copy");
    return this.put(targetKey, data, { contentType: info.contentType, metadata: info.metadata });
  }

  async presign(key: string, options: PresignOptions): Promise<PresignResult> {
    checkPresign(key, options, this.capabilities, this.scheme);
    throw new KuraError("UNSUPPORTED_OPERATION", "memory store cannot presign", {
      operation: "blob.presign",
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    this.objects.clear();
  }
}

function cloneInfo(info: BlobInfo): BlobInfo {
  return { ...info, metadata: { ...info.metadata }, lastModified: new Date(info.lastModified) };
}

export const memoryBlobStore: BlobStoreDefinition<MemoryOptions> = {
  scheme: "memory",
  capabilities: CAPABILITIES,
  parseOptions: (raw) => parseOptions(memoryOptionsSchema, raw, "storage.options"),
  create: async (options, deps = {}) => new MemoryBlobStore(options, deps),
};
