/**
 * Timeout layer (BLOB-8): each operation gets an AbortSignal that fires after `timeoutMs`
 * (combined with the caller's), and fails with `OPERATION_TIMEOUT` (Unavailable, retryable)
 * even if the backend ignores the signal. For `get` the limit covers obtaining the stream,
 * not reading it to the end.
 */
import { KuraError } from "../core/errors.js";
import type { BlobStore } from "../ports/blob-store.js";
import { wrapBlobStore } from "./wrap.js";

export function withTimeout(store: BlobStore, options: { timeoutMs: number }): BlobStore {
  const { timeoutMs } = options;
  return wrapBlobStore(store, async (info, call) => {
    const controller = new AbortController();
    const signal = info.signal ? AbortSignal.any([info.signal, controller.signal]) : controller.signal;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const error = new KuraError(
          "OPERATION_TIMEOUT",
          `blob.${info.operation} timed out after ${timeoutMs} ms`,
          {
            operation: `blob.${info.operation}`,
            context: { key: info.key, timeoutMs },
          },
        );
        controller.abort(error);
        reject(error);
      }, timeoutMs);
    });
    try {
      return await Promise.race([call(signal), timedOut]);
    } finally {
      clearTimeout(timer);
    }
  });
}
