/**
 * User sessions (SESS-1, seed 002): metadata in the KV store under
 * `{tenant}:session:{id}:meta:{key}` with a TTL (`sessions.ttl_seconds`, SESSION_TTL, default
 * 86,400 s), and files in the blob store under `{tenant}/sessions/{id}/{path}`, removed by the
 * lifecycle engine (`engine/lifecycle.ts`) `retention.session_files_days` (default 7) after they were written.
 * Deleting a session removes both.
 *
 * Session ids follow IDS-1 (`SESSION_ID_INVALID` otherwise); file paths follow the object key
 * rules of BLOB-7 (`SESSION_PATH_INVALID` otherwise: no `..`, no empty segments, no leading `/`).
 * Session files are not in the catalog: they count toward no usage totals and are never orphans.
 */
import { isKuraError, KuraError } from "../core/errors.js";
import { ID_PATTERN, keyProblem, MAX_KEY_BYTES } from "../core/keys.js";
import type { BlobBody, BlobInfo, GetResult, PresignResult } from "../ports/blob-store.js";
import type { KvEntry, KvWriteResult } from "../ports/kv-store.js";
import { type KvNamespace, tenantKv } from "./kv.js";
import type { StateContext } from "./state.js";

const DAY_MS = 86_400_000;
const DEFAULT_PRESIGN_SECONDS = 900;

export interface SessionFile {
  /** Path inside the session. */
  path: string;
  size: number;
  contentType: string;
  sha256: string | undefined;
  lastModified: Date;
  /** When the lifecycle job removes it (`lastModified` + `session_files_days`). */
  expiresAt: Date;
}

export interface SessionMetaOptions {
  /** Overrides `sessions.ttl_seconds` for this entry. */
  ttlSeconds?: number;
  /** Compare-and-set on the entry's version (0 = only if absent). */
  ifVersion?: number;
}

export class Sessions {
  private readonly kv: KvNamespace;

  constructor(
    private readonly state: StateContext,
    readonly tenantId: string,
  ) {
    this.kv = tenantKv(state.kv, tenantId);
  }

  private checkId(sessionId: unknown, operation: string): asserts sessionId is string {
    if (typeof sessionId !== "string" || !ID_PATTERN.test(sessionId) || sessionId.endsWith(".")) {
      throw new KuraError("SESSION_ID_INVALID", `invalid session id: must match ${ID_PATTERN.source}`, {
        operation,
        context: { sessionId: typeof sessionId === "string" ? sessionId.slice(0, 200) : typeof sessionId },
      });
    }
  }

  private metaPrefix(sessionId: string, operation: string): string {
    this.checkId(sessionId, operation);
    return `session:${sessionId}:meta:`;
  }

  private filePrefix(sessionId: string, operation: string): string {
    this.checkId(sessionId, operation);
    return `${this.tenantId}/sessions/${sessionId}/`;
  }

  /** The blob key of a session file; the path must be a valid object key on its own and in full. */
  private fileKey(sessionId: string, path: string, operation: string): string {
    const prefix = this.filePrefix(sessionId, operation);
    // The stored key is `{tenant}/sessions/{session}/{path}` and lists back as the path, so the
    // path gets what the 1,024 bytes of BLOB-7 leave after that scope, and the error says so.
    const scope = Buffer.byteLength(prefix);
    const room = MAX_KEY_BYTES - scope;
    const problem =
      keyProblem(path) ??
      (keyProblem(prefix + path) === undefined
        ? undefined
        : `path must be at most ${room} bytes of UTF-8 in this session (${MAX_KEY_BYTES} bytes minus ${scope} for the tenant and session ids)`);
    if (problem !== undefined) {
      throw new KuraError("SESSION_PATH_INVALID", `invalid session file path: ${problem}`, {
        operation,
        context: { sessionId, path: typeof path === "string" ? path.slice(0, 200) : typeof path },
      });
    }
    return prefix + path;
  }

  private ttlMs(options: SessionMetaOptions, operation: string): number {
    const seconds = options.ttlSeconds ?? this.state.sessionTtlSeconds;
    if (!Number.isInteger(seconds) || seconds < 1) {
      throw new KuraError("INVALID_ARGUMENT", "ttlSeconds must be a positive integer", { operation });
    }
    return seconds * 1000;
  }

  // --- metadata ------------------------------------------------------------------------------

