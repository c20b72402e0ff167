/**
 * `fs`: objects as files under `base_path` (the embedded default).
 *
 * - Atomic visibility: bytes + footer go to a temp file in `~kura/tmp`, which is renamed into
 *   place (or hard-linked, for conditional create, which fails atomically with EEXIST).
 * - Durability (DUR-1): `os` leaves flushing to the OS; `fsync` syncs the file before the rename
 *   and the directory after it, with concurrent writers sharing directory fsyncs.
 * - Metadata in a footer at the end of the file (`footer.ts`); key ↔ path rules in `layout.ts`.
 * - This file: the definition and the store (checks, delete, copy, presign); writes in
 *   `writer.ts` (`write-exclusive.ts` for a fresh key), reads in `reader.ts`, listing in
 *   `lister.ts`, temp files and their sweep in `temps.ts`, options in `options.ts`.
 */
import { mkdir, open, stat, unlink } from "node:fs/promises";
import { join, resolve } from "node:path";
import { assertValidKey, assertValidPrefix } from "../../../core/keys.js";
import { closedError } from "../../../core/lifecycle.js";
import { parseOptions } from "../../../core/options.js";
import { buildPresignedUrl } from "../../../core/presign.js";
import {
  type BlobBody,
  type BlobCapabilities,
  type BlobInfo,
  type BlobStore,
  type BlobStoreDefinition,
  type BlobStoreDeps,
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
  putOptionsOf,
} from "../../../ports/blob-store.js";
import {
  checkGetOptions,
  checkPresign,
  checkPutOptions,
  decodeCursor,
  encodeCursor,
  listLimit,
  narrowCapabilities,
} from "../common.js";
import { BodyWriter } from "./body-writer.js";
import { DirSyncer } from "./dir-sync.js";
import { fsError, isErrno } from "./errors.js";
import { encodeDir, keyPath, RESERVED_DIR } from "./layout.js";
import { walk } from "./lister.js";
import { type FsOptions, fsOptionsSchema } from "./options.js";
import { FsReader } from "./reader.js";
import { defaultSecretFile, readOrCreateSecretFile } from "./secret.js";
import { TempFiles } from "./temps.js";
import { FsWriter } from "./writer.js";

/** Where `kura serve` listens on its defaults: presigned URLs of a store no server has claimed. */
const DEFAULT_PUBLIC_URL = "http://127.0.0.1:8787";

export { type FsOptions, fsOptionsSchema } from "./options.js";

const CAPABILITIES: BlobCapabilities = Object.freeze({
  rangeRead: true,
  conditionalCreate: true,
  multipart: false,
  presign: true,
  presignEnforced: true,
  serverSideCopy: false,
  checksumInMetadata: true,
  serverSideEncryption: false,
  remote: false,
  localFiles: true,
  urlScheme: "local",
});

const DELETE_CONCURRENCY = 16;

class FsBlobStore implements BlobStore {
  readonly scheme = "fs";
  readonly location: string;
  readonly capabilities: BlobCapabilities;
  private readonly base: string;
  private readonly temps: TempFiles;
  private readonly reader: FsReader;
  private readonly writer: FsWriter;
  private readonly dirSyncer: DirSyncer;
  private readonly fsync: boolean;
  private readonly bodies = new BodyWriter();
  private presignSecret: Buffer | undefined;
  private closed = false;

  constructor(
    private readonly options: FsOptions,
    private readonly deps: BlobStoreDeps,
  ) {
    this.base = resolve(options.base_path);
    this.location = this.base;
    this.temps = new TempFiles(join(this.base, RESERVED_DIR, "tmp"), options.temp_grace_ms);
    this.reader = new FsReader(this.base, options);
    this.fsync = deps.durability === "fsync";
    this.capabilities = narrowCapabilities(CAPABILITIES, deps.capabilityOverrides);
    this.dirSyncer = new DirSyncer(async (dir) => {
      await this.probe("fs.fsync.dir", { path: dir });
      const handle = await open(dir, "r");
      try {
        await handle.sync();
      } finally {
        await handle.close();
      }
    });
    this.writer = new FsWriter(this.base, options, deps, this.fsync, this.temps, this.dirSyncer);
    if (options.presign_secret) this.presignSecret = Buffer.from(options.presign_secret, "utf8");
  }

