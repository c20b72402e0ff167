/**
 * Encryption at rest of the blob plane (SEC-2): a `BlobStore` in, a `BlobStore` out. Every body
 * under a tenant's prefix (the key's first segment: message bodies, objects, session files,
 * the archive) is stored sealed (`core/sealed.ts`: a header naming the tenant's key id and
 * version, then AES-256-GCM chunks of 64 KiB), and its user metadata as one sealed entry.
 *
 * What callers see does not change: sizes and SHA-256s are the plaintext's (the catalog keeps
 * recording them, so ETags and integrity checks stay as they were), a whole read is verified
 * against `expectedSha256` after decryption, and ranges decrypt only the chunks they touch.
 * Ciphertext that does not authenticate reads as `BLOB_CHECKSUM_MISMATCH` (a message's
 * `BODY_CORRUPT`); a shredded tenant's as `TENANT_KEYS_DESTROYED`. Bodies stored before
 * encryption was turned on (no header) read as they are. Keys whose first segment starts with
 * `~` are Kura's own (probes) and pass through.
 *
 * Presigned URLs a backend serves itself would hand out ciphertext: a store that is not local
 * files declares no `presign` behind this layer (Kura-signed URLs of local files are served by
 * Kura through it).
 */
import { PassThrough, Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import {
  checksumMismatch,
  HashingStream,
  peek,
  sha256Hex,
  toReadable,
  VerifyingStream,
} from "../core/checksum.js";
import { KuraError } from "../core/errors.js";
import { isValidId, keyProblem } from "../core/keys.js";
import {
  chunkCount,
  looksSealed,
  newHeader,
  parseHeader,
  plainSize,
  SEALED_HEADER_BYTES,
  SealedDamaged,
  type SealedHeader,
  SealStream,
  seal,
  sealedRange,
  UnsealStream,
  unseal,
} from "../core/sealed.js";
import {
  type BlobBody,
  type BlobInfo,
  type BlobStore,
  type GetOptions,
  type GetResult,
  type ListOptions,
  type ListPage,
  type PresignOptions,
  type PresignResult,
  type PutManyItem,
  type PutOptions,
  type PutResult,
  putEach,
} from "../ports/blob-store.js";
import type { DataKey, TenantKeys } from "../ports/key-provider.js";

/** The one metadata entry a sealed object's user metadata is kept in. */
const SEALED_METADATA = "kura-sealed";

/** The tenant a key belongs to, or undefined for Kura's own keys. */
export function tenantOfBlobKey(key: string): string | undefined {
  // A key breaking BLOB-7, or whose first segment is no tenant id, goes to the store as it is:
  // the adapter refuses it (KEY_INVALID) before any I/O, and no key is made for it.
  if (typeof key !== "string" || key.startsWith("~") || keyProblem(key) !== undefined) return undefined;
  const slash = key.indexOf("/");
  if (slash <= 0) return undefined;
  const tenant = key.slice(0, slash);
  return isValidId(tenant) ? tenant : undefined;
}

/** An expected SHA-256 is 64 lowercase hex digits (the adapters' rule; they never see it here). */
function checkExpected(expected: string | undefined): void {
  if (expected !== undefined && !/^[0-9a-f]{64}$/.test(expected))
    throw new KuraError("INVALID_ARGUMENT", "expectedSha256 must be 64 lowercase hex digits", {
      operation: "blob.get",
    });
}

function damaged(key: string, operation: string, cause?: unknown): KuraError {
  return new KuraError("BLOB_CHECKSUM_MISMATCH", `encrypted body ${key} does not authenticate`, {
    operation,
    context: { key },
    cause,
  });
}

export class EncryptingBlobStore implements BlobStore {
  readonly scheme: string;
  readonly location: string;
  readonly capabilities: BlobStore["capabilities"];

  constructor(
    private readonly inner: BlobStore,
    private readonly keys: TenantKeys,
  ) {
    this.scheme = inner.scheme;
    this.location = inner.location;
    this.capabilities = Object.freeze({
      ...inner.capabilities,
      presign: inner.capabilities.presign && inner.capabilities.localFiles,
    });
    if (inner.getBufferSync) this.getBufferSync = (key, options) => this.readSync(key, options);
  }

  getBufferSync?: BlobStore["getBufferSync"];

  // --- writes ----------------------------------------------------------------------------------

  private sealMetadata(dataKey: DataKey, metadata: Record<string, string> | undefined) {
    if (!metadata || Object.keys(metadata).length === 0) return metadata;
    const sealed = seal(
      dataKey.key,
      newHeader(dataKey.keyId, dataKey.version),
      Buffer.from(JSON.stringify(metadata)),
    );
    return { [SEALED_METADATA]: sealed.toString("base64url") };
  }

  async put(key: string, body: BlobBody, options: PutOptions = {}): Promise<PutResult> {
    const tenant = tenantOfBlobKey(key);
    if (tenant === undefined) return this.inner.put(key, body, options);
    const dataKey = await this.keys.current(tenant);
    const metadata = this.sealMetadata(dataKey, options.metadata);
    const header = newHeader(dataKey.keyId, dataKey.version);
    const sealedOptions: PutOptions = { ...options, ...(metadata ? { metadata } : {}) };
    if (body instanceof Uint8Array) {
      const result = await this.inner.put(key, seal(dataKey.key, header, body), sealedOptions);
      return { ...result, size: body.length, sha256: sha256Hex(body) };
    }
    const hashing = new HashingStream();
    const sealing = new SealStream(dataKey.key, header);
    const source = toReadable(body);
    source.on("error", (e) => sealing.destroy(e));
    hashing.on("error", (e) => sealing.destroy(e));
    source.pipe(hashing).pipe(sealing);
    const result = await this.inner.put(key, sealing, sealedOptions);
    return { ...result, size: hashing.size, sha256: hashing.sha256() };
  }

  async putMany(items: readonly PutManyItem[], options: { signal?: AbortSignal } = {}): Promise<PutResult[]> {
    const sealed: PutManyItem[] = [];
    for (const item of items) {
      const tenant = tenantOfBlobKey(item.key);
      if (tenant === undefined) {
        sealed.push(item);
        continue;
      }
      const dataKey = this.keys.currentSync(tenant) ?? (await this.keys.current(tenant));
      const metadata = this.sealMetadata(dataKey, item.metadata);
      sealed.push({
        ...item,
        body: seal(dataKey.key, newHeader(dataKey.keyId, dataKey.version), item.body),
        ...(metadata ? { metadata } : {}),
      });
    }
    const results = this.inner.putMany
      ? await this.inner.putMany(sealed, options)
      : await putEach(this.inner, sealed, options.signal);
    return results.map((r, i) => {
      const item = items[i] as PutManyItem;
      return tenantOfBlobKey(item.key) === undefined
        ? r
        : { ...r, size: item.body.length, sha256: sha256Hex(item.body) };
    });
  }

  // --- reads -----------------------------------------------------------------------------------

  private async keyOf(tenant: string, header: SealedHeader): Promise<Buffer> {
    return (await this.keys.get(tenant, { keyId: header.keyId, version: header.version })).key;
  }

  /** Info as callers know it: the plaintext's size, user metadata opened; the SHA-256 when known. */
  private async plainInfo(info: BlobInfo, sha256?: string): Promise<BlobInfo> {
    const tenant = tenantOfBlobKey(info.key);
    if (tenant === undefined) return info;
    const size = plainSize(info.size);
    const sealedMeta = info.metadata[SEALED_METADATA];
    let metadata = info.metadata;
    if (sealedMeta !== undefined) {
      const bytes = Buffer.from(sealedMeta, "base64url");
      const header = parseHeader(bytes);
      if (!header) throw damaged(info.key, "blob.head");
      try {
        metadata = JSON.parse(unseal(await this.keyOf(tenant, header), header, bytes).toString("utf8"));
      } catch (e) {
        if (e instanceof KuraError) throw e;
        throw damaged(info.key, "blob.head", e);
      }
    }
    return { ...info, size: size ?? info.size, sha256, metadata };
  }

  private openBuffer(key: string, data: Buffer, dataKey: Buffer, header: SealedHeader): Buffer {
    try {
      return unseal(dataKey, header, data);
    } catch (e) {
      throw damaged(key, "blob.get", e);
    }
  }

  async getBuffer(
    key: string,
    options: Omit<GetOptions, "range"> = {},
  ): Promise<{ info: BlobInfo; data: Buffer }> {
    const tenant = tenantOfBlobKey(key);
    if (tenant === undefined) return this.inner.getBuffer(key, options);
    checkExpected(options.expectedSha256);
    const { info, data } = await this.inner.getBuffer(key, options.signal ? { signal: options.signal } : {});
    if (!looksSealed(data)) {
      if (options.expectedSha256 !== undefined && sha256Hex(data) !== options.expectedSha256)
        throw checksumMismatch(key, options.expectedSha256, sha256Hex(data), "blob.get");
      return { info, data };
    }
    const header = parseHeader(data);
    if (!header) throw damaged(key, "blob.get");
    const plain = this.openBuffer(key, data, await this.keyOf(tenant, header), header);
    return this.verified(key, plain, await this.plainInfo(info), options.expectedSha256);
  }

  private verified(key: string, plain: Buffer, info: BlobInfo, expected: string | undefined) {
    const actual = sha256Hex(plain);
    if (expected !== undefined && actual !== expected)
      throw checksumMismatch(key, expected, actual, "blob.get");
    return { info: { ...info, size: plain.length, sha256: actual }, data: plain };
  }

  private readSync(
    key: string,
    options: Omit<GetOptions, "range" | "signal"> = {},
  ): { info: BlobInfo; data: Buffer } | undefined {
    const tenant = tenantOfBlobKey(key);
    if (tenant === undefined) return this.inner.getBufferSync?.(key, options);
    const read = this.inner.getBufferSync?.(key, {});
    if (read === undefined) return undefined;
    const { info, data } = read;
    if (!looksSealed(data)) return read;
    const header = parseHeader(data);
    if (!header) throw damaged(key, "blob.get");
    const dataKey = this.keys.getSync(tenant, { keyId: header.keyId, version: header.version });
    // Metadata needs no key here: message bodies (the sync path's callers) carry none.
    if (dataKey === undefined || info.metadata[SEALED_METADATA] !== undefined) return undefined;
    const plain = this.openBuffer(key, data, dataKey.key, header);
    return this.verified(key, plain, { ...info, size: plain.length }, options.expectedSha256);
  }

  async get(key: string, options: GetOptions = {}): Promise<GetResult> {
    const tenant = tenantOfBlobKey(key);
    if (tenant === undefined) return this.inner.get(key, options);
    checkExpected(options.expectedSha256);
    if (options.range) return this.getRange(tenant, key, options);
    const got = await this.inner.get(key, options.signal ? { signal: options.signal } : {});
    const { head, rest } = await peek(got.body, SEALED_HEADER_BYTES);
    if (!looksSealed(head)) {
      const body = options.expectedSha256
        ? rest.pipe(new VerifyingStream(options.expectedSha256, key))
        : rest;
      return { ...got, body };
    }
    const header = parseHeader(head);
    const chunks = chunkCount(got.info.size);
    if (!header || chunks === undefined) {
      rest.destroy();
      throw damaged(key, "blob.get");
    }
    let dataKey: Buffer;
    let info: BlobInfo;
    try {
      dataKey = await this.keyOf(tenant, header);
      info = await this.plainInfo(got.info, options.expectedSha256);
    } catch (e) {
      rest.destroy();
      throw e;
    }
    // The header's bytes were peeked: skip them, then open the chunks.
    const unsealing = new UnsealStream(dataKey, header, chunks);
    const tail = options.expectedSha256
      ? new VerifyingStream(options.expectedSha256, key)
      : new PassThrough();
    pipeline(Readable.from(skipHeader(rest)), unsealing, tail).catch(() => undefined);
    return { info, body: Readable.from(mapErrors(tail, key)), range: undefined };
  }

  private async getRange(tenant: string, key: string, options: GetOptions): Promise<GetResult> {
    const range = options.range as NonNullable<GetOptions["range"]>;
    const signal = options.signal ? { signal: options.signal } : {};
    const sealedInfo = await this.inner.head(key, signal);
    const size = plainSize(sealedInfo.size);
    const headBytes = await this.readRange(key, 0, SEALED_HEADER_BYTES - 1, signal);
    if (!looksSealed(headBytes)) return this.inner.get(key, options);
    const header = parseHeader(headBytes);
    if (!header || size === undefined) throw damaged(key, "blob.get");
    if (range.start >= size || range.start < 0)
      throw new KuraError(
        "RANGE_INVALID",
        `range starts at ${range.start}, beyond the ${size} bytes of ${key}`,
        {
          operation: "blob.get",
          context: { key },
        },
      );
    const end = Math.min(range.end ?? size - 1, size - 1);
    const dataKey = await this.keyOf(tenant, header);
    const info = await this.plainInfo(sealedInfo);
    const where = sealedRange(range.start, end);
    const got = await this.inner.get(key, {
      ...signal,
      range: { start: where.start, end: Math.min(where.end, sealedInfo.size - 1) },
    });
    const unsealing = new UnsealStream(dataKey, header, chunkCount(sealedInfo.size) as number, {
      firstChunk: where.firstChunk,
      skip: where.skip,
      length: end - range.start + 1,
    });
    pipeline(got.body, unsealing).catch(() => undefined);
    return { info, body: Readable.from(mapErrors(unsealing, key)), range: { start: range.start, end } };
  }

  private async readRange(key: string, start: number, end: number, signal: { signal?: AbortSignal }) {
    if (!this.inner.capabilities.rangeRead) {
      const { data } = await this.inner.getBuffer(key, signal);
      return data.subarray(start, end + 1);
    }
    const got = await this.inner.get(key, { ...signal, range: { start, end } });
    const parts: Buffer[] = [];
    for await (const c of got.body) parts.push(Buffer.from(c as Uint8Array));
    return Buffer.concat(parts);
  }

  async head(key: string, options: { signal?: AbortSignal } = {}): Promise<BlobInfo> {
    const info = await this.inner.head(key, options);
    if (tenantOfBlobKey(key) === undefined) return info;
    return this.plainInfo(info);
  }

  exists(key: string): Promise<boolean> {
    return this.inner.exists(key);
  }

  delete(keys: string | readonly string[], options?: { signal?: AbortSignal }): Promise<void> {
    return this.inner.delete(keys, options);
  }

  async list(prefix: string, options?: ListOptions): Promise<ListPage> {
    const page = await this.inner.list(prefix, options);
    return {
      ...page,
      items: page.items.map((i) =>
        tenantOfBlobKey(i.key) === undefined
          ? i
          : // The plaintext's size when the stored size is a sealed one; its SHA-256 is the catalog's.
            { ...i, size: plainSize(i.size) ?? i.size, sha256: undefined },
      ),
    };
  }

  /** A copy is read, decrypted and stored again (under the tenant's current key): its result is the plaintext's. */
  async copy(
    sourceKey: string,
    targetKey: string,
    options: { signal?: AbortSignal } = {},
  ): Promise<PutResult> {
    // Invalid keys are the adapter's to refuse (KEY_INVALID), before anything is read.
    if (
      (tenantOfBlobKey(sourceKey) === undefined && tenantOfBlobKey(targetKey) === undefined) ||
      keyProblem(sourceKey) !== undefined ||
      keyProblem(targetKey) !== undefined
    )
      return this.inner.copy(sourceKey, targetKey, options);
    const { info, data } = await this.getBuffer(sourceKey, options);
    return this.put(targetKey, data, {
      contentType: info.contentType,
      metadata: info.metadata,
      ...(options.signal ? { signal: options.signal } : {}),
    });
  }

  presign(key: string, options: PresignOptions): Promise<PresignResult> {
    if (!this.capabilities.presign)
      return Promise.reject(
        new KuraError("UNSUPPORTED_OPERATION", "presigned URLs of the backend would serve ciphertext", {
          operation: "blob.presign",
          context: { key },
        }),
      );
    return this.inner.presign(key, options);
  }

  get stats(): BlobStore["stats"] {
    return this.inner.stats ? () => (this.inner.stats as NonNullable<BlobStore["stats"]>)() : undefined;
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

/** The bytes of `rest` after the sealed header (which `peek` handed over first). */
async function* skipHeader(rest: AsyncIterable<Uint8Array>): AsyncGenerator<Buffer> {
  let skipped = 0;
  for await (const c of rest) {
    const chunk = Buffer.from(c);
    if (skipped >= SEALED_HEADER_BYTES) yield chunk;
    else {
      const n = Math.min(SEALED_HEADER_BYTES - skipped, chunk.length);
      skipped += n;
      if (n < chunk.length) yield chunk.subarray(n);
    }
  }
}

/** `source`'s bytes, with ciphertext that fails to authenticate reported as `BLOB_CHECKSUM_MISMATCH`. */
async function* mapErrors(source: AsyncIterable<Buffer>, key: string): AsyncGenerator<Buffer> {
  try {
    for await (const c of source) yield c;
  } catch (e) {
    throw e instanceof SealedDamaged ? damaged(key, "blob.get", e) : e;
  }
}
