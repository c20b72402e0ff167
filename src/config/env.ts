/**
 * Settings from environment variables. The caller hands the environment in (`process.env` at
 * the CLI); nothing here reads it on its own.
 *
 * - `KURA_*`: `KURA_SERVER__PORT=9000` → `server.port`; a double underscore nests, names are
 *   lower-cased, values are parsed (`true`/`false`, numbers, else text). A single-segment name
 *   that is not a top-level key (`KURA_JWT_SECRET`) is not a setting: such variables are what
 *   `env:VAR` references point at. `KURA_CONFIG` names the YAML file.
 * - Seed env names (CFG-1): `USE_S3`, `STORAGE_MODE`, `CLOUD_STORAGE_TYPE`, `S3_BUCKET_NAME`,
 *   `GCS_BUCKET_NAME`, `AWS_REGION`, `REDIS_URL`, `SESSION_TYPE`, `SESSION_TTL`, `SESSIONS_DIR`,
 *   as the source systems used them. Contradictions are `CONFIG_CONFLICT` problems.
 *
 * An empty variable counts as unset, as in most shells' `VAR=` idiom.
 */
import { Layer, type Layer as LayerT, RANK, type Source } from "./layers.js";
import { type ConfigIssue, issue } from "./problems.js";
import { parseScalar } from "./scalar.js";
import { SECTION_NAMES, type StorageBackend } from "./schema.js";
import type { Env } from "./secrets.js";

export const CONFIG_FILE_VAR = "KURA_CONFIG";
const PREFIX = "KURA_";

export const SEED_ENV_NAMES = Object.freeze([
  "USE_S3",
  "STORAGE_MODE",
  "CLOUD_STORAGE_TYPE",
  "S3_BUCKET_NAME",
  "GCS_BUCKET_NAME",
  "AWS_REGION",
  "REDIS_URL",
  "SESSION_TYPE",
  "SESSION_TTL",
  "SESSIONS_DIR",
] as const);

function read(env: Env, name: string): string | undefined {
  const v = env[name];
  return v === undefined || v.trim() === "" ? undefined : v.trim();
}

/** `KURA_*` variables → a layer. */
export function kuraEnvLayer(env: Env, problems: ConfigIssue[]): LayerT {
  const layer = new Layer(RANK.kuraEnv, undefined, env, problems);
  const settings: { name: string; path: string[]; value: string }[] = [];
  for (const name of Object.keys(env).sort()) {
    if (!name.startsWith(PREFIX) || name === CONFIG_FILE_VAR) continue;
    const value = env[name];
    if (value === undefined || value === "") continue;
    const path = name
      .slice(PREFIX.length)
      .split("__")
      .map((s) => s.toLowerCase());
    if (path.some((s) => s === "")) {
      problems.push(
        issue(name, "malformed name: separate levels with a double underscore (KURA_SERVER__PORT)"),
      );
      continue;
    }
    if (path.length === 1 && !(SECTION_NAMES as readonly string[]).includes(path[0]!)) continue;
    settings.push({ name, path, value });
  }
  // Whole sections first, so `KURA_STORAGE=s3://b` is in place before `KURA_STORAGE__OPTIONS__…`.
  settings.sort((a, b) => a.path.length - b.path.length);
  for (const { name, path, value } of settings) layer.assign(path, parseScalar(value), name, name);
  return layer;
}

/** A seed value that applies only when the final storage backend is `backend`. */
export interface ConditionalSetting {
  backend: StorageBackend;
  path: readonly string[];
  value: string;
  source: Source;
}

export interface SeedEnv {
  layer: LayerT;
  /** `S3_BUCKET_NAME`, `GCS_BUCKET_NAME`, `AWS_REGION`: bucket names belong to one backend only. */
  conditional: ConditionalSetting[];
}

function choice<T extends string>(
  env: Env,
  name: string,
  allowed: readonly T[],
  problems: ConfigIssue[],
): T | undefined {
  const raw = read(env, name);
  if (raw === undefined) return undefined;
  const v = raw.toLowerCase() as T;
  if (allowed.includes(v)) return v;
  problems.push(issue(name, `must be one of ${allowed.join(", ")} (got ${JSON.stringify(raw)})`));
  return undefined;
}

const TRUE = ["true", "1", "yes", "on"];
const FALSE = ["false", "0", "no", "off"];

