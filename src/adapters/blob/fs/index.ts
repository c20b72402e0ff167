/**
 * `fs`: objects as files under `base_path` (the embedded default).
 *
 * - Atomic visibility: bytes + footer go to a temp file in `~kura/tmp`, which is renamed into
 *   place (or hard-linked, for conditional create, which fails atomically with EEXIST).
 * - Durability (DUR-1): `os` leaves flushing to the OS; `fsync` syncs the file before the rename
 *   and the directory after it, with concurrent writers sharing directory fsyncs.
 * - Metadata in a footer at the end of the file (`footer.ts`); key ↔ path rules in `layout.ts`.
 */
import { createHash, randomUUID } from "node:crypto";
import {
  close as closeCb,
  closeSync,
  fstatSync,
  open as openCb,
  openSync,
  readSync,
  renameSync,
  write as writeCb,
  writev as writevCb,
  writevSync,
} from "node:fs";
import {
  type FileHandle,
  link,
  mkdir,
  open,
  readdir,
  readFile,
  rename,
  stat,
  unlink,
  writeFile,
} from "node:fs/promises";
import { join, resolve } from "node:path";
import { finished, Readable } from "node:stream";
import { z } from "zod";
import {
  checksumMismatch,
  HashingStream,
  sha256Hex,
  toReadable,
  VerifyingStream,
  verifyBuffer,
} from "../../../core/checksum.js";
import { KuraError } from "../../../core/errors.js";
import { assertValidKey, assertValidPrefix, compareUtf8 } from "../../../core/keys.js";
import { closedError } from "../../../core/lifecycle.js";
import { parseOptions } from "../../../core/options.js";
import { buildPresignedUrl } from "../../../core/presign.js";
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
import { DirSyncer } from "./dir-sync.js";
import { fsError, isErrno } from "./errors.js";
import { decodeFooter, encodeFooter, FOOTER_READ_BYTES, type Footer } from "./footer.js";
import {
  DIR_NAME_FILE,
  decodeDir,
  decodeFile,
  encodeDir,
  isLong,
  keyPath,
  objectFile,
  RESERVED_DIR,
} from "./layout.js";
import { defaultSecretFile, readOrCreateSecretFile } from "./secret.js";

/** Where `kura serve` listens on its defaults: presigned URLs of a store no server has claimed. */
const DEFAULT_PUBLIC_URL = "http://127.0.0.1:8787";

export const fsOptionsSchema = z
  .object({
    /** Directory holding the objects. Default `./data/blobs` (the config layer resolves it). */
    base_path: z.string().min(1).default("./data/blobs"),
    /**
     * Base URL of `kura serve`, used in presigned URLs. Default: the URL the server announces
     * (`deps.serverUrl`), else `http://127.0.0.1:8787` (`kura serve` on its defaults).
     */
    public_url: z.url().optional(),
    /** Secret for presigned URLs (use `env:VAR`). Default: generated once into `base_path/~kura/presign.key`. */
    presign_secret: z.string().min(16).optional(),
    /**
     * File holding the presign secret when `presign_secret` is not set; created (0600) on first
     * use. Default `base_path/~kura/presign.key`. Stores that should sign alike share one file.
     */
    presign_secret_file: z.string().min(1).optional(),
    /** Objects at most this big are read in one call; larger ones stream. Default 1 MiB. */
    small_object_bytes: z
      .number()
      .int()
      .min(0)
      .default(1024 * 1024),
    /**
     * Bodies at most this big are written and read with synchronous system calls on the calling
     * thread (with `durability: os`): for small files the thread-pool round trips of async I/O
     * cost more than the calls themselves (see docs/adr/0007-fs-layout.md). 0 disables. Default 64 KiB.
     */
    sync_io_max_bytes: z
      .number()
      .int()
      .min(0)
      .default(64 * 1024),
    /**
     * How often temp files left by failed or killed writers are swept from `~kura/tmp` (also done
     * once at open). 0 sweeps only at open. Default 300000 (5 min).
     */
    temp_sweep_interval_ms: z.number().int().min(0).default(300_000),
    /**
     * A temp file no upload of this process is writing is swept once it has not changed for this
     * long (another process sharing the directory may still be writing a younger one; its
     * uploads time out long before). Default 900000 (15 min).
     */
    temp_grace_ms: z.number().int().min(0).default(900_000),
  })
  .strict();
