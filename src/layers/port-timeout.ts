/**
 * A client-side time limit on the reads of a remote port (catalog, search or vector index on a
 * server): port in → same port out. Only methods listed as `read` in the port's call list are
 * limited: a read that has not answered within `limitMs` fails with `OPERATION_TIMEOUT`
 * (Unavailable, retryable), and its answer, should it come later, is dropped — a read changes
 * nothing, so giving up on it leaves nothing behind.
 *
 * Writes are not limited here: a write given up on by the client may still apply on the server,
 * so its limit is the server's own (PostgreSQL `statement_timeout` and `lock_timeout` on every
 * pooled connection, `adapters/pg.ts`; Redis commands by the client's `commandTimeout`), where
 * a timed-out statement is known to have changed nothing. The server-side limit of a read also
 * applies; this one is for a server or network that stops answering altogether, so it is set
 * above the server's.
 *
 * Embedded backends (SQLite, LMDB, the in-process indexes) get no timeout layer: their calls run
 * synchronously on this thread or a worker and cannot be interrupted by a timer.
 */
import { KuraError } from "../core/errors.js";
import type { CallKind } from "../ports/calls.js";

export interface PortTimeoutOptions {
  /** `catalog`, `search`, `vector`: names the operation of a failure (`search.search`). */
  plane: string;
  /** The port's call list: only `read` methods are limited. */
  calls: Readonly<Record<string, CallKind>>;
  /** Limit of one read, in ms. */
  limitMs: number;
}

const PASS = new Set(["close", "constructor", "then"]);

/** `port` with each `read` method failing with `OPERATION_TIMEOUT` after `limitMs`. */
export function withPortTimeout<T extends object>(port: T, options: PortTimeoutOptions): T {
  const { plane, calls, limitMs } = options;
  const wrapped = new WeakMap<object, unknown>();
  return new Proxy(port, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property);
      if (typeof value !== "function" || typeof property !== "string" || PASS.has(property)) return value;
      let fn = wrapped.get(value);
      if (!fn) {
        const method = value as (...args: unknown[]) => unknown;
        const limited = calls[property] === "read" && !property.endsWith("Sync");
        fn = limited
          ? function (this: unknown, ...args: unknown[]) {
              const running = method.apply(this === receiver ? target : this, args);
              if (!(running instanceof Promise)) return running;
              return within(running, limitMs, () => timeoutError(`${plane}.${property}`, limitMs));
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

function within<T>(running: Promise<T>, limitMs: number, expired: () => KuraError): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expiry = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(expired()), limitMs);
  });
  // The answer of a read given up on is dropped, and so is its failure.
  running.catch(() => undefined);
  return Promise.race([running, expiry]).finally(() => clearTimeout(timer));
}

function timeoutError(operation: string, limitMs: number): KuraError {
  return new KuraError("OPERATION_TIMEOUT", `${operation} timed out: no answer within ${limitMs} ms`, {
    operation,
    context: { timeoutMs: limitMs, side: "client" },
  });
}
