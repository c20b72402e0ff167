/**
 * `storage.options` for the `gcs` backend (snake_case, as written in config files).
 * Every problem is reported at once: cross-field rules run even when a field is malformed.
 */
import { z } from "zod";
import { keyProblem } from "../../../core/keys.js";
import { parseOptions } from "../../../core/options.js";

// Bucket names: 3-63 characters of lowercase letters, digits, `-`, `_` and `.` (dotted names
// up to 222 in total, with dot-separated parts of at most 63).
const BUCKET_NAME = /^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$/;

const credentialsJson = z.string().refine((s) => {
  try {
    const parsed: unknown = JSON.parse(s);
    return typeof parsed === "object" && parsed !== null && !Array.isArray(parsed);
  } catch {
    return false;
  }
}, "must be a service-account key file's JSON text");

const rawSchema = z
  .object({
    /** Bucket name. Required. Not secret. The bucket must exist; Kura does not create it. */
    bucket: z
      .string()
      .regex(BUCKET_NAME, "must be a GCS bucket name (3-63 of a-z 0-9 - _ .)")
      .refine(
        (b) => b.split(".").every((part) => part.length <= 63),
        "dot-separated parts are at most 63 characters",
      ),
    /** Project id, used for requests that need one. Default: from the credentials. Not secret. */
    project_id: z.string().min(1).optional(),
    /**
     * JSON API endpoint, e.g. `http://127.0.0.1:9199` for an emulator. Requests to it carry no
     * OAuth tokens unless `endpoint_auth` is true. Default: Google's. Not secret.
     */
    endpoint: z.url({ protocol: /^https?$/, error: "must be an http:// or https:// URL" }).optional(),
    /**
     * Send OAuth tokens to the custom `endpoint` too (a private Google endpoint rather than an
     * emulator). Default false. Not secret.
     */
    endpoint_auth: z.boolean().default(false),
    /** Path of a service-account key file. Default: none. Not secret (the file is). */
    credentials_file: z.string().min(1).optional(),
    /**
     * A service-account key file's JSON text. Default: none; without it or `credentials_file`
     * the Google default chain applies (GOOGLE_APPLICATION_CREDENTIALS, gcloud, metadata
     * server). Secret (use `env:VAR`).
     */
    credentials_json: credentialsJson.optional(),
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
     * Bodies up to this many MiB go in one request with their metadata; larger ones (and
     * streams that turn out larger) through a resumable upload session. Default 8. Not secret.
     */
    multipart_threshold_mb: z
      .number()
      .int()
      .min(1)
      .max(5 * 1024)
      .default(8),
    /**
     * Request size in MiB within a resumable session. 0 streams the whole body in one request
     * without buffering it (Google's advice when chunks are not retried one by one, and Kura
     * retries whole operations); N sends N MiB requests, each held in memory. Default 0. Not secret.
     */
    multipart_chunk_mb: z
      .number()
      .int()
      .min(0)
      .max(5 * 1024)
      .default(0),
    /** Deletes sent at once by one `delete` of many keys. Default 16. Not secret. */
    delete_concurrency: z.number().int().min(1).max(256).default(16),
  })
  .strict();

type Raw = z.infer<typeof rawSchema>;

const always = { when: () => true } as const;

const checkedSchema = rawSchema.refine(
  (o) => !(o.credentials_file !== undefined && o.credentials_json !== undefined),
  {
    ...always,
    path: ["credentials_json"],
    message: "use either credentials_file or credentials_json, not both",
  },
);

/** Validated options with defaults resolved: what `gcsBlobStore.create` receives. */
export interface GcsOptions extends Omit<Raw, "prefix"> {
  /** "" or a prefix ending in "/". */
  prefix: string;
}

export const gcsOptionsSchema = checkedSchema.transform(
  (o): GcsOptions => ({
    ...o,
    prefix:
      o.prefix === undefined || o.prefix === "" || o.prefix.endsWith("/") ? (o.prefix ?? "") : `${o.prefix}/`,
  }),
);

/** Parse raw `storage.options`; throws `CONFIG_INVALID` listing every problem. */
export function parseGcsOptions(raw: unknown): GcsOptions {
  return Object.freeze(parseOptions(gcsOptionsSchema, raw, "storage.options"));
}
