/**
 * The blob store a running Kura writes through while an online migration moves its bodies to
 * another store (seed 004: wrapper → dual write → switch reads → retire). Without a target it
 * is the source store, one call away. With one:
 *
 * - every put, putMany, copy and delete goes to the source *and* the target, and is
 *   acknowledged only when the source has it; a target that fails a write detaches (the
 *   migration is marked failed by `onTargetFailure`) instead of failing the caller's write, so
 *   a migration never costs availability and never claims a target that missed a write;
 * - reads (get, head, list) go to the source until `switchReads`, then to the target, which
 *   from then on is the store of record: a write is acknowledged once the target has it (its
 *   failure is the caller's), and the source gets it too, as a fallback (`onSourceFailure`).
 *
 * Capabilities stay the source's: the running process was configured for it (session files
 * in `sessions.dir`, presign secrets); the target's own take effect when a server starts on
 * the target configuration.
 */
import { PassThrough, Readable } from "node:stream";
import { isKuraError } from "../../core/errors.js";
import {
  type BlobBody,
  type BlobCapabilities,
  type BlobInfo,
  type BlobStore,
  type BlobStoreStats,
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
} from "../../ports/blob-store.js";

export interface MirrorTarget {
  store: BlobStore;
  /** Called once when the target fails a write before the switch; the mirror has detached it already. */
  onTargetFailure(error: unknown): void;
  /** Called when the source fails a write after the switch (it is only the fallback then). */
  onSourceFailure(error: unknown): void;
}

export class MirrorBlobStore implements BlobStore {
  private target: MirrorTarget | undefined;
  private readsFromTarget = false;

  constructor(readonly source: BlobStore) {}

  get scheme(): string {
    return this.source.scheme;
  }
  get location(): string {
    return this.source.location;
  }
  get capabilities(): BlobCapabilities {
    return this.source.capabilities;
  }

  /** Start writing to `target` as well (reads stay on the source). */
  attach(target: MirrorTarget): void {
    this.target = target;
    this.readsFromTarget = false;
  }

  /** Serve reads from the target from now on (writes still go to both). */
  switchReads(): void {
    if (this.target) this.readsFromTarget = true;
  }

  /** Stop writing to the target and read from the source again. */
  detach(): void {
    this.target = undefined;
    this.readsFromTarget = false;
  }

  get mirroring(): boolean {
    return this.target !== undefined;
  }

  private reader(): BlobStore {
    return this.readsFromTarget && this.target ? this.target.store : this.source;
  }

  /** The target's write, awaited; a failure detaches it and is reported, never thrown. */
  private async onTarget<T>(target: MirrorTarget, write: (store: BlobStore) => Promise<T>): Promise<void> {
    try {
      await write(target.store);
    } catch (e) {
      if (this.target === target) {
        this.detach();
        target.onTargetFailure(e);
      }
    }
  }

  /**
   * After the switch the target is the store of record: a write is acknowledged when the
   * target has it (its failure is the caller's), and the source gets it as a fallback.
   */
  private async onSource(target: MirrorTarget, write: () => Promise<unknown>): Promise<void> {
    try {
      await write();
    } catch (e) {
      target.onSourceFailure(e);
    }
  }

  async put(key: string, body: BlobBody, options?: PutOptions): Promise<PutResult> {
    const target = this.target;
    if (!target) return this.source.put(key, body, options);
    if (this.readsFromTarget) {
      if (body instanceof Uint8Array) {
        const result = await target.store.put(key, body, options);
        await this.onSource(target, () => this.source.put(key, body, targetOptions(options)));
        return result;
      }
      const [forTarget, forSource] = tee(body);
      const sourceWrite = this.onSource(target, () =>
        this.source.put(key, forSource, targetOptions(options)),
      );
      try {
        return await target.store.put(key, forTarget, options);
      } catch (e) {
        forSource.destroy();
        throw e;
      } finally {
        await sourceWrite;
      }
    }
    if (body instanceof Uint8Array) {
      const result = await this.source.put(key, body, options);
      await this.onTarget(target, (t) => t.put(key, body, targetOptions(options)));
      return result;
    }
    // A stream is read once and fed to both stores, at the pace of the slower one.
    const [forSource, forTarget] = tee(body);
    const targetWrite = this.onTarget(target, (t) => t.put(key, forTarget, targetOptions(options)));
    try {
      const result = await this.source.put(key, forSource, options);
      await targetWrite;
      return result;
    } catch (e) {
      forTarget.destroy();
      await targetWrite;
      // Not acknowledged: the target must not keep what the source refused.
      if (this.target === target) await this.resync(target, key);
      throw e;
    }
  }

  async putMany(items: readonly PutManyItem[], options?: { signal?: AbortSignal }): Promise<PutResult[]> {
    const target = this.target;
    if (target && this.readsFromTarget) {
      const t = target.store;
      const results = t.putMany ? await t.putMany(items, options) : await putEach(t, items, options?.signal);
      await this.onSource(target, () => replaceEach(this.source, items, options?.signal));
      return results;
    }
    const results = this.source.putMany
      ? await this.source.putMany(items, options)
      : await putEach(this.source, items, options?.signal);
    if (target) await this.onTarget(target, (t) => replaceEach(t, items, options?.signal));
    return results;
  }

