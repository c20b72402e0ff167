/**
 * A metrics layer for any port (catalog, KV store, search or vector index, …): port in → same
 * port out. Each asynchronous method call is timed and reported to the {@link OperationSink}
 * with its outcome; while nobody listens, calls pass through untimed. Synchronous methods and
 * `close` pass as they are. The blob plane has its own layer with the same events
 * (`metrics.ts`, over the blob operation list).
 */
import { isKuraError } from "../core/errors.js";

export interface OperationEvent {
  /** `catalog`, `kv`, `search`, `vector`, `blob`. */
  plane: string;
  /** The adapter's scheme: `sqlite`, `postgres`, `lmdb`, `redis`, `fs`, `s3`, … */
  backend: string;
  /** The port method: `commit`, `get`, `search`, … */
  operation: string;
  durationMs: number;
  ok: boolean;
  /** The KuraError code of a failure (`UNEXPECTED` for anything else). */
  errorCode: string | undefined;
}

/** Where a Kura's layers report their operations; the HTTP server subscribes its histogram. */
export class OperationSink {
  private readonly listeners = new Set<(event: OperationEvent) => void>();

  get active(): boolean {
    return this.listeners.size > 0;
  }

  /** Returns the function that unsubscribes. */
  subscribe(listener: (event: OperationEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  emit(event: OperationEvent): void {
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch {
        // A failing metrics sink never fails the operation.
      }
    }
  }
}

const PASS = new Set(["close", "constructor", "then"]);

/** `port` with every asynchronous method reported to `sink` as an operation of `plane`. */
export function withPortMetrics<T extends object>(
  port: T,
  plane: string,
  backend: string,
  sink: OperationSink,
): T {
  // Keyed by the method itself: a method replaced on the port later is wrapped afresh.
  const wrapped = new WeakMap<object, unknown>();
  return new Proxy(port, {
    get(target, property, receiver) {
      // Read with the target as receiver: a port that is itself a proxy (a test's fault layer)
      // then sees calls as made on it, not on this layer.
      const value = Reflect.get(target, property);
      if (typeof value !== "function" || typeof property !== "string" || PASS.has(property)) return value;
      let fn = wrapped.get(value);
      if (!fn) {
        const method = value as (...args: unknown[]) => unknown;
        fn = function (this: unknown, ...args: unknown[]) {
          const self = this === receiver ? target : this;
          if (!sink.active || property.endsWith("Sync")) return method.apply(self, args);
          const started = performance.now();
          const report = (ok: boolean, error?: unknown) =>
            sink.emit({
              plane,
              backend,
              operation: property,
              durationMs: performance.now() - started,
              ok,
              errorCode: ok ? undefined : isKuraError(error) ? error.code : "UNEXPECTED",
            });
          let result: unknown;
          try {
            result = method.apply(self, args);
          } catch (e) {
            report(false, e);
            throw e;
          }
          if (!(result instanceof Promise)) return result;
          return result.then(
            (v) => {
              report(true);
              return v;
            },
            (e: unknown) => {
              report(false, e);
              throw e;
            },
          );
        };
        wrapped.set(value, fn);
      }
      return fn;
    },
  });
}
