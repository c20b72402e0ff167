/**
 * Encryption at rest of the state plane (SEC-2): a `KvStore` in, a `KvStore` out. A value under
 * a tenant's namespace (`{tenant}:…`: sessions, drafts, flags, memories, the tenant's KV) is
 * stored as one sealed buffer (`core/sealed.ts`) of its MessagePack encoding; keys are ids and
 * stay readable (scans, TTLs, versions and CAS work on them unchanged). Counters (`incr`) stay
 * numbers: a count is no tenant text. Keys of Kura's own (`~…`, none with a tenant prefix) pass
 * through, as do values stored before encryption was on.
 */
import { Packr } from "msgpackr";
import { KuraError } from "../core/errors.js";
import { isValidId } from "../core/keys.js";
import { looksSealed, newHeader, parseHeader, SealedDamaged, seal, unseal } from "../core/sealed.js";
import type { TenantKeys } from "../ports/key-provider.js";
import type {
  KvEntry,
  KvIncrOptions,
  KvScanOptions,
  KvScanPage,
  KvSetManyItem,
  KvSetOptions,
  KvStore,
  KvWriteResult,
} from "../ports/kv-store.js";

const packr = new Packr({ useRecords: false, moreTypes: true });

/** The tenant of a KV key (`{tenant}:…`), or undefined for Kura's own keys. */
export function tenantOfKvKey(key: string): string | undefined {
  const colon = key.indexOf(":");
  if (colon <= 0 || key.startsWith("~")) return undefined;
  const tenant = key.slice(0, colon);
  return isValidId(tenant) ? tenant : undefined;
}

export class EncryptingKvStore implements KvStore {
  readonly scheme: string;
  readonly capabilities: KvStore["capabilities"];
  readonly maxValueBytes: number;
  readonly tombstoneRetentionMs: number;
  takeToken?: KvStore["takeToken"];

  constructor(
    private readonly inner: KvStore,
    private readonly keys: TenantKeys,
  ) {
    this.scheme = inner.scheme;
    this.capabilities = inner.capabilities;
    this.maxValueBytes = inner.maxValueBytes;
    this.tombstoneRetentionMs = inner.tombstoneRetentionMs;
    if (inner.takeToken) {
      const take = inner.takeToken.bind(inner);
      this.takeToken = (name, bucket) => take(name, bucket);
    }
  }

  private async sealValue(key: string, value: unknown): Promise<unknown> {
    const tenant = tenantOfKvKey(key);
    if (tenant === undefined || value === undefined) return value;
    const dataKey = this.keys.currentSync(tenant) ?? (await this.keys.current(tenant));
    return seal(dataKey.key, newHeader(dataKey.keyId, dataKey.version), packr.pack(value));
  }

  private async openValue<T>(key: string, value: unknown): Promise<T> {
    const tenant = tenantOfKvKey(key);
    if (tenant === undefined || !(value instanceof Uint8Array) || !looksSealed(value)) return value as T;
    const header = parseHeader(value);
    if (!header) throw damaged(key);
    const ref = { keyId: header.keyId, version: header.version };
    const dataKey = this.keys.getSync(tenant, ref) ?? (await this.keys.get(tenant, ref));
    try {
      return packr.unpack(unseal(dataKey.key, header, value)) as T;
    } catch (e) {
      if (e instanceof SealedDamaged) throw damaged(key, e);
      throw e;
    }
  }

  async get<T = unknown>(key: string): Promise<T | undefined> {
    const v = await this.inner.get(key);
    return v === undefined ? undefined : this.openValue<T>(key, v);
  }

  async getEntry<T = unknown>(key: string): Promise<KvEntry<T> | undefined> {
    const e = await this.inner.getEntry(key);
    return e === undefined ? undefined : { ...e, value: await this.openValue<T>(key, e.value) };
  }

  async set(key: string, value: unknown, options?: KvSetOptions): Promise<KvWriteResult> {
    return this.inner.set(key, await this.sealValue(key, value), options);
  }

  delete(key: string, options?: { ifVersion?: number }): Promise<boolean> {
    return this.inner.delete(key, options);
  }

  incr(key: string, options?: KvIncrOptions): Promise<{ value: number; version: number }> {
    return this.inner.incr(key, options);
  }

  async getMany<T = unknown>(keys: readonly string[]): Promise<(T | undefined)[]> {
    const values = await this.inner.getMany(keys);
    return Promise.all(
      values.map((v, i) => (v === undefined ? undefined : this.openValue<T>(keys[i] as string, v))),
    );
  }

  async setMany(items: readonly KvSetManyItem[]): Promise<KvWriteResult[]> {
    const sealed: KvSetManyItem[] = [];
    for (const item of items) sealed.push({ ...item, value: await this.sealValue(item.key, item.value) });
    return this.inner.setMany(sealed);
  }

  async scan<T = unknown>(prefix: string, options?: KvScanOptions): Promise<KvScanPage<T>> {
    const page = await this.inner.scan(prefix, options);
    if (options?.keysOnly) return page as KvScanPage<T>;
    const items = await Promise.all(
      page.items.map(async (e) => ({ ...e, value: await this.openValue<T>(e.key, e.value) })),
    );
    return { ...page, items };
  }

  sweepExpired(options?: { now?: number; limit?: number }): Promise<number> {
    return this.inner.sweepExpired(options);
  }

  forgetPrefix(prefix: string): Promise<number> {
    return this.inner.forgetPrefix(prefix);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

function damaged(key: string, cause?: unknown): KuraError {
  return new KuraError("BODY_CORRUPT", "an encrypted KV value does not authenticate", {
    operation: "kv.get",
    context: { key },
    cause,
  });
}
