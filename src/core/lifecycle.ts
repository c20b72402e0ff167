/**
 * Open once, close once: the guard in front of every adapter's and service's operations. After
 * `close()` has begun, each operation fails with `CLOSED` (kind Unavailable, not retryable: this
 * instance never serves again), whatever the plane; `close()` runs its release once, and later
 * calls wait for the same release.
 */
import { KuraError } from "./errors.js";

export function closedError(what: string, operation: string): KuraError {
  return new KuraError("CLOSED", `${what} is closed`, { operation, retryable: false });
}

export class Lifecycle {
  private closing: Promise<void> | undefined;

  /** `what` names the instance in errors: "the catalog", "the KV store", … */
  constructor(private readonly what: string) {}

  get closed(): boolean {
    return this.closing !== undefined;
  }

  /** Throws `CLOSED` once `close` has been called. */
  check(operation: string): void {
    if (this.closing !== undefined) throw closedError(this.what, operation);
  }

  /** `CLOSED` as a rejected promise, for operations that must not throw synchronously. */
  rejection(operation: string): Promise<never> {
    return Promise.reject(closedError(this.what, operation));
  }

  /** Runs `release` the first time only; every call resolves when that release has finished. */
  close(release: () => void | Promise<void>): Promise<void> {
    this.closing ??= (async () => {
      await release();
    })();
    return this.closing;
  }
}
