/**
 * Timeout layer (BLOB-8). A transfer fails only when it stops moving, never for being long:
 *
 * - `put` of a stream: fails when no byte was taken from the body for `idleMs` (the adapter
 *   reads the body as the backend accepts it, so a stalled client and a stalled backend both
 *   stop the bytes). A 200 MB upload at 5 MB/s takes 40 s and succeeds.
 * - `get`: obtaining the stream is limited by `idleMs` (no byte has moved yet); once the stream
 *   is returned no timer of this layer touches it: the caller reads at its own pace.
 * - everything else (`head`, `exists`, `delete`, `list`, `copy`, `presign`, `getBuffer`, and a
 *   `put` of bytes in memory, which goes in one request that shows no progress until it is
 *   acknowledged) is limited as a whole by `operationMs`.
 *
 * On expiry the operation's AbortSignal fires and a streamed body is ended with the timeout
 * error, and the call fails with `OPERATION_TIMEOUT` (Unavailable, retryable) even if the
 * backend ignores the signal. The layer first gives the adapter a short grace to clean up
 * (delete its temp file, abort its multipart upload), so "failed" means "nothing left behind"
 * for adapters that honour the signal.
 */
import { finished, type Readable, Transform } from "node:stream";
import { toReadable } from "../core/checksum.js";
import { KuraError } from "../core/errors.js";
import type { BlobBody, BlobStore, GetResult, PutOptions } from "../ports/blob-store.js";
import { type BlobOperation, wrapBlobStore } from "./wrap.js";

export interface TimeoutOptions {
  /** A streamed transfer fails after this long without a byte moving; default 30 s. */
  idleMs?: number;
  /** Limit of a whole operation that has no streamed body; default 30 s. */
  operationMs?: number;
}

export const DEFAULT_IDLE_MS = 30_000;
export const DEFAULT_OPERATION_MS = 30_000;
/** Longest wait for an adapter to clean up after its signal fired. */
const MAX_CLEANUP_GRACE_MS = 5_000;

function timeoutError(operation: BlobOperation, key: string | undefined, ms: number, idle: boolean) {
  const what = idle ? `moved no bytes for ${ms} ms` : `did not finish within ${ms} ms`;
  return new KuraError("OPERATION_TIMEOUT", `blob.${operation} timed out: it ${what}`, {
    operation: `blob.${operation}`,
    context: { key, timeoutMs: ms, idle },
  });
}

interface Timed {
  operation: BlobOperation;
  key: string | undefined;
  callerSignal: AbortSignal | undefined;
  limitMs: number;
  /** Whether `touch` re-arms the timer (an idle limit) or the limit is for the whole call. */
  idle: boolean;
  /** Called when the limit expires, before the signal fires. */
  onTimeout?: (error: KuraError) => void;
  /**
   * A result that arrives after the limit expired is returned (the operation did succeed)
   * unless it is tied to the aborted signal: then it is released here and the call fails.
   */
  discardLate?: (value: never) => void;
}

/** Runs `run` under a limit; `touch` (progress) restarts an idle limit. */
async function timed<T>(t: Timed, run: (signal: AbortSignal, touch: () => void) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  const signal = t.callerSignal ? AbortSignal.any([t.callerSignal, controller.signal]) : controller.signal;
  let timer: NodeJS.Timeout | undefined;
  let expired: KuraError | undefined;
  let rejectExpired: (e: KuraError) => void = () => undefined;
  const expiry = new Promise<never>((_, reject) => {
    rejectExpired = reject;
  });
  const fire = () => {
    expired = timeoutError(t.operation, t.key, t.limitMs, t.idle);
    t.onTimeout?.(expired);
    controller.abort(expired);
    rejectExpired(expired);
  };
  const arm = () => {
    if (expired) return;
    clearTimeout(timer);
    timer = setTimeout(fire, t.limitMs);
  };
  arm();
  const running = run(signal, t.idle ? arm : () => undefined);
  try {
    return await Promise.race([running, expiry]);
  } catch (e) {
    if (!expired) throw e;
    // Let the adapter finish reacting to the signal (cleanup), within a bound.
    let grace: NodeJS.Timeout | undefined;
    const outcome = await Promise.race([
      running.then(
        (value) => ({ ok: true as const, value }),
        () => ({ ok: false as const }),
      ),
      new Promise<{ ok: false }>((resolve) => {
        grace = setTimeout(() => resolve({ ok: false }), Math.min(t.limitMs, MAX_CLEANUP_GRACE_MS));
      }),
    ]);
    clearTimeout(grace);
    if (outcome.ok) {
      // The backend finished after all: the truth is that the operation succeeded.
      if (!t.discardLate) return outcome.value;
      (t.discardLate as (value: T) => void)(outcome.value);
    }
    throw expired;
  } finally {
    clearTimeout(timer);
    running.catch(() => undefined);
  }
}

