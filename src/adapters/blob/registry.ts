/**
 * Maps a storage backend name to its adapter definition. Definitions are loaded on first use,
 * so the embedded path never loads a cloud SDK (the cloud adapters also import their SDKs
 * lazily inside `create`).
 */
import type { BlobStoreDefinition } from "../../ports/blob-store.js";
import { createRegistry } from "../registry.js";

const REGISTRY = createRegistry<BlobStoreDefinition<unknown>>(
  { what: "storage backend", operation: "blob.registry", path: "storage.backend" },
  {
    memory: () => import("./memory/index.js").then((m) => m.memoryBlobStore),
    fs: () => import("./fs/index.js").then((m) => m.fsBlobStore),
    s3: () => import("./s3/index.js").then((m) => m.s3BlobStore),
    azure: () => import("./azure/index.js").then((m) => m.azureBlobStore),
    gcs: () => import("./gcs/index.js").then((m) => m.gcsBlobStore),
  },
);

export const BLOB_BACKENDS = REGISTRY.backends;

export const blobStoreDefinition = REGISTRY.definition;
