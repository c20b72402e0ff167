/**
 * The key ring (SEC-2): each tenant's data keys, read from the catalog's `tenant_keys`, unwrapped
 * by the key provider (the master key) and cached in memory.
 *
 * - A tenant's first write creates version 1 (random 32 bytes); two nodes racing both read back
 *   the one row that won. New data is encrypted with the newest version that is not destroyed.
 * - Reads name (key id, version) in their header: a version this node has not seen makes it read
 *   the rows again (another node rotated); a key id the tenant does not have is `BODY_CORRUPT`.
 * - A shred (any `destroyed` row) answers `TENANT_KEYS_DESTROYED` for every call. Other nodes see
 *   it when their cache entry is older than `refreshMs` (every call past that reads the rows
 *   again): a shred holds on every node within `refreshMs` plus one catalog read.
 */
import { hkdfSync, randomBytes } from "node:crypto";
import { KuraError } from "../../core/errors.js";
import type {
  DataKey,
  DataKeyRef,
  KeyProvider,
  TenantKeyRow,
  TenantKeyStore,
  TenantKeys,
} from "../../ports/key-provider.js";

interface Entry {
  loadedAt: number;
  destroyed: boolean;
  rows: TenantKeyRow[];
  keys: Map<number, DataKey>;
  search?: Buffer;
}

export interface KeyRingOptions {
  store: TenantKeyStore;
  provider: KeyProvider;
  clock: () => number;
  /** How long a cached tenant entry is trusted (ms). */
  refreshMs: number;
}

/** The context a data key is wrapped in: a wrapped key moved to another row does not open. */
const wrapContext = (tenantId: string, keyId: string, version: number) =>
  `kura data key\0${tenantId}\0${keyId}\0${version}`;

export function destroyedError(tenantId: string, operation = "keys"): KuraError {
  return new KuraError("TENANT_KEYS_DESTROYED", `the data keys of tenant ${tenantId} were destroyed`, {
    operation,
    context: { tenantId },
  });
}

export class KeyRing implements TenantKeys {
  private readonly entries = new Map<string, Entry>();
  private readonly loading = new Map<string, Promise<Entry>>();

  constructor(private readonly options: KeyRingOptions) {}

  /** The store of the tenants' keys (the catalog, below its encrypting layer). */
  get store(): TenantKeyStore {
    return this.options.store;
  }

  private fresh(tenantId: string): Entry | undefined {
    const e = this.entries.get(tenantId);
    return e && this.options.clock() - e.loadedAt < this.options.refreshMs ? e : undefined;
  }

  /** The tenant's rows read again and their keys unwrapped (one read per tenant at a time). */
  private load(tenantId: string): Promise<Entry> {
    let p = this.loading.get(tenantId);
    if (!p) {
      p = this.read(tenantId).finally(() => this.loading.delete(tenantId));
      this.loading.set(tenantId, p);
    }
    return p;
  }

  private async read(tenantId: string): Promise<Entry> {
    const rows = await this.options.store.tenantKeys(tenantId);
    const destroyed = rows.some((r) => r.state === "destroyed");
    const before = this.entries.get(tenantId);
    const keys = new Map<number, DataKey>();
    if (!destroyed)
      for (const r of rows) {
        const known = before?.keys.get(r.version);
        if (known && known.keyId === r.keyId) keys.set(r.version, known);
        else if (r.wrapped !== null)
          keys.set(r.version, {
            keyId: r.keyId,
            version: r.version,
            key: await this.options.provider.unwrap(
              r.wrapped,
              r.masterKeyId,
              wrapContext(tenantId, r.keyId, r.version),
            ),
          });
      }
    const entry: Entry = { loadedAt: this.options.clock(), destroyed, rows, keys };
    if (!destroyed && before?.search && before.rows[0]?.keyId === rows[0]?.keyId)
      entry.search = before.search;
    this.entries.set(tenantId, entry);
    return entry;
  }

