/**
 * Metrics hook layer: reports every operation's duration and outcome to a callback, which the
 * service wires to Prometheus histograms and error counters.
 */
import { isKuraError } from "../core/errors.js";
import type { BlobStore } from "../ports/blob-store.js";
import { type BlobOperation, wrapBlobStore } from "./wrap.js";

export interface BlobOperationEvent {
  scheme: string;
  operation: BlobOperation;
  durationMs: number;
  ok: boolean;
  /** The KuraError code of a failure (`UNEXPECTED` for anything else). */
  errorCode: string | undefined;
}

export function withMetrics(store: BlobStore, record: (event: BlobOperationEvent) => void): BlobStore {
  const reporter = (operation: BlobOperation) => {
    const started = performance.now();
    return (ok: boolean, errorCode?: string) => {
      try {
        record({
          scheme: store.scheme,
          operation,
          durationMs: performance.now() - started,
          ok,
          errorCode,
        });
      } catch {
        // A failing metrics sink must never fail the operation.
      }
    };
  };
  return wrapBlobStore(
    store,
    async (info, call) => {
      const report = reporter(info.operation);
      try {
        const result = await call(info.signal);
        report(true);
        return result;
      } catch (e) {
        report(false, isKuraError(e) ? e.code : "UNEXPECTED");
        throw e;
      }
    },
    (info, call) => {
      // A read the adapter declines is not an operation: the caller's `getBuffer` is counted.
      const report = reporter(info.operation);
      try {
        const result = call();
        if (result !== undefined) report(true);
        return result;
      } catch (e) {
        report(false, isKuraError(e) ? e.code : "UNEXPECTED");
        throw e;
      }
    },
  );
}