  /** Store one metadata entry with the session TTL (each write renews that entry's TTL). */
  async setMeta(
    sessionId: string,
    key: string,
    value: unknown,
    options: SessionMetaOptions = {},
  ): Promise<KvWriteResult> {
    const prefix = this.metaPrefix(sessionId, "sessions.setMeta");
    return this.kv.set(prefix + key, value, {
      ttlMs: this.ttlMs(options, "sessions.setMeta"),
      ...(options.ifVersion === undefined ? {} : { ifVersion: options.ifVersion }),
    });
  }

  async getMeta<T = unknown>(sessionId: string, key: string): Promise<T | undefined> {
    return this.kv.get<T>(this.metaPrefix(sessionId, "sessions.getMeta") + key);
  }

  async getMetaEntry<T = unknown>(sessionId: string, key: string): Promise<KvEntry<T> | undefined> {
    const prefix = this.metaPrefix(sessionId, "sessions.getMeta");
    const entry = await this.kv.getEntry<T>(prefix + key);
    return entry && { ...entry, key };
  }

  async deleteMeta(sessionId: string, key: string): Promise<boolean> {
    return this.kv.delete(this.metaPrefix(sessionId, "sessions.deleteMeta") + key);
  }

  /** A session's live metadata entries with their versions and expiry, in key order. */
  async metaEntries(sessionId: string): Promise<KvEntry[]> {
    const prefix = this.metaPrefix(sessionId, "sessions.metaEntries");
    const entries = await this.kv.scanAll(prefix);
    return entries
      .map((e) => ({ ...e, key: e.key.slice(prefix.length) }))
      .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  /**
   * Sessions with live metadata (the active ones: metadata lives for the session TTL), read a
   * page of metadata keys at a time: each item is a session id with how many of its keys the
   * page held and the latest expiry among them. A session whose keys straddle two pages appears
   * on both; merge by id. Sessions with files but no live metadata are not listed.
   */
  async list(options: { cursor?: string; limit?: number } = {}): Promise<{
    items: { sessionId: string; keys: number; expiresAt: number | undefined }[];
    cursor: string | undefined;
  }> {
    const page = await this.kv.scan("session:", {
      limit: options.limit ?? 1000,
      ...(options.cursor ? { cursor: options.cursor } : {}),
    });
    const byId = new Map<string, { sessionId: string; keys: number; expiresAt: number | undefined }>();
    for (const e of page.items) {
      const end = e.key.indexOf(":meta:", "session:".length);
      if (end < 0) continue;
      const sessionId = e.key.slice("session:".length, end);
      const s = byId.get(sessionId) ?? { sessionId, keys: 0, expiresAt: undefined };
      s.keys++;
      // The session lives while any key does: the latest expiry; none when a key never expires.
      if (s.keys === 1) s.expiresAt = e.expiresAt;
      else if (s.expiresAt !== undefined)
        s.expiresAt = e.expiresAt === undefined ? undefined : Math.max(s.expiresAt, e.expiresAt);
      byId.set(sessionId, s);
    }
    return { items: [...byId.values()], cursor: page.cursor };
  }

  /** All live metadata of a session by key (empty for an unknown or expired session). */
  async listMeta(sessionId: string): Promise<Record<string, unknown>> {
    const prefix = this.metaPrefix(sessionId, "sessions.listMeta");
    const out: Record<string, unknown> = {};
    for (const entry of await this.kv.scanAll(prefix)) out[entry.key.slice(prefix.length)] = entry.value;
    return out;
  }

  /** Renew the TTL of every metadata entry of the session (sliding expiry); returns how many. */
  async touch(sessionId: string, options: { ttlSeconds?: number } = {}): Promise<number> {
    const prefix = this.metaPrefix(sessionId, "sessions.touch");
    const ttlMs = this.ttlMs(options, "sessions.touch");
    const entries = await this.kv.scanAll(prefix);
    await this.kv.setMany(entries.map((e) => ({ key: e.key, value: e.value, ttlMs })));
    return entries.length;
  }

  // --- files ---------------------------------------------------------------------------------

  async putFile(
    sessionId: string,
    path: string,
    body: BlobBody,
    options: { contentType?: string } = {},
  ): Promise<{ path: string; size: number; sha256: string }> {
    const key = this.fileKey(sessionId, path, "sessions.putFile");
    const result = await this.state.store.put(
      key,
      body,
      options.contentType ? { contentType: options.contentType } : {},
    );
    return { path, size: result.size, sha256: result.sha256 };
  }

  /** A session file's bytes (checksum-verified); `SESSION_FILE_NOT_FOUND` when absent. */
  async readFile(sessionId: string, path: string): Promise<{ file: SessionFile; data: Buffer }> {
    const key = this.fileKey(sessionId, path, "sessions.readFile");
    try {
      const { info, data } = await this.state.store.getBuffer(key);
      return { file: this.toFile(info, path), data };
    } catch (e) {
      throw this.notFound(e, sessionId, path, "sessions.readFile");
    }
  }

  /** A session file as a stream (range reads allowed); `SESSION_FILE_NOT_FOUND` when absent. */
  async openFile(
    sessionId: string,
    path: string,
    options: { range?: { start: number; end?: number } } = {},
  ): Promise<GetResult> {
    const key = this.fileKey(sessionId, path, "sessions.openFile");
    try {
      return await this.state.store.get(key, options.range ? { range: options.range } : {});
    } catch (e) {
      throw this.notFound(e, sessionId, path, "sessions.openFile");
    }
  }

  async deleteFile(sessionId: string, path: string): Promise<void> {
    await this.state.store.delete(this.fileKey(sessionId, path, "sessions.deleteFile"));
  }

  /** Every file of the session, in path order. */
  async listFiles(sessionId: string): Promise<SessionFile[]> {
    const prefix = this.filePrefix(sessionId, "sessions.listFiles");
    const files: SessionFile[] = [];
    let cursor: string | undefined;
    do {
      const page = await this.state.store.list(prefix, cursor ? { cursor } : {});
      for (const info of page.items) files.push(this.toFile(info, info.key.slice(prefix.length)));
      cursor = page.cursor;
    } while (cursor);
    return files;
  }

  /** A URL a client can PUT the file to without credentials (BLOB-5; fs URLs are served by `kura serve`). */
  async presignUpload(
    sessionId: string,
    path: string,
    options: { expiresIn?: number; contentType?: string } = {},
  ): Promise<PresignResult> {
    const key = this.fileKey(sessionId, path, "sessions.presignUpload");
    return this.state.store.presign(key, {
      method: "PUT",
      expiresIn: options.expiresIn ?? DEFAULT_PRESIGN_SECONDS,
      ...(options.contentType ? { contentType: options.contentType } : {}),
    });
  }

  /** A URL a client can GET the file from without credentials until it expires. */
  async presignDownload(
    sessionId: string,
    path: string,
    options: { expiresIn?: number } = {},
  ): Promise<PresignResult> {
    const key = this.fileKey(sessionId, path, "sessions.presignDownload");
    return this.state.store.presign(key, {
      method: "GET",
      expiresIn: options.expiresIn ?? DEFAULT_PRESIGN_SECONDS,
    });
  }

  // --- the whole session ---------------------------------------------------------------------

  /** Delete a session's metadata and files together; deleting an unknown session succeeds with zeros. */
  async delete(sessionId: string): Promise<{ metadata: number; files: number }> {
    const metaPrefix = this.metaPrefix(sessionId, "sessions.delete");
    const filePrefix = this.filePrefix(sessionId, "sessions.delete");
    let metadata = 0;
    for (const entry of await this.kv.scanAll(metaPrefix, { keysOnly: true })) {
      if (await this.kv.delete(entry.key)) metadata++;
    }
    let files = 0;
    for (;;) {
      const page = await this.state.store.list(filePrefix);
      if (page.items.length === 0) break;
      await this.state.store.delete(page.items.map((i) => i.key));
      files += page.items.length;
    }
    return { metadata, files };
  }

  private toFile(info: BlobInfo, path: string): SessionFile {
    return {
      path,
      size: info.size,
      contentType: info.contentType,
      sha256: info.sha256,
      lastModified: info.lastModified,
      expiresAt: new Date(info.lastModified.getTime() + this.state.sessionFilesDays * DAY_MS),
    };
  }

  private notFound(e: unknown, sessionId: string, path: string, operation: string): unknown {
    if (isKuraError(e) && e.code === "BLOB_NOT_FOUND") {
      return new KuraError(
        "SESSION_FILE_NOT_FOUND",
        `no file ${JSON.stringify(path)} in session ${sessionId}`,
        {
          operation,
          context: { sessionId, path },
        },
      );
    }
    return e;
  }
}
