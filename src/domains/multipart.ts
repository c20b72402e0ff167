/**
 * Multipart uploads of the S3 endpoint (API-7, ADR 0035). An upload's state is one KV entry
 * (`~s3upload:{tenant}:{upload}`: the object key, content type, creation and expiry); each part
 * is a blob at `{tenant}/multipart/{upload}/{part}` (`core/keys.ts`), written whole by the blob
 * store (a part uploaded again replaces the previous one). Completion streams the parts, each
 * verified against its SHA-256, through `Objects.put`, so the object appears whole or not at
 * all, with the tenant's limits, usage and audit exactly as a `/v1` put; then the parts and the
 * state go. Abort removes both; uploads past their expiry are removed by the
 * `expire-multipart` job (`engine/multipart-expiry.ts`).
 */
import type { Readable } from "node:stream";
import { KuraError } from "../core/errors.js";
import { newMessageId } from "../core/ids.js";
import { MULTIPART_STATE_PREFIX, multipartPartKey, multipartPrefix } from "../core/keys.js";
import type { EngineContext } from "../engine/context.js";
import { removeParts } from "../engine/multipart-expiry.js";
import type { BlobBody, BlobInfo } from "../ports/blob-store.js";
import type { KvStore } from "../ports/kv-store.js";
import { KvNamespace } from "./kv.js";
import type { ObjectInfo, Objects } from "./objects.js";

/** How long an upload may stay open; the expiry job removes it after. */
export const MULTIPART_EXPIRY_MS = 7 * 86_400_000;
export const MAX_PART_NUMBER = 10_000;
/** S3's smallest part but the last. */
export const MIN_PART_BYTES = 5 * 1024 * 1024;
/** S3's largest part. */
export const MAX_PART_BYTES = 5 * 1024 ** 3;

export interface MultipartState {
  key: string;
  contentType: string;
  createdAt: number;
  expiresAt: number;
}

export interface PartInfo {
  partNumber: number;
  size: number;
  /** Quoted SHA-256 of the part. */
  etag: string;
  sha256: string;
  lastModified: Date;
}

export interface UploadInfo {
  uploadId: string;
  key: string;
  createdAt: number;
}

const unquote = (etag: string) => etag.trim().replace(/^"(.*)"$/, "$1");

export class MultipartUploads {
  private readonly states: KvNamespace;

  constructor(
    private readonly ctx: EngineContext,
    kv: KvStore,
    private readonly tenantId: string,
    private readonly objects: Objects,
  ) {
    this.states = new KvNamespace(kv, `${MULTIPART_STATE_PREFIX}${tenantId}:`);
  }

  /** CreateMultipartUpload: the upload id. The key is checked now (KEY_INVALID), as a put would. */
  async create(key: string, options: { contentType?: string } = {}): Promise<string> {
    this.objects.assertKey(key, "multipart.create");
    const now = this.ctx.clock();
    const uploadId = newMessageId(now);
    const state: MultipartState = {
      key,
      contentType: options.contentType ?? "application/octet-stream",
      createdAt: now,
      expiresAt: now + MULTIPART_EXPIRY_MS,
    };
    // The entry outlives the expiry a little, so the expiry job (not the TTL) removes it with its parts.
    await this.states.set(uploadId, state, { ttlMs: 2 * MULTIPART_EXPIRY_MS });
    return uploadId;
  }

  /** The upload's state, S3_UPLOAD_NOT_FOUND unless it is the tenant's, for `key`, and not expired. */
  async state(uploadId: string, key: string, operation: string): Promise<MultipartState> {
    const state = /^[0-9a-f-]{36}$/.test(uploadId)
      ? await this.states.get<MultipartState>(uploadId)
      : undefined;
    if (!state || state.key !== key || state.expiresAt <= this.ctx.clock())
      throw new KuraError("S3_UPLOAD_NOT_FOUND", `no upload ${uploadId.slice(0, 64)} for ${key}`, {
        operation,
        context: { key },
      });
    return state;
  }

  /** UploadPart: stores the part (replacing one of the same number), its size and SHA-256. */
  async uploadPart(
    uploadId: string,
    key: string,
    partNumber: number,
    body: BlobBody,
    options: { size?: number } = {},
  ): Promise<PartInfo> {
    const op = "multipart.uploadPart";
    if (!Number.isSafeInteger(partNumber) || partNumber < 1 || partNumber > MAX_PART_NUMBER)
      throw new KuraError("S3_REQUEST_INVALID", `part number must be 1…${MAX_PART_NUMBER}`, {
        operation: op,
      });
    await this.state(uploadId, key, op);
    if (options.size !== undefined) {
      if (options.size > MAX_PART_BYTES)
        throw new KuraError("PAYLOAD_TOO_LARGE", "a part is at most 5 GiB", { operation: op });
      // A part that could never fit the object the tenant may store is refused before a byte is kept.
      await this.ctx.tenancy.checkWrite(this.tenantId, {
        bytes: options.size,
        objects: 0,
        objectSizes: [options.size],
      });
    }
    const stored = await this.ctx.store.put(multipartPartKey(this.tenantId, uploadId, partNumber), body, {
      contentType: "application/octet-stream",
    });
    return {
      partNumber,
      size: stored.size,
      sha256: stored.sha256,
      etag: `"${stored.sha256}"`,
      lastModified: new Date(this.ctx.clock()),
    };
  }

