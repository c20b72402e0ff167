/**
 * Maps a KV backend name to its adapter definition. Definitions are loaded on first use, so the
 * embedded path never loads ioredis (and the redis adapter imports it lazily inside `create`).
 */
import type { KvStoreDefinition } from "../../ports/kv-store.js";
import { createRegistry } from "../registry.js";

const REGISTRY = createRegistry<KvStoreDefinition<unknown>>(
  { what: "kv backend", operation: "kv.registry", path: "kv.backend" },
  {
    memory: () => import("./memory/index.js").then((m) => m.memoryKvStore),
    lmdb: () => import("./lmdb/index.js").then((m) => m.lmdbKvStore),
    redis: () => import("./redis/index.js").then((m) => m.redisKvStore),
  },
);

export const KV_STORE_BACKENDS = REGISTRY.backends;

export const kvStoreDefinition = REGISTRY.definition;