  private async entry(tenantId: string): Promise<Entry> {
    const e = this.fresh(tenantId) ?? (await this.load(tenantId));
    if (e.destroyed) throw destroyedError(tenantId);
    return e;
  }

  private static newest(e: Entry): DataKey | undefined {
    let best: DataKey | undefined;
    for (const k of e.keys.values()) if (!best || k.version > best.version) best = k;
    return best;
  }

  currentSync(tenantId: string): DataKey | undefined {
    const e = this.fresh(tenantId);
    if (!e) return undefined;
    if (e.destroyed) throw destroyedError(tenantId);
    return KeyRing.newest(e);
  }

  async current(tenantId: string): Promise<DataKey> {
    const e = await this.entry(tenantId);
    const key = KeyRing.newest(e);
    if (key) return key;
    // The tenant's first key: made here, or another node's that won the race.
    await this.insert(tenantId, 1, randomBytes(8).toString("hex"));
    const again = KeyRing.newest(await this.entry(tenantId));
    if (!again) throw destroyedError(tenantId);
    return again;
  }

  private async insert(tenantId: string, version: number, keyId: string): Promise<boolean> {
    const now = this.options.clock();
    const key = randomBytes(32);
    const { wrapped, masterKeyId } = await this.options.provider.wrap(
      key,
      wrapContext(tenantId, keyId, version),
    );
    const inserted = await this.options.store.insertTenantKey({
      tenantId,
      version,
      keyId,
      state: "active",
      wrapped,
      masterKeyId,
      createdAt: now,
      updatedAt: now,
    });
    await this.load(tenantId);
    return inserted;
  }

  getSync(tenantId: string, ref: DataKeyRef): DataKey | undefined {
    const e = this.fresh(tenantId);
    if (!e) return undefined;
    if (e.destroyed) throw destroyedError(tenantId);
    const key = e.keys.get(ref.version);
    return key && key.keyId === ref.keyId ? key : undefined;
  }

  async get(tenantId: string, ref: DataKeyRef): Promise<DataKey> {
    let e = await this.entry(tenantId);
    let key = e.keys.get(ref.version);
    if (!key) {
      // A version another node made since this one read the rows.
      e = await this.load(tenantId);
      if (e.destroyed) throw destroyedError(tenantId);
      key = e.keys.get(ref.version);
    }
    if (!key || key.keyId !== ref.keyId)
      throw new KuraError("BODY_CORRUPT", "encrypted data names a key its tenant does not have", {
        operation: "keys.get",
        context: { tenantId, version: ref.version },
      });
    return key;
  }

  async searchKey(tenantId: string): Promise<Buffer> {
    const e = await this.entry(tenantId);
    if (e.search) return e.search;
    const first =
      [...e.keys.values()].sort((a, b) => a.version - b.version)[0] ?? (await this.current(tenantId));
    const derived = Buffer.from(hkdfSync("sha256", first.key, Buffer.alloc(0), "kura search tokens", 32));
    const latest = this.entries.get(tenantId);
    if (latest && !latest.destroyed) latest.search = derived;
    return derived;
  }

  /** `searchKey`'s key, when cached and fresh (the projector hashes many tokens per message). */
  searchKeySync(tenantId: string): Buffer | undefined {
    const e = this.fresh(tenantId);
    if (e?.destroyed) throw destroyedError(tenantId);
    return e?.search;
  }

  async destroyed(tenantId: string): Promise<boolean> {
    const e = this.fresh(tenantId) ?? (await this.load(tenantId));
    return e.destroyed;
  }

  /**
   * A new data key version for the tenant: new writes use it from now on (on other nodes within
   * `refreshMs`); earlier versions stay `active` (readable) until re-encryption has moved their
   * data and marks them `retired` (still readable: a body a racing writer sealed still opens).
   */
  async rotate(tenantId: string): Promise<{ version: number; keyId: string }> {
    const current = await this.current(tenantId);
    const version = current.version + 1;
    if (!(await this.insert(tenantId, version, current.keyId))) {
      const e = await this.entry(tenantId);
      const newest = KeyRing.newest(e);
      if (!newest) throw destroyedError(tenantId);
      return { version: newest.version, keyId: newest.keyId };
    }
    await this.load(tenantId);
    return { version, keyId: current.keyId };
  }

