/**
 * Opening the KV store of a configuration (KV-1): the adapter of `kv.backend`, given the rest of
 * the `kv` section and the tombstone retention as its options (each adapter validates its own).
 * A store that declares `remote` gets the retry layer on its reads (`KV_CALLS`: no write is
 * repeated); its time limit is the adapter's own per command (`kv.command_timeout_ms`), so it
 * gets no client-side timeout layer. An embedded store (LMDB, memory) gets neither.
 */
import { kvStoreDefinition } from "../adapters/kv/registry.js";
import type { KuraConfig } from "../config/index.js";
import { withRemoteLayers } from "../layers/port-layers.js";
import type { RetryOptions } from "../layers/retry.js";
import { KV_CALLS, type KvStore, type KvStoreDeps } from "../ports/kv-store.js";

export async function openKvStore(
  config: KuraConfig,
  deps: KvStoreDeps,
  /** The retry layer's settings (tests); `false` for none. */
  layers: { retry?: RetryOptions | false } = {},
): Promise<KvStore> {
  const { backend, ...section } = config.kv as KuraConfig["kv"] & Record<string, unknown>;
  const definition = await kvStoreDefinition(backend);
  const options = { ...section, tombstone_retention_ms: config.retention.kv_tombstone_days * 86_400_000 };
  const store = await definition.create(definition.parseOptions(options), deps);
  if (!definition.capabilities.remote) return store;
  return withRemoteLayers(store, {
    plane: "kv",
    calls: KV_CALLS,
    ...(layers.retry === undefined ? {} : { retry: layers.retry }),
  });
}
