/**
 * The shape of Kura's configuration (docs/configuration.md): the zod schemas that validate each section and
 * the `KuraConfig` type the rest of the code receives. Keys are snake_case, as in `kura.yaml`.
 *
 * Paths that depend on `data_dir` (`database.path`, `kv.path`, `sessions.dir`, the fs
 * `base_path`) are optional here and filled in by the loader once `data_dir` is known.
 *
 * Over 450 lines and whole: one schema per configuration section, kept together so the
 * `KuraConfig` shape reads in one place.
 */
import { z } from "zod";

export const DURABILITIES = ["os", "fsync"] as const;
export const DATABASE_BACKENDS = ["sqlite", "postgres"] as const;
export const STORAGE_BACKENDS = ["fs", "s3", "azure", "gcs", "memory"] as const;
export const KV_BACKENDS = ["lmdb", "redis", "memory"] as const;
export const SEARCH_BACKENDS = ["embedded", "sqlite-fts", "postgres"] as const;
export const VECTOR_BACKENDS = ["embedded", "exact", "pgvector", "faiss"] as const;
export const VECTOR_METRICS = ["l2", "cosine", "ip"] as const;
export const VECTOR_MODES = ["fast", "balanced", "accurate"] as const;
export const VECTOR_QUANTIZATIONS = ["f32", "f16", "i8"] as const;
export const EMBEDDER_BACKENDS = ["hashing", "openai"] as const;

export type Durability = (typeof DURABILITIES)[number];
export type DatabaseBackend = (typeof DATABASE_BACKENDS)[number];
export type StorageBackend = (typeof STORAGE_BACKENDS)[number];
export type KvBackend = (typeof KV_BACKENDS)[number];
export type SearchBackend = (typeof SEARCH_BACKENDS)[number];
export type VectorBackend = (typeof VECTOR_BACKENDS)[number];
export type VectorMetric = (typeof VECTOR_METRICS)[number];
export type VectorMode = (typeof VECTOR_MODES)[number];
export type VectorQuantization = (typeof VECTOR_QUANTIZATIONS)[number];
export type EmbedderBackend = (typeof EMBEDDER_BACKENDS)[number];

/** Sections that select a backend; a string in their place is URI shorthand (CFG-2). */
export const PLANES = ["database", "storage", "kv", "search", "vector"] as const;
export type Plane = (typeof PLANES)[number];

export const DEFAULTS = Object.freeze({
  data_dir: "./data",
  durability: "os" as Durability,
  database: "sqlite" as DatabaseBackend,
  database_file: "kura.db",
  postgres_schema: "public",
  postgres_max_connections: 10,
  storage: "fs" as StorageBackend,
  storage_dir: "blobs",
  storage_idle_ms: 30_000,
  storage_operation_ms: 30_000,
  kv: "lmdb" as KvBackend,
  kv_dir: "kv",
  redis_key_prefix: "kura:",
  search: "embedded" as SearchBackend,
  vector: "embedded" as VectorBackend,
  vector_dimensions: 768,
  vector_metric: "l2" as VectorMetric,
  vector_mode: "balanced" as VectorMode,
  vector_quantization: "f32" as VectorQuantization,
  embedder: "hashing" as EmbedderBackend,
  embedder_url: "https://api.openai.com/v1",
  embedder_model: "text-embedding-3-small",
  embedder_batch_size: 96,
  embedder_timeout_ms: 30_000,
  deleted_messages_days: 30,
  session_files_days: 7,
  kv_tombstone_days: 7,
  outbox_retention_hours: 168,
  encryption_refresh_ms: 5000,
  node_stale_after_hours: 24,
  session_ttl_seconds: 86_400,
  sessions_dir: "sessions",
  max_message_bytes: 131_072,
  max_upload_bytes: 1_099_511_627_776,
  upload_expiry_hours: 24,
  host: "127.0.0.1",
  port: 8787,
  body_timeout_ms: 30_000,
  buffered_body_timeout_ms: 60_000,
  idle_timeout_ms: 72_000,
  shutdown_timeout_ms: 10_000,
  max_token_lifetime_seconds: 86_400,
  clock_skew_seconds: 60,
  tenant_refresh_ms: 250,
});

