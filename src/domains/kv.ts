/**
 * Tenant-scoped views of the KV store (KV-1, TEN-1). Every full KV key is
 * `{tenant}:{kind}:{…}`, built here and only here: the tenant comes from the scope Kura
 * resolved, never from a key the caller passed. Tenant ids cannot contain `:` (IDS-1), so one
 * tenant's prefix never covers another's (`a:` vs `ab:`).
 *
 * `kura.tenant(t).kv(namespace)` is the general-purpose KV API (`/v1/kv/{namespace}/{key}`);
 * sessions, config, drafts and the cache use their own kinds through the same class.
 */
import { isKuraError, KuraError } from "../core/errors.js";
import { assertValidId } from "../core/keys.js";
import {
  type KvEntry,
  type KvIncrOptions,
  type KvScanOptions,
  type KvScanPage,
  type KvSetOptions,
  type KvStore,
  type KvWriteResult,
  kvKeyProblem,
  MAX_KV_KEY_BYTES,
} from "../ports/kv-store.js";

/** The one place a tenant's KV prefix is made: `{tenant}:`. */
export function tenantKvPrefix(tenantId: string): string {
  assertValidId(tenantId, "tenant id", "kv");
  return `${tenantId}:`;
}

/** A tenant's full KV key for `key` (e.g. `acme` + `session:s1:meta:lang` → `acme:session:s1:meta:lang`). */
export function tenantKvKey(tenantId: string, key: string): string {
  return tenantKvPrefix(tenantId) + key;
}

/**
 * The KV store seen through a fixed prefix: keys in and out are relative to it. Relative keys
 * follow the KV key rule (`kvKeyProblem`) and the prefixed key must fit it too.
 */
export class KvNamespace {
  /** UTF-8 bytes of the prefix. */
  private readonly prefixBytes: number;
  /** Rethrows a store error in the caller's terms (one function for every call). */
  private readonly rethrow = (e: unknown): never => this.relative(e);

  constructor(
    readonly store: KvStore,
    readonly prefix: string,
  ) {
    this.prefixBytes = Buffer.byteLength(prefix, "utf8");
  }

  /**
   * Whether the prefixed form of a valid relative key keeps the key rule. Two valid keys
   * concatenate to well-formed text without control characters, so only the length can break
   * it; a UTF-16 unit is at most 3 bytes of UTF-8, which settles most keys without counting.
   */
  private fits(key: string): boolean {
    if (this.prefixBytes + 3 * key.length <= MAX_KV_KEY_BYTES) return true;
    return this.prefixBytes + Buffer.byteLength(key, "utf8") <= MAX_KV_KEY_BYTES;
  }

  private full(key: string, operation: string): string {
    let problem = kvKeyProblem(key);
    if (problem === undefined && !this.fits(key)) {
      // Fits the rule alone but not with the prefix: name the limit that applies here.
      const scope = this.prefixBytes;
      problem = `key must be at most ${MAX_KV_KEY_BYTES - scope} bytes of UTF-8 here (${MAX_KV_KEY_BYTES} bytes minus ${scope} for the tenant and namespace)`;
    }
    if (problem !== undefined) {
      throw new KuraError("KV_KEY_INVALID", `invalid KV key: ${problem}`, {
        operation,
        context: { key: typeof key === "string" ? key.slice(0, 200) : typeof key },
      });
    }
    return this.prefix + key;
  }

  /**
   * Errors speak of the caller's key, never of the full stored key: the tenant prefix and Kura's
   * internal layout (`acme:kv:prefs:`) stay out of messages and context.
   */
  private relative(e: unknown): never {
    if (!isKuraError(e)) throw e;
    const hide = (v: unknown) => (typeof v === "string" ? v.split(this.prefix).join("") : v);
    throw new KuraError(e.code, hide(e.message) as string, {
      kind: e.kind,
      retryable: e.retryable,
      cause: e.cause,
      ...(e.operation === undefined ? {} : { operation: e.operation }),
      context: Object.fromEntries(Object.entries(e.context).map(([k, v]) => [k, hide(v)])),
    });
  }

