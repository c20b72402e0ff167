/**
 * Maps a KV backend name to its adapter definition. Definitions are loaded on first use, so the
 * embedded path never loads ioredis (and the redis adapter imports it lazily inside `create`).
 */
import { KuraError } from "../../core/errors.js";
import type { KvStoreDefinition } from "../../ports/kv-store.js";

type Loader = () => Promise<KvStoreDefinition<unknown>>;

const LOADERS: Record<string, Loader> = {
  memory: async () => (await import("./memory/index.js")).memoryKvStore as KvStoreDefinition<unknown>,
  lmdb: async () => (await import("./lmdb/index.js")).lmdbKvStore as KvStoreDefinition<unknown>,
  redis: async () => (await import("./redis/index.js")).redisKvStore as KvStoreDefinition<unknown>,
};

export const KV_STORE_BACKENDS = Object.freeze(Object.keys(LOADERS));

export async function kvStoreDefinition(scheme: string): Promise<KvStoreDefinition<unknown>> {
  const load = LOADERS[scheme];
  if (!load) {
    throw new KuraError("CONFIG_INVALID", `unknown kv backend ${JSON.stringify(scheme)}`, {
      operation: "kv.registry",
      context: {
        problems: [{ path: "kv.backend", message: `must be one of ${KV_STORE_BACKENDS.join(", ")}` }],
      },
    });
  }
  return load();
}
