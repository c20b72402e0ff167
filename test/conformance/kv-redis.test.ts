import { randomUUID } from "node:crypto";
import { Redis } from "ioredis";
import { globEscape, redisKvStore } from "../../src/adapters/kv/redis/index.js";
import { backendAvailable } from "../support/backends.js";
import { kvStoreConformance } from "./kv-store.suite.js";

const URL = "redis://127.0.0.1:6379/0";

async function problem(): Promise<string | undefined> {
  const probe = new Redis(URL, {
    lazyConnect: true,
    connectTimeout: 1000,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  probe.on("error", () => undefined);
  try {
    await probe.connect();
    await probe.ping();
    return undefined;
  } catch (e) {
    return `no Redis at 127.0.0.1:6379: ${e instanceof Error ? e.message : String(e)}`;
  } finally {
    probe.disconnect();
  }
}

/** Delete every key under `prefix` (SCAN + DEL, never KEYS). */
async function dropPrefix(prefix: string): Promise<number> {
  const admin = new Redis(URL);
  let cursor = "0";
  let deleted = 0;
  do {
    const [next, keys] = await admin.scan(cursor, "MATCH", `${globEscape(prefix)}*`, "COUNT", 1000);
    cursor = next;
    if (keys.length > 0) deleted += await admin.del(...keys);
  } while (cursor !== "0");
  admin.disconnect();
  return deleted;
}

const available = backendAvailable("kv-redis", await problem());

kvStoreConformance(
  "redis",
  async () => {
    const prefix = `kura-test-${randomUUID().slice(0, 8)}:`;
    const store = await redisKvStore.create(
      redisKvStore.parseOptions({ url: URL, key_prefix: prefix, max_value_bytes: 256 * 1024 }),
    );
    return {
      store,
      ttlMs: 1000,
      advance: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
      cleanup: async () => {
        await store.close();
        await dropPrefix(prefix);
      },
    };
  },
  { skip: !available },
);