/**
 * `body` as a stream that calls `touch` for each chunk the adapter takes. A body that fails or
 * closes before its end fails the stream; the caller's own stream is never destroyed here (it
 * may be an HTTP request whose socket must still carry the error response).
 */
function trackedBody(body: BlobBody, touch: () => void): { stream: Readable; stop: (e?: Error) => void } {
  const source = toReadable(body);
  const stream = new Transform({
    transform(chunk, _encoding, callback) {
      touch();
      callback(null, chunk);
    },
  });
  // The adapter may stop reading (it failed, or gave up) before the caller's body fails or
  // closes (a client that went away): an error no one listens for any more must not become an
  // uncaught exception. Adapters still reading have their own listeners and see it.
  stream.on("error", () => {});
  const cleanup = finished(source, (err) => {
    if (err) stream.destroy(err);
  });
  stream.once("close", () => {
    cleanup();
    source.unpipe(stream);
  });
  source.pipe(stream);
  return {
    stream,
    /** Detach from the caller's stream (which is left as it is) and end ours, with `e` if given. */
    stop: (e) => {
      source.unpipe(stream);
      if (!stream.destroyed) stream.destroy(e);
    },
  };
}

export function withTimeout(store: BlobStore, options: TimeoutOptions = {}): BlobStore {
  const idleMs = options.idleMs ?? DEFAULT_IDLE_MS;
  const operationMs = options.operationMs ?? DEFAULT_OPERATION_MS;
  const wrapped = wrapBlobStore(store, (info, call) =>
    timed(
      {
        operation: info.operation,
        key: info.key,
        callerSignal: info.signal,
        limitMs: operationMs,
        idle: false,
      },
      (signal) => call(signal),
    ),
  );
  const withSignal = <O extends { signal?: AbortSignal }>(o: O | undefined, signal: AbortSignal): O =>
    ({ ...(o ?? {}), signal }) as O;
  return {
    ...wrapped,
    put: (key, body, putOptions?: PutOptions) => {
      if (body instanceof Uint8Array) return wrapped.put(key, body, putOptions);
      let stop: ((e: Error) => void) | undefined;
      return timed(
        {
          operation: "put",
          key,
          callerSignal: putOptions?.signal,
          limitMs: idleMs,
          idle: true,
          onTimeout: (e) => stop?.(e),
        },
        (signal, touch) => {
          const tracked = trackedBody(body, touch);
          stop = tracked.stop;
          // However the put ends (an adapter may fail before reading the body at all), the
          // caller's stream is no longer piped into ours.
          return store.put(key, tracked.stream, withSignal(putOptions, signal)).finally(() => tracked.stop());
        },
      );
    },
    get: (key, getOptions) =>
      timed(
        {
          operation: "get",
          key,
          callerSignal: getOptions?.signal,
          limitMs: idleMs,
          idle: true,
          // Its stream was opened under the signal that just fired.
          discardLate: (late: GetResult) => late.body.destroy(),
        },
        (signal) => store.get(key, withSignal(getOptions, signal)),
      ),
  };
}