// --- field helpers -------------------------------------------------------------------------
// Values arrive from YAML, from environment variables (`env:VAR` keeps the text verbatim) and
// from command-line flags (often strings), so number fields accept numeric text and string
// fields accept numbers (a numeric password must not be rejected for being a number).

const INTEGER = /^[+-]?\d+$/;

function int(min: number, max = Number.MAX_SAFE_INTEGER) {
  return z.preprocess(
    (v) => (typeof v === "string" && INTEGER.test(v.trim()) ? Number(v.trim()) : v),
    z.number().int().min(min).max(max),
  );
}

function text() {
  return z.preprocess(
    (v) => (typeof v === "number" || typeof v === "boolean" ? String(v) : v),
    z.string().min(1, "must not be empty"),
  );
}

function bool() {
  return z.preprocess((v) => {
    if (typeof v !== "string") return v;
    const t = v.trim().toLowerCase();
    return t === "true" ? true : t === "false" ? false : v;
  }, z.boolean());
}

function nullableText() {
  return text().nullable().default(null);
}

/**
 * Where clients reach the server (behind a proxy or load balancer): an http(s) origin, with no
 * path, query or fragment, since presigned URLs put their own path on it. Kept as its origin
 * (`https://kura.example.com`, no trailing slash).
 */
function publicUrl() {
  return urlWithScheme(["https", "http"])
    .refine(
      (v) => {
        try {
          const u = new URL(v);
          return (
            u.pathname === "/" && u.search === "" && u.hash === "" && u.username === "" && u.password === ""
          );
        } catch {
          return false;
        }
      },
      { message: "must be an origin such as https://kura.example.com (no path, query or credentials)" },
    )
    .transform((v) => new URL(v).origin)
    .nullable()
    .default(null);
}

function urlWithScheme(schemes: readonly string[]) {
  const list = schemes.map((s) => `${s}://`).join(" or ");
  return text().refine((v) => schemes.some((s) => v.toLowerCase().startsWith(`${s}://`)), {
    message: `must be a ${list} URL`,
  });
}

/** A missing or `null` section means "all defaults". */
function section<T extends z.ZodType>(schema: T) {
  return z.preprocess((v) => v ?? {}, schema);
}

/** A missing section, or one without `backend`, selects the default backend. */
function plane<T extends z.ZodType>(defaultBackend: string, schema: T) {
  return z.preprocess((v) => {
    if (v === undefined || v === null) return { backend: defaultBackend };
    if (typeof v === "object" && !Array.isArray(v) && (v as { backend?: unknown }).backend === undefined) {
      return { ...v, backend: defaultBackend };
    }
    return v;
  }, schema);
}

const POSTGRES_IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

// --- sections --------------------------------------------------------------------------------

export const dataDirSchema = text().default(DEFAULTS.data_dir);
export const durabilitySchema = z.enum(DURABILITIES).default(DEFAULTS.durability);

export const databaseSchema = plane(
  DEFAULTS.database,
  z.discriminatedUnion("backend", [
    z.object({ backend: z.literal("sqlite"), path: text().optional() }).strict(),
    z
      .object({
        backend: z.literal("postgres"),
        url: urlWithScheme(["postgres", "postgresql"]),
        schema: text()
          .refine((v) => POSTGRES_IDENTIFIER.test(v), { message: "must be a plain SQL identifier" })
          .default(DEFAULTS.postgres_schema),
        max_connections: int(1, 10_000).default(DEFAULTS.postgres_max_connections),
        // Defaults are the adapter's (its own schema) and the opener's: absent stays absent here.
        statement_timeout_ms: int(0, 86_400_000).optional(),
        lock_timeout_ms: int(0, 86_400_000).optional(),
        read_timeout_ms: int(0, 86_400_000).optional(),
      })
      .strict(),
  ]),
);

