/**
 * Content URLs (MSG-6, seed 000): every stored body is addressable as
 * `local://storage/{key}` (fs), `s3://{bucket}/{key}`, `gs://{bucket}/{key}`,
 * `azure://{container}/{key}` or `memory://{name}/{key}`. Key segments are percent-encoded.
 *
 * Resolving a URL succeeds only for a store that is configured here and only for keys under
 * the calling tenant's prefix; anything else is NotFound, so a URL never reveals whether
 * another tenant's object exists.
 */
import { KuraError } from "../core/errors.js";
import { assertValidId, keyProblem } from "../core/keys.js";
import type { BlobStore } from "../ports/blob-store.js";

/** The schemes stores declare (`capabilities.urlScheme`); any other is not a content URL. */
const SCHEMES: ReadonlySet<string> = new Set(["local", "s3", "gs", "azure", "memory"]);

export interface ParsedContentUrl {
  /** `local`, `s3`, `gs`, `azure` or `memory`. */
  scheme: string;
  /** Bucket, container, memory name, or `storage` for local. */
  bucket: string;
  /** The key inside the bucket (for stores with a prefix, the prefix is part of it). */
  path: string;
}

function invalid(url: string, why: string): KuraError {
  return new KuraError("URL_INVALID", `not a content URL Kura understands (${why})`, {
    operation: "content-url.parse",
    context: { url: url.slice(0, 300) },
  });
}

export function parseContentUrl(url: string): ParsedContentUrl {
  if (typeof url !== "string" || url.length > 4096)
    throw invalid(String(url).slice(0, 50), "not a string of sane length");
  const m = /^([a-z][a-z0-9+.-]*):\/\/([^/?#]+)\/([^?#]+)$/.exec(url);
  if (!m) throw invalid(url, "expected scheme://bucket/key");
  const [, scheme, bucket, rawPath] = m as unknown as [string, string, string, string];
  if (!SCHEMES.has(scheme)) throw invalid(url, `unknown scheme ${scheme}`);
  let path: string;
  try {
    path = rawPath.split("/").map(decodeURIComponent).join("/");
  } catch {
    throw invalid(url, "bad percent-encoding");
  }
  const problem = keyProblem(path);
  if (problem) throw invalid(url, problem);
  return { scheme, bucket: decodeURIComponent(bucket), path };
}

// Characters that need no escaping in a URL path (most keys, e.g. every message key).
const PLAIN_PATH = /^[A-Za-z0-9._~!$&'()*+,;=:@/-]*$/;

// Percent-encode each segment, but keep "@" (legal in a URL path) readable.
const encodePath = (key: string) =>
  PLAIN_PATH.test(key)
    ? key
    : key
        .split("/")
        .map((s) => encodeURIComponent(s).replaceAll("%40", "@"))
        .join("/");

/** A store as content URLs see it: its URL scheme, bucket, and the key prefix inside the bucket. */
function describe(store: BlobStore): { scheme: string; bucket: string; prefix: string } {
  const scheme = store.capabilities.urlScheme;
  if (!SCHEMES.has(scheme))
    throw new KuraError(
      "URL_INVALID",
      `no content URL scheme for a store declaring ${JSON.stringify(scheme)}`,
      {
        operation: "content-url",
      },
    );
  // Local files have no bucket: every key is under the one `storage`.
  if (store.capabilities.localFiles) return { scheme, bucket: "storage", prefix: "" };
  const slash = store.location.indexOf("/");
  return slash < 0
    ? { scheme, bucket: store.location, prefix: "" }
    : {
        scheme,
        bucket: store.location.slice(0, slash),
        prefix: `${store.location.slice(slash + 1).replace(/\/$/, "")}/`,
      };
}

export class ContentUrls {
  private readonly stores: { id: string; store: BlobStore; scheme: string; bucket: string; prefix: string }[];
  /** `scheme://bucket/prefix` per store id, the constant part of every URL. */
  private readonly bases = new Map<string, { base: string; prefix: string }>();

  /** `stores`: the configured stores by id (e.g. `{ primary: fsStore }`). */
  constructor(stores: Record<string, BlobStore>) {
    this.stores = Object.entries(stores).map(([id, store]) => ({ id, store, ...describe(store) }));
    for (const s of this.stores)
      this.bases.set(s.id, { base: `${s.scheme}://${encodeURIComponent(s.bucket)}/`, prefix: s.prefix });
  }

  /** The content URL of `key` in the store with this id. */
  urlFor(storeId: string, key: string): string {
    const b = this.bases.get(storeId);
    if (!b)
      throw new KuraError("URL_STORE_UNKNOWN", `no store ${storeId} is configured`, {
        operation: "content-url",
      });
    return b.base + encodePath(b.prefix + key);
  }

  /**
   * Resolve a URL to a configured store and key, requiring the key to lie under
   * `{tenant}/`. Unknown stores → `URL_STORE_UNKNOWN`; other tenants' keys → `BLOB_NOT_FOUND`.
   */
  resolve(url: string, tenant: string): { storeId: string; store: BlobStore; key: string } {
    assertValidId(tenant, "tenant", "content-url.resolve");
    const parsed = parseContentUrl(url);
    const s = this.stores.find((x) => x.scheme === parsed.scheme && x.bucket === parsed.bucket);
    if (!s) {
      throw new KuraError("URL_STORE_UNKNOWN", "the URL names a store that is not configured", {
        operation: "content-url.resolve",
        context: { scheme: parsed.scheme },
      });
    }
    const key = parsed.path.startsWith(s.prefix) ? parsed.path.slice(s.prefix.length) : undefined;
    if (key === undefined || !key.startsWith(`${tenant}/`)) {
      throw new KuraError("BLOB_NOT_FOUND", "no object under this URL", { operation: "content-url.resolve" });
    }
    return { storeId: s.id, store: s.store, key };
  }

  /** `get_object_from_url` of seed 000: the bytes behind a URL, verified (BLOB-3). */
  async read(url: string, tenant: string, options: { expectedSha256?: string } = {}): Promise<Buffer> {
    const { store, key } = this.resolve(url, tenant);
    return (await store.getBuffer(key, options)).data;
  }
}
