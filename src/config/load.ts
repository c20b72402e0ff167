/**
 * Loading turns every source into one validated, deep-frozen `KuraConfig`:
 * layers (file, seed env names, `KURA_*`, overrides) → `env:VAR` references → each section's
 * schema → paths made absolute and data_dir defaults filled in → the storage adapter's own
 * `parseOptions`. Every problem met on the way is reported together in one `CONFIG_INVALID`.
 *
 * This is the only place that may default to `process.cwd()`; the environment is always
 * passed in by the caller.
 */
import { readFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import YAML, { LineCounter, YAMLParseError } from "yaml";
import type { z } from "zod";
import { KuraError } from "../core/errors.js";
import { CONFIG_FILE_VAR, kuraEnvLayer, seedEnvLayer } from "./env.js";
import { documentLayer, isPlane, Merged, overridesLayer, RANK } from "./layers.js";
import { type ConfigIssue, configError, fromZod, issue, problemsOf } from "./problems.js";
import {
  type DatabaseConfig,
  DEFAULTS,
  type EncryptionConfig,
  type KuraConfig,
  type KvConfig,
  SECTION_NAMES,
  SECTION_SCHEMAS,
  type StorageBackend,
} from "./schema.js";
import { type Env, isPlainObject, resolveEnvReferences } from "./secrets.js";

/**
 * Validates `storage.options` for a backend and returns the adapter's typed options; throws a
 * `ConfigInvalid` KuraError whose `context.problems` lists `{path, message}`.
 */
export type StorageOptionsParser = (
  backend: StorageBackend,
  rawOptions: Readonly<Record<string, unknown>>,
) => Promise<unknown>;

export interface LoadConfigOptions {
  /** YAML file; relative to `cwd`. Absent: `KURA_CONFIG` from `env`, else no file (defaults + env). */
  file?: string;
  /** The environment (the CLI passes `process.env`); used for `KURA_*`, seed names and `env:VAR`. */
  env?: Env;
  /** Command-line flags: nested objects and/or dotted keys (`{"server.port": 9000}`). */
  overrides?: Record<string, unknown>;
  /** Directory relative paths are resolved against; default `process.cwd()`. */
  cwd?: string;
  /**
   * How `storage.options` are validated (this layer knows no adapter): `src/open/config.ts`
   * passes the blob adapters' own parsers; without one the options pass through as given.
   */
  storageOptionsParser?: StorageOptionsParser;
}

export interface ResolveConfigOptions {
  /** Only for `env:VAR` references; `KURA_*` and seed names are not applied. */
  env?: Env;
  cwd?: string;
  storageOptionsParser?: StorageOptionsParser;
}

/** Configs this module produced: handing one back to `resolveConfig` returns it as is. */
const RESOLVED = new WeakSet<object>();

/** Load from file, environment and flags, with the precedence of CFG-1. */
export async function loadConfig(opts: LoadConfigOptions = {}): Promise<KuraConfig> {
  const cwd = opts.cwd ?? process.cwd();
  const env = opts.env ?? {};
  const problems: ConfigIssue[] = [];
  const merged = new Merged();

  const fileName = opts.file ?? nonEmpty(env[CONFIG_FILE_VAR]);
  if (fileName !== undefined) {
    const file = resolve(cwd, fileName);
    const doc = await readYamlFile(file);
    if (doc !== null && !isPlainObject(doc)) {
      problems.push(issue("", `${file} must hold a mapping of settings (key: value)`));
    } else {
      merged.apply(documentLayer(doc ?? {}, RANK.file, file, env, problems));
    }
  }
  const seed = seedEnvLayer(env, problems);
  merged.apply(seed.layer);
  merged.apply(kuraEnvLayer(env, problems));
  if (opts.overrides) merged.apply(overridesLayer(opts.overrides, env, problems));

  const storage = merged.tree.storage;
  const backend = isPlainObject(storage) ? (storage.backend ?? DEFAULTS.storage) : undefined;
  for (const setting of seed.conditional) {
    if (setting.backend === backend) merged.setUnlessOutranked(setting.path, setting.value, setting.source);
  }
  return finish(merged, problems, { env, cwd, parser: opts.storageOptionsParser, operation: "config.load" });
}

/**
 * Validate a configuration given as an object (e.g. `Kura.open(config)`); `undefined` means the
 * embedded defaults. Same rules as a YAML file; the environment is used only for `env:VAR`.
 */
export async function resolveConfig(input?: unknown, opts: ResolveConfigOptions = {}): Promise<KuraConfig> {
  if (typeof input === "object" && input !== null && RESOLVED.has(input)) return input as KuraConfig;
  const problems: ConfigIssue[] = [];
  if (input !== undefined && input !== null && !isPlainObject(input)) {
    throw configError([issue("", "must be a mapping of settings")], "config.resolve");
  }
  const merged = new Merged();
  merged.apply(documentLayer(input ?? {}, RANK.file, undefined, opts.env, problems));
  return finish(merged, problems, {
    env: opts.env,
    cwd: opts.cwd ?? process.cwd(),
    parser: opts.storageOptionsParser,
    operation: "config.resolve",
  });
}

interface FinishContext {
  env: Env | undefined;
  cwd: string;
  parser: StorageOptionsParser | undefined;
  operation: string;
}

async function finish(merged: Merged, problems: ConfigIssue[], ctx: FinishContext): Promise<KuraConfig> {
  const tree = resolveEnvReferences(merged.tree, ctx.env, "", problems) as Record<string, unknown>;

  for (const key of Object.keys(tree)) {
    if (!(SECTION_NAMES as readonly string[]).includes(key)) problems.push(issue(key, "unknown key"));
  }
  const sections: Record<string, unknown> = {};
  for (const name of SECTION_NAMES) {
    const value = tree[name];
    if (isPlane(name) && typeof value === "string") continue; // its shorthand problem is already reported
    const result = SECTION_SCHEMAS[name].safeParse(value);
    if (result.success) sections[name] = result.data;
    else problems.push(...fromZod(result.error, name));
  }
  const s = sections as Partial<Parsed>;
  const dataDir = resolve(ctx.cwd, s.data_dir ?? DEFAULTS.data_dir);
  const path = (given: string | undefined, fallback: string) =>
    given === undefined ? join(dataDir, fallback) : resolve(ctx.cwd, given);

  const database: DatabaseConfig | undefined =
    s.database?.backend === "sqlite"
      ? {
          backend: "sqlite",
          // `:memory:` and `file:` URIs are SQLite's own names, not paths.
          path:
            s.database.path === ":memory:" || s.database.path?.startsWith("file:")
              ? s.database.path
              : path(s.database.path, DEFAULTS.database_file),
        }
      : s.database;
  const kv: KvConfig | undefined =
    s.kv?.backend === "lmdb" ? { backend: "lmdb", path: path(s.kv.path, DEFAULTS.kv_dir) } : s.kv;
  const sessions = s.sessions && {
    ttl_seconds: s.sessions.ttl_seconds,
    dir: path(s.sessions.dir, DEFAULTS.sessions_dir),
  };

  problems.push(...crossPlaneConflicts(database, s));
  if (s.vector?.quantization === "i8" && s.vector.metric !== "cosine")
    problems.push(
      issue(
        "vector.quantization",
        `i8 quantization needs vector.metric: cosine (got ${s.vector.metric}); use f16 or f32`,
        "CONFIG_CONFLICT",
      ),
    );
  const storageOptions = s.storage && (await storageOptionsFor(s.storage, dataDir, ctx, problems));
  const encryption = s.encryption && (await encryptionFor(s.encryption, ctx.cwd, problems));

  if (problems.length > 0)
    throw configError(
      problems.map((p) => withSource(p, merged)),
      ctx.operation,
    );

  const config: KuraConfig = {
    data_dir: dataDir,
    durability: s.durability!,
    database: database!,
    storage: { backend: s.storage!.backend, options: storageOptions!, timeouts: s.storage!.timeouts },
    kv: kv!,
    search: s.search!,
    vector: vectorFor(s.vector!, database!),
    embedder: s.embedder!,
    retention: s.retention!,
    outbox: s.outbox!,
    node: s.node!,
    sessions: sessions!,
    limits: s.limits!,
    server: serverFor(s.server!, ctx.cwd),
    auth: s.auth!,
    tiers: s.tiers!,
    encryption: encryption ?? null,
  };
  deepFreeze(config);
  RESOLVED.add(config);
  return config;
}

/** A master key: 32 bytes in base64 (standard or URL-safe alphabet), or why not. */
function masterKeyProblem(text: string): string | undefined {
  const t = text.trim();
  if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(t)) return "must be 32 bytes in base64 (it is not base64)";
  const bytes = Buffer.from(t, "base64").length;
  return bytes === 32 ? undefined : `must be 32 bytes in base64 (it decodes to ${bytes} bytes)`;
}

