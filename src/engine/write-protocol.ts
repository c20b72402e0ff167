/**
 * The write protocol (CONS-1) — the one place where Kura writes across planes:
 *
 *   1. validate (callers do it before calling in);
 *   2. write every body object (concurrently, bounded);
 *   3. apply ONE catalog batch — index rows + outbox + usage + audit — through the group committer;
 *   4. acknowledge.
 *
 * Body keys are unique to one attempt (fresh UUIDv7 ids, a random suffix on edits), so no two
 * writers ever share a key and cleanup only ever deletes what the same attempt created.
 * If step 2 fails, bodies already written are deleted. If step 3 is refused, all bodies are
 * deleted; if its outcome is unknown (connection lost around COMMIT) they stay for GC.
 * A crash between 2 and 3 leaves only orphan objects (no catalog row points at them), which the
 * GC job reclaims after a grace period. So no acknowledged write is lost (it is in the catalog
 * and its body was written first) and no index row points at a missing object.
 *
 * Removal runs the other way round: catalog rows first, bodies after; a body whose delete fails
 * is an orphan for GC, never a dangling row.
 */
import { isKuraError, type KuraError } from "../core/errors.js";
import type { BlobBody, BlobStore, PutResult } from "../ports/blob-store.js";
import { type CatalogBatch, COMMIT_OUTCOME_UNKNOWN } from "../ports/catalog.js";
import type { GroupCommitter } from "./group-commit.js";

export interface BodyWrite {
  key: string;
  /** Bytes, or a stream (which is consumed once: such writes are never retried). */
  data: BlobBody;
  contentType: string;
  metadata?: Record<string, string>;
}

export type Probe = (point: string, detail: Readonly<Record<string, unknown>>) => void | Promise<void>;

/**
 * Bodies in flight per write. Small fs bodies are created on the thread pool; more in flight
 * means more completions per event-loop turn (measured on ext4: 8 → 33k files/s, 32 → 55k,
 * 128 → 70k, with main-thread cost per file falling from 18 to 8 µs).
 */
const BODY_CONCURRENCY = 64;

export class WriteProtocol {
  constructor(
    private readonly store: BlobStore,
    private readonly committer: GroupCommitter,
    private readonly probe?: Probe,
  ) {}

  /** Steps 2–4. `build` turns the put results into the catalog batch. */
  async write(
    bodies: readonly BodyWrite[],
    build: (results: PutResult[]) => CatalogBatch,
  ): Promise<PutResult[]> {
    const results = await this.putAll(bodies);
    await this.probe?.("protocol.bodies-written", { keys: bodies.map((b) => b.key) });
    try {
      await this.committer.commit(build(results));
    } catch (e) {
      // Every key here was made for this attempt alone (fresh ids, per-attempt suffixes), so the
      // cleanup can never touch a body another write committed. When the outcome is unknown (the
      // connection dropped while COMMIT was in flight) the bodies stay: a committed row may point
      // at them, and GC removes them after the grace period if none does.
      if (!outcomeUnknown(e)) await this.store.delete(bodies.map((b) => b.key)).catch(() => undefined);
      throw e;
    }
    await this.probe?.("protocol.committed", { keys: bodies.map((b) => b.key) });
    return results;
  }

  /** Catalog first, then bodies (best effort; leftovers are orphans for GC). */
  async remove(batch: CatalogBatch, keys: readonly string[]): Promise<void> {
    await this.committer.commit(batch);
    if (keys.length > 0) await this.store.delete(keys).catch(() => undefined);
  }

  /** A catalog-only change (soft delete, flags): no bodies involved. */
  commit(batch: CatalogBatch): Promise<void> {
    return this.committer.commit(batch);
  }

  private async putAll(bodies: readonly BodyWrite[]): Promise<PutResult[]> {
    const results: PutResult[] = new Array(bodies.length);
    let next = 0;
    let failure: KuraError | undefined;
    const worker = async () => {
      while (failure === undefined && next < bodies.length) {
        const i = next++;
        const body = bodies[i] as BodyWrite;
        try {
          // Every key is unique to this attempt: the store may create it in place (`freshKey`).
          results[i] = await this.store.put(body.key, body.data, {
            contentType: body.contentType,
            freshKey: true,
            ...(body.metadata ? { metadata: body.metadata } : {}),
          });
        } catch (e) {
          failure ??= e as KuraError;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(BODY_CONCURRENCY, bodies.length) }, worker));
    if (failure !== undefined) {
      await this.store.delete(bodies.map((b) => b.key)).catch(() => undefined);
      throw failure;
    }
    return results;
  }
}

/**
 * Whether a failed commit may still have committed: the catalog says so (the connection was lost
 * while COMMIT was in flight). Every other failure was a rollback.
 */
function outcomeUnknown(e: unknown): boolean {
  return isKuraError(e) && e.context.outcome === COMMIT_OUTCOME_UNKNOWN;
}
