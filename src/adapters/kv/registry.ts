/**
 * Maps a KV backend name to its adapter definition. Definitions are loaded on first use, so the
 * embedded path never loads ioredis (and the redis adapter imports it lazily inside `create`).
 */

import type { KvStoreDefinition } from "../../ports/kv-store.js";
import { createRegistry } from "../registry.js";

type Loader = () => Promise<KvStoreDefinition<unknown>>;

const LOADERS: Record<string, Loader> = {
  memory: async () => (await import("./memory/index.js")).memoryKvStore as KvStoreDefinition<unknown>,
  lmdb: async () => (await import("./lmdb/index.js")).lmdbKvStore as KvStoreDefinition<unknown>,
  redis: async () => (await import("./redis/index.js")).redisKvStore as KvStoreDefinition<unknown>,
};

const REGISTRY = createRegistry<KvStoreDefinition<unknown>>(
  { what: "kv backend", operation: "kv.registry", path: "kv.backend" },
  LOADERS,
);

export const KV_STORE_BACKENDS = REGISTRY.backends;

export function kvStoreDefinition(scheme: string): Promise<KvStoreDefinition<unknown>> {
  return REGISTRY.definition(scheme);
}
