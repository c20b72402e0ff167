/**
 * Outbox dispatch (CONS-2): registered projectors (search, vectors, change feed, …) receive the
 * outbox's events in commit order, at least once, and resume from their saved cursor after a
 * restart. A projector must be idempotent: after a crash it may see events again.
 */
import type { Catalog, OutboxRecord } from "../ports/catalog.js";
import type { MessageKey } from "./projection.js";

export interface Projector {
  /** Stable name: its cursor is saved under it. */
  name: string;
  handle(events: readonly OutboxRecord[]): Promise<void>;
}

/** A projector of messages, which a rebuild can also hand messages to directly. */
export interface MessageProjector extends Projector {
  /** Bring the projection in line with the current state of these messages. */
  apply(messages: readonly MessageKey[]): Promise<void>;
}

export class OutboxDispatcher {
  private readonly projectors: Projector[] = [];
  private pumping: Promise<void> | undefined;
  private again = false;
  private closed = false;
  /** Last error per projector (it is retried on the next pump). */
  readonly errors = new Map<string, unknown>();

  constructor(
    private readonly catalog: Catalog,
    private readonly batchSize = 500,
  ) {}

  register(projector: Projector): void {
    this.projectors.push(projector);
  }

  /** Ask for a pump soon (after commits); calls coalesce. */
  notify(): void {
    if (this.closed || this.projectors.length === 0) return;
    if (this.pumping) {
      this.again = true;
      return;
    }
    this.pumping = this.pumpLoop().finally(() => {
      this.pumping = undefined;
    });
  }

  private async pumpLoop(): Promise<void> {
    do {
      this.again = false;
      await this.pump();
    } while (this.again && !this.closed);
  }

  /**
   * Deliver everything pending to every projector; returns when they are caught up (or failed).
   * Pumps never overlap: one that is asked for while another runs goes after it.
   */
  pump(): Promise<void> {
    const run = this.chain.then(() => this.deliver());
    this.chain = run.catch(() => undefined);
    return run;
  }

  private chain: Promise<void> = Promise.resolve();

  private async deliver(): Promise<void> {
    for (const p of this.projectors) {
      try {
        for (;;) {
          const cursor = await this.catalog.getConsumerCursor(p.name);
          const events = await this.catalog.readOutbox(cursor, this.batchSize);
          if (events.length === 0) break;
          await p.handle(events);
          await this.catalog.setConsumerCursor(p.name, (events.at(-1) as OutboxRecord).cursor);
        }
        this.errors.delete(p.name);
      } catch (e) {
        this.errors.set(p.name, e);
      }
    }
  }

  /**
   * Read-your-writes for projections: resolves `true` once every event committed before the call
   * has been delivered to every projector (a pump that starts after the call runs until the
   * outbox is empty), `false` if that takes longer than `timeoutMs` or a projector failed.
   */
  async settle(timeoutMs: number): Promise<boolean> {
    if (this.projectors.length === 0) return true;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
    });
    try {
      return await Promise.race([this.pump().then(() => this.errors.size === 0), deadline]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Events waiting for one projector (the lag metric). */
  async lag(name: string): Promise<number> {
    return this.catalog.outboxLag(await this.catalog.getConsumerCursor(name));
  }

  async close(): Promise<void> {
    this.closed = true;
    while (this.pumping) await this.pumping;
  }
}