/** `encryption`: the master key read from its file when given so, every key checked (SEC-2). */
async function encryptionFor(
  e: NonNullable<Parsed["encryption"]>,
  cwd: string,
  problems: ConfigIssue[],
): Promise<EncryptionConfig | undefined> {
  let key = e.master_key;
  const file = e.master_key_file === null ? null : resolve(cwd, e.master_key_file);
  if (file !== null) {
    try {
      key = (await readFile(file, "utf8")).trim();
    } catch (err) {
      const why = (err as NodeJS.ErrnoException).code ?? "unreadable";
      problems.push(issue("encryption.master_key_file", `cannot be read (${why})`));
      return undefined;
    }
  }
  const where = file === null ? "encryption.master_key" : "encryption.master_key_file";
  const problem = key === null ? "is missing" : masterKeyProblem(key);
  if (problem) problems.push(issue(where, problem));
  e.previous_master_keys.forEach((k, i) => {
    const p = masterKeyProblem(k);
    if (p) problems.push(issue(`encryption.previous_master_keys.${i}`, p));
  });
  if (problem || key === null) return undefined;
  return {
    master_key: key.trim(),
    master_key_file: file,
    previous_master_keys: e.previous_master_keys.map((k) => k.trim()),
    refresh_ms: e.refresh_ms,
  };
}

