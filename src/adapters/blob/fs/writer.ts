/**
 * `fs` writes: a body and its footer to a temp file renamed (or hard-linked, for a conditional
 * create) into place, or, for a fresh key, created in place with `O_EXCL`; with `fsync`, the
 * file synced before it becomes visible and its directory after.
 */
import { closeSync, openSync, renameSync, writevSync } from "node:fs";
import { link, mkdir, open, rename, stat, unlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { finished, type Readable } from "node:stream";
import { HashingStream, sha256Hex, toReadable } from "../../../core/checksum.js";
import { KuraError } from "../../../core/errors.js";
import type {
  BlobBody,
  BlobStoreDeps,
  PutManyItem,
  PutOptions,
  PutResult,
} from "../../../ports/blob-store.js";
import { alreadyExists, DEFAULT_CONTENT_TYPE, throwIfAborted } from "../common.js";
import { BodyWriteError, type BodyWriter } from "./body-writer.js";
import type { DirSyncer } from "./dir-sync.js";
import { fsError, isErrno } from "./errors.js";
import { encodeFooter, type Footer } from "./footer.js";
import { DIR_NAME_FILE, encodeDir, isLong, keyPath } from "./layout.js";
import type { FsOptions } from "./options.js";
import type { TempFiles } from "./temps.js";
import { writeExclusive } from "./write-exclusive.js";

/** Puts under `base`; the store has checked the key, the options and that it is open. */
export class FsWriter {
  private readonly knownDirs = new Set<string>();

  constructor(
    private readonly base: string,
    private readonly options: FsOptions,
    private readonly deps: BlobStoreDeps,
    private readonly fsync: boolean,
    private readonly temps: TempFiles,
    private readonly dirSyncer: DirSyncer,
  ) {}

  /** `dir` exists: {@link ensureDir} need not create it. */
  knownDir(dir: string): void {
    this.knownDirs.add(dir);
  }

  private async probe(point: string, detail: Record<string, unknown>): Promise<void> {
    if (this.deps.probe) await this.deps.probe(point, detail);
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

  async put(key: string, body: BlobBody, options: PutOptions): Promise<PutResult> {
    throwIfAborted(options.signal, "blob.put");
    const { dir, file, dirSegments } = keyPath(this.base, key);
    // In place only when the file is named by the key itself: a partial file left by a crash
    // must stay listable by key (for GC), and a hashed name needs the footer to be read back.
    if (options.freshKey && body instanceof Uint8Array && !isLong(key.slice(key.lastIndexOf("/") + 1)))
      return this.putFresh(key, body, options, dir, file, dirSegments);
    const tmp = this.temps.claim();
    let result: PutResult;
    try {
      await this.ensureDir(dir, dirSegments);
      if (body instanceof Uint8Array) {
        const sha256 = sha256Hex(body);
        const footer = encodeFooter(this.footer(key, body.length, sha256, options));
        this.temps.written(tmp, body.length + footer.length);
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
      this.temps.release(tmp);
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

  /**
   * Fresh keys, created by the body writer thread in one hand-off; undefined when the batch is
   * not for it (fsync durability, a body above `sync_io_max_bytes`, a hashed file name), and
   * the caller puts each body on its own.
   */
  async putMany(
    items: readonly PutManyItem[],
    signal: AbortSignal | undefined,
    bodies: BodyWriter,
  ): Promise<PutResult[] | undefined> {
    if (this.fsync) return undefined;
    const max = this.options.sync_io_max_bytes;
    const paths = new Array<string>(items.length);
    const dirs: { dir: string; segments: string[] }[] = [];
    for (let i = 0; i < items.length; i++) {
      const { key, body } = items[i] as PutManyItem;
      if (body.length > max || isLong(key.slice(key.lastIndexOf("/") + 1))) return undefined;
      const { dir, file, dirSegments } = keyPath(this.base, key);
      paths[i] = file;
      if (!this.knownDirs.has(dir) && !dirs.some((d) => d.dir === dir))
        dirs.push({ dir, segments: dirSegments });
    }
    const first = items[0]?.key;
    try {
      for (const d of dirs) await this.ensureDir(d.dir, d.segments);
    } catch (e) {
      throw fsError(e, "blob.put", first);
    }
    const results = new Array<PutResult>(items.length);
    const chunks = new Array<Uint8Array[]>(items.length);
    for (let i = 0; i < items.length; i++) {
      const item = items[i] as PutManyItem;
      const sha256 = sha256Hex(item.body);
      const options: PutOptions = item.contentType === undefined ? {} : { contentType: item.contentType };
      if (item.metadata) options.metadata = item.metadata;
      chunks[i] = [item.body, encodeFooter(this.footer(item.key, item.body.length, sha256, options))];
      results[i] = { key: item.key, size: item.body.length, sha256, etag: `"${sha256.slice(0, 32)}"` };
    }
    throwIfAborted(signal, "blob.put");
    if (this.deps.probe)
      for (let i = 0; i < items.length; i++)
        await this.probe("fs.create", { path: paths[i], key: items[i]?.key });
    try {
      await bodies.write(paths, chunks);
    } catch (e) {
      const key = e instanceof BodyWriteError ? items[e.index]?.key : first;
      if (e instanceof BodyWriteError && e.code === "EEXIST") throw alreadyExists(key ?? "");
      throw fsError(
        e instanceof BodyWriteError ? Object.assign(new Error(e.message), { code: e.code }) : e,
        "blob.put",
        key,
      );
    }
    if (signal?.aborted) {
      // Given up on meanwhile (a timeout): what the caller will never record goes again.
      await Promise.all(paths.map((p) => unlink(p).catch(() => undefined)));
      throwIfAborted(signal, "blob.put");
    }
    return results;
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
      this.temps.written(tmp, written);
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
}
