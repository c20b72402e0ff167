/**
 * User objects of a tenant: the blob store under `{tenant}/objects/`, indexed in the catalog,
 * written through the same protocol as messages (body first, then one catalog batch).
 *
 * Bodies are immutable (BLOB-4): each put writes a new blob at `{tenant}/objects/{key}@{version}`
 * and moves the catalog row to it with a compare-and-set, so a failed or concurrent put can
 * never leave the row pointing at bytes it did not record; the replaced blob is deleted after
 * the commit (or collected as an orphan).
 */
import type { Readable } from "node:stream";
import { sha256Hex } from "../core/checksum.js";
import { decodeCursor, encodeCursor } from "../core/cursor.js";
import { KuraError } from "../core/errors.js";
import { newMessageId } from "../core/ids.js";
import { keyProblem, MAX_KEY_BYTES } from "../core/keys.js";
import { type EngineContext, storeFor } from "../engine/context.js";
import type { BlobBody, PresignResult } from "../ports/blob-store.js";
import type { ObjectRow } from "../ports/catalog.js";

export interface ObjectInfo {
  key: string;
  size: number;
  sha256: string;
  contentType: string;
  etag: string;
  contentUrl: string;
  createdAt: string;
  updatedAt: string;
}

/** Where bodies of keys too long to store with their scope go (`{tenant}/objects/~long/{sha256}@{version}`). */
const LONG_KEY_DIR = "~long/";

/** Sorts after every key that starts with a prefix it is appended to (UTF-8 order): skips a common prefix. */
const PAST_PREFIX = "\u{10FFFF}";

/** A listing page: objects, and with a delimiter the common prefixes that stand for the keys they cover. */
export interface ObjectPage {
  items: ObjectInfo[];
  /** With `delimiter`: each distinct `prefix + … + delimiter` once, in key order among the items. */
  prefixes: string[];
  nextCursor: string | undefined;
}

/** An If-Match value (a quoted or bare ETag, or `*`) against an object's ETag, RFC 9110 strong comparison. */
function etagMatches(condition: string, etag: string | undefined): boolean {
  if (etag === undefined) return false;
  return condition
    .split(",")
    .map((t) => t.trim())
    .some((t) => t === "*" || t === etag || `"${t}"` === etag);
}

export class Objects {
  constructor(
    private readonly ctx: EngineContext,
    private readonly tenantId: string,
    /** Recorded as the audit entry's actor (SEC-3). */
    private readonly actor = "system",
  ) {}

  private prefix(): string {
    return `${this.tenantId}/objects/`;
  }

  /** KEY_INVALID unless `key` is a valid object key (a write that puts it later would be refused). */
  assertKey(key: unknown, operation: string): asserts key is string {
    this.checkKey(key, operation);
  }

  /** BLOB-7 on the caller's key: 1,024 bytes whatever the tenant id's length. */
  private checkKey(key: unknown, operation: string): asserts key is string {
    const problem = keyProblem(key);
    if (problem !== undefined) {
      throw new KuraError("KEY_INVALID", `invalid object key: ${problem}`, {
        operation,
        context: { key: typeof key === "string" ? key.slice(0, 200) : typeof key },
      });
    }
  }

  /**
   * The blob key of one version of `key`. With the tenant scope and the version suffix a long
   * key would pass the 1,024 bytes every backend allows, so such a body is stored under the
   * key's SHA-256 instead; the catalog row maps the key to its blob either way.
   */
  private blobKey(key: string, version: string): string {
    const plain = `${this.prefix()}${key}@${version}`;
    if (plain.length * 3 <= MAX_KEY_BYTES || Buffer.byteLength(plain) <= MAX_KEY_BYTES) return plain;
    return `${this.prefix()}${LONG_KEY_DIR}${sha256Hex(key)}@${version}`;
  }

