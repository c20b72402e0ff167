/**
 * Opening a blob store from config: the adapter from the registry, wrapped in the standard
 * layers (outermost first): metrics → retry → timeout → adapter. Retries see timeouts as
 * retryable failures; metrics see each call once, retries included.
 */
import { blobStoreDefinition } from "../adapters/blob/registry.js";
import { type BlobOperationEvent, withMetrics } from "../layers/metrics.js";
import { type RetryOptions, withRetry } from "../layers/retry.js";
import { withTimeout } from "../layers/timeout.js";
import type { BlobStore, BlobStoreDeps } from "../ports/blob-store.js";

export interface OpenBlobStoreOptions {
  backend: string;
  /** Raw `storage.options`; validated by the adapter. */
  options: unknown;
  deps?: BlobStoreDeps;
  retry?: RetryOptions | false;
  /** Per-operation timeout; default 30 s; `false` for none. */
  timeoutMs?: number | false;
  onOperation?: (event: BlobOperationEvent) => void;
}

export async function openBlobStore(o: OpenBlobStoreOptions): Promise<BlobStore> {
  const definition = await blobStoreDefinition(o.backend);
  let store = await definition.create(definition.parseOptions(o.options), o.deps);
  if (o.timeoutMs !== false) store = withTimeout(store, { timeoutMs: o.timeoutMs ?? 30_000 });
  if (o.retry !== false) store = withRetry(store, o.retry ?? {});
  if (o.onOperation) store = withMetrics(store, o.onOperation);
  return store;
}
