/**
 * Encryption at rest (SEC-2) as the composition root wires it: the key provider from the
 * `encryption` section, the key ring over the catalog's `tenant_keys`, and the encrypting layers
 * for each plane. Without an `encryption` section nothing here is opened and nothing is wrapped.
 */
import { LocalKeyProvider } from "../adapters/keys/local.js";
import type { KuraConfig } from "../config/index.js";
import { KeyRing } from "../engine/encryption/key-ring.js";
import type { TenantKeyStore } from "../ports/key-provider.js";

/** The key ring of this configuration, or undefined when encryption is off. */
export function openKeyRing(
  config: KuraConfig,
  store: TenantKeyStore,
  clock: () => number = Date.now,
): KeyRing | undefined {
  const e = config.encryption;
  if (!e) return undefined;
  const provider = new LocalKeyProvider(
    Buffer.from(e.master_key, "base64"),
    e.previous_master_keys.map((k) => Buffer.from(k, "base64")),
  );
  return new KeyRing({ store, provider, clock, refreshMs: e.refresh_ms });
}