  /**
   * Store an object (replacing any under the key unless `ifNoneMatch: "*"`). With `ifMatch` (an
   * ETag list or `*`) only while the current object matches (PRECONDITION_FAILED otherwise, and
   * when another put replaces it between the check and the commit: the commit compares the row).
   */
  async put(
    key: string,
    body: BlobBody,
    options: {
      contentType?: string;
      ifNoneMatch?: "*";
      ifMatch?: string;
      /** The body's length when the caller knows it (Content-Length): limits are checked first. */
      size?: number;
    } = {},
  ): Promise<ObjectInfo> {
    const op = "objects.put";
    this.checkKey(key, op);
    const previous = await this.ctx.catalog.getObject(this.tenantId, key);
    if (previous && options.ifNoneMatch === "*") {
      throw new KuraError("BLOB_ALREADY_EXISTS", `an object already exists under ${key}`, {
        operation: op,
        context: { key },
      });
    }
    if (
      options.ifMatch !== undefined &&
      !etagMatches(options.ifMatch, previous && this.info(previous).etag)
    ) {
      throw new KuraError("PRECONDITION_FAILED", `the object under ${key} does not match If-Match`, {
        operation: op,
        context: { key },
      });
    }
    body = await this.withinLimits(body, previous?.sizeBytes, options.size);
    const now = this.ctx.clock();
    const blobKey = this.blobKey(key, newMessageId(now));
    const contentType = options.contentType ?? "application/octet-stream";
    let row: ObjectRow;
    try {
      [row] = (await this.ctx.protocol.write({
        at: now,
        actor: this.actor,
        ops: [{ op: "ensureTenant", tenantId: this.tenantId, at: now }],
        changes: [
          {
            kind: "object",
            row: {
              tenantId: this.tenantId,
              key,
              blobKey,
              contentType,
              createdAt: previous?.createdAt ?? now,
              updatedAt: now,
            },
            expectBlobKey: previous?.blobKey ?? null,
            // The replaced body: its ref and bytes go with this commit, the body after it.
            drops: previous ? [previous] : undefined,
            data: body,
            contentType,
            bodyFacts: "audit+event",
            event: "object.put",
            entityId: key,
            payload: {},
            action: "object.put",
            details: {},
          },
        ],
      })) as [ObjectRow];
    } catch (e) {
      if (e instanceof KuraError && e.code === "CATALOG_STALE_VERSION" && options.ifMatch !== undefined) {
        throw new KuraError(
          "PRECONDITION_FAILED",
          `the object under ${key} changed: it no longer matches If-Match`,
          {
            operation: op,
            context: { key },
            cause: e,
          },
        );
      }
      if (e instanceof KuraError && e.code === "CATALOG_STALE_VERSION") {
        throw new KuraError("CONDITION_FAILED_CONCURRENT", `another write to ${key} landed first; retry`, {
          operation: op,
          context: { key },
          cause: e,
        });
      }
      throw e;
    }
    return this.info(row);
  }

  /**
   * The tenant's limits (TEN-3) before a byte is written: a body of known length is checked
   * against them; a stream of unknown length is cut off (PAYLOAD_TOO_LARGE) once it passes what
   * they leave, and the write protocol then removes what it wrote.
   */
  private async withinLimits(
    body: BlobBody,
    replacing: number | undefined,
    declared?: number,
  ): Promise<BlobBody> {
    const size = body instanceof Uint8Array ? body.length : declared;
    const tenancy = this.ctx.tenancy;
    if (size !== undefined) {
      await tenancy.checkWrite(this.tenantId, {
        bytes: size - (replacing ?? 0),
        objects: replacing === undefined ? 1 : 0,
        objectSizes: [size],
      });
      return body;
    }
    await tenancy.checkWrite(this.tenantId, { bytes: 0, objects: replacing === undefined ? 1 : 0 });
    const allowance = await tenancy.bodyAllowance(this.tenantId, replacing ?? 0);
    if (allowance === undefined) return body;
    const tenantId = this.tenantId;
    return (async function* limited() {
      let seen = 0;
      for await (const chunk of body as AsyncIterable<Uint8Array>) {
        seen += chunk.length;
        if (seen > allowance) throw tenancy.overLimit(tenantId, allowance);
        yield chunk;
      }
    })();
  }

  async head(key: string): Promise<ObjectInfo> {
    return this.info(await this.row(key, "objects.head"));
  }

  /** Stream an object or a byte range of it; whole reads are verified against the catalog's SHA-256. */
  async get(
    key: string,
    options: { range?: { start: number; end?: number } } = {},
  ): Promise<{ info: ObjectInfo; body: Readable; range: { start: number; end: number } | undefined }> {
    const row = await this.row(key, "objects.get");
    const got = await storeFor(this.ctx, row.storeId).get(row.blobKey, {
      expectedSha256: row.checksum,
      ...(options.range ? { range: options.range } : {}),
    });
    return { info: this.info(row), body: got.body, range: got.range };
  }

  async getBuffer(key: string): Promise<{ info: ObjectInfo; data: Buffer }> {
    const row = await this.row(key, "objects.get");
    const { data } = await storeFor(this.ctx, row.storeId).getBuffer(row.blobKey, {
      expectedSha256: row.checksum,
    });
    return { info: this.info(row), data };
  }

  /** Delete an object; deleting a missing key succeeds. */
  async delete(key: string): Promise<void> {
    this.checkKey(key, "objects.delete");
    const row = await this.ctx.catalog.getObject(this.tenantId, key);
    if (!row) return;
    const now = this.ctx.clock();
    await this.ctx.protocol.write({
      at: now,
      actor: this.actor,
      changes: [
        {
          kind: "catalog",
          op: { op: "deleteObject", tenantId: this.tenantId, key, expectBlobKey: row.blobKey },
          drops: [row],
          event: "object.deleted",
          entityId: key,
          payload: {},
          action: "object.delete",
          details: {},
        },
      ],
    });
  }

