/**
 * What `Kura.open` has opened so far, to close in reverse order if a later step fails: a
 * failure half-way never leaves a catalog connection, a KV environment, a worker thread or a
 * store behind. Once the `Kura` exists, its own `close` takes over.
 */
export class Cleanup {
  private readonly steps: Array<() => Promise<void> | void> = [];

  /** Close this when opening fails later on. */
  defer(step: () => Promise<void> | void): void {
    this.steps.push(step);
  }

  /** Everything opened so far is now closed by `closeAll` instead (the finished instance's close). */
  handOver(closeAll: () => Promise<void>): void {
    this.steps.length = 0;
    this.steps.push(closeAll);
  }

  /** Close everything deferred, newest first; one failing close does not keep the others open. */
  async unwind(): Promise<void> {
    for (const step of this.steps.splice(0).reverse()) {
      try {
        await step();
      } catch {
        // The open already failed with its own error: that is the one the caller sees.
      }
    }
  }
}
