/**
 * The `lmdb` KV store's write batches: the writes queued during one turn of the event loop,
 * committed together (ADR 0023).
 */
import type { Record } from "./record.js";

export const noop = () => undefined;
/** The queued value of a delete. */
export const REMOVE = Symbol("remove");

/**
 * The writes queued during one turn of the event loop, committed together. Kept in flat arrays
 * so queuing a write allocates no object.
 */
export class Batch {
  /** Writes of the `kv` database, in order: keys and values ({@link REMOVE} for a removal). */
  readonly keys: string[] = [];
  readonly values: unknown[] = [];
  /**
   * Writes of the `expiry` index: database, key, value, … — committed before the `kv` writes,
   * in their own order (an entry and the removal of another never share a key).
   */
  readonly side: unknown[] = [];
  /**
   * Whether the batch holds writes that are not in the overlay ("blind" writes: set without
   * `ifVersion`, setMany). With synchronous commits they are left out of it, and a decision or a
   * read commits the batch first instead.
   */
  blind = false;
  /** Overlay entries of this batch (asynchronous commits only): key, entry, key, entry, … */
  readonly entries: (string | Record)[] = [];
  readonly done: Promise<void>;
  resolve!: () => void;
  reject!: (e: unknown) => void;
  private quiet: Promise<void> | undefined;

  constructor() {
    this.done = new Promise<void>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
    // Every writer awaits `done`; this keeps a batch nobody awaits from an unhandled rejection.
    this.done.catch(noop);
  }

  /** Settles with the batch, never rejects (for readers that only wait for it). */
  settled(): Promise<void> {
    this.quiet ??= this.done.then(noop, noop);
    return this.quiet;
  }
}