export const storageSchema = plane(
  DEFAULTS.storage,
  z
    .object({
      backend: z.enum(STORAGE_BACKENDS),
      // Validated by the adapter's own `parseOptions`, not here.
      options: section(z.record(z.string(), z.unknown())),
      timeouts: section(
        z
          .object({
            idle_ms: int(1).default(DEFAULTS.storage_idle_ms),
            operation_ms: int(1).default(DEFAULTS.storage_operation_ms),
          })
          .strict(),
      ),
    })
    .strict(),
);

export const kvSchema = plane(
  DEFAULTS.kv,
  z.discriminatedUnion("backend", [
    z.object({ backend: z.literal("lmdb"), path: text().optional() }).strict(),
    z
      .object({
        backend: z.literal("redis"),
        url: urlWithScheme(["redis", "rediss"]),
        key_prefix: z
          .preprocess((v) => (typeof v === "number" ? String(v) : v), z.string())
          .default(DEFAULTS.redis_key_prefix),
        // Defaults are the adapter's (its own schema): absent stays absent here.
        connect_timeout_ms: int(1, 86_400_000).optional(),
        command_timeout_ms: int(1, 86_400_000).optional(),
      })
      .strict(),
    z.object({ backend: z.literal("memory") }).strict(),
  ]),
);

export const searchSchema = plane(DEFAULTS.search, z.object({ backend: z.enum(SEARCH_BACKENDS) }).strict());

export const vectorSchema = plane(
  DEFAULTS.vector,
  z
    .object({
      backend: z.enum(VECTOR_BACKENDS),
      dimensions: int(1, 65_536).default(DEFAULTS.vector_dimensions),
      metric: z.enum(VECTOR_METRICS).default(DEFAULTS.vector_metric),
      mode: z.enum(VECTOR_MODES).default(DEFAULTS.vector_mode),
      quantization: z.enum(VECTOR_QUANTIZATIONS).default(DEFAULTS.vector_quantization),
      url: urlWithScheme(["postgres", "postgresql"]).nullable().default(null),
      schema: text()
        .refine((v) => POSTGRES_IDENTIFIER.test(v), { message: "must be a plain SQL identifier" })
        .nullable()
        .default(null),
      max_connections: int(1, 10_000).default(4),
      embed_messages: bool().default(false),
      // `faiss` only; defaults are the adapter's (its own schema): absent stays absent here.
      module_path: text().optional(),
      faiss: z
        .object({
          index: z.enum(["ivf_pq", "ivf_flat", "flat"]).optional(),
          nlist: int(1, 1_048_576).optional(),
          m: int(1, 65_536).optional(),
          train_size: int(1).optional(),
          nprobe_fast: int(1, 1_048_576).optional(),
          nprobe_balanced: int(1, 1_048_576).optional(),
        })
        .strict()
        .optional(),
    })
    .strict(),
);

export const embedderSchema = section(
  z
    .object({
      backend: z.enum(EMBEDDER_BACKENDS).default(DEFAULTS.embedder),
      url: urlWithScheme(["https", "http"]).default(DEFAULTS.embedder_url),
      api_key: nullableText(),
      model: text().default(DEFAULTS.embedder_model),
      request_dimensions: bool().default(false),
      batch_size: int(1, 2048).default(DEFAULTS.embedder_batch_size),
      timeout_ms: int(1).default(DEFAULTS.embedder_timeout_ms),
    })
    .strict(),
);

export const retentionSchema = section(
  z
    .object({
      deleted_messages_days: int(0).default(DEFAULTS.deleted_messages_days),
      session_files_days: int(0).default(DEFAULTS.session_files_days),
      // Days after which message and object bodies move under {tenant}/archive/ (LIFE-1); null = never.
      archive_after_days: int(0).nullable().default(null),
      // Days a deleted or expired KV key's last version is kept (ADR 0025); at most 10 years.
      kv_tombstone_days: int(1, 3650).default(DEFAULTS.kv_tombstone_days),
      // Hours an unfinished resumable upload lives after its last progress (API-6, Upload-Expires).
      upload_expiry_hours: int(1, 87_600).default(DEFAULTS.upload_expiry_hours),
    })
    .strict(),
);

