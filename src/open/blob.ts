/**
 * Opening a blob store from config: the adapter from the registry, wrapped in the standard
 * layers (outermost first): metrics → retry → timeout → adapter. Retries see timeouts as
 * retryable failures; metrics see each call once, retries included. Small synchronous reads
 * (`getBufferSync`) pass every layer but metrics as they are.
 */
import { defaultSecretFile, readOrCreateSecretFile } from "../adapters/blob/fs/secret.js";
import { blobStoreDefinition } from "../adapters/blob/registry.js";
import type { KuraConfig } from "../config/index.js";
import { toKuraError } from "../core/errors.js";
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

/** The stores of a configuration, as `Kura.open` wires them. */
export interface Storage {
  /** Where bodies live (wrapped in the layers, and in `wrap` when given). */
  store: BlobStore;
  /** Where session files live: the same store, or with local files one at `sessions.dir`. */
  sessionStore: BlobStore;
  /** The secret Kura signs presigned URLs with (stores of local files), else undefined. */
  presignSecret: string | undefined;
  /** The options the stores were opened with (a worker thread opens its own from them). */
  storageOptions: Readonly<Record<string, unknown>>;
  /** Reads cross a network: the body cache gets a warm tier on local disk. */
  remote: boolean;
}

/**
 * Opens the primary store and, when the store keeps local files, the session-files store in
 * `sessions.dir` — both signing presigned URLs with one secret (configured, or generated into a
 * file once) that `kura serve` verifies. Each store opened is handed to `opened` at once, so a
 * failure later in opening closes it.
 */
export async function openStorage(
  config: KuraConfig,
  o: {
    deps: BlobStoreDeps;
    wrap?: (store: BlobStore) => BlobStore;
    opened: (store: BlobStore) => void;
    /** The metrics layer's events (`layers/metrics.ts`). */
    onOperation?: (event: BlobOperationEvent) => void;
  },
): Promise<Storage> {
  const { backend, options, timeouts } = config.storage;
  const definition = await blobStoreDefinition(backend);
  const local = definition.capabilities.localFiles;
  const presignSecret = local ? await presignSecretOf(options) : undefined;
  const storageOptions = local ? { ...options, presign_secret: presignSecret } : options;
  const open = async (opts: Readonly<Record<string, unknown>>) => {
    const store = await openBlobStore({
      backend,
      options: opts,
      deps: o.deps,
      timeouts: { idleMs: timeouts.idle_ms, operationMs: timeouts.operation_ms },
      ...(o.onOperation ? { onOperation: o.onOperation } : {}),
    });
    const wrapped = o.wrap ? o.wrap(store) : store;
    o.opened(wrapped);
    return wrapped;
  };
  const store = await open(storageOptions);
  const sessionStore = local ? await open({ ...storageOptions, base_path: config.sessions.dir }) : store;
  return { store, sessionStore, presignSecret, storageOptions, remote: definition.capabilities.remote };
}

async function presignSecretOf(options: Readonly<Record<string, unknown>>): Promise<string> {
  if (typeof options.presign_secret === "string") return options.presign_secret;
  const file =
    typeof options.presign_secret_file === "string"
      ? options.presign_secret_file
      : defaultSecretFile(String(options.base_path));
  return readOrCreateSecretFile(file).catch((e: unknown) => {
    throw toKuraError(e, "kura.open");
  });
}
