/**
 * Resumable uploads of one tenant (API-6; tus 1.0 over HTTP in `http/routes/uploads.ts`): an
 * upload is created with its target (an object key, or a session file) and its length (or
 * with the length deferred), receives its bytes over any number of requests, each stored as a
 * part before the offset moves (`engine/uploads.ts`), and once whole is streamed from its parts
 * into the target's own write — `objects.put` (write protocol, limits, usage, audit) or
 * `sessions.putFile` —, each part verified against its SHA-256 on the way. The target appears
 * whole or not at all; the parts go once it has them.
 */
import { createHash } from "node:crypto";
import { KuraError } from "../core/errors.js";
import { isValidId, keyProblem, MAX_KEY_BYTES } from "../core/keys.js";
import type { EngineContext } from "../engine/context.js";
import {
  MAX_UPLOAD_PARTS,
  type UploadPart,
  type UploadState,
  type UploadStore,
  type UploadTarget,
  uploadNotFound,
  type VersionedUpload,
} from "../engine/uploads.js";
import type { BlobBody } from "../ports/blob-store.js";
import type { Objects } from "./objects.js";
import type { Sessions } from "./sessions.js";

export interface UploadInfo {
  id: string;
  offset: number;
  /** Undefined while the length is deferred. */
  length: number | undefined;
  metadata: Readonly<Record<string, string>>;
  expiresAt: Date;
  /** The target holds the whole upload. */
  completed: boolean;
  /** SHA-256 (hex) of the whole upload, once completed. */
  sha256: string | undefined;
}

/** A checksum of one request's bytes (`Upload-Checksum`): only SHA-256 is offered. */
export interface UploadChecksum {
  algorithm: string;
  /** The digest as sent: base64. */
  digest: string;
}

export interface AppendOptions {
  /** Where the client believes the upload stands (`Upload-Offset`). */
  offset: number;
  body: BlobBody;
  /** The body's length when the client said it (Content-Length): limits are checked first. */
  size?: number;
  /** The total length, for an upload whose length was deferred (`Upload-Length` on PATCH). */
  length?: number;
  checksum?: UploadChecksum;
  /**
   * Keep the bytes received before the body failed (a client that went away): they become a part
   * and the offset moves past them. Never with a checksum, which only the whole body can meet.
   */
  keepPartial?: boolean;
}

export interface CreateOptions {
  /** Total bytes; omit with `deferLength`. */
  length?: number;
  deferLength?: boolean;
  /** `key` (object key) or `session_id` + `path`; `filetype` (the stored Content-Type). */
  metadata: Record<string, string>;
  /** The first bytes (creation-with-upload). */
  body?: Omit<AppendOptions, "offset" | "length">;
}

export const CHECKSUM_ALGORITHMS = ["sha256"] as const;

