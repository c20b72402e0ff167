/**
 * Maps a storage backend name to its adapter definition. Definitions are loaded on first use,
 * so the embedded path never loads a cloud SDK (the cloud adapters also import their SDKs
 * lazily inside `create`).
 */

import type { BlobStoreDefinition } from "../../ports/blob-store.js";
import { createRegistry } from "../registry.js";

type Loader = () => Promise<BlobStoreDefinition<unknown>>;

const LOADERS: Record<string, Loader> = {
  memory: async () => (await import("./memory/index.js")).memoryBlobStore as BlobStoreDefinition<unknown>,
  fs: async () => (await import("./fs/index.js")).fsBlobStore as BlobStoreDefinition<unknown>,
  s3: async () => (await import("./s3/index.js")).s3BlobStore as BlobStoreDefinition<unknown>,
  azure: async () => (await import("./azure/index.js")).azureBlobStore as BlobStoreDefinition<unknown>,
  gcs: async () => (await import("./gcs/index.js")).gcsBlobStore as BlobStoreDefinition<unknown>,
};

const REGISTRY = createRegistry<BlobStoreDefinition<unknown>>(
  { what: "storage backend", operation: "blob.registry", path: "storage.backend" },
  LOADERS,
);

export const BLOB_BACKENDS = REGISTRY.backends;

export function blobStoreDefinition(scheme: string): Promise<BlobStoreDefinition<unknown>> {
  return REGISTRY.definition(scheme);
}
