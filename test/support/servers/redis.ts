/**
 * The Redis of the kv suites: the local server on 127.0.0.1:6379 (database 0), each test under
 * its own key prefix, dropped afterwards.
 */
import { Redis } from "ioredis";
import { globEscape } from "../../../src/adapters/kv/redis/index.js";

export const REDIS_URL = "redis://127.0.0.1:6379/0";

/** Why Redis cannot be reached, or undefined when it answers. */
export async function redisProblem(): Promise<string | undefined> {
  const probe = new Redis(REDIS_URL, {
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
export async function dropPrefix(prefix: string): Promise<number> {
  const admin = new Redis(REDIS_URL);
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