  /** ListParts: the parts stored so far, by number, after `after`, at most `limit`. */
  async listParts(
    uploadId: string,
    key: string,
    options: { after?: number; limit?: number } = {},
  ): Promise<{ parts: PartInfo[]; truncated: boolean }> {
    await this.state(uploadId, key, "multipart.listParts");
    const all = (await this.parts(uploadId)).filter((p) => p.partNumber > (options.after ?? 0));
    const limit = options.limit ?? 1000;
    return { parts: all.slice(0, limit), truncated: all.length > limit };
  }

  /** ListMultipartUploads: the tenant's open uploads whose key starts with `prefix`, by key then age. */
  async list(
    options: { prefix?: string; keyMarker?: string; uploadIdMarker?: string; limit?: number } = {},
  ): Promise<{ uploads: UploadInfo[]; truncated: boolean }> {
    const now = this.ctx.clock();
    const prefix = options.prefix ?? "";
    const all: UploadInfo[] = [];
    for (const e of await this.states.scanAll<MultipartState>()) {
      const s = e.value;
      if (!s || s.expiresAt <= now || !s.key.startsWith(prefix)) continue;
      all.push({ uploadId: e.key, key: s.key, createdAt: s.createdAt });
    }
    all.sort((a, b) =>
      a.key < b.key ? -1 : a.key > b.key ? 1 : a.uploadId < b.uploadId ? -1 : a.uploadId > b.uploadId ? 1 : 0,
    );
    const { keyMarker, uploadIdMarker } = options;
    const after =
      keyMarker === undefined
        ? all
        : all.filter(
            (u) =>
              u.key > keyMarker ||
              (u.key === keyMarker && uploadIdMarker !== undefined && u.uploadId > uploadIdMarker),
          );
    const limit = options.limit ?? 1000;
    return { uploads: after.slice(0, limit), truncated: after.length > limit };
  }

  /**
   * CompleteMultipartUpload: the named parts, in ascending order (S3_PART_ORDER_INVALID), each
   * stored with that ETag (S3_PART_INVALID), all but the last at least 5 MiB (S3_PART_TOO_SMALL),
   * become the object through `Objects.put`; the parts and the state are removed after.
   */
  async complete(
    uploadId: string,
    key: string,
    requested: readonly { partNumber: number; etag: string }[],
  ): Promise<ObjectInfo> {
    const op = "multipart.complete";
    const state = await this.state(uploadId, key, op);
    if (requested.length === 0)
      throw new KuraError("S3_REQUEST_INVALID", "CompleteMultipartUpload names no part", { operation: op });
    for (let i = 1; i < requested.length; i++) {
      if (
        (requested[i] as { partNumber: number }).partNumber <=
        (requested[i - 1] as { partNumber: number }).partNumber
      )
        throw new KuraError("S3_PART_ORDER_INVALID", "parts must be listed in ascending order", {
          operation: op,
        });
    }
    const stored = new Map((await this.parts(uploadId)).map((p) => [p.partNumber, p]));
    const chosen: PartInfo[] = [];
    for (const r of requested) {
      const part = stored.get(r.partNumber);
      if (!part || unquote(r.etag) !== part.sha256)
        throw new KuraError("S3_PART_INVALID", `part ${r.partNumber} was not uploaded with that ETag`, {
          operation: op,
          context: { partNumber: r.partNumber },
        });
      chosen.push(part);
    }
    for (const part of chosen.slice(0, -1)) {
      if (part.size < MIN_PART_BYTES)
        throw new KuraError("S3_PART_TOO_SMALL", `part ${part.partNumber} is smaller than 5 MiB`, {
          operation: op,
          context: { partNumber: part.partNumber, size: part.size },
        });
    }
    const size = chosen.reduce((n, p) => n + p.size, 0);
    const store = this.ctx.store;
    const tenantId = this.tenantId;
    const body = (async function* concatenated() {
      for (const p of chosen) {
        const got = await store.get(multipartPartKey(tenantId, uploadId, p.partNumber), {
          expectedSha256: p.sha256,
        });
        yield* got.body as Readable & AsyncIterable<Uint8Array>;
      }
    })();
    const info = await this.objects.put(key, body, { contentType: state.contentType, size });
    await this.removeAll(uploadId);
    return info;
  }

  /** AbortMultipartUpload: the parts and the state are removed (S3_UPLOAD_NOT_FOUND if there is none). */
  async abort(uploadId: string, key: string): Promise<void> {
    await this.state(uploadId, key, "multipart.abort");
    await this.removeAll(uploadId);
  }

  private async removeAll(uploadId: string): Promise<void> {
    await removeParts(this.ctx.store, multipartPrefix(this.tenantId, uploadId));
    await this.states.delete(uploadId);
  }

  /** Every stored part, by number (SHA-256 from the listing, else from the blob's head). */
  private async parts(uploadId: string): Promise<PartInfo[]> {
    const prefix = multipartPrefix(this.tenantId, uploadId);
    const infos: BlobInfo[] = [];
    let cursor: string | undefined;
    do {
      const page = await this.ctx.store.list(prefix, { limit: 1000, ...(cursor ? { cursor } : {}) });
      infos.push(...page.items);
      cursor = page.cursor;
    } while (cursor);
    const parts: PartInfo[] = [];
    for (const info of infos) {
      const partNumber = Number(info.key.slice(prefix.length));
      if (!Number.isSafeInteger(partNumber)) continue;
      const sha256 = info.sha256 ?? (await this.ctx.store.head(info.key)).sha256;
      if (sha256 === undefined) continue;
      parts.push({
        partNumber,
        size: info.size,
        sha256,
        etag: `"${sha256}"`,
        lastModified: info.lastModified,
      });
    }
    return parts.sort((a, b) => a.partNumber - b.partNumber);
  }
}