export const outboxSchema = section(
  z
    .object({
      // Hours of consumed events the change feed keeps (OUT-1); 0 = none.
      retention_hours: int(0, 1_000_000).default(DEFAULTS.outbox_retention_hours),
    })
    .strict(),
);

export const nodeSchema = section(
  z
    .object({
      // Stable id of this node (its outbox consumers are named after it); null: generated once into <data_dir>/node-id.
      id: z
        .string()
        .regex(
          /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/,
          "a node id is 1–64 of A-Z a-z 0-9 . _ - (first a letter or digit)",
        )
        .nullable()
        .default(null),
      // A node not seen for this long is forgotten: its outbox cursors stop holding back pruning.
      stale_after_hours: int(1, 1_000_000).default(DEFAULTS.node_stale_after_hours),
      // Start beside other nodes although memories and collections live in this node's own vector index.
      allow_local_vectors: bool().default(false),
    })
    .strict(),
);

export const sessionsSchema = section(
  z
    .object({
      ttl_seconds: int(1).default(DEFAULTS.session_ttl_seconds),
      dir: text().optional(),
    })
    .strict(),
);

export const limitsSchema = section(
  z
    .object({
      max_message_bytes: int(1).default(DEFAULTS.max_message_bytes),
      // Largest resumable upload (API-6, Tus-Max-Size); tenant limits apply on top.
      max_upload_bytes: int(1).default(DEFAULTS.max_upload_bytes),
    })
    .strict(),
);

/** `origins` also accepts one comma-separated string, the only list an environment variable can hold. */
const originsSchema = z
  .preprocess(
    (v) =>
      typeof v === "string"
        ? v
            .split(",")
            .map((s) => s.trim())
            .filter(Boolean)
        : (v ?? []),
    z.array(text()),
  )
  .default([]);

/** `server.tls.client_auth`: whether a client must present a certificate signed by `ca_file`. */
export const CLIENT_AUTH_MODES = ["require", "optional", "none"] as const;
export type ClientAuthMode = (typeof CLIENT_AUTH_MODES)[number];

/**
 * `server.tls` (SEC-2): HTTPS on the server's port, from PEM files (paths against the working
 * directory, read when `kura serve` starts and again on SIGHUP). Asking clients for a
 * certificate needs the CA that signs them.
 */
const tlsSchema = z
  .object({
    cert_file: text(),
    key_file: text(),
    ca_file: nullableText(),
    client_auth: z.enum(CLIENT_AUTH_MODES).default("none"),
  })
  .strict()
  .refine((t) => t.client_auth === "none" || t.ca_file !== null, {
    message:
      "client_auth require or optional needs server.tls.ca_file (the CA that signs client certificates)",
    path: ["ca_file"],
  })
  .nullable()
  .default(null);

export const serverSchema = section(
  z
    .object({
      host: text().default(DEFAULTS.host),
      port: int(0, 65_535).default(DEFAULTS.port),
      public_url: publicUrl(),
      base_domain: nullableText(),
      cors: section(z.object({ origins: originsSchema }).strict()),
      body_timeout_ms: int(1).default(DEFAULTS.body_timeout_ms),
      buffered_body_timeout_ms: int(1).default(DEFAULTS.buffered_body_timeout_ms),
      idle_timeout_ms: int(1).default(DEFAULTS.idle_timeout_ms),
      shutdown_timeout_ms: int(0).default(DEFAULTS.shutdown_timeout_ms),
      tls: tlsSchema,
      // The S3-compatible endpoint (API-7): a second listener over the same Kura; port null: none.
      s3: section(
        z
          .object({
            port: int(0, 65_535).nullable().default(null),
            region: text().default("us-east-1"),
            domain: nullableText(),
          })
          .strict(),
      ),
    })
    .strict(),
);

