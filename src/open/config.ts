/**
 * Configuration as Kura's entry points load it: the file format from `config/`, and each
 * adapter's section validated by that adapter's own schema, so a config's problems are all
 * reported in one pass before anything opens. `config/` itself knows no adapter.
 */
import { blobStoreDefinition } from "../adapters/blob/registry.js";
import {
  type KuraConfig,
  type LoadConfigOptions,
  loadConfig as loadConfigFormat,
  type ResolveConfigOptions,
  resolveConfig as resolveConfigFormat,
  type StorageOptionsParser,
} from "../config/index.js";

/** `storage.options` checked and completed by the storage backend's adapter. */
export const parseStorageOptions: StorageOptionsParser = async (backend, raw) =>
  (await blobStoreDefinition(backend)).parseOptions(raw);

/** Load from file, environment and flags (see `config/load.ts`), adapters' sections validated. */
export function loadConfig(opts: LoadConfigOptions = {}): Promise<KuraConfig> {
  return loadConfigFormat({ storageOptionsParser: parseStorageOptions, ...opts });
}

/** A config object from code, completed and validated like a loaded one. */
export function resolveConfig(input?: unknown, opts: ResolveConfigOptions = {}): Promise<KuraConfig> {
  return resolveConfigFormat(input, { storageOptionsParser: parseStorageOptions, ...opts });
}
