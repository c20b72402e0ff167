/**
 * A retry layer for any port but the blob store (catalog, KV store, search and vector indexes):
 * port in → same port out. A call is repeated only when both hold:
 *
 * - its method may be repeated: `read` or `idempotent` in the port's call list (`CATALOG_CALLS`,
 *   `KV_CALLS`, … in `ports/`). A `once` method (a catalog `commit`, a KV `set` or `incr`) is
 *   never repeated here, whatever the failure: its outcome may be unknown, and doing it twice is
 *   not doing it once. The engine decides what to do with those (the write protocol keeps the
 *   bodies of a commit whose outcome is unknown, for GC to settle);
 * - the failure is a `KuraError` marked `retryable` (a lost connection, a serialization failure,
 *   a lock wait that timed out). `CLOSED`, invalid arguments, conflicts and anything that is not
 *   a `KuraError` fail at once. So does any other `OPERATION_TIMEOUT`: the call has had its whole
 *   time (a statement limit, a command or read timeout), and repeating it would multiply the
 *   caller's wait; the caller may still try again later (it stays `retryable`). A lock wait is
 *   different: the transaction that held the lock may be gone by the next attempt.
 *
 * Up to `maxRetries` more attempts (default 3), with the blob layer's exponential backoff and
 * full jitter (`retry.ts`). After the last attempt the error is the backend's own, with
 * `context.attempts` added. Synchronous methods and `close` pass as they are.
 */
import { KuraError } from "../core/errors.js";
import { type CallKind, repeatable } from "../ports/calls.js";
import { backoffDelay, type RetryOptions } from "./retry.js";

export interface PortRetryOptions extends RetryOptions {
  /** `catalog`, `kv`, `search`, `vector`: names the operation of a failure (`catalog.getMessage`). */
  plane: string;
  /** What may be repeated: the port's call list. Methods it does not name are never repeated. */
  calls: Readonly<Record<string, CallKind>>;
}

const PASS = new Set(["close", "constructor", "then"]);
const defaultSleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** `port` with every repeatable method retried as described above. */
export function withPortRetry<T extends object>(port: T, options: PortRetryOptions): T {
  const maxRetries = options.maxRetries ?? 3;
  const base = options.baseDelayMs ?? 100;
  const max = options.maxDelayMs ?? 2000;
  const random = options.random ?? Math.random;
  const sleep = options.sleep ?? defaultSleep;
  const wrapped = new WeakMap<object, unknown>();
  return new Proxy(port, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property);
      if (typeof value !== "function" || typeof property !== "string" || PASS.has(property)) return value;
      let fn = wrapped.get(value);
      if (!fn) {
        const method = value as (...args: unknown[]) => unknown;
        const retry = repeatable(options.calls[property]) && !property.endsWith("Sync");
        // The adapter runs with itself as `this`: its own calls of its methods are not layered again.
        fn = retry
          ? async function (this: unknown, ...args: unknown[]) {
              const self = this === receiver ? target : this;
              for (let attempt = 0; ; attempt++) {
                try {
                  return await method.apply(self, args);
                } catch (e) {
                  if (!(e instanceof KuraError) || !worthRepeating(e) || attempt >= maxRetries) {
                    throw attempt > 0 && e instanceof KuraError ? withAttempts(e, attempt + 1) : e;
                  }
                  const delayMs = backoffDelay(attempt + 1, base, max, random);
                  options.onRetry?.({
                    operation: `${options.plane}.${property}`,
                    attempt: attempt + 1,
                    delayMs,
                    error: e,
                  });
                  await sleep(delayMs);
                }
              }
            }
          : function (this: unknown, ...args: unknown[]) {
              return method.apply(this === receiver ? target : this, args);
            };
        wrapped.set(value, fn);
      }
      return fn;
    },
  });
}

/** Retryable, and not a timeout that used up the call's whole time (see above). */
function worthRepeating(e: KuraError): boolean {
  return e.retryable && (e.code !== "OPERATION_TIMEOUT" || e.context.limit === "lock");
}

function withAttempts(e: KuraError, attempts: number): KuraError {
  return new KuraError(e.code, e.message, {
    kind: e.kind,
    ...(e.operation === undefined ? {} : { operation: e.operation }),
    context: { ...e.context, attempts },
    cause: e.cause,
    retryable: e.retryable,
  });
}