export function seedEnvLayer(env: Env, problems: ConfigIssue[]): SeedEnv {
  const layer = new Layer(RANK.seedEnv, undefined, env, problems);
  const conditional: ConditionalSetting[] = [];

  let useS3: boolean | undefined;
  const useS3Raw = read(env, "USE_S3");
  if (useS3Raw !== undefined) {
    if (TRUE.includes(useS3Raw.toLowerCase())) useS3 = true;
    else if (FALSE.includes(useS3Raw.toLowerCase())) useS3 = false;
    else problems.push(issue("USE_S3", `must be true or false (got ${JSON.stringify(useS3Raw)})`));
  }
  const mode = choice(env, "STORAGE_MODE", ["local", "cloud"], problems);
  const cloudType = choice(env, "CLOUD_STORAGE_TYPE", ["s3", "gcs", "azure"], problems);
  const sessionType = choice(env, "SESSION_TYPE", ["redis", "lmdb", "memory"], problems);

  const redisUrl = read(env, "REDIS_URL");
  const redisUrlValid = redisUrl === undefined || /^rediss?:\/\//i.test(redisUrl);
  if (!redisUrlValid) problems.push(issue("REDIS_URL", "must be a redis:// or rediss:// URL"));

  const ttlRaw = read(env, "SESSION_TTL");
  if (ttlRaw !== undefined) {
    if (/^\d+$/.test(ttlRaw) && Number(ttlRaw) > 0)
      layer.assign(["sessions", "ttl_seconds"], Number(ttlRaw), "SESSION_TTL");
    else
      problems.push(
        issue("SESSION_TTL", `must be a positive whole number of seconds (got ${JSON.stringify(ttlRaw)})`),
      );
  }
  const sessionsDir = read(env, "SESSIONS_DIR");
  if (sessionsDir !== undefined) layer.assign(["sessions", "dir"], sessionsDir, "SESSIONS_DIR");

  // Contradictions: reported, and the contradicting variables then select nothing.
  const conflict = (path: string, message: string) => problems.push(issue(path, message, "CONFIG_CONFLICT"));
  const storageContradictions = [
    useS3 === false && mode === "cloud" && "USE_S3=false contradicts STORAGE_MODE=cloud",
    useS3 === true && mode === "local" && "USE_S3=true contradicts STORAGE_MODE=local",
    useS3 === true &&
      (cloudType === "gcs" || cloudType === "azure") &&
      `USE_S3=true contradicts CLOUD_STORAGE_TYPE=${cloudType}`,
  ].filter((m): m is string => typeof m === "string");
  for (const message of storageContradictions) conflict("USE_S3", message);
  const storageConflict = storageContradictions.length > 0;
  const kvConflict = (sessionType === "lmdb" || sessionType === "memory") && redisUrl !== undefined;
  if (kvConflict) {
    conflict(
      "SESSION_TYPE",
      `SESSION_TYPE=${sessionType} contradicts REDIS_URL (which selects redis); unset one of them`,
    );
  }

  if (!storageConflict) {
    let backend: StorageBackend | undefined;
    let label = "USE_S3";
    if (useS3 !== undefined) backend = useS3 ? "s3" : "fs";
    else if (mode === "local") [backend, label] = ["fs", "STORAGE_MODE"];
    // CLOUD_STORAGE_TYPE is consulted in cloud mode only, as in the source deployment files.
    else if (mode === "cloud")
      [backend, label] = [cloudType ?? "s3", cloudType ? "CLOUD_STORAGE_TYPE" : "STORAGE_MODE"];
    if (backend !== undefined) layer.assign(["storage", "backend"], backend, label);
  }

  if (!kvConflict && redisUrlValid) {
    if (sessionType === "redis" || (sessionType === undefined && redisUrl !== undefined)) {
      layer.assign(["kv"], { backend: "redis" }, sessionType ? "SESSION_TYPE" : "REDIS_URL");
      if (redisUrl !== undefined) layer.assign(["kv", "url"], redisUrl, "REDIS_URL");
    } else if (sessionType !== undefined) {
      layer.assign(["kv"], { backend: sessionType }, "SESSION_TYPE");
    }
  }

  const seed = (name: string, backend: StorageBackend, key: string) => {
    const value = read(env, name);
    if (value !== undefined) {
      conditional.push({
        backend,
        path: ["storage", "options", key],
        value,
        source: { rank: RANK.seedEnv, label: name },
      });
    }
  };
  seed("S3_BUCKET_NAME", "s3", "bucket");
  seed("AWS_REGION", "s3", "region");
  seed("GCS_BUCKET_NAME", "gcs", "bucket");
  return { layer, conditional };
}
