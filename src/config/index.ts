/**
 * Kura's configuration: one frozen `KuraConfig` from a YAML file, the environment and flags
 * (CFG-1, CFG-2, §4b, SEC-4). See docs/configuration.md.
 */
export { CONFIG_FILE_VAR, SEED_ENV_NAMES } from "./env.js";
export type { LoadConfigOptions, ResolveConfigOptions, StorageOptionsParser } from "./load.js";
export { loadConfig, resolveConfig } from "./load.js";
export type { ConfigIssue, ConfigProblemCode } from "./problems.js";
export { configError, issue } from "./problems.js";
export type {
  AuthConfig,
  DatabaseBackend,
  DatabaseConfig,
  Durability,
  KuraConfig,
  KvBackend,
  KvConfig,
  LimitsConfig,
  LmdbKvConfig,
  MemoryKvConfig,
  PostgresDatabaseConfig,
  RedisKvConfig,
  RetentionConfig,
  SearchBackend,
  SearchConfig,
  ServerConfig,
  SessionsConfig,
  SqliteDatabaseConfig,
  StorageBackend,
  StorageConfig,
  TlsConfig,
  VectorBackend,
  VectorConfig,
  VectorMetric,
  VectorMode,
} from "./schema.js";
export { DEFAULTS } from "./schema.js";
export type { Env } from "./secrets.js";
export { maskUrlSecrets, REDACTED, redactConfig, SECRET_KEYS } from "./secrets.js";
export { configuredServerUrl, listenUrl, serverScheme } from "./server-url.js";
