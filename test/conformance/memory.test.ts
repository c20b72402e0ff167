import { memoryBlobStore } from "../../src/adapters/blob/memory/index.js";
import { blobStoreConformance } from "./blob-store.suite.js";

// One store shared by every create() call, so "the same objects" holds for all of them.
blobStoreConformance("memory", async () => {
  const shared = await memoryBlobStore.create(memoryBlobStore.parseOptions({}));
  return {
    create: async (deps) => (deps ? memoryBlobStore.create(memoryBlobStore.parseOptions({}), deps) : shared),
    cleanup: async () => shared.close(),
  };
});