export const authSchema = section(
  z
    .object({
      jwt_secret: nullableText(),
      jwks_url: urlWithScheme(["https", "http"]).nullable().default(null),
      issuer: nullableText(),
      audience: nullableText(),
      max_token_lifetime_seconds: int(1).default(DEFAULTS.max_token_lifetime_seconds),
      clock_skew_seconds: int(0, 3600).default(DEFAULTS.clock_skew_seconds),
      // A token for a tenant the registry does not know registers it (tier `free`); false: 403.
      auto_create_tenants: bool().default(true),
      // How long a node trusts its cached tenant records without checking the registry version.
      tenant_refresh_ms: int(1, 60_000).default(DEFAULTS.tenant_refresh_ms),
    })
    .strict(),
);

/**
 * `encryption` (SEC-2): encryption at rest under per-tenant data keys wrapped by a master key
 * (32 bytes, base64) given inline (`env:NAME`, so it stays out of files) or in a file. Absent
 * (null, the default): nothing is encrypted.
 */
export const encryptionSchema = z
  .object({
    // The master key: 32 bytes in base64 (a secret); or master_key_file, never both.
    master_key: nullableText(),
    master_key_file: nullableText(),
    // Master keys used before (base64): data keys they wrap still open; `kura keys rewrap` moves them.
    previous_master_keys: z.array(text()).default([]),
    // How long a node trusts its cached data keys before it reads their state again (a shred elsewhere).
    refresh_ms: int(1, 600_000).default(DEFAULTS.encryption_refresh_ms),
  })
  .strict()
  .refine((e) => (e.master_key === null) !== (e.master_key_file === null), {
    message: "give exactly one of encryption.master_key and encryption.master_key_file",
    path: ["master_key"],
  })
  .nullable()
  .default(null);

/** The limits a tier may set (TEN-3); a limit left out is no limit. */
export const TIER_LIMIT_NAMES = [
  "max_storage_bytes",
  "max_objects",
  "max_message_bytes",
  "max_object_bytes",
  "max_requests_per_second",
  // Mail (MAIL-1): one message's raw size (default 25 MiB) and a mailbox's raw bytes.
  "max_mail_bytes",
  "max_mailbox_bytes",
] as const;
export type TierLimitName = (typeof TIER_LIMIT_NAMES)[number];

const tierLimitsSchema = section(
  z
    .object(
      Object.fromEntries(TIER_LIMIT_NAMES.map((n) => [n, int(1).optional()])) as Record<
        TierLimitName,
        z.ZodOptional<ReturnType<typeof int>>
      >,
    )
    .strict(),
);

/** The tier every tenant is on unless given another; always exists (no limits unless configured). */
export const DEFAULT_TIER = "free";

/** `tiers.{name}.limits` (TEN-3): tier names are ids (IDS-1); `free` is added when not configured. */
export const tiersSchema = z
  .preprocess(
    (v) => v ?? {},
    z.record(
      z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, "a tier name is 1–64 of A-Z a-z 0-9 . _ -"),
      section(z.object({ limits: tierLimitsSchema }).strict()),
    ),
  )
  .transform((tiers) => ({ [DEFAULT_TIER]: { limits: {} }, ...tiers }));

/** Every top-level key and the schema of its section, in the order problems are reported. */
export const SECTION_SCHEMAS = {
  data_dir: dataDirSchema,
  durability: durabilitySchema,
  database: databaseSchema,
  storage: storageSchema,
  kv: kvSchema,
  search: searchSchema,
  vector: vectorSchema,
  embedder: embedderSchema,
  retention: retentionSchema,
  outbox: outboxSchema,
  node: nodeSchema,
  sessions: sessionsSchema,
  limits: limitsSchema,
  server: serverSchema,
  auth: authSchema,
  tiers: tiersSchema,
  encryption: encryptionSchema,
} as const;

export type SectionName = keyof typeof SECTION_SCHEMAS;
export const SECTION_NAMES = Object.freeze(Object.keys(SECTION_SCHEMAS)) as readonly SectionName[];

// --- the resolved configuration ------------------------------------------------------------