  /** Crypto-shredding: every data key of the tenant destroyed in the catalog and dropped here. */
  async shred(tenantId: string): Promise<number> {
    const now = this.options.clock();
    let n = await this.options.store.destroyTenantKeys(tenantId, now);
    if (n === 0) {
      // A tenant with no key yet: a destroyed row keeps it from ever getting one.
      await this.options.store.insertTenantKey({
        tenantId,
        version: 1,
        keyId: randomBytes(8).toString("hex"),
        state: "active",
        wrapped: null,
        masterKeyId: this.options.provider.currentKeyId,
        createdAt: now,
        updatedAt: now,
      });
      n = await this.options.store.destroyTenantKeys(tenantId, now);
    }
    this.entries.set(tenantId, { loadedAt: now, destroyed: true, rows: [], keys: new Map() });
    return n;
  }

  /**
   * Master-key rotation: every data key not wrapped by the current master key is unwrapped by
   * the one that wrapped it (a previous key the configuration still holds) and wrapped again.
   */
  async rewrapAll(): Promise<{ rewrapped: number }> {
    let after: { tenantId: string; version: number } | undefined;
    let rewrapped = 0;
    for (;;) {
      const rows = await this.options.store.listTenantKeys({ ...(after ? { after } : {}), limit: 500 });
      for (const r of rows) {
        if (r.wrapped === null || r.state === "destroyed") continue;
        if (r.masterKeyId === this.options.provider.currentKeyId) continue;
        const context = wrapContext(r.tenantId, r.keyId, r.version);
        const key = await this.options.provider.unwrap(r.wrapped, r.masterKeyId, context);
        const wrapped = await this.options.provider.wrap(key, context);
        if (
          await this.options.store.updateTenantKey({
            tenantId: r.tenantId,
            version: r.version,
            state: r.state === "retired" ? "retired" : "active",
            wrapped,
            at: this.options.clock(),
          })
        )
          rewrapped++;
      }
      const last = rows.at(-1);
      if (!last || rows.length < 500) break;
      after = { tenantId: last.tenantId, version: last.version };
    }
    return { rewrapped };
  }

  /** The tenant's key rows (state, versions) for reports. */
  async rows(tenantId: string): Promise<TenantKeyRow[]> {
    return (await this.load(tenantId)).rows;
  }

  /** Tenants with an active version older than their newest: what re-encryption has left to do. */
  async tenantsToReencrypt(): Promise<string[]> {
    const out: string[] = [];
    let after: { tenantId: string; version: number } | undefined;
    const newest = new Map<string, number>();
    const oldActive = new Map<string, number>();
    for (;;) {
      const rows = await this.options.store.listTenantKeys({ ...(after ? { after } : {}), limit: 500 });
      for (const r of rows) {
        if (r.state === "destroyed") continue;
        newest.set(r.tenantId, Math.max(newest.get(r.tenantId) ?? 0, r.version));
        if (r.state === "active")
          oldActive.set(r.tenantId, Math.min(oldActive.get(r.tenantId) ?? r.version, r.version));
      }
      const last = rows.at(-1);
      if (!last || rows.length < 500) break;
      after = { tenantId: last.tenantId, version: last.version };
    }
    for (const [tenantId, v] of oldActive) if (v < (newest.get(tenantId) ?? 0)) out.push(tenantId);
    return out;
  }

  /** Mark a version retired once re-encryption moved everything off it. */
  async retire(tenantId: string, version: number): Promise<void> {
    await this.options.store.updateTenantKey({
      tenantId,
      version,
      state: "retired",
      at: this.options.clock(),
    });
  }
}
