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
import { setMaxListeners } from "node:events";
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

interface Deadline {
  /** `performance.now()` time at which `fire` runs, unless removed first. */
  at: number;
  fire: () => void;
}

/**
 * One timer for the deadlines of every operation in flight: a `setTimeout` + `clearTimeout`
 * per call (and per chunk, for idle limits) cost more than a small local put. The timer wakes
 * at the earliest deadline known when it was set; a deadline pushed later (progress) needs no
 * new timer, and one that is removed is simply not found. The timer does not keep the process
 * alive by itself; operations in flight hold their own handles.
 */
class Deadlines {
  private readonly entries = new Set<Deadline>();
  private timer: NodeJS.Timeout | undefined;
  private wakeAt = Number.POSITIVE_INFINITY;

  add(d: Deadline): void {
    this.entries.add(d);
    if (d.at < this.wakeAt) this.schedule(d.at);
  }

  delete(d: Deadline): void {
    this.entries.delete(d);
  }

  private schedule(at: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.wakeAt = at;
    this.timer = setTimeout(() => this.sweep(), Math.max(0, at - performance.now()));
    this.timer.unref();
  }

  private sweep(): void {
    this.timer = undefined;
    this.wakeAt = Number.POSITIVE_INFINITY;
    const now = performance.now();
    let next = Number.POSITIVE_INFINITY;
    for (const d of this.entries) {
      if (d.at <= now) {
        this.entries.delete(d);
        d.fire();
      } else if (d.at < next) next = d.at;
    }
    if (next !== Number.POSITIVE_INFINITY) this.schedule(next);
  }
}

const deadlines = new Deadlines();

/**
 * The controller and deadline shared by whole-operation limits that started close together.
 * An AbortController per call (and the signal's collection) cost as much as a small local put;
 * operations that start within {@link SHARE_WINDOW_MS} of each other with the same limit share
 * one, armed for the window's end plus the limit, so each is given at least its limit (and at
 * most the window more). When it fires, every operation still running in the window has
 * outlived its limit, so aborting them together is what each would have done alone.
 */
const SHARE_WINDOW_MS = 20;

interface SharedLimit {
  limitMs: number;
  /** Calls of the window still running. */
  active: number;
  /** When the window stops taking new calls. */
  closesAt: number;
  expired: boolean;
  controller: AbortController;
  expiry: Promise<never>;
  reject: (e: unknown) => void;
  deadline: Deadline;
}

const EXPIRED = Symbol("expired");
/** Open windows by limit (ms). */
const openWindows = new Map<number, SharedLimit>();

function joinWindow(limitMs: number): SharedLimit {
  const now = performance.now();
  const open = openWindows.get(limitMs);
  if (open !== undefined && now < open.closesAt && !open.expired) {
    open.active++;
    return open;
  }
  let reject: (e: unknown) => void = () => undefined;
  const expiry = new Promise<never>((_, r) => {
    reject = r;
  });
  expiry.catch(() => undefined);
  const closesAt = now + SHARE_WINDOW_MS;
  const shared: SharedLimit = {
    limitMs,
    active: 1,
    closesAt,
    expired: false,
    controller: new AbortController(),
    expiry,
    reject,
    deadline: {
      at: closesAt + limitMs,
      fire: () => {
        shared.expired = true;
        if (openWindows.get(limitMs) === shared) openWindows.delete(limitMs);
        if (shared.active === 0) return;
        shared.controller.abort(
          new KuraError("OPERATION_TIMEOUT", `blob operation did not finish within ${limitMs} ms`, {
            operation: "blob",
            context: { timeoutMs: limitMs, idle: false },
          }),
        );
        shared.reject(EXPIRED);
      },
    },
  };
  // Every call of the window may listen to its signal (an SDK adds one listener per request).
  setMaxListeners(0, shared.controller.signal);
  deadlines.add(shared.deadline);
  openWindows.set(limitMs, shared);
  return shared;
}

function leaveWindow(shared: SharedLimit): void {
  shared.active--;
  // A window nobody uses any more, and that takes no new calls, needs no timer.
  if (shared.active === 0 && (shared.expired || performance.now() >= shared.closesAt)) {
    deadlines.delete(shared.deadline);
    if (openWindows.get(shared.limitMs) === shared) openWindows.delete(shared.limitMs);
  }
}

/**
 * Runs `run` under a whole-operation limit shared with the calls that started with it. Adapters
 * get the window's signal (or, when the caller passed one, a signal that follows both).
 */
async function timedWhole<T>(t: Timed, run: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const shared = joinWindow(t.limitMs);
  const own = shared.controller.signal;
  const signal = t.callerSignal ? AbortSignal.any([t.callerSignal, own]) : own;
  const running = run(signal);
  try {
    return await Promise.race([running, shared.expiry]);
  } catch (e) {
    if (e !== EXPIRED) throw e;
    const expired = timeoutError(t.operation, t.key, t.limitMs, false);
    const outcome = await settleWithin(running, t.limitMs);
    if (outcome.ok) {
      if (!t.discardLate) return outcome.value;
      (t.discardLate as (value: T) => void)(outcome.value);
    }
    throw expired;
  } finally {
    leaveWindow(shared);
    running.catch(() => undefined);
  }
}

/** Let the adapter finish reacting to the signal (cleanup), within a bound. */
async function settleWithin<T>(
  running: Promise<T>,
  limitMs: number,
): Promise<{ ok: true; value: T } | { ok: false }> {
  let grace: NodeJS.Timeout | undefined;
  const outcome = await Promise.race([
    running.then(
      (value) => ({ ok: true as const, value }),
      () => ({ ok: false as const }),
    ),
    new Promise<{ ok: false }>((resolve) => {
      grace = setTimeout(() => resolve({ ok: false }), Math.min(limitMs, MAX_CLEANUP_GRACE_MS));
    }),
  ]);
  clearTimeout(grace);
  return outcome;
}

/** Runs `run` under its own idle limit; `touch` (progress) restarts it. */
async function timed<T>(t: Timed, run: (signal: AbortSignal, touch: () => void) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  const signal = t.callerSignal ? AbortSignal.any([t.callerSignal, controller.signal]) : controller.signal;
  let expired: KuraError | undefined;
  let rejectExpired: (e: KuraError) => void = () => undefined;
  const expiry = new Promise<never>((_, reject) => {
    rejectExpired = reject;
  });
  const deadline: Deadline = {
    at: performance.now() + t.limitMs,
    fire: () => {
      expired = timeoutError(t.operation, t.key, t.limitMs, t.idle);
      t.onTimeout?.(expired);
      controller.abort(expired);
      rejectExpired(expired);
    },
  };
  deadlines.add(deadline);
  const touch = () => {
    deadline.at = performance.now() + t.limitMs;
  };
  const running = run(signal, t.idle ? touch : () => undefined);
  try {
    return await Promise.race([running, expiry]);
  } catch (e) {
    if (!expired) throw e;
    const outcome = await settleWithin(running, t.limitMs);
    if (outcome.ok) {
      // The backend finished after all: the truth is that the operation succeeded.
      if (!t.discardLate) return outcome.value;
      (t.discardLate as (value: T) => void)(outcome.value);
    }
    throw expired;
  } finally {
    deadlines.delete(deadline);
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
    timedWhole(
      {
        operation: info.operation,
        key: info.key,
        callerSignal: info.signal,
        limitMs: operationMs,
        idle: false,
      },
      call,
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