export interface SqliteDatabaseConfig {
  readonly backend: "sqlite";
  /** Absolute path of the SQLite file; default `<data_dir>/kura.db`. */
  readonly path: string;
}

export interface PostgresDatabaseConfig {
  readonly backend: "postgres";
  /** `postgres://user:password@host:port/db?…` — the password is a secret (masked by `redactConfig`). */
  readonly url: string;
  /** Schema holding Kura's tables; default `public`. */
  readonly schema: string;
  /** Pool size; default 10. */
  readonly max_connections: number;
  /** Server-side limit of each statement (`statement_timeout`), in ms, 0 = none; default 30000. */
  readonly statement_timeout_ms?: number;
  /** Server-side limit of each wait for a lock (`lock_timeout`), in ms; default 0 (none). */
  readonly lock_timeout_ms?: number;
  /** Client-side limit of each read, in ms, 0 = none; default 60000 (above the statement limit). */
  readonly read_timeout_ms?: number;
}

export type DatabaseConfig = SqliteDatabaseConfig | PostgresDatabaseConfig;

export interface StorageConfig {
  readonly backend: StorageBackend;
  /** The options as the adapter's `parseOptions` returned them (fs: `base_path` absolute). */
  readonly options: Readonly<Record<string, unknown>>;
  readonly timeouts: {
    /** A streamed upload or download fails after this many ms without a byte moving; default 30000. */
    readonly idle_ms: number;
    /** Limit of a whole operation without a streamed body (head, list, delete, …); default 30000. */
    readonly operation_ms: number;
  };
}

export interface LmdbKvConfig {
  readonly backend: "lmdb";
  /** Absolute path of the LMDB environment; default `<data_dir>/kv`. */
  readonly path: string;
}

export interface RedisKvConfig {
  readonly backend: "redis";
  /** `redis://` or `rediss://` URL — the password is a secret (masked by `redactConfig`). */
  readonly url: string;
  /** Prefix of every key Kura writes; default `kura:`. */
  readonly key_prefix: string;
  /** Time to establish the connection, in ms; default 5000. */
  readonly connect_timeout_ms?: number;
  /** Time one command may take before it fails with `OPERATION_TIMEOUT`, in ms; default 5000. */
  readonly command_timeout_ms?: number;
}

export interface MemoryKvConfig {
  readonly backend: "memory";
}

export type KvConfig = LmdbKvConfig | RedisKvConfig | MemoryKvConfig;

export interface SearchConfig {
  readonly backend: SearchBackend;
}

export interface VectorConfig {
  readonly backend: VectorBackend;
  readonly dimensions: number;
  readonly metric: VectorMetric;
  readonly mode: VectorMode;
  /** Scalar type of the `embedded` (usearch) index's vectors; default `f32`. `i8` needs `cosine`. */
  readonly quantization: VectorQuantization;
  /** `pgvector`: the database holding the vector tables; default the PostgreSQL catalog's `database.url`. */
  readonly url: string | null;
  /** `pgvector`: schema of the vector tables; default the catalog's `database.schema` (or `public`). */
  readonly schema: string | null;
  /** `pgvector`: size of its connection pool; default 4. */
  readonly max_connections: number;
  /** Embed every message through the outbox into the `messages` index (vector and hybrid search). */
  readonly embed_messages: boolean;
  /** `faiss`: the faiss-node module's directory; absent: `faiss-node` as Node resolves it. */
  readonly module_path?: string;
  /** `faiss`: index kind, lists, PQ sub-quantizers, training size, lists probed per mode. */
  readonly faiss?: {
    readonly index?: "ivf_pq" | "ivf_flat" | "flat";
    readonly nlist?: number;
    readonly m?: number;
    readonly train_size?: number;
    readonly nprobe_fast?: number;
    readonly nprobe_balanced?: number;
  };
}

export interface EmbedderConfig {
  /** `hashing` (embedded, no network) or `openai` (any OpenAI-compatible embeddings API). */
  readonly backend: EmbedderBackend;
  /** Base URL of the embeddings API (`{url}/embeddings`). */
  readonly url: string;
  /** Bearer token of the embeddings API (a secret). */
  readonly api_key: string | null;
  readonly model: string;
  /** Send `dimensions: vector.dimensions` in each request (models that can shorten their output). */
  readonly request_dimensions: boolean;
  readonly batch_size: number;
  readonly timeout_ms: number;
}