/** TLS files are paths against the working directory, like every other path. */
function serverFor(server: Parsed["server"], cwd: string): Parsed["server"] {
  const tls = server.tls;
  if (tls === null) return server;
  return {
    ...server,
    tls: {
      ...tls,
      cert_file: resolve(cwd, tls.cert_file),
      key_file: resolve(cwd, tls.key_file),
      ca_file: tls.ca_file === null ? null : resolve(cwd, tls.ca_file),
    },
  };
}

/** pgvector's database and schema default to the PostgreSQL catalog's. */
function vectorFor(vector: Parsed["vector"], database: DatabaseConfig): Parsed["vector"] {
  if (vector.backend !== "pgvector") return vector;
  const catalog = database.backend === "postgres" ? database : undefined;
  return {
    ...vector,
    url: vector.url ?? catalog?.url ?? null,
    schema: vector.schema ?? (vector.url === null ? catalog?.schema : undefined) ?? "public",
  };
}

/** Planes that only work on top of another plane. */
function crossPlaneConflicts(database: DatabaseConfig | undefined, s: Partial<Parsed>): ConfigIssue[] {
  if (!database || database.backend === "postgres") return [];
  const out: ConfigIssue[] = [];
  if (s.search?.backend === "postgres") {
    out.push(
      issue(
        "search.backend",
        "postgres full-text search needs database.backend: postgres",
        "CONFIG_CONFLICT",
      ),
    );
  }
  if (s.vector?.backend === "pgvector" && s.vector.url === null) {
    out.push(
      issue("vector.backend", "pgvector needs vector.url or database.backend: postgres", "CONFIG_CONFLICT"),
    );
  }
  return out;
}

/** The adapter's own validation of `storage.options`, after the defaults only this layer can know. */
async function storageOptionsFor(
  storage: Parsed["storage"],
  dataDir: string,
  ctx: FinishContext,
  problems: ConfigIssue[],
): Promise<Record<string, unknown> | undefined> {
  const raw = { ...storage.options };
  if (storage.backend === "fs") {
    // Relative to the working directory like every other path, not to the adapter's.
    raw.base_path =
      typeof raw.base_path === "string"
        ? resolve(ctx.cwd, raw.base_path)
        : (raw.base_path ?? join(dataDir, DEFAULTS.storage_dir));
  }
  try {
    // Without a parser the options pass as given: the adapter validates them when the store opens.
    if (!ctx.parser) return raw;
    return ((await ctx.parser(storage.backend, raw)) ?? {}) as Record<string, unknown>;
  } catch (e) {
    const found = problemsOf(e);
    if (!found) {
      const reason = e instanceof Error ? e.message : String(e);
      problems.push(
        issue("storage.backend", `the ${storage.backend} adapter could not be loaded: ${reason}`),
      );
    }
    for (const p of found ?? []) {
      const inOptions = p.path === "storage.options" || p.path.startsWith("storage.");
      problems.push({ ...p, path: inOptions ? p.path : join2("storage.options", p.path) });
    }
    return undefined;
  }
}

type Parsed = { [K in keyof typeof SECTION_SCHEMAS]: z.output<(typeof SECTION_SCHEMAS)[K]> };

/** "… (from KURA_SERVER__PORT)": the source that set the offending value, when one did. */
function withSource(p: ConfigIssue, merged: Merged): ConfigIssue {
  const label = p.path === "" ? undefined : merged.sourceOf(p.path)?.label;
  return label === undefined ? p : { ...p, message: `${p.message} (from ${label})` };
}

async function readYamlFile(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (e) {
    const reason = (e as NodeJS.ErrnoException).code ?? (e instanceof Error ? e.message : String(e));
    throw new KuraError("CONFIG_FILE_UNREADABLE", `cannot read config file ${file}: ${reason}`, {
      operation: "config.load",
      context: { file },
      cause: e,
    });
  }
  const lineCounter = new LineCounter();
  try {
    return YAML.parse(text, { prettyErrors: false, lineCounter });
  } catch (e) {
    if (!(e instanceof YAMLParseError)) throw e;
    // The parser's own message quotes the offending line, which may hold a secret: position only.
    const { line, col } = lineCounter.linePos(e.pos[0]);
    throw new KuraError(
      "CONFIG_FILE_UNREADABLE",
      `cannot parse config file ${file}: ${e.message} at line ${line}, column ${col}`,
      {
        operation: "config.load",
        context: { file, line, column: col },
      },
    );
  }
}

function nonEmpty(v: string | undefined): string | undefined {
  return v === undefined || v.trim() === "" ? undefined : v.trim();
}

function join2(a: string, b: string): string {
  return b === "" ? a : `${a}.${b}`;
}

function deepFreeze(value: unknown): void {
  if (Array.isArray(value) || isPlainObject(value)) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
}
