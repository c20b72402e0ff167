import { randomUUID } from "node:crypto";
import { redisKvStore } from "../../src/adapters/kv/redis/index.js";
import type { KvStore } from "../../src/ports/kv-store.js";
import { backendAvailable } from "../support/backends.js";
import { dropPrefix, redisProblem, REDIS_URL as URL } from "../support/servers/redis.js";
import { kvStoreConformance } from "./kv-store.suite.js";

const available = backendAvailable("kv-redis", await redisProblem());

/** A short tombstone retention, so the suite can wait it out on Redis's real clock. */
const RETENTION_MS = 2000;

kvStoreConformance(
  "redis",
  async () => {
    const prefix = `kura-test-${randomUUID().slice(0, 8)}:`;
    const open = () =>
      redisKvStore.create(
        redisKvStore.parseOptions({
          url: URL,
          key_prefix: prefix,
          max_value_bytes: 256 * 1024,
          tombstone_retention_ms: RETENTION_MS,
        }),
      );
    let store: KvStore = await open();
    return {
      store,
      ttlMs: 1000,
      advance: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
      reopen: async () => {
        await store.close();
        store = await open();
        return store;
      },
      cleanup: async () => {
        await store.close();
        await dropPrefix(prefix);
      },
    };
  },
  { skip: !available },
);
