/**
 * Maps a storage backend name to its adapter definition. Definitions are loaded on first use,
 * so the embedded path never loads a cloud SDK (the cloud adapters also import their SDKs
 * lazily inside `create`).
 */
import { KuraError } from "../../core/errors.js";
import type { BlobStoreDefinition } from "../../ports/blob-store.js";

type Loader = () => Promise<BlobStoreDefinition<unknown>>;

const LOADERS: Record<string, Loader> = {
  memory: async () => (await import("./memory/index.js")).memoryBlobStore as BlobStoreDefinition<unknown>,
  fs: async () => (await import("./fs/index.js")).fsBlobStore as BlobStoreDefinition<unknown>,
  s3: async () => (await import("./s3/index.js")).s3BlobStore as BlobStoreDefinition<unknown>,
  azure: async () => (await import("./azure/index.js")).azureBlobStore as BlobStoreDefinition<unknown>,
  gcs: async () => (await import("./gcs/index.js")).gcsBlobStore as BlobStoreDefinition<unknown>,
};

export const BLOB_BACKENDS = Object.freeze(Object.keys(LOADERS));

export async function blobStoreDefinition(scheme: string): Promise<BlobStoreDefinition<unknown>> {
  const load = LOADERS[scheme];
  if (!load) {
    throw new KuraError("CONFIG_INVALID", `unknown storage backend ${JSON.stringify(scheme)}`, {
      operation: "blob.registry",
      context: {
        problems: [{ path: "storage.backend", message: `must be one of ${BLOB_BACKENDS.join(", ")}` }],
      },
    });
  }
  return load();
}
