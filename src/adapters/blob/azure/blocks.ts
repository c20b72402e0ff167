/**
 * Staged block uploads: a body is cut into blocks, each staged with Put Block (a few at once),
 * and the blob appears only when Put Block List commits them. Until then nothing is visible
 * under the key, so a body that fails half way leaves no object; the service discards
 * uncommitted blocks on its own (after a week on Azure).
 *
 * The SHA-256 is computed while the blocks are cut, so the commit already carries it in the
 * metadata: the object is never visible without its checksum.
 */
import { createHash, randomBytes } from "node:crypto";
import type { BlockBlobClient } from "@azure/storage-blob";
import { KuraError } from "../../../core/errors.js";
import { throwIfAborted } from "../common.js";

export interface StagedBlocks {
  blockIds: string[];
  size: number;
  sha256: string;
}

export interface StageOptions {
  blockBytes: number;
  concurrency: number;
  signal: AbortSignal | undefined;
  /** Translates an SDK failure of Put Block. */
  translate: (e: unknown) => KuraError;
  /** Wraps a failure of the body itself (the caller's stream broke). */
  bodyFailed: (e: unknown) => KuraError;
}

/** Yield `data` in slices of `size` bytes (no copies). */
export async function* slices(data: Buffer, size: number): AsyncGenerator<Buffer> {
  for (let i = 0; i < data.length; i += size) yield data.subarray(i, i + size);
}

export async function stageBlocks(
  client: BlockBlobClient,
  body: AsyncIterable<Uint8Array>,
  opts: StageOptions,
): Promise<StagedBlocks> {
  // Block ids must all have the same length within a blob; the random part keeps two puts
  // racing on one key from committing each other's blocks.
  const nonce = randomBytes(8).toString("hex");
  const blockIds: string[] = [];
  const hash = createHash("sha256");
  const inflight = new Set<Promise<void>>();
  let failure: KuraError | undefined;
  let size = 0;
  let pending: Buffer[] = [];
  let pendingBytes = 0;

  const stage = (block: Buffer): void => {
    const id = Buffer.from(`${nonce}-${String(blockIds.length).padStart(6, "0")}`).toString("base64");
    blockIds.push(id);
    const p: Promise<void> = client
      .stageBlock(id, block, block.length, { abortSignal: opts.signal })
      .then(
        () => undefined,
        (e: unknown) => {
          failure ??= opts.translate(e);
        },
      )
      .finally(() => inflight.delete(p));
    inflight.add(p);
  };

  // Cut `pending` into whole blocks; with `flush`, the remainder becomes the last block.
  const cut = async (flush: boolean): Promise<void> => {
    while (pendingBytes >= opts.blockBytes || (flush && pendingBytes > 0)) {
      const all = pending.length === 1 ? (pending[0] as Buffer) : Buffer.concat(pending);
      const take = Math.min(opts.blockBytes, all.length);
      stage(all.subarray(0, take));
      const rest = all.subarray(take);
      pending = rest.length > 0 ? [rest] : [];
      pendingBytes = rest.length;
      while (inflight.size >= opts.concurrency) await Promise.race(inflight);
      if (failure) throw failure;
    }
  };

  try {
    try {
      for await (const chunk of body) {
        const buf = Buffer.isBuffer(chunk)
          ? chunk
          : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
        hash.update(buf);
        size += buf.length;
        pending.push(buf);
        pendingBytes += buf.length;
        if (pendingBytes >= opts.blockBytes) await cut(false);
        throwIfAborted(opts.signal, "blob.put");
      }
    } catch (e) {
      throw e instanceof KuraError ? e : opts.bodyFailed(e);
    }
    await cut(true);
    await Promise.all(inflight);
    if (failure) throw failure;
    return { blockIds, size, sha256: hash.digest("hex") };
  } finally {
    // Never leave a Put Block running once the put has settled.
    await Promise.allSettled(inflight);
  }
}