export type FsOptions = z.infer<typeof fsOptionsSchema>;

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
  private readonly tmpDir: string;
  private readonly knownDirs = new Set<string>();
  private readonly dirSyncer: DirSyncer;
  private readonly fsync: boolean;
  private presignSecret: Buffer | undefined;
  private closed = false;
  /** Temp files of uploads in progress in this process, with the bytes written so far. */
  private readonly liveTemps = new Map<string, number>();
  private sweepTimer: NodeJS.Timeout | undefined;
  private sweeping: Promise<void> | undefined;

  constructor(
    private readonly options: FsOptions,
    private readonly deps: BlobStoreDeps,
  ) {
    this.base = resolve(options.base_path);
    this.location = this.base;
    this.tmpDir = join(this.base, RESERVED_DIR, "tmp");
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
    if (options.presign_secret) this.presignSecret = Buffer.from(options.presign_secret, "utf8");
  }

  async init(): Promise<void> {
    try {
      await mkdir(this.tmpDir, { recursive: true });
      this.knownDirs.add(this.base);
      await this.sweepTemps();
    } catch (e) {
      throw fsError(e, "blob.open", undefined);
    }
    const every = this.options.temp_sweep_interval_ms;
    if (every > 0) {
      this.sweepTimer = setInterval(() => {
        this.sweepTemps().catch(() => undefined);
      }, every);
      this.sweepTimer.unref();
    }
  }

  /**
   * Remove temp files that no upload of this process is writing and that have not changed for
   * `temp_grace_ms`: leftovers of writers that were killed (a failed or timed-out put removes
   * its own). One sweep at a time.
   */
  sweepTemps(): Promise<void> {
    this.sweeping ??= (async () => {
      try {
        const now = Date.now();
        for (const name of await readdir(this.tmpDir).catch(() => [] as string[])) {
          const path = join(this.tmpDir, name);
          if (this.liveTemps.has(path)) continue;
          const st = await stat(path).catch(() => undefined);
          if (st?.isFile() && now - st.mtimeMs >= this.options.temp_grace_ms && !this.liveTemps.has(path))
            await unlink(path).catch(() => undefined);
        }
      } finally {
        this.sweeping = undefined;
      }
    })();
    return this.sweeping;
  }

  /** Bytes written so far by this process's uploads in progress (cheap; no I/O). */
  liveTempBytes(): number {
    let total = 0;
    for (const bytes of this.liveTemps.values()) total += bytes;
    return total;
  }

  /** Temp files on disk now (uploads in progress here or elsewhere, and unswept leftovers). */
  async stats(): Promise<{ tempFiles: number; tempBytes: number }> {
    let tempFiles = 0;
    let tempBytes = 0;
    for (const name of await readdir(this.tmpDir).catch(() => [] as string[])) {
      const st = await stat(join(this.tmpDir, name)).catch(() => undefined);
      if (!st?.isFile()) continue;
      tempFiles++;
      tempBytes += st.size;
    }
    return { tempFiles, tempBytes };
  }

  private async probe(point: string, detail: Record<string, unknown>): Promise<void> {
    if (this.deps.probe) await this.deps.probe(point, detail);
  }

  private assertOpen(operation: string): void {
    if (this.closed) throw closedError("the blob store", operation);
  }

  /** mkdir -p, remembering what exists; names of hashed (overlong) segments go in `~name`. */
  private async ensureDir(dir: string, segments: string[]): Promise<void> {
    if (this.knownDirs.has(dir)) return;
    let path = this.base;
    for (const segment of segments) {
      path = join(path, encodeDir(segment));
      if (this.knownDirs.has(path)) continue;
      let created = false;
      try {
        await mkdir(path);
        created = true;
      } catch (e) {
        if (!isErrno(e, "EEXIST")) throw e;
        const st = await stat(path);
        if (!st.isDirectory()) throw e;
      }
      if (isLong(segment)) await writeFile(join(path, DIR_NAME_FILE), segment, { flag: "w" });
      if (created && this.fsync) await this.dirSyncer.sync(join(path, ".."));
      this.knownDirs.add(path);
    }
  }

  private footer(key: string, size: number, sha256: string, options: PutOptions): Footer {
    return {
      v: 1,
      k: key,
      size,
      sha256,
      ct: options.contentType ?? DEFAULT_CONTENT_TYPE,
      md: { ...(options.metadata ?? {}) },
      t: this.deps.now?.() ?? Date.now(),
    };
  }

  async put(key: string, body: BlobBody, options: PutOptions = {}): Promise<PutResult> {
    this.assertOpen("blob.put");
    checkPutOptions(key, options);
    throwIfAborted(options.signal, "blob.put");
    const { dir, file, dirSegments } = keyPath(this.base, key);
    // In place only when the file is named by the key itself: a partial file left by a crash
    // must stay listable by key (for GC), and a hashed name needs the footer to be read back.
    if (options.freshKey && body instanceof Uint8Array && !isLong(key.slice(key.lastIndexOf("/") + 1)))
      return this.putFresh(key, body, options, dir, file, dirSegments);
    const tmp = join(this.tmpDir, `${randomUUID()}.tmp`);
    this.liveTemps.set(tmp, 0);
    let result: PutResult;
    try {
      await this.ensureDir(dir, dirSegments);
      if (body instanceof Uint8Array) {
        const sha256 = sha256Hex(body);
        const footer = encodeFooter(this.footer(key, body.length, sha256, options));
        this.liveTemps.set(tmp, body.length + footer.length);
        if (!this.fsync && body.length <= this.options.sync_io_max_bytes) {
          const fd = openSync(tmp, "wx");
          try {
            writevSync(fd, [body, footer]);
          } finally {
            closeSync(fd);
          }
        } else if (this.fsync) {
          const bytes = Buffer.concat([body, footer]);
          const handle = await open(tmp, "wx");
          try {
            await handle.writeFile(bytes);
            await this.probe("fs.fsync.file", { path: tmp, key });
            await handle.sync();
          } finally {
            await handle.close();
          }
        } else {
          await writeFile(tmp, Buffer.concat([body, footer]), { flag: "wx" });
        }
        result = { key, size: body.length, sha256, etag: `"${sha256.slice(0, 32)}"` };
      } else {
        result = await this.writeStream(tmp, key, toReadable(body), options);
      }
      throwIfAborted(options.signal, "blob.put");
      await this.probe("fs.rename", { from: tmp, to: file, key });
      if (options.ifNoneMatch === "*") {
        try {
          await link(tmp, file);
        } catch (e) {
          if (isErrno(e, "EEXIST")) throw alreadyExists(key);
          throw e;
        } finally {
          await unlink(tmp).catch(() => undefined);
        }
      } else if (!this.fsync && result.size <= this.options.sync_io_max_bytes) {
        renameSync(tmp, file);
      } else {
        await rename(tmp, file);
      }
      if (this.fsync) await this.dirSyncer.sync(dir);
      return result;
    } catch (e) {
      await unlink(tmp).catch(() => undefined);
      throw fsError(e, "blob.put", key);
    } finally {
      this.liveTemps.delete(tmp);
    }
  }

  /**
   * A key made for this put alone: one exclusive file creation in place, no temp file and no
   * rename (a fifth of the cost on ext4). Small writes go through the thread pool with the
   * callback API (three hops, no FileHandle), so many bodies are created in parallel off the
   * event loop. A failed write removes the file it created (O_EXCL: nobody else's).
   */
  private async putFresh(
    key: string,
    body: Uint8Array,
    options: PutOptions,
    dir: string,
    file: string,
    dirSegments: string[],
  ): Promise<PutResult> {
    let created = false;
    try {
      await this.ensureDir(dir, dirSegments);
      const sha256 = sha256Hex(body);
      const footer = encodeFooter(this.footer(key, body.length, sha256, options));
      throwIfAborted(options.signal, "blob.put");
      await this.probe("fs.create", { path: file, key });
      if (this.fsync) {
        const handle = await open(file, "wx");
        created = true;
        try {
          await handle.writev([body, footer]);
          await this.probe("fs.fsync.file", { path: file, key });
          await handle.sync();
        } finally {
          await handle.close();
        }
      } else {
        await writeExclusive(file, [body, footer], () => {
          created = true;
        });
      }
      if (this.fsync) await this.dirSyncer.sync(dir);
      return { key, size: body.length, sha256, etag: `"${sha256.slice(0, 32)}"` };
    } catch (e) {
      if (created) await unlink(file).catch(() => undefined);
      if (isErrno(e, "EEXIST")) throw alreadyExists(key);
      throw fsError(e, "blob.put", key);
    }
  }

  private async writeStream(
    tmp: string,
    key: string,
    body: Readable,
    options: PutOptions,
  ): Promise<PutResult> {
    const hashing = new HashingStream();
    const handle = await open(tmp, "wx");
    // A body that fails, or closes without ending (a client that went away), and an abort
    // (the timeout layer) all end the loop below with an error, so the handle is closed and
    // the temp file removed on every path.
    const stopReading = finished(body, (err) => {
      if (err) hashing.destroy(err);
    });
    const onAbort = () =>
      hashing.destroy(
        new KuraError("OPERATION_ABORTED", "blob.put was aborted", {
          operation: "blob.put",
          context: { key },
          cause: options.signal?.reason,
        }),
      );
    options.signal?.addEventListener("abort", onAbort, { once: true });
    let written = 0;
    const write = async (bytes: Buffer) => {
      await handle.write(bytes);
      written += bytes.length;
      this.liveTemps.set(tmp, written);
    };
    try {
      throwIfAborted(options.signal, "blob.put");
      const source = body.pipe(hashing);
      // Coalesce small chunks into bigger writes.
      let pending: Buffer[] = [];
      let pendingBytes = 0;
      for await (const chunk of source as AsyncIterable<Buffer>) {
        throwIfAborted(options.signal, "blob.put");
        pending.push(chunk);
        pendingBytes += chunk.length;
        if (pendingBytes >= 256 * 1024) {
          await write(Buffer.concat(pending));
          pending = [];
          pendingBytes = 0;
        }
      }
      if (pendingBytes > 0) await write(Buffer.concat(pending));
      const sha256 = hashing.sha256();
      await write(encodeFooter(this.footer(key, hashing.size, sha256, options)));
      if (this.fsync) {
        await this.probe("fs.fsync.file", { path: tmp, key });
        await handle.sync();
      }
      return { key, size: hashing.size, sha256, etag: `"${sha256.slice(0, 32)}"` };
    } finally {
      options.signal?.removeEventListener("abort", onAbort);
      stopReading();
      body.unpipe(hashing);
      hashing.destroy();
      await handle.close();
    }
  }

  /** Open an object and read its footer. The caller closes the handle. */
  private async openObject(key: string, operation: string): Promise<{ handle: FileHandle; footer: Footer }> {
    const file = objectFile(this.base, key);
    let handle: FileHandle;
    try {
      handle = await open(file, "r");
    } catch (e) {
      if (isErrno(e, "ENOENT", "ENOTDIR")) throw notFound(key, operation);
      throw fsError(e, operation, key);
    }
    try {
      const { size: fileSize } = await handle.stat();
      let want = Math.min(fileSize, FOOTER_READ_BYTES);
      for (;;) {
        const tail = Buffer.alloc(want);
        await handle.read(tail, 0, want, fileSize - want);
        const footer = decodeFooter(tail, fileSize, key);
        if (!("need" in footer)) return { handle, footer };
        want = footer.need;
      }
    } catch (e) {
      await handle.close();
      throw fsError(e, operation, key);
    }
  }

  private info(footer: Footer, key: string): BlobInfo {
    return {
      key,
      size: footer.size,
      sha256: footer.sha256,
      contentType: footer.ct,
      etag: `"${footer.sha256.slice(0, 32)}"`,
      lastModified: new Date(footer.t),
      metadata: { ...footer.md },
    };
  }

  /** The whole file when it is small enough for synchronous I/O, else undefined. */
  private readSmallSync(file: string): Buffer | undefined {
    const max = this.options.sync_io_max_bytes;
    if (max === 0) return undefined;
    const fd = openSync(file, "r");
    try {
      const { size } = fstatSync(fd);
      if (size > max + FOOTER_READ_BYTES) return undefined;
      const buffer = Buffer.allocUnsafe(size);
      let read = 0;
      while (read < size) {
        const n = readSync(fd, buffer, read, size - read, read);
        if (n === 0) break;
        read += n;
      }
      return read === size ? buffer : buffer.subarray(0, read);
    } finally {
      closeSync(fd);
    }
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
    let raw: Buffer | undefined;
    try {
      raw = this.readSmallSync(objectFile(this.base, key));
    } catch (e) {
      if (isErrno(e, "ENOENT", "ENOTDIR")) throw notFound(key, "blob.get");
      throw fsError(e, "blob.get", key);
    }
    if (raw === undefined) return undefined;
    const footer = decodeFooter(raw, raw.length, key);
    if ("need" in footer) throw fsError(new Error("footer longer than file"), "blob.get", key);
    const data = raw.subarray(0, footer.size);
    verifyBuffer(data, options.expectedSha256 ?? footer.sha256, key, "blob.get");
    return { info: this.info(footer, key), data };
  }

  /** Larger objects: the footer first, then the body in chunks, each hashed as it arrives. */
  async getBuffer(
    key: string,
    options: Omit<GetOptions, "range"> = {},
  ): Promise<{ info: BlobInfo; data: Buffer }> {
    const small = this.getBufferSync(key, options);
    if (small) return small;
    const { handle, footer } = await this.openObject(key, "blob.get");
    let read: { data: Buffer; sha256: string };
    try {
      read = await readHashed(handle, footer.size);
    } catch (e) {
      throw fsError(e, "blob.get", key);
    } finally {
      await handle.close().catch(() => undefined);
    }
    const expected = options.expectedSha256 ?? footer.sha256;
    if (read.sha256 !== expected) throw checksumMismatch(key, expected, read.sha256, "blob.get");
    return { info: this.info(footer, key), data: read.data };
  }

  async get(key: string, options: GetOptions = {}): Promise<GetResult> {
    this.assertOpen("blob.get");
    checkGetOptions(key, options);
    if (!options.range) {
      let raw: Buffer | undefined;
      try {
        raw = this.readSmallSync(objectFile(this.base, key));
      } catch (e) {
        if (isErrno(e, "ENOENT", "ENOTDIR")) throw notFound(key, "blob.get");
        throw fsError(e, "blob.get", key);
      }
      if (raw) {
        const footer = decodeFooter(raw, raw.length, key);
        if ("need" in footer) throw fsError(new Error("footer longer than file"), "blob.get", key);
        const data = raw.subarray(0, footer.size);
        return {
          info: this.info(footer, key),
          body: verifiedReadable(data, options.expectedSha256 ?? footer.sha256, key),
          range: undefined,
        };
      }
    }
    const { handle, footer } = await this.openObject(key, "blob.get");
    const info = this.info(footer, key);
    try {
      if (options.range) {
        const range = resolveRange(key, options.range, footer.size);
        if (footer.size === 0) {
          await handle.close();
          return { info, body: Readable.from([]), range };
        }
        return { info, body: handle.createReadStream({ start: range.start, end: range.end }), range };
      }
      const expected = options.expectedSha256 ?? footer.sha256;
      if (footer.size <= this.options.small_object_bytes) {
        const read = await readHashed(handle, footer.size);
        await handle.close();
        return { info, body: checkedReadable(read, expected, key), range: undefined };
      }
      const stream = handle.createReadStream({ start: 0, end: footer.size - 1 });
      const verifying = new VerifyingStream(expected, key, footer.size);
      stream.once("error", (err) => verifying.destroy(err));
      // A reader that stops early (a client gone) destroys `verifying`; the file must close too.
      verifying.once("close", () => stream.destroy());
      return { info, body: stream.pipe(verifying), range: undefined };
    } catch (e) {
      await handle.close().catch(() => undefined);
      throw fsError(e, "blob.get", key);
    }
  }

  async head(key: string): Promise<BlobInfo> {
    this.assertOpen("blob.head");
    assertValidKey(key, "blob.head");
    const { handle, footer } = await this.openObject(key, "blob.head");
    await handle.close();
    return this.info(footer, key);
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
      await this.walk(startDir, dirPrefix, prefix, after, limit + 1, items);
    } catch (e) {
      throw fsError(e, "blob.list", prefix);
    }
    const more = items.length > limit;
    const page = more ? items.slice(0, limit) : items;
    const last = page.at(-1);
    return { items: page, cursor: more && last ? encodeCursor(this.scheme, { after: last.key }) : undefined };
  }

  /** Depth-first walk in UTF-8 byte order of keys; stops once `want` items are collected. */
  private async walk(
    dir: string,
    keyPrefix: string,
    prefix: string,
    after: string | undefined,
    want: number,
    out: BlobInfo[],
  ): Promise<void> {
    let entries: import("node:fs").Dirent[];
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (e) {
      if (isErrno(e, "ENOENT", "ENOTDIR")) return;
      throw e;
    }
    const named: { sortKey: string; key: string; path: string; isDir: boolean }[] = [];
    for (const entry of entries) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) {
        const d = decodeDir(entry.name);
        if (d.kind === "skip") continue;
        const segment =
          d.kind === "plain"
            ? d.segment
            : await readFile(join(path, DIR_NAME_FILE), "utf8").catch(() => undefined);
        if (segment === undefined) continue;
        const key = `${keyPrefix}${segment}/`;
        named.push({ sortKey: key, key, path, isDir: true });
      } else if (entry.isFile()) {
        const f = decodeFile(entry.name);
        if (f.kind === "skip") continue;
        let key: string;
        if (f.kind === "plain") key = keyPrefix + f.segment;
        else {
          const k = await this.footerKey(path);
          if (k === undefined) continue;
          key = k;
        }
        named.push({ sortKey: key, key, path, isDir: false });
      }
    }
    named.sort((a, b) => compareUtf8(a.sortKey, b.sortKey));
    for (const entry of named) {
      if (out.length >= want) return;
      if (entry.isDir) {
        const relevant = entry.key.startsWith(prefix) || prefix.startsWith(entry.key);
        const notBehind =
          after === undefined || compareUtf8(after, entry.key) < 0 || after.startsWith(entry.key);
        if (relevant && notBehind) await this.walk(entry.path, entry.key, prefix, after, want, out);
      } else if (entry.key.startsWith(prefix) && (after === undefined || compareUtf8(entry.key, after) > 0)) {
        try {
          const { handle, footer } = await this.openObject(entry.key, "blob.list");
          await handle.close();
          out.push(this.info(footer, entry.key));
        } catch (e) {
          // Deleted between readdir and open: not part of the listing.
          if (e instanceof KuraError && e.code === "BLOB_NOT_FOUND") continue;
          // Damaged (a fresh key's body cut short by a crash): listed with what the file system
          // knows and no checksum, so GC and fsck find it; reading it fails as corrupt.
          if (!(e instanceof KuraError && e.code === "BLOB_METADATA_CORRUPT")) throw e;
          const st = await stat(entry.path).catch(() => undefined);
          if (st)
            out.push({
              key: entry.key,
              size: st.size,
              sha256: undefined,
              contentType: DEFAULT_CONTENT_TYPE,
              etag: undefined,
              lastModified: st.mtime,
              metadata: {},
            });
        }
      }
    }
  }

  private async footerKey(path: string): Promise<string | undefined> {
    try {
      const raw = await readFile(path);
      const footer = decodeFooter(raw, raw.length, path);
      return "need" in footer ? undefined : footer.k;
    } catch {
      return undefined;
    }
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
    clearInterval(this.sweepTimer);
  }
}

