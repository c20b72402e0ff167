/**
 * Opening the KV store of a configuration (KV-1): the adapter of `kv.backend`, given the rest of
 * the `kv` section and the tombstone retention as its options (each adapter validates its own).
 */
import { kvStoreDefinition } from "../adapters/kv/registry.js";
import type { KuraConfig } from "../config/index.js";
import type { KvStore, KvStoreDeps } from "../ports/kv-store.js";

export async function openKvStore(config: KuraConfig, deps: KvStoreDeps): Promise<KvStore> {
  const { backend, ...section } = config.kv as KuraConfig["kv"] & Record<string, unknown>;
  const definition = await kvStoreDefinition(backend);
  const options = { ...section, tombstone_retention_ms: config.retention.kv_tombstone_days * 86_400_000 };
  return definition.create(definition.parseOptions(options), deps);
}