const MIME = /^[A-Za-z0-9!#$&^_.+-]{1,127}\/[A-Za-z0-9!#$&^_.+-]{1,127}(\s*;[\x20-\x7e]{0,200})?$/;

function invalid(message: string, operation: string): KuraError {
  return new KuraError("UPLOAD_INVALID", message, { operation });
}

export class Uploads {
  constructor(
    private readonly ctx: EngineContext,
    private readonly store: UploadStore,
    readonly tenantId: string,
    private readonly objects: Objects,
    private readonly sessions: Sessions,
  ) {}

  /** Largest upload the server accepts (Tus-Max-Size). */
  get maxBytes(): number {
    return this.store.maxBytes;
  }

  /** Starts an upload (and takes its first bytes with `body`); limits are checked before anything is stored. */
  async create(options: CreateOptions): Promise<UploadInfo> {
    const op = "uploads.create";
    const length = options.length;
    if (length === undefined ? options.deferLength !== true : options.deferLength === true) {
      throw invalid("give the upload's length, or defer it (not both)", op);
    }
    if (length !== undefined) this.checkLength(length, op);
    const target = this.targetOf(options.metadata, op);
    const filetype = options.metadata.filetype;
    if (filetype !== undefined && !MIME.test(filetype)) throw invalid("filetype must be a MIME type", op);
    if (length !== undefined) await this.checkTargetLimits(target, length);
    const now = this.store.now();
    const state: UploadState = {
      id: this.store.newId(),
      tenantId: this.tenantId,
      target,
      length: length ?? null,
      offset: 0,
      metadata: { ...options.metadata },
      contentType: filetype ?? "application/octet-stream",
      parts: [],
      createdAt: now,
      expiresAt: now + this.store.expiryMs,
      completedAt: null,
      sha256: null,
    };
    let current = await this.store.create(state);
    if (options.body) {
      return this.append(state.id, { ...options.body, offset: 0 });
    }
    if (length === 0) current = await this.complete(current);
    return this.info(current.state);
  }

  /** Where the upload stands; an upload whose bytes are all in but whose target lacks them is completed first. */
  async head(id: string): Promise<UploadInfo> {
    let current = await this.live(id, "uploads.head");
    if (current.state.completedAt === null && current.state.offset === current.state.length) {
      current = await this.complete(current);
    }
    return this.info(current.state);
  }

  /**
   * Appends the bytes at `offset` (it must be where the upload stands: UPLOAD_OFFSET_MISMATCH
   * otherwise, also when another request moved it meanwhile); the last bytes complete it.
   */
  async append(id: string, options: AppendOptions): Promise<UploadInfo> {
    const op = "uploads.append";
    let current = await this.live(id, op);
    let state = current.state;
    if (options.offset !== state.offset) throw this.offsetMismatch(state, options.offset, op);
    if (options.length !== undefined) {
      this.checkLength(options.length, op);
      if (state.length !== null && state.length !== options.length)
        throw invalid("the upload's length is already set; it cannot change", op);
      if (options.length < state.offset) throw invalid("the length is below the bytes already received", op);
      if (state.length === null)
        await this.endIfRefused(state, this.checkTargetLimits(state.target, options.length));
    }
    const length = options.length ?? state.length;
    if (
      options.checksum &&
      !(CHECKSUM_ALGORITHMS as readonly string[]).includes(options.checksum.algorithm)
    ) {
      throw new KuraError(
        "UPLOAD_CHECKSUM_UNSUPPORTED",
        `checksum algorithm ${options.checksum.algorithm.slice(0, 32)} is not supported (sha256 is)`,
        { operation: op },
      );
    }
    if (state.completedAt !== null) {
      if (options.size !== undefined && options.size > 0) throw this.tooLong(state.length ?? 0, op);
      return this.info(state);
    }
    if (state.parts.length >= MAX_UPLOAD_PARTS) {
      throw new KuraError(
        "UPLOAD_LENGTH_EXCEEDED",
        `the upload has ${MAX_UPLOAD_PARTS} parts, the most it may have: send larger requests`,
        { operation: op },
      );
    }
    const room =
      length === null
        ? await this.endIfRefused(state, this.room(state, length, op))
        : await this.room(state, length, op);
    if (options.size !== undefined && options.size > room) {
      if (length === null) await this.store.remove(state);
      throw this.tooLong(state.offset + room, op);
    }
    const sha = options.checksum ? createHash("sha256") : undefined;
    const counted = limited(options.body, room, () => this.tooLong(state.offset + room, op), {
      keepPartial: options.keepPartial === true && options.checksum === undefined,
      hash: sha,
    });
    let part: UploadPart;
    try {
      part = await this.store.putPart(state, state.offset, counted);
    } catch (e) {
      // An upload of unknown length past what the limits leave can never complete: it ends here.
      if (length === null && e instanceof KuraError && e.code === "UPLOAD_LENGTH_EXCEEDED") {
        await this.store.remove(state);
      }
      throw e;
    }
    if (sha && options.checksum && sha.digest("base64") !== normalizeBase64(options.checksum.digest)) {
      await this.store.deleteParts(state, [part[0]]);
      throw new KuraError("UPLOAD_CHECKSUM_MISMATCH", "the request body does not match Upload-Checksum", {
        operation: op,
        context: { id },
      });
    }
    const now = this.store.now();
    const next: UploadState = {
      ...state,
      length,
      offset: state.offset + part[1],
      parts: part[1] > 0 ? [...state.parts, part] : state.parts,
      // Expiry slides while the upload makes progress: a long upload never expires mid-way.
      expiresAt: now + this.store.expiryMs,
    };
    const moved = await this.store.replace(current, next);
    if (!moved) {
      await this.store.deleteParts(state, [part[0]]);
      const again = await this.live(id, op);
      throw this.offsetMismatch(again.state, options.offset, op);
    }
    if (part[1] === 0) await this.store.deleteParts(state, [part[0]]);
    current = moved;
    state = current.state;
    if (state.offset === state.length) current = await this.complete(current);
    return this.info(current.state);
  }

  /**
   * An upload of unknown length that the limits refuse can never complete: it ends with the
   * refusal (its parts removed), so a client that gives up leaves nothing behind.
   */
  private async endIfRefused<T>(state: UploadState, work: Promise<T>): Promise<T> {
    try {
      return await work;
    } catch (e) {
      if (e instanceof KuraError && (e.kind === "QuotaExceeded" || e.kind === "PayloadTooLarge")) {
        await this.store.remove(state);
      }
      throw e;
    }
  }

  /** Ends an upload and removes what it stored (termination); the target is left as it is. */
  async terminate(id: string): Promise<void> {
    const got = await this.store.get(this.tenantId, id);
    if (!got) throw uploadNotFound(id, "uploads.terminate");
    await this.store.remove(got.state);
  }

  /** The upload, unless it is missing (UPLOAD_NOT_FOUND) or past its expiry (UPLOAD_EXPIRED). */
  private async live(id: string, operation: string): Promise<VersionedUpload> {
    const got = await this.store.get(this.tenantId, id);
    if (!got) throw uploadNotFound(id, operation);
    if (got.state.expiresAt <= this.store.now()) {
      throw new KuraError("UPLOAD_EXPIRED", "the upload expired; start a new one", {
        operation,
        context: { id, expiredAt: new Date(got.state.expiresAt).toISOString() },
      });
    }
    return got;
  }

  /**
   * Streams the parts into the target's write. A target that refuses the whole for good (limits,
   * quota) ends the upload and removes its parts; other failures leave it to be completed again.
   */
  private async complete(current: VersionedUpload): Promise<VersionedUpload> {
    const state = current.state;
    const body = this.store.read(state);
    let sha256: string;
    try {
      if (state.target.kind === "object") {
        const info = await this.objects.put(state.target.key, body, {
          contentType: state.contentType,
          size: state.offset,
        });
        sha256 = info.sha256;
      } else {
        const file = await this.sessions.putFile(state.target.sessionId, state.target.path, body, {
          contentType: state.contentType,
        });
        sha256 = file.sha256;
      }
    } catch (e) {
      if (e instanceof KuraError && (e.kind === "QuotaExceeded" || e.kind === "PayloadTooLarge")) {
        await this.store.remove(state);
      }
      throw e;
    }
    const done: UploadState = { ...state, parts: [], completedAt: this.store.now(), sha256 };
    const moved = await this.store.replace(current, done);
    // Another request completed it first (the same bytes): its state stands.
    const result = moved ?? (await this.store.get(this.tenantId, state.id)) ?? { state: done, version: 0 };
    await this.store.deleteAllParts(state.tenantId, state.id);
    return result;
  }

  /** Bytes the next request may add: up to the length, and within the server's and the tenant's limits. */
  private async room(state: UploadState, length: number | null, operation: string): Promise<number> {
    if (length !== null) return length - state.offset;
    let max = this.store.maxBytes;
    if (state.target.kind === "object") {
      const previous = await this.ctx.catalog.getObject(this.tenantId, state.target.key);
      const allowance = await this.ctx.tenancy.bodyAllowance(this.tenantId, previous?.sizeBytes ?? 0);
      if (allowance !== undefined) max = Math.min(max, allowance);
    }
    if (max < state.offset) throw this.tooLong(max, operation);
    return max - state.offset;
  }

  private checkLength(length: number, operation: string): void {
    if (!Number.isSafeInteger(length) || length < 0)
      throw invalid("the length must be an integer ≥ 0", operation);
    if (length > this.store.maxBytes) {
      throw new KuraError(
        "UPLOAD_LENGTH_EXCEEDED",
        `the upload is ${length} bytes; the server takes at most ${this.store.maxBytes}`,
        { operation, context: { length, limit: this.store.maxBytes } },
      );
    }
  }

  /** The tenant's limits for an object of `length` bytes (quota, object size), before anything is stored. */
  private async checkTargetLimits(target: UploadTarget, length: number): Promise<void> {
    if (target.kind !== "object") return;
    const previous = await this.ctx.catalog.getObject(this.tenantId, target.key);
    await this.ctx.tenancy.checkWrite(this.tenantId, {
      bytes: length - (previous?.sizeBytes ?? 0),
      objects: previous ? 0 : 1,
      objectSizes: [length],
    });
  }

  /** The target the metadata names: `key`, or `session_id` and `path`, checked as their domains would. */
  private targetOf(metadata: Record<string, string>, operation: string): UploadTarget {
    const { key, session_id: sessionId, path } = metadata;
    if (key !== undefined) {
      if (sessionId !== undefined || path !== undefined)
        throw invalid("metadata names an object key and a session file: give one", operation);
      const problem = keyProblem(key);
      if (problem !== undefined) {
        throw new KuraError("KEY_INVALID", `invalid object key: ${problem}`, {
          operation,
          context: { key: key.slice(0, 200) },
        });
      }
      return { kind: "object", key };
    }
    if (sessionId === undefined || path === undefined) {
      throw invalid("metadata must name the target: key, or session_id and path", operation);
    }
    if (!isValidId(sessionId)) {
      throw new KuraError("SESSION_ID_INVALID", "invalid session id", {
        operation,
        context: { sessionId: String(sessionId).slice(0, 200) },
      });
    }
    const full = `${this.tenantId}/sessions/${sessionId}/${path}`;
    const problem = keyProblem(path) ?? keyProblem(full, MAX_KEY_BYTES);
    if (problem !== undefined) {
      throw new KuraError("SESSION_PATH_INVALID", `invalid session file path: ${problem}`, {
        operation,
        context: { sessionId, path: path.slice(0, 200) },
      });
    }
    return { kind: "session", sessionId, path };
  }

  private offsetMismatch(state: UploadState, offset: number, operation: string): KuraError {
    return new KuraError(
      "UPLOAD_OFFSET_MISMATCH",
      `the upload stands at offset ${state.offset}, not ${offset}: ask HEAD where to resume`,
      { operation, context: { id: state.id, offset: state.offset } },
    );
  }

  private tooLong(limit: number, operation: string): KuraError {
    return new KuraError(
      "UPLOAD_LENGTH_EXCEEDED",
      `the upload would pass ${limit} bytes (its length, or the server's or the tenant's limit); nothing of this request was kept`,
      { operation, context: { limit } },
    );
  }

  private info(state: UploadState): UploadInfo {
    return {
      id: state.id,
      offset: state.offset,
      length: state.length ?? undefined,
      metadata: state.metadata,
      expiresAt: new Date(state.expiresAt),
      completed: state.completedAt !== null,
      sha256: state.sha256 ?? undefined,
    };
  }
}

/** Base64 as `digest("base64")` writes it (padding restored, URL-safe letters mapped back). */
function normalizeBase64(digest: string): string {
  const std = digest.trim().replaceAll("-", "+").replaceAll("_", "/");
  return std + "=".repeat((4 - (std.length % 4)) % 4);
}

/**
 * The body cut off with `tooLong()` once it passes `room` bytes, hashed on the way; with
 * `keepPartial`, a body whose source fails ends where it failed instead of failing.
 */
async function* limited(
  body: BlobBody,
  room: number,
  tooLong: () => KuraError,
  options: { keepPartial: boolean; hash: ReturnType<typeof createHash> | undefined },
): AsyncGenerator<Uint8Array> {
  if (body instanceof Uint8Array) {
    if (body.length > room) throw tooLong();
    options.hash?.update(body);
    if (body.length > 0) yield body;
    return;
  }
  let seen = 0;
  const iterator = (body as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]();
  for (;;) {
    let next: IteratorResult<Uint8Array>;
    try {
      next = await iterator.next();
    } catch (e) {
      if (options.keepPartial) return;
      throw e;
    }
    if (next.done) return;
    const chunk = next.value;
    seen += chunk.length;
    if (seen > room) {
      await iterator.return?.();
      throw tooLong();
    }
    options.hash?.update(chunk);
    yield chunk;
  }
}
