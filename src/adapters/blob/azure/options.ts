/**
 * `storage.options` for the `azure` backend (snake_case, as written in config files).
 * Every problem is reported at once: cross-field rules run even when a field is malformed.
 */
import { z } from "zod";
import { keyProblem } from "../../../core/keys.js";
import { parseOptions } from "../../../core/options.js";

// Azure container names: 3-63 of lowercase letters, digits and single hyphens, starting and
// ending with a letter or digit.
const CONTAINER_NAME = /^(?=.{3,63}$)[a-z0-9]+(-[a-z0-9]+)*$/;
// Azure's storage account names.
const ACCOUNT_NAME = /^[a-z0-9]{3,24}$/;
/** A block blob holds at most 50,000 blocks of up to 4000 MiB each. */
const MAX_BLOCK_MB = 4000;

const rawSchema = z
  .object({
    /** Container name. Required. Not secret. Must exist unless `create_container` is true. */
    container: z
      .string()
      .regex(CONTAINER_NAME, "must be an Azure container name (3-63 of a-z 0-9 and single -)"),
    /**
     * Connection string from the portal (`DefaultEndpointsProtocol=…;AccountName=…;AccountKey=…`)
     * or `UseDevelopmentStorage=true`. Use it instead of `account_name` + `account_key`.
     * Default: none. Secret (use `env:VAR`).
     */
    connection_string: z.string().min(1).optional(),
    /** Storage account name, used with `account_key`. Default: none. Not secret. */
    account_name: z.string().regex(ACCOUNT_NAME, "must be 3-24 lowercase letters and digits").optional(),
    /** Shared key of the account (base64), used with `account_name`. Default: none. Secret (use `env:VAR`). */
    account_key: z.string().min(1).optional(),
    /**
     * Blob service URL, e.g. `http://127.0.0.1:10000/devstoreaccount1` for azurite. Only with
     * `account_name` + `account_key` (a connection string names its own endpoint).
     * Default `https://{account_name}.blob.core.windows.net`. Not secret.
     */
    endpoint: z.url({ protocol: /^https?$/, error: "must be an http:// or https:// URL" }).optional(),
    /**
     * Key prefix inside the container, e.g. `kura/prod`; the store reads and writes only below
     * it. A trailing `/` is added when missing. Default: none (the container root). Not secret.
     */
    prefix: z
      .string()
      .refine(
        (p) => p === "" || keyProblem(`${p}x`) === undefined,
        "must be a valid key prefix (BLOB-7 rules)",
      )
      .optional(),
    /** Bodies larger than this many MiB are uploaded as staged blocks. Default 8. Not secret. */
    multipart_threshold_mb: z.number().int().min(1).max(MAX_BLOCK_MB).default(8),
    /** Block size in MiB for staged uploads, 1…4000. Default 8. Not secret. */
    multipart_chunk_mb: z.number().int().min(1).max(MAX_BLOCK_MB).default(8),
    /** Blocks uploaded at once by one put. Default 4. Not secret. */
    upload_concurrency: z.number().int().min(1).max(64).default(4),
    /** Create the container when the store opens if it does not exist. Default false. Not secret. */
    create_container: z.boolean().default(false),
  })
  .strict();

type Raw = z.infer<typeof rawSchema>;

// `when: () => true` makes each rule run even when another field failed, so a user sees every
// problem at once.
const always = { when: () => true } as const;

const checkedSchema = rawSchema
  .refine((o) => o.connection_string !== undefined || o.account_name !== undefined, {
    ...always,
    path: ["connection_string"],
    message: "either connection_string or account_name + account_key is required",
  })
  .refine(
    (o) =>
      !(o.connection_string !== undefined && (o.account_name !== undefined || o.account_key !== undefined)),
    {
      ...always,
      path: ["connection_string"],
      message: "use either connection_string or account_name + account_key, not both",
    },
  )
  .refine((o) => !(o.connection_string !== undefined && o.endpoint !== undefined), {
    ...always,
    path: ["endpoint"],
    message: "is not used with connection_string (put BlobEndpoint in the connection string)",
  })
  .refine((o) => !(o.account_name !== undefined && o.account_key === undefined), {
    ...always,
    path: ["account_key"],
    message: "is required when account_name is set",
  })
  .refine((o) => !(o.account_key !== undefined && o.account_name === undefined), {
    ...always,
    path: ["account_name"],
    message: "is required when account_key is set",
  });

/** Validated options with defaults resolved: what `azureBlobStore.create` receives. */
export interface AzureOptions extends Omit<Raw, "prefix"> {
  /** "" or a prefix ending in "/". */
  prefix: string;
}

export const azureOptionsSchema = checkedSchema.transform(
  (o): AzureOptions => ({
    ...o,
    prefix:
      o.prefix === undefined || o.prefix === "" || o.prefix.endsWith("/") ? (o.prefix ?? "") : `${o.prefix}/`,
  }),
);

/** Parse raw `storage.options`; throws `CONFIG_INVALID` listing every problem. */
export function parseAzureOptions(raw: unknown): AzureOptions {
  return Object.freeze(parseOptions(azureOptionsSchema, raw, "storage.options"));
}