export interface RetentionConfig {
  readonly deleted_messages_days: number;
  readonly session_files_days: number;
  /**
   * Days after which the lifecycle engine moves message and object bodies under
   * `{tenant}/archive/` (still read back); null (the default) = never.
   */
  readonly archive_after_days: number | null;
  /**
   * How long a deleted or expired KV key's tombstone (its last version) is kept: a key written
   * again within it continues above that version (ADR 0025); default 7.
   */
  readonly kv_tombstone_days: number;
  /**
   * Hours an unfinished resumable upload (API-6) lives after it was created or last received
   * bytes; then HEAD/PATCH answer 410 and the `expire-uploads` job removes it. Default 24.
   */
  readonly upload_expiry_hours: number;
}

/** This node among several sharing one catalog (DIST-1). */
export interface NodeConfig {
  /**
   * Stable id of this node: its embedded search and vector indexes consume the outbox under
   * consumers named after it (`search@<id>`). Null (default): generated once and kept in
   * `<data_dir>/node-id`.
   */
  readonly id: string | null;
  /**
   * A node whose heartbeat is older than this many hours is forgotten by the `prune-outbox` job:
   * its cursors stop holding back pruning, and if it comes back it rebuilds its indexes from the
   * catalog. Default 24.
   */
  readonly stale_after_hours: number;
  /**
   * With a shared catalog, a node whose vector backend lives in the node (usearch, exact)
   * refuses to start while another node is live, since memories and collections written through
   * one node would be missing on the others; true starts it anyway. Default false.
   */
  readonly allow_local_vectors: boolean;
}

export interface OutboxConfig {
  /**
   * How long consumed outbox events stay for the change feed (`GET /v1/changes`); older ones
   * that every consumer has passed are pruned, and a feed cursor before them is
   * CHANGES_CURSOR_EXPIRED. 0 keeps nothing once every consumer has it. Default 168 (7 days).
   */
  readonly retention_hours: number;
}

export interface SessionsConfig {
  readonly ttl_seconds: number;
  /** Absolute directory for local session files; default `<data_dir>/sessions`. */
  readonly dir: string;
}

export interface LimitsConfig {
  readonly max_message_bytes: number;
  /** Largest resumable upload in bytes (API-6, advertised as Tus-Max-Size); default 1 TiB. */
  readonly max_upload_bytes: number;
}

export interface ServerConfig {
  readonly host: string;
  /** 0: a port the system chooses when the server starts. */
  readonly port: number;
  /**
   * The origin clients reach the server at (a proxy's, a load balancer's): the OpenAPI
   * document's server and the base of Kura-signed presigned URLs. Null: the address the server
   * listens on (`http://<host>:<bound port>`, `https://` with `tls`; 127.0.0.1 for a wildcard host).
   */
  readonly public_url: string | null;
  readonly base_domain: string | null;
  readonly cors: { readonly origins: readonly string[] };
  /**
   * Longest wait for the next chunk of a request body (per idle period, not per transfer: an
   * upload that keeps moving is never cut), and for a request's headers; then 408
   * REQUEST_TIMEOUT and nothing is written. Default 30000.
   */
  readonly body_timeout_ms: number;
  /**
   * Longest time to receive a whole parsed body (JSON routes), however steadily it trickles;
   * streamed uploads have no whole-transfer limit. Then 408 REQUEST_TIMEOUT. Default 60000.
   */
  readonly buffered_body_timeout_ms: number;
  /** How long an idle keep-alive connection stays open between requests. Default 72000. */
  readonly idle_timeout_ms: number;
  /**
   * On SIGTERM/SIGINT, how long in-flight requests may run before their connections are
   * closed and Kura closes anyway. Default 10000.
   */
  readonly shutdown_timeout_ms: number;
  /** HTTPS only on the server's port; null (the default): plain HTTP. */
  readonly tls: TlsConfig | null;
  /** The S3-compatible endpoint (API-7); `port` null (the default): none. */
  readonly s3: S3EndpointConfig;
}