  async copy(sourceKey: string, targetKey: string, options?: { signal?: AbortSignal }): Promise<PutResult> {
    const target = this.target;
    if (target && this.readsFromTarget) {
      const result = await target.store.copy(sourceKey, targetKey, options);
      await this.onSource(target, () => this.source.copy(sourceKey, targetKey, options));
      return result;
    }
    const result = await this.source.copy(sourceKey, targetKey, options);
    if (target)
      await this.onTarget(target, async (t) => {
        try {
          await t.copy(sourceKey, targetKey, options);
        } catch (e) {
          // The copy step has not reached the source key yet: take the new object from the source.
          if (!(isKuraError(e) && e.code === "BLOB_NOT_FOUND")) throw e;
          const { info, body } = await this.source.get(targetKey);
          await t.put(targetKey, body, { contentType: info.contentType, metadata: info.metadata });
        }
      });
    return result;
  }

  async delete(keys: string | readonly string[], options?: { signal?: AbortSignal }): Promise<void> {
    const target = this.target;
    if (target && this.readsFromTarget) {
      await target.store.delete(keys, options);
      await this.onSource(target, () => this.source.delete(keys, options));
      return;
    }
    await this.source.delete(keys, options);
    if (target) await this.onTarget(target, (t) => t.delete(keys, options));
  }

  /** Make the target's `key` what the source holds now (its bytes, or nothing). */
  private async resync(target: MirrorTarget, key: string): Promise<void> {
    await this.onTarget(target, async (t) => {
      try {
        const { info, body } = await this.source.get(key);
        await t.put(key, body, { contentType: info.contentType, metadata: info.metadata });
      } catch (e) {
        if (isKuraError(e) && e.code === "BLOB_NOT_FOUND") await t.delete(key);
        else throw e;
      }
    });
  }

  get(key: string, options?: GetOptions): Promise<GetResult> {
    return this.reader().get(key, options);
  }
  getBuffer(key: string, options?: Omit<GetOptions, "range">): Promise<{ info: BlobInfo; data: Buffer }> {
    return this.reader().getBuffer(key, options);
  }
  getBufferSync(
    key: string,
    options?: Omit<GetOptions, "range" | "signal">,
  ): { info: BlobInfo; data: Buffer } | undefined {
    return this.reader().getBufferSync?.(key, options);
  }
  head(key: string, options?: { signal?: AbortSignal }): Promise<BlobInfo> {
    return this.reader().head(key, options);
  }
  exists(key: string): Promise<boolean> {
    return this.reader().exists(key);
  }
  list(prefix: string, options?: ListOptions): Promise<ListPage> {
    return this.reader().list(prefix, options);
  }
  presign(key: string, options: PresignOptions): Promise<PresignResult> {
    return this.source.presign(key, options);
  }

  /** The source's temp files (uploads in progress are written there first); absent when it keeps none. */
  get stats(): (() => Promise<BlobStoreStats>) | undefined {
    const stats = this.source.stats;
    return stats ? () => stats.call(this.source) : undefined;
  }

  /** Closes the source; the migration that attached a target closes it. */
  close(): Promise<void> {
    this.detach();
    return this.source.close();
  }
}

/**
 * The target's put is a plain replacement, never a conditional or fresh-key create: the source
 * has decided those already, and the copy step may have put the same bytes under the key
 * between the source's write and the target's (it lists the source), or left an object
 * copied just after its delete.
 */
function targetOptions(options: PutOptions | undefined): PutOptions | undefined {
  if (options === undefined) return undefined;
  const { ifNoneMatch: _, freshKey: __, ...rest } = options;
  return rest;
}

/** A `putMany`'s items into the target as replacements (see {@link targetOptions}), 64 at a time. */
async function replaceEach(
  store: BlobStore,
  items: readonly PutManyItem[],
  signal?: AbortSignal,
): Promise<void> {
  for (let i = 0; i < items.length; i += 64)
    await Promise.all(
      items.slice(i, i + 64).map((item) =>
        store.put(item.key, item.body, {
          ...(item.contentType !== undefined ? { contentType: item.contentType } : {}),
          ...(item.metadata !== undefined ? { metadata: item.metadata } : {}),
          ...(signal !== undefined ? { signal } : {}),
        }),
      ),
    );
}

/** Two readable copies of one body, fed at the pace of the slower reader. */
function tee(body: Exclude<BlobBody, Uint8Array>): [PassThrough, PassThrough] {
  const a = new PassThrough();
  const b = new PassThrough();
  const input = body instanceof Readable ? body : Readable.from(body);
  void (async () => {
    try {
      for await (const chunk of input) {
        const okA = a.destroyed || a.write(chunk);
        const okB = b.destroyed || b.write(chunk);
        if (!okA) await drained(a);
        if (!okB) await drained(b);
        if (a.destroyed && b.destroyed) break;
      }
      a.end();
      b.end();
    } catch (e) {
      a.destroy(e as Error);
      b.destroy(e as Error);
    }
  })();
  return [a, b];
}

function drained(stream: PassThrough): Promise<void> {
  return new Promise((resolve) => {
    if (stream.destroyed) return resolve();
    const done = () => {
      stream.off("drain", done);
      stream.off("close", done);
      resolve();
    };
    stream.once("drain", done);
    stream.once("close", done);
  });
}
