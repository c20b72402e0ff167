import { memoryKvStore } from "../../src/adapters/kv/memory/index.js";
import { kvStoreConformance } from "./kv-store.suite.js";

kvStoreConformance("memory", async () => {
  let now = Date.now();
  const store = await memoryKvStore.create(memoryKvStore.parseOptions({ max_value_bytes: 256 * 1024 }), {
    now: () => now,
  });
  return {
    store,
    ttlMs: 1000,
    advance: async (ms) => {
      now += ms;
    },
    cleanup: () => store.close(),
  };
});
