/**
 * A fault-injection layer for any port (catalog, KV store, blob store, …): port in → same port
 * out. While a {@link PortFaults} is armed, every method call on the wrapped port fails the way
 * the armed fault says — a thrown `KuraError` of any code, a plain `Error`, a `TypeError`, a
 * thrown string or any other value — either synchronously (the method throws before returning)
 * or as a rejected promise — or, for methods whose result carries a `body` stream (a blob
 * `get`), as a stream that fails after its first chunk(s). Tests use it to prove that no failure of a backend, however badly
 * shaped, ends the process or escapes the error mapping.
 */
import { Readable, Transform } from "node:stream";

export interface PortFault {
  /** Makes the value thrown (a fresh one per call: errors carry stacks). */
  make: () => unknown;
  /**
   * `reject`: the method returns a rejected promise; `throw`: it throws synchronously;
   * `midstream`: the call succeeds, but a `body` stream in its result errors with the value
   * after its first chunk (results without one are returned as they are, uncounted).
   */
  mode: "reject" | "throw" | "midstream";
  /** `midstream`: chunks passed before the failure; default 1. */
  afterChunks?: number;
  /** Only these method names fail; all when omitted. */
  methods?: readonly string[];
}

export class PortFaults {
  private fault: PortFault | undefined;
  /** Calls failed since the last {@link PortFaults.resetHits}. */
  hits = 0;

  arm(fault: PortFault): this {
    this.fault = fault;
    return this;
  }

  disarm(): this {
    this.fault = undefined;
    return this;
  }

  resetHits(): number {
    const hits = this.hits;
    this.hits = 0;
    return hits;
  }

  /** The fault for a call of `method`, counted, if one is armed for it. */
  take(method: string): PortFault | undefined {
    const fault = this.fault;
    if (!fault || (fault.methods && !fault.methods.includes(method))) return undefined;
    this.hits++;
    return fault;
  }
}

/** Methods that never fail: closing must work whatever the test armed. */
const NEVER_FAIL = new Set(["close", "constructor"]);

/** `port` with every method routed through `faults`; other properties pass through. */
export function withPortFaults<T extends object>(port: T, faults: PortFaults): T {
  const wrapped = new Map<PropertyKey, unknown>();
  return new Proxy(port, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver);
      if (typeof value !== "function" || typeof property !== "string" || NEVER_FAIL.has(property))
        return value;
      let fn = wrapped.get(property);
      if (!fn) {
        const method = value as (...args: unknown[]) => unknown;
        fn = function (this: unknown, ...args: unknown[]) {
          const fault = faults.take(property);
          if (!fault) return method.apply(this === receiver ? target : this, args);
          if (fault.mode === "midstream") {
            faults.hits--; // counted when a stream is actually broken
            // A synchronous result has no stream to break.
            if (property.endsWith("Sync")) return method.apply(this === receiver ? target : this, args);
            return Promise.resolve(method.apply(this === receiver ? target : this, args)).then((result) =>
              breakBody(result, fault, faults),
            );
          }
          // A synchronous method (`getBufferSync`) has no promise to reject: it throws.
          if (fault.mode === "throw" || property.endsWith("Sync")) throw fault.make();
          return Promise.reject(fault.make());
        };
        wrapped.set(property, fn);
      }
      return fn;
    },
  });
}

/** `result` with its `body` stream replaced by one that errors after `afterChunks` chunks. */
function breakBody(result: unknown, fault: PortFault, faults: PortFaults): unknown {
  const body = (result as { body?: unknown } | null)?.body;
  if (!(body instanceof Readable)) return result;
  faults.hits++;
  let chunks = 0;
  const broken = new Transform({
    transform(chunk, _encoding, done) {
      if (chunks++ < (fault.afterChunks ?? 1)) return done(null, chunk);
      body.destroy();
      done(fault.make() as Error);
    },
    flush(done) {
      // A body of one chunk: fail at its end instead.
      done(fault.make() as Error);
    },
  });
  body.on("error", (e) => broken.destroy(e));
  return { ...(result as object), body: body.pipe(broken) };
}