  async init(): Promise<void> {
    try {
      await mkdir(this.temps.dir, { recursive: true });
      this.writer.knownDir(this.base);
      await this.sweepTemps();
    } catch (e) {
      throw fsError(e, "blob.open", undefined);
    }
    this.temps.start(this.options.temp_sweep_interval_ms);
  }

  /** Removes leftover temp files of killed writers now (see `temps.ts`). */
  sweepTemps(): Promise<void> {
    return this.temps.sweep();
  }

  /** Bytes written so far by this process's uploads in progress (cheap; no I/O). */
  liveTempBytes(): number {
    return this.temps.liveBytes();
  }

  /** Temp files on disk now (uploads in progress here or elsewhere, and unswept leftovers). */
  stats(): Promise<{ tempFiles: number; tempBytes: number }> {
    return this.temps.stats();
  }

  private async probe(point: string, detail: Record<string, unknown>): Promise<void> {
    if (this.deps.probe) await this.deps.probe(point, detail);
  }

  private assertOpen(operation: string): void {
    if (this.closed) throw closedError("the blob store", operation);
  }

  async put(key: string, body: BlobBody, options: PutOptions = {}): Promise<PutResult> {
    this.assertOpen("blob.put");
    checkPutOptions(key, options);
    return this.writer.put(key, body, options);
  }

  /**
   * Small fresh bodies go to the body writer thread in one hand-off (`body-writer.ts`); with
   * fsync durability or bigger bodies, each is put on its own (and the batch's files removed
   * again if one fails).
   */
  async putMany(items: readonly PutManyItem[], options: { signal?: AbortSignal } = {}): Promise<PutResult[]> {
    this.assertOpen("blob.put");
    for (const item of items) checkPutOptions(item.key, putOptionsOf(item));
    if (items.length === 0) return [];
    const written = await this.writer.putMany(items, options.signal, this.bodies);
    if (written) return written;
    return putEach(this, items, options.signal);
  }

  /**
   * Objects up to `sync_io_max_bytes` are read with synchronous calls (open, fstat, read, close:
   * a few microseconds on a warm cache, where a thread-pool round trip per call costs more).
   */
  getBufferSync(
    key: string,
    options: Omit<GetOptions, "range" | "signal"> = {},
  ): { info: BlobInfo; data: Buffer } | undefined {
    this.assertOpen("blob.get");
    checkGetOptions(key, options);
    return this.reader.getBufferSync(key, options);
  }

  async getBuffer(
    key: string,
    options: Omit<GetOptions, "range"> = {},
  ): Promise<{ info: BlobInfo; data: Buffer }> {
    return this.getBufferSync(key, options) ?? this.reader.getBufferStreamed(key, options);
  }

  async get(key: string, options: GetOptions = {}): Promise<GetResult> {
    this.assertOpen("blob.get");
    checkGetOptions(key, options);
    return this.reader.get(key, options);
  }

  async head(key: string): Promise<BlobInfo> {
    this.assertOpen("blob.head");
    assertValidKey(key, "blob.head");
    return this.reader.stat(key, "blob.head");
  }

  async exists(key: string): Promise<boolean> {
    this.assertOpen("blob.head");
    assertValidKey(key, "blob.head");
    try {
      return (await stat(keyPath(this.base, key).file)).isFile();
    } catch (e) {
      if (isErrno(e, "ENOENT", "ENOTDIR")) return false;
      throw fsError(e, "blob.head", key);
    }
  }

