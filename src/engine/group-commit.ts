/**
 * Group commit: concurrent writers hand their catalog batches to one committer, which applies
 * everything that queued up while the previous commit ran in a single transaction (one fsync
 * for many acknowledgements). Each batch keeps its own outcome (savepoints in the catalog).
 */
import { KuraError, toKuraError } from "../core/errors.js";
import { closedError } from "../core/lifecycle.js";
import type { Catalog, CatalogBatch } from "../ports/catalog.js";
import { fenceCheck } from "./fence.js";

interface Pending {
  batch: CatalogBatch;
  resolve: () => void;
  reject: (e: KuraError) => void;
}

export class GroupCommitter {
  private queue: Pending[] = [];
  private running: Promise<void> | undefined;
  private closed = false;

  constructor(
    private readonly catalog: Catalog,
    /** Most ops per transaction; a larger queue is committed in several rounds. */
    private readonly maxOpsPerCommit = 20_000,
  ) {}

  /**
   * Resolves once the batch is durably committed (per the catalog's durability setting). Within
   * a job (`engine/fence.ts`) the batch also checks the job's lease and fencing token.
   */
  commit(batch: CatalogBatch): Promise<void> {
    if (this.closed) {
      return Promise.reject(closedError("the catalog", "catalog.commit"));
    }
    const fence = fenceCheck();
    if (fence) batch = { ops: [...batch.ops, fence] };
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ batch, resolve, reject });
      this.running ??= this.drain();
    });
  }

  private async drain(): Promise<void> {
    // Let writers that are already on their way join this round.
    await new Promise<void>((r) => setImmediate(r));
    try {
      while (this.queue.length > 0) {
        const round: Pending[] = [];
        let ops = 0;
        while (
          this.queue.length > 0 &&
          (round.length === 0 || ops + (this.queue[0] as Pending).batch.ops.length <= this.maxOpsPerCommit)
        ) {
          const next = this.queue.shift() as Pending;
          round.push(next);
          ops += next.batch.ops.length;
        }
        try {
          const outcomes = await this.catalog.commit(round.map((p) => p.batch));
          round.forEach((p, i) => {
            const outcome = outcomes[i];
            if (outcome?.ok) p.resolve();
            else p.reject(outcome ? outcome.error : new KuraError("CATALOG_ERROR", "missing commit outcome"));
          });
        } catch (e) {
          const error = toKuraError(e, "catalog.commit");
          for (const p of round) p.reject(error);
        }
      }
    } finally {
      this.running = undefined;
    }
  }

  /** Wait for everything queued to be committed, then refuse new batches. */
  async close(): Promise<void> {
    this.closed = true;
    while (this.running) await this.running;
  }
}