  private strip<T>(entry: KvEntry<T>): KvEntry<T> {
    return { ...entry, key: entry.key.slice(this.prefix.length) };
  }

  /** A narrower view: `sub("drafts:")` sees only keys under `{prefix}drafts:`. */
  sub(prefix: string): KvNamespace {
    return new KvNamespace(this.store, this.full(prefix, "kv.namespace"));
  }

  // The hot calls are not `async` (one promise less per call); an invalid key still rejects.
  get<T = unknown>(key: string): Promise<T | undefined> {
    let full: string;
    try {
      full = this.full(key, "kv.get");
    } catch (e) {
      return Promise.reject(e);
    }
    return this.store.get<T>(full).catch(this.rethrow);
  }

  async getEntry<T = unknown>(key: string): Promise<KvEntry<T> | undefined> {
    const entry = await this.store.getEntry<T>(this.full(key, "kv.get")).catch(this.rethrow);
    return entry && this.strip(entry);
  }

  set(key: string, value: unknown, options?: KvSetOptions): Promise<KvWriteResult> {
    let full: string;
    try {
      full = this.full(key, "kv.set");
    } catch (e) {
      return Promise.reject(e);
    }
    return this.store.set(full, value, options).catch(this.rethrow);
  }

  async delete(key: string, options?: { ifVersion?: number }): Promise<boolean> {
    return this.store.delete(this.full(key, "kv.delete"), options).catch(this.rethrow);
  }

  async incr(key: string, options?: KvIncrOptions): Promise<{ value: number; version: number }> {
    return this.store.incr(this.full(key, "kv.incr"), options).catch(this.rethrow);
  }

  getMany<T = unknown>(keys: readonly string[]): Promise<(T | undefined)[]> {
    const full: string[] = new Array(keys.length);
    try {
      for (let i = 0; i < keys.length; i++) full[i] = this.full(keys[i] as string, "kv.getMany");
    } catch (e) {
      return Promise.reject(e);
    }
    return this.store.getMany<T>(full).catch(this.rethrow);
  }

  async setMany(items: readonly { key: string; value: unknown; ttlMs?: number }[]): Promise<KvWriteResult[]> {
    const full = new Array<{ key: string; value: unknown; ttlMs?: number }>(items.length);
    for (let i = 0; i < items.length; i++) {
      const item = items[i] as { key: string; value: unknown; ttlMs?: number };
      const key = this.full(item.key, "kv.setMany");
      full[i] =
        item.ttlMs === undefined ? { key, value: item.value } : { key, value: item.value, ttlMs: item.ttlMs };
    }
    return this.store.setMany(full).catch(this.rethrow);
  }

  /** Keys under `prefix` (relative; may be empty) a page at a time; see `KvStore.scan`. */
  async scan<T = unknown>(prefix = "", options?: KvScanOptions): Promise<KvScanPage<T>> {
    if (prefix !== "") this.full(prefix, "kv.scan");
    const page = await this.store.scan<T>(this.prefix + prefix, options).catch(this.rethrow);
    return { items: page.items.map((e) => this.strip(e)), cursor: page.cursor };
  }

  /** Every entry under `prefix`, following cursors (for small sets: a session's metadata). */
  async scanAll<T = unknown>(
    prefix = "",
    options: Omit<KvScanOptions, "cursor"> = {},
  ): Promise<KvEntry<T>[]> {
    const seen = new Map<string, KvEntry<T>>();
    let cursor: string | undefined;
    do {
      const page = await this.scan<T>(prefix, { limit: 1000, ...options, ...(cursor ? { cursor } : {}) });
      for (const item of page.items) seen.set(item.key, item);
      cursor = page.cursor;
    } while (cursor);
    return [...seen.values()];
  }
}

/** The tenant's root view (`{tenant}:`): engine-internal, the public API hands out narrower ones. */
export function tenantKv(store: KvStore, tenantId: string): KvNamespace {
  return new KvNamespace(store, tenantKvPrefix(tenantId));
}