  async delete(keys: string | readonly string[]): Promise<void> {
    this.assertOpen("blob.delete");
    const list = typeof keys === "string" ? [keys] : [...keys];
    for (const key of list) assertValidKey(key, "blob.delete");
    const dirs = new Set<string>();
    let next = 0;
    const worker = async () => {
      while (next < list.length) {
        const key = list[next++] as string;
        const { dir, file } = keyPath(this.base, key);
        try {
          await this.probe("fs.unlink", { path: file, key });
          await unlink(file);
          dirs.add(dir);
        } catch (e) {
          if (!isErrno(e, "ENOENT", "ENOTDIR")) throw fsError(e, "blob.delete", key);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(DELETE_CONCURRENCY, list.length) }, worker));
    if (this.fsync) await Promise.all([...dirs].map((d) => this.dirSyncer.sync(d)));
  }

  async list(prefix: string, options: ListOptions = {}): Promise<ListPage> {
    this.assertOpen("blob.list");
    assertValidPrefix(prefix);
    const limit = listLimit(options);
    const after = decodeCursor(this.scheme, options.cursor)?.after;
    const items: BlobInfo[] = [];
    // Start in the deepest directory the prefix names fully.
    const cut = prefix.lastIndexOf("/");
    const dirPrefix = cut >= 0 ? prefix.slice(0, cut + 1) : "";
    const startDir = join(this.base, ...dirPrefix.split("/").filter(Boolean).map(encodeDir));
    try {
      await walk(startDir, dirPrefix, prefix, after, limit + 1, items, (key) =>
        this.reader.stat(key, "blob.list"),
      );
    } catch (e) {
      throw fsError(e, "blob.list", prefix);
    }
    const more = items.length > limit;
    const page = more ? items.slice(0, limit) : items;
    const last = page.at(-1);
    return { items: page, cursor: more && last ? encodeCursor(this.scheme, { after: last.key }) : undefined };
  }

  async copy(
    sourceKey: string,
    targetKey: string,
    options: { signal?: AbortSignal } = {},
  ): Promise<PutResult> {
    this.assertOpen("blob.copy");
    assertValidKey(sourceKey, "blob.copy");
    assertValidKey(targetKey, "blob.copy");
    const source = await this.get(sourceKey, options.signal ? { signal: options.signal } : {});
    return this.put(targetKey, source.body, {
      contentType: source.info.contentType,
      metadata: source.info.metadata,
      ...(options.signal ? { signal: options.signal } : {}),
    });
  }

  private async secret(): Promise<Buffer> {
    if (this.presignSecret) return this.presignSecret;
    const path = this.options.presign_secret_file ?? defaultSecretFile(this.base);
    try {
      this.presignSecret = Buffer.from(await readOrCreateSecretFile(path), "utf8");
    } catch (e) {
      throw fsError(e, "blob.presign", undefined);
    }
    return this.presignSecret;
  }

  /** The secret that signs this store's presigned URLs (for the server that verifies them). */
  async presignKey(): Promise<Buffer> {
    return this.secret();
  }

  async presign(key: string, options: PresignOptions): Promise<PresignResult> {
    this.assertOpen("blob.presign");
    checkPresign(key, options, this.capabilities, this.scheme);
    const nowMs = this.deps.now?.() ?? Date.now();
    const expires = Math.floor(nowMs / 1000) + options.expiresIn;
    const base = this.options.public_url ?? this.deps.serverUrl?.() ?? DEFAULT_PUBLIC_URL;
    const url = buildPresignedUrl(base, await this.secret(), {
      method: options.method,
      key,
      expires,
      ...(options.method === "PUT" && options.contentType ? { contentType: options.contentType } : {}),
    });
    return { url, method: options.method, expiresAt: new Date(expires * 1000), headers: {} };
  }

  async close(): Promise<void> {
    this.closed = true;
    this.temps.stop();
    await this.bodies.close();
  }
}

export const fsBlobStore: BlobStoreDefinition<FsOptions> = {
  scheme: "fs",
  capabilities: CAPABILITIES,
  parseOptions: (raw) => parseOptions(fsOptionsSchema, raw, "storage.options"),
  create: async (options, deps = {}) => {
    const store = new FsBlobStore(options, deps);
    await store.init();
    return store;
  },
};

export type { FsBlobStore };