/** A stream of already-read bytes that errors instead of ending when they fail the checksum. */
function verifiedReadable(data: Buffer, expected: string, key: string): Readable {
  return checkedReadable({ data, sha256: sha256Hex(data) }, expected, key);
}

/** {@link verifiedReadable} for bytes whose SHA-256 is already known. */
function checkedReadable(read: { data: Buffer; sha256: string }, expected: string, key: string): Readable {
  if (read.sha256 !== expected) {
    const e = checksumMismatch(key, expected, read.sha256, "blob.get");
    return new Readable({
      read() {
        this.destroy(e);
      },
    });
  }
  return Readable.from(read.data.length ? [read.data] : []);
}

/** Bytes read from an object file per call when a body is read whole. */
const READ_CHUNK_BYTES = 256 * 1024;

/**
 * The first `size` bytes of a file and their SHA-256, hashed while reading: each chunk is
 * hashed on this thread while the next one is read on the thread pool, so a large read costs
 * about the longer of the two rather than their sum.
 */
async function readHashed(handle: FileHandle, size: number): Promise<{ data: Buffer; sha256: string }> {
  const data = Buffer.allocUnsafe(size);
  const hash = createHash("sha256");
  const readAt = async (offset: number): Promise<number> => {
    const { bytesRead } = await handle.read(data, offset, Math.min(READ_CHUNK_BYTES, size - offset), offset);
    if (bytesRead === 0) throw new Error(`file ended at byte ${offset} of a ${size}-byte body`);
    return bytesRead;
  };
  let offset = 0;
  let next = size > 0 ? readAt(0) : undefined;
  while (next) {
    const n = await next;
    const start = offset;
    offset += n;
    next = offset < size ? readAt(offset) : undefined;
    // A rejected read that is not awaited yet must not count as unhandled.
    next?.catch(() => undefined);
    hash.update(data.subarray(start, offset));
  }
  return { data, sha256: hash.digest("hex") };
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

/**
 * open(O_CREAT|O_EXCL) + writev + close with the callback API: the cheapest way to
 * create a small file off the event loop. `onCreated` runs once the file exists (so a failure
 * after it knows there is a file to remove).
 */
function writeExclusive(path: string, chunks: Uint8Array[], onCreated: () => void): Promise<void> {
  return new Promise((resolve, reject) => {
    openCb(path, "wx", (openError, fd) => {
      if (openError) {
        reject(openError);
        return;
      }
      onCreated();
      const finish = (error: Error | null) => {
        closeCb(fd, (closeError) => {
          const e = error ?? closeError;
          if (e) reject(e);
          else resolve();
        });
      };
      const synced = () => finish(null);
      const total = chunks.reduce((n, c) => n + c.length, 0);
      writevCb(fd, chunks, (writeError, written) => {
        if (writeError) {
          finish(writeError);
          return;
        }
        if (written === total) {
          synced();
          return;
        }
        // A short write (rare on regular files): write the rest from where it stopped.
        const rest = Buffer.concat(chunks.map((c) => Buffer.from(c.buffer, c.byteOffset, c.length))).subarray(
          written,
        );
        const more = (offset: number) => {
          writeCb(fd, rest, offset, rest.length - offset, null, (e, n) => {
            if (e) finish(e);
            else if (offset + n >= rest.length) synced();
            else more(offset + n);
          });
        };
        more(0);
      });
    });
  });
}