export interface S3EndpointConfig {
  /** Its own port (0: one the system chooses); HTTPS too when `server.tls` is set. */
  readonly port: number | null;
  /** What GetBucketLocation answers (default us-east-1); signatures for any region are checked. */
  readonly region: string;
  /** Virtual-host-style requests `{bucket}.{domain}` besides path-style ones; null: path-style only. */
  readonly domain: string | null;
}

export interface TlsConfig {
  /** PEM certificate chain (the server's certificate first); absolute once loaded. */
  readonly cert_file: string;
  /** PEM private key of that certificate (not encrypted); absolute once loaded. */
  readonly key_file: string;
  /** PEM CA certificate(s) client certificates are checked against; absolute once loaded. */
  readonly ca_file: string | null;
  /**
   * `require`: a client without a certificate signed by `ca_file` is refused at the handshake
   * (mTLS); `optional`: one is asked for but not needed; `none` (default): none is asked for.
   */
  readonly client_auth: ClientAuthMode;
}

export interface AuthConfig {
  /** HS256 shared secret (a secret). */
  readonly jwt_secret: string | null;
  readonly jwks_url: string | null;
  readonly issuer: string | null;
  readonly audience: string | null;
  /** Longest token lifetime (`exp − iat`) accepted, in seconds; default 86400 (24 h). */
  readonly max_token_lifetime_seconds: number;
  /** Clock skew tolerated on `iat`/`nbf`/`exp`, in seconds; default 60. */
  readonly clock_skew_seconds: number;
  /**
   * A token for a tenant the registry does not know registers it on first use (tier `free`);
   * false: such a token gets 403 TENANT_UNKNOWN. Default true.
   */
  readonly auto_create_tenants: boolean;
  /**
   * How long a node trusts its cached tenant records before it reads the registry version
   * again (one single-row read): another node's change of a tenant (suspension, limits, tier,
   * jwt, domains) holds here within this plus one catalog read. Default 250 ms.
   */
  readonly tenant_refresh_ms: number;
}

/** A tier's limits (TEN-3): a limit left out is no limit. */
export type TierLimits = { readonly [K in TierLimitName]?: number };

/** Tiers by name; `free` always exists. */
export type TiersConfig = Readonly<Record<string, { readonly limits: TierLimits }>>;

/** Encryption at rest (SEC-2); null: off. */
export interface EncryptionConfig {
  /** The master key, 32 bytes in base64 (a secret): given inline, or read from `master_key_file`. */
  readonly master_key: string;
  /** Where the master key was read from (absolute), or null when given inline. */
  readonly master_key_file: string | null;
  /** Earlier master keys (base64, secrets): the data keys they wrap still open until re-wrapped. */
  readonly previous_master_keys: readonly string[];
  /**
   * How long a node trusts its cached data keys before it reads their state from the catalog
   * again: a shred or rotation on another node holds here within this. Default 5000.
   */
  readonly refresh_ms: number;
}

/** The one configuration object the library receives: validated, absolute paths, deep-frozen. */
export interface KuraConfig {
  /** Absolute directory of the embedded defaults; default `./data` against the working directory. */
  readonly data_dir: string;
  readonly durability: Durability;
  readonly database: DatabaseConfig;
  readonly storage: StorageConfig;
  readonly kv: KvConfig;
  readonly search: SearchConfig;
  readonly vector: VectorConfig;
  readonly embedder: EmbedderConfig;
  readonly retention: RetentionConfig;
  readonly outbox: OutboxConfig;
  readonly node: NodeConfig;
  readonly sessions: SessionsConfig;
  readonly limits: LimitsConfig;
  readonly server: ServerConfig;
  readonly auth: AuthConfig;
  readonly tiers: TiersConfig;
  readonly encryption: EncryptionConfig | null;
}