  /**
   * Objects whose key starts with `prefix`, in key order, a page at a time (`limit` entries,
   * objects and common prefixes together). With `delimiter`, the keys that have it after the
   * prefix are listed once as their common prefix (up to and including the delimiter's first
   * occurrence), as S3 and the `/v1` listing do. `startAfter` lists keys after it (ignored
   * with a cursor, which carries its own position).
   */
  async list(
    options: {
      prefix?: string;
      delimiter?: string;
      cursor?: string;
      limit?: number;
      startAfter?: string;
    } = {},
  ): Promise<ObjectPage> {
    const op = "objects.list";
    const limit = options.limit ?? 100;
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > 1000) {
      throw new KuraError("INVALID_ARGUMENT", "limit must be 1…1000", { operation: op });
    }
    const prefix = options.prefix ?? "";
    if (typeof prefix !== "string" || (prefix !== "" && keyProblem(`${prefix}x`) !== undefined)) {
      throw new KuraError("KEY_INVALID", "invalid prefix", { operation: op });
    }
    const delimiter = options.delimiter === "" ? undefined : options.delimiter;
    if (delimiter !== undefined && (typeof delimiter !== "string" || [...delimiter].length > 16)) {
      throw new KuraError("INVALID_ARGUMENT", "delimiter must be at most 16 characters", { operation: op });
    }
    let afterKey = options.startAfter;
    /** The common prefix the last page ended on: its keys are all listed already. */
    let skipPrefix: string | undefined;
    if (options.cursor !== undefined) {
      const c = decodeCursor(options.cursor, { k: "o1" });
      if (c === undefined || typeof c.a !== "string" || (c.p !== undefined && c.p !== 1))
        throw new KuraError("CURSOR_INVALID", "the cursor was not produced by this listing", {
          operation: op,
        });
      afterKey = c.a;
      if (c.p === 1) skipPrefix = c.a;
    }
    const items: ObjectInfo[] = [];
    const prefixes: string[] = [];
    let last: { key: string; isPrefix: boolean } | undefined;
    let more = false;
    if (skipPrefix !== undefined) afterKey = skipPrefix + PAST_PREFIX;
    scan: for (;;) {
      const rows = await this.ctx.catalog.listObjects(this.tenantId, {
        prefix,
        limit: limit + 1,
        ...(afterKey !== undefined ? { afterKey } : {}),
      });
      for (const row of rows) {
        afterKey = row.key;
        if (skipPrefix !== undefined && row.key.startsWith(skipPrefix)) continue;
        const at = delimiter === undefined ? -1 : row.key.indexOf(delimiter, prefix.length);
        if (items.length + prefixes.length === limit) {
          more = true;
          break scan;
        }
        if (at >= 0) {
          const common = row.key.slice(0, at + (delimiter as string).length);
          prefixes.push(common);
          last = { key: common, isPrefix: true };
          skipPrefix = common;
          // Jump past every key under it instead of reading them.
          afterKey = common + PAST_PREFIX;
          continue scan;
        }
        items.push(this.info(row));
        last = { key: row.key, isPrefix: false };
      }
      if (rows.length <= limit) break;
    }
    return {
      items,
      prefixes,
      nextCursor:
        more && last ? encodeCursor({ k: "o1", a: last.key, ...(last.isPrefix ? { p: 1 } : {}) }) : undefined,
    };
  }

  /** A URL to download the object without credentials until it expires. */
  async presign(key: string, options: { expiresIn: number }): Promise<PresignResult> {
    const row = await this.row(key, "objects.presign");
    return storeFor(this.ctx, row.storeId).presign(row.blobKey, {
      method: "GET",
      expiresIn: options.expiresIn,
    });
  }

  private async row(key: string, operation: string): Promise<ObjectRow> {
    this.checkKey(key, operation);
    const row = await this.ctx.catalog.getObject(this.tenantId, key);
    if (!row) throw new KuraError("OBJECT_NOT_FOUND", `no object ${key}`, { operation, context: { key } });
    return row;
  }

  private info(row: ObjectRow): ObjectInfo {
    return {
      key: row.key,
      size: row.sizeBytes,
      sha256: row.checksum,
      contentType: row.contentType,
      etag: `"${row.checksum}"`,
      contentUrl: this.ctx.urls.urlFor(row.storeId, row.blobKey),
      createdAt: new Date(row.createdAt).toISOString(),
      updatedAt: new Date(row.updatedAt).toISOString(),
    };
  }
}
