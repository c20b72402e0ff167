/**
 * Retry layer (BLOB-8): up to `maxRetries` more attempts for errors marked `retryable`, with
 * exponential backoff and full jitter. Calls that cannot be repeated (a put whose body is a
 * consumed stream) and non-retryable kinds fail at once. After the last attempt the error is
 * the backend's own (e.g. `BLOB_BACKEND_UNAVAILABLE`), with `context.attempts` added.
 */
import { KuraError } from "../core/errors.js";
import type { BlobStore } from "../ports/blob-store.js";
import { wrapBlobStore } from "./wrap.js";

export interface RetryOptions {
  /** Further attempts after the first; default 3. */
  maxRetries?: number;
  /** First backoff ceiling; default 100 ms, doubling each attempt. */
  baseDelayMs?: number;
  /** Largest backoff ceiling; default 2000 ms. */
  maxDelayMs?: number;
  /** Injectable for tests. */
  random?: () => number;
  sleep?: (ms: number) => Promise<void>;
  /** Called before each retry (for logs and metrics). */
  onRetry?: (e: { operation: string; attempt: number; delayMs: number; error: KuraError }) => void;
}

const defaultSleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** The delay before retry number `attempt` (1-based): uniform in [0, min(max, base·2^(attempt-1))]. */
export function backoffDelay(attempt: number, base: number, max: number, random: () => number): number {
  return Math.floor(random() * Math.min(max, base * 2 ** (attempt - 1)));
}

export function withRetry(store: BlobStore, options: RetryOptions = {}): BlobStore {
  const maxRetries = options.maxRetries ?? 3;
  const base = options.baseDelayMs ?? 100;
  const max = options.maxDelayMs ?? 2000;
  const random = options.random ?? Math.random;
  const sleep = options.sleep ?? defaultSleep;
  return wrapBlobStore(
    store,
    async (info, call) => {
      for (let attempt = 0; ; attempt++) {
        try {
          return await call(info.signal);
        } catch (e) {
          const retryable = e instanceof KuraError && e.retryable && info.repeatable && !info.signal?.aborted;
          if (!retryable || attempt >= maxRetries) {
            if (e instanceof KuraError && attempt > 0) {
              throw new KuraError(e.code, e.message, {
                kind: e.kind,
                operation: e.operation ?? `blob.${info.operation}`,
                context: { ...e.context, attempts: attempt + 1 },
                cause: e.cause,
                retryable: e.retryable,
              });
            }
            throw e;
          }
          const delayMs = backoffDelay(attempt + 1, base, max, random);
          options.onRetry?.({ operation: info.operation, attempt: attempt + 1, delayMs, error: e });
          await sleep(delayMs);
        }
      }
    },
    (_info, call) => {
      // One attempt on the calling thread; a failure worth retrying sends the caller to
      // `getBuffer`, which retries it with backoff.
      try {
        return call();
      } catch (e) {
        if (e instanceof KuraError && e.retryable && maxRetries > 0) return undefined;
        throw e;
      }
    },
  );
}
