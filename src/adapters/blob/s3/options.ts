/**
 * `storage.options` for the `s3` backend (snake_case, as written in config files).
 * Every problem is reported at once: cross-field rules run even when a field is malformed.
 */
import { z } from "zod";
import { keyProblem } from "../../../core/keys.js";
import { parseOptions } from "../../../core/options.js";

// DNS-compatible bucket names (what AWS requires of new buckets and radosgw accepts).
const BUCKET_NAME = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
/** S3 allows parts of 5 MiB … 5 GiB (the last part may be smaller). */
const MIN_PART_MB = 5;
const MAX_PART_MB = 5 * 1024;

const rawSchema = z
  .object({
    /** Bucket name. Required. Not secret. The bucket must exist; Kura does not create it. */
    bucket: z.string().regex(BUCKET_NAME, "must be a DNS-compatible bucket name (3-63 of a-z 0-9 . -)"),
    /** Region used for signing. Default "us-east-1". Not secret. */
    region: z.string().min(1).default("us-east-1"),
    /** Endpoint URL for S3-compatible servers (radosgw, MinIO, …). Default: AWS. Not secret. */
    endpoint: z.url({ protocol: /^https?$/, error: "must be an http:// or https:// URL" }).optional(),
    /**
     * Address buckets as `endpoint/bucket/key` instead of `bucket.endpoint/key`. Default false;
     * setting `endpoint` does not imply it (most S3-compatible servers need it: set it). Not secret.
     */
    force_path_style: z.boolean().default(false),
    /**
     * Key prefix inside the bucket, e.g. `kura/prod`; the store reads and writes only below it.
     * A trailing `/` is added when missing. Default: none (the bucket root). Not secret.
     */
    prefix: z
      .string()
      .refine(
        (p) => p === "" || keyProblem(`${p}x`) === undefined,
        "must be a valid key prefix (BLOB-7 rules)",
      )
      .optional(),
    /**
     * Where credentials come from: "static" (the keys below) or "default_chain" (the AWS SDK's
     * provider chain: environment, shared config files, web identity, instance metadata).
     * Default: "static" when `access_key_id` is set, else "default_chain". Not secret.
     */
    credentials: z.enum(["static", "default_chain"]).optional(),
    /** Access key id for "static" credentials. Secret (use `env:VAR`). */
    access_key_id: z.string().min(1).optional(),
    /** Secret access key for "static" credentials. Secret (use `env:VAR`). */
    secret_access_key: z.string().min(1).optional(),
    /** Session token for temporary "static" credentials. Default: none. Secret (use `env:VAR`). */
    session_token: z.string().min(1).optional(),
    /** Streams larger than this many MiB are uploaded in parts. Default 8. Not secret. */
    multipart_threshold_mb: z.number().int().min(1).max(MAX_PART_MB).default(8),
    /** Part size in MiB for multipart uploads, 5…5120. Default 8. Not secret. */
    multipart_chunk_mb: z.number().int().min(MIN_PART_MB).max(MAX_PART_MB).default(8),
    /**
     * Server-side encryption: "none" (the bucket's default applies), "sse-s3" (AES256 with
     * keys the service manages) or "sse-kms" (with `kms_key_id`). Default "none". Not secret.
     */
    encryption: z.enum(["none", "sse-s3", "sse-kms"]).default("none"),
    /** KMS key id or ARN; required with "sse-kms" and only allowed with it. Not secret. */
    kms_key_id: z.string().min(1).optional(),
    /**
     * Milliseconds one request may take until its response starts (connect, send, wait).
     * Streaming a response body is not bounded by it. Default 30000. Not secret.
     */
    request_timeout_ms: z.number().int().min(100).max(3_600_000).default(30_000),
  })
  .strict();

type Raw = z.infer<typeof rawSchema>;

// `when: () => true` makes each rule run even when another field failed, so a user sees every
// problem at once. The values may then be of the wrong type, hence the plain comparisons.
const always = { when: () => true } as const;

const checkedSchema = rawSchema
  .refine((o) => !(o.encryption === "sse-kms" && !o.kms_key_id), {
    ...always,
    path: ["kms_key_id"],
    message: 'is required when encryption is "sse-kms"',
  })
  .refine((o) => !(o.kms_key_id !== undefined && o.encryption !== "sse-kms"), {
    ...always,
    path: ["kms_key_id"],
    message: 'is only allowed when encryption is "sse-kms"',
  })
  .refine((o) => !(o.access_key_id !== undefined && o.secret_access_key === undefined), {
    ...always,
    path: ["secret_access_key"],
    message: "is required when access_key_id is set",
  })
  .refine((o) => !(o.secret_access_key !== undefined && o.access_key_id === undefined), {
    ...always,
    path: ["access_key_id"],
    message: "is required when secret_access_key is set",
  })
  .refine(
    (o) =>
      !(o.credentials === "static" && o.access_key_id === undefined && o.secret_access_key === undefined),
    {
      ...always,
      path: ["access_key_id"],
      message: 'is required when credentials is "static"',
    },
  )
  .refine(
    (o) =>
      !(
        o.credentials === "default_chain" &&
        (o.access_key_id !== undefined || o.secret_access_key !== undefined || o.session_token !== undefined)
      ),
    {
      ...always,
      path: ["credentials"],
      message: '"default_chain" does not use access_key_id, secret_access_key or session_token',
    },
  )
  .refine((o) => !(o.session_token !== undefined && o.access_key_id === undefined), {
    ...always,
    path: ["session_token"],
    message: "is only used with access_key_id and secret_access_key",
  });

/** Validated options with defaults resolved: what `s3BlobStore.create` receives. */
export interface S3Options extends Omit<Raw, "credentials" | "prefix"> {
  credentials: "static" | "default_chain";
  /** "" or a prefix ending in "/". */
  prefix: string;
}

export const s3OptionsSchema = checkedSchema.transform(
  (o): S3Options => ({
    ...o,
    credentials: o.credentials ?? (o.access_key_id !== undefined ? "static" : "default_chain"),
    prefix:
      o.prefix === undefined || o.prefix === "" || o.prefix.endsWith("/") ? (o.prefix ?? "") : `${o.prefix}/`,
  }),
);

/** Parse raw `storage.options`; throws `CONFIG_INVALID` listing every problem. */
export function parseS3Options(raw: unknown): S3Options {
  return Object.freeze(parseOptions(s3OptionsSchema, raw, "storage.options"));
}
