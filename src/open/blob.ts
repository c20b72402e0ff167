/**
 * Opening a blob store from config: the adapter from the registry, wrapped in the standard
 * layers (outermost first): metrics → retry → timeout → adapter. Retries see timeouts as
 * retryable failures; metrics see each call once, retries included. Small synchronous reads
 * (`getBufferSync`) pass every layer but metrics as they are.
 */
import { blobStoreDefinition } from "../adapters/blob/registry.js";
import { type BlobOperationEvent, withMetrics } from "../layers/metrics.js";
import { type RetryOptions, withRetry } from "../layers/retry.js";
import { type TimeoutOptions, withTimeout } from "../layers/timeout.js";
import type { BlobStore, BlobStoreDeps } from "../ports/blob-store.js";

export interface OpenBlobStoreOptions {
  backend: string;
  /** Raw `storage.options`; validated by the adapter. */
  options: unknown;
  deps?: BlobStoreDeps;
  retry?: RetryOptions | false;
  /**
   * Idle limit of streamed transfers and limit of body-less operations (`storage.timeouts`);
   * default 30 s each; `false` for none.
   */
  timeouts?: TimeoutOptions | false;
  onOperation?: (event: BlobOperationEvent) => void;
}

export async function openBlobStore(o: OpenBlobStoreOptions): Promise<BlobStore> {
  const definition = await blobStoreDefinition(o.backend);
  let store = await definition.create(definition.parseOptions(o.options), o.deps);
  if (o.timeouts !== false) {
    const adapter = store;
    store = withTimeout(adapter, o.timeouts ?? {});
    // A synchronous read cannot be interrupted by a timer: it passes the timeout layer as it is.
    if (adapter.getBufferSync) store.getBufferSync = adapter.getBufferSync.bind(adapter);
  }
  if (o.retry !== false) store = withRetry(store, o.retry ?? {});
  if (o.onOperation) store = withMetrics(store, o.onOperation);
  return store;
}
