/**
 * Resumable uploads (API-6, ADR 0034): the state of record of each upload in the KV store and
 * its parts in the primary blob store, so an upload outlives client and server restarts (kill -9
 * included) and continues on any node that shares the KV store and the blob store.
 *
 * - State: one KV entry per upload under `~upload:{id}` (its tenant inside; another tenant's
 *   id reads as absent), changed only by compare-and-set on the entry's version: of two
 *   requests that raced from the same state exactly one moves it.
 * - Parts: `{tenant}/uploads/{id}/{offset}-{suffix}`, one per accepted request body, written
 *   whole before the state names it. A part the state does not name (a killed request, a lost
 *   race) is deleted by whoever wrote it, else with the upload's prefix at completion,
 *   termination or expiry. `uploads` is Kura's own key segment: neither orphan GC nor fsck
 *   looks there.
 * - Expiry: `expireUploadsJob` removes the parts and the state of uploads past their
 *   `expiresAt` (completed ones included: their state answers HEAD until then).
 */
import { randomBytes } from "node:crypto";
import { isKuraError, KuraError } from "../core/errors.js";
import type { BlobBody, BlobStore } from "../ports/blob-store.js";
import type { Catalog } from "../ports/catalog.js";
import type { KvStore } from "../ports/kv-store.js";
import type { Job } from "./jobs.js";

/** KV prefix of upload states (a `~` name: no tenant's id starts so, IDS-1). */
export const UPLOAD_STATE_PREFIX = "~upload:";

/** Most parts one upload may have (each accepted request body is one): the state stays within a KV value (1 MiB). */
export const MAX_UPLOAD_PARTS = 5_000;

/** How often (at most) one process looks for parts whose state is gone (`sweepLost`). */
const SWEEP_EVERY_MS = 3_600_000;

/** How long a state outlives its expiry in the KV store when no job removes it first. */
const STATE_GRACE_MS = 7 * 86_400_000;

/** Where the finished upload goes: an object, or a session file. */
export type UploadTarget =
  | { kind: "object"; key: string }
  | { kind: "session"; sessionId: string; path: string };

/** One stored part: `[offset-suffix name, size, sha256]`, kept short (the state holds thousands). */
export type UploadPart = [name: string, size: number, sha256: string];

export interface UploadState {
  id: string;
  tenantId: string;
  target: UploadTarget;
  /** Total bytes, or null while deferred (`Upload-Defer-Length`). */
  length: number | null;
  /** Bytes accepted so far: the sum of the parts' sizes. */
  offset: number;
  /** The client's `Upload-Metadata`, decoded. */
  metadata: Record<string, string>;
  contentType: string;
  parts: UploadPart[];
  createdAt: number;
  expiresAt: number;
  /** Set once the target holds the whole upload; the parts are gone then. */
  completedAt: number | null;
  /** SHA-256 of the whole upload as the target stored it (after completion). */
  sha256: string | null;
}

/** A state with the KV version it was read at (the CAS token of the next change). */
export interface VersionedUpload {
  state: UploadState;
  version: number;
}

export interface UploadStoreOptions {
  kv: KvStore;
  store: BlobStore;
  clock: () => number;
  /** How long an upload lives after its creation (`retention.upload_expiry_hours`). */
  expiryMs: number;
  /** Largest upload accepted (`limits.max_upload_bytes`): Tus-Max-Size. */
  maxBytes: number;
  /** The tenant registry, whose tenants' part prefixes `sweepLost` looks under; none: no sweep. */
  catalog?: Catalog;
}

/** The upload states and parts of every tenant: what the uploads domain and the expiry job share. */
export class UploadStore {
  readonly expiryMs: number;
  readonly maxBytes: number;
  private lastSweep = Number.NEGATIVE_INFINITY;

  constructor(private readonly options: UploadStoreOptions) {
    this.expiryMs = options.expiryMs;
    this.maxBytes = options.maxBytes;
  }

  now(): number {
    return this.options.clock();
  }

  /** A new upload id: 128 random bits, hex. */
  newId(): string {
    return randomBytes(16).toString("hex");
  }

  private key(id: string): string {
    return UPLOAD_STATE_PREFIX + id;
  }

  /** The blob-key prefix of an upload's parts. */
  partPrefix(tenantId: string, id: string): string {
    return `${tenantId}/uploads/${id}/`;
  }

  partKey(state: UploadState, name: string): string {
    return this.partPrefix(state.tenantId, state.id) + name;
  }

  private ttlMs(state: UploadState): number {
    return Math.max(1, state.expiresAt - this.now()) + STATE_GRACE_MS;
  }

  /** Records a new upload; fails with KV_VERSION_CONFLICT if the id is taken. */
  async create(state: UploadState): Promise<VersionedUpload> {
    const { version } = await this.options.kv.set(this.key(state.id), state, {
      ifVersion: 0,
      ttlMs: this.ttlMs(state),
    });
    return { state, version };
  }

  /** The upload `id` of `tenantId`, or undefined (another tenant's upload reads as absent). */
  async get(tenantId: string, id: string): Promise<VersionedUpload | undefined> {
    if (!/^[0-9a-f]{32}$/.test(id)) return undefined;
    const entry = await this.options.kv.getEntry<UploadState>(this.key(id));
    if (!entry || entry.value.tenantId !== tenantId) return undefined;
    return { state: entry.value, version: entry.version };
  }

  /**
   * Replaces the state read at `from.version` with `next`; false when another request changed
   * it first (nothing written then).
   */
  async replace(from: VersionedUpload, next: UploadState): Promise<VersionedUpload | undefined> {
    try {
      const { version } = await this.options.kv.set(this.key(next.id), next, {
        ifVersion: from.version,
        ttlMs: this.ttlMs(next),
      });
      return { state: next, version };
    } catch (e) {
      if (isKuraError(e) && e.code === "KV_VERSION_CONFLICT") return undefined;
      throw e;
    }
  }

