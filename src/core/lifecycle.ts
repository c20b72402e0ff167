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

/**
 * `port` behind a {@link Lifecycle}: after `close()` (idempotent) every method fails with
 * `CLOSED` — a rejected promise, or a throw for `…Sync` methods — and `drop()`, where a port has
 * one, closes it too. For adapters whose methods keep no guard of their own.
 */
export function withLifecycle<T extends { close(): Promise<void> }>(port: T, what: string, plane: string): T {
  const life = new Lifecycle(what);
  const wrapped = new Map<PropertyKey, unknown>();
  return new Proxy(port, {
    get(target, property) {
      const value = Reflect.get(target, property);
      if (typeof value !== "function" || typeof property !== "string" || property === "constructor")
        return value;
      let fn = wrapped.get(property);
      if (!fn) {
        const method = value as (...args: unknown[]) => unknown;
        const operation = `${plane}.${property}`;
        if (property === "close") fn = () => life.close(() => method.call(target) as Promise<void>);
        else if (property === "drop")
          fn = async (...args: unknown[]) => {
            life.check(operation);
            await method.apply(target, args);
            await life.close(() => undefined);
          };
        else if (property.endsWith("Sync"))
          fn = (...args: unknown[]) => {
            life.check(operation);
            return method.apply(target, args);
          };
        else
          fn = (...args: unknown[]) => (life.closed ? life.rejection(operation) : method.apply(target, args));
        wrapped.set(property, fn);
      }
      return fn;
    },
  });
}