  /** Writes one part whole; returns its name, size and SHA-256 as the store recorded them. */
  async putPart(state: UploadState, offset: number, body: BlobBody): Promise<UploadPart> {
    const name = `${String(offset).padStart(16, "0")}-${randomBytes(4).toString("hex")}`;
    const result = await this.options.store.put(this.partKey(state, name), body, {
      freshKey: true,
      contentType: "application/offset+octet-stream",
    });
    return [name, result.size, result.sha256];
  }

  /** Deletes parts by name (missing ones succeed). */
  async deleteParts(state: UploadState, names: readonly string[]): Promise<void> {
    if (names.length > 0) await this.options.store.delete(names.map((n) => this.partKey(state, n)));
  }

  /** The parts' bytes in order, each verified against the SHA-256 recorded when it was written. */
  async *read(state: UploadState): AsyncGenerator<Uint8Array> {
    for (const [name, , sha256] of state.parts) {
      const got = await this.options.store.get(this.partKey(state, name), { expectedSha256: sha256 });
      for await (const chunk of got.body) yield chunk as Uint8Array;
    }
  }

  /** Everything stored under the upload's part prefix, named in the state or not. */
  async deleteAllParts(tenantId: string, id: string): Promise<number> {
    const prefix = this.partPrefix(tenantId, id);
    let deleted = 0;
    for (;;) {
      const page = await this.options.store.list(prefix, { limit: 1000 });
      if (page.items.length === 0) return deleted;
      await this.options.store.delete(page.items.map((i) => i.key));
      deleted += page.items.length;
    }
  }

  /**
   * Removes an upload: marks its state expired and empty, deletes every blob under its prefix,
   * then the state. The mark comes first so that a request racing with the removal fails its
   * compare-and-set (and deletes its own part), and a removal cut short (a backend fault) is
   * finished by the expiry job. With `version`, only the state read at that version is removed
   * (false when another request changed it first).
   */
  async remove(state: UploadState, version?: number): Promise<boolean> {
    const key = this.key(state.id);
    let marked: number;
    try {
      ({ version: marked } = await this.options.kv.set(
        key,
        { ...state, parts: [], expiresAt: 0 },
        { ttlMs: STATE_GRACE_MS, ...(version !== undefined ? { ifVersion: version } : {}) },
      ));
    } catch (e) {
      if (isKuraError(e) && e.code === "KV_VERSION_CONFLICT") return false;
      throw e;
    }
    await this.deleteAllParts(state.tenantId, state.id);
    await this.options.kv.delete(key, { ifVersion: marked }).catch((e: unknown) => {
      if (!(isKuraError(e) && e.code === "KV_VERSION_CONFLICT")) throw e;
    });
    return true;
  }

  /**
   * Deletes parts whose upload state is gone (a KV store that lost it: a Redis without
   * persistence restarted) once they are older than the expiry — their upload would have expired
   * by now. At most once an hour per process: it lists each registered tenant's part prefix.
   */
  async sweepLost(now: number): Promise<number> {
    const catalog = this.options.catalog;
    if (!catalog || now - this.lastSweep < SWEEP_EVERY_MS) return 0;
    this.lastSweep = now;
    const cutoff = now - this.expiryMs;
    let deleted = 0;
    let after: string | undefined;
    for (;;) {
      const tenants = await catalog.listTenants({
        limit: 100,
        ...(after !== undefined ? { afterTenantId: after } : {}),
      });
      for (const { tenantId } of tenants) {
        const prefix = `${tenantId}/uploads/`;
        let cursor: string | undefined;
        do {
          const page = await this.options.store.list(prefix, { limit: 1000, ...(cursor ? { cursor } : {}) });
          cursor = page.cursor;
          const old = new Map<string, string[]>();
          for (const item of page.items) {
            if (item.lastModified.getTime() > cutoff) continue;
            const id = item.key.slice(prefix.length).split("/")[0] as string;
            old.set(id, [...(old.get(id) ?? []), item.key]);
          }
          for (const [id, keys] of old) {
            if (await this.options.kv.getEntry(this.key(id))) continue;
            await this.options.store.delete(keys);
            deleted += keys.length;
          }
        } while (cursor);
      }
      if (tenants.length < 100) return deleted;
      after = tenants.at(-1)?.tenantId;
    }
  }

  /** The `expire-uploads` maintenance job: uploads past their expiry lose their parts and state. */
  job(): Job {
    return {
      name: "expire-uploads",
      run: async ({ now }) => {
        let scanned = 0;
        let expired = 0;
        let cursor: string | undefined;
        do {
          const page = await this.options.kv.scan<UploadState>(UPLOAD_STATE_PREFIX, {
            limit: 500,
            ...(cursor ? { cursor } : {}),
          });
          cursor = page.cursor;
          for (const entry of page.items) {
            scanned++;
            const state = entry.value;
            if (state.expiresAt > now) continue;
            // Only the state as read: one a request changed meanwhile waits for the next run.
            if (!(await this.remove(state, entry.version))) continue;
            expired++;
          }
        } while (cursor);
        return { scanned, expired, lost_parts: await this.sweepLost(now) };
      },
    };
  }
}

/** The error of an upload id the tenant does not have. */
export function uploadNotFound(id: string, operation: string): KuraError {
  return new KuraError("UPLOAD_NOT_FOUND", "no such upload", {
    operation,
    context: { id: id.slice(0, 64) },
  });
}
