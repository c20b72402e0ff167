/**
 * Tenancy (TEN-2, TEN-3): which tenants may act, and within what limits. The registry lives in
 * the catalog (`Catalog.getTenant`, …); this keeps each tenant's record in memory for
 * `cacheTtlMs` (5 min, TEN-2) so a request costs no catalog read, and forgets it at once when
 * this process changes it (`forget`). Another node's change reaches this one within the TTL.
 *
 * A tenant the registry does not know is registered on first use (tier `free`) when
 * `autoCreate` is on — tenants stay implicit for the embedded quick start — and refused
 * (`TENANT_UNKNOWN`) when it is off.
 */
import { DEFAULT_TIER, type TierLimits, type TiersConfig } from "../config/schema.js";
import { isKuraError, KuraError } from "../core/errors.js";
import type { Catalog, TenantRecord } from "../ports/catalog.js";

export { DEFAULT_TIER };

/** The limits in force for one tenant: its tier's, overridden by its own; absent = no limit. */
export type EffectiveLimits = TierLimits;

export interface TenancyOptions {
  catalog: Catalog;
  clock: () => number;
  tiers: TiersConfig;
  autoCreate: boolean;
  /** How long a tenant's record is reused without reading the catalog; default 5 min. */
  cacheTtlMs?: number;
}

interface Entry {
  record: TenantRecord;
  limits: EffectiveLimits;
  until: number;
}

/** Records remembered at most (oldest forgotten first). */
const MAX_ENTRIES = 100_000;

export class Tenancy {
  private readonly entries = new Map<string, Entry>();
  /** Lookups in flight, so concurrent first requests of a tenant read (and create) it once. */
  private readonly loading = new Map<string, Promise<Entry>>();
  private readonly ttlMs: number;

  constructor(private readonly options: TenancyOptions) {
    this.ttlMs = options.cacheTtlMs ?? 5 * 60_000;
  }

  get tiers(): TiersConfig {
    return this.options.tiers;
  }

  /** Throws TIER_UNKNOWN unless `tier` is configured. */
  assertTier(tier: string, operation: string): void {
    if (!Object.hasOwn(this.options.tiers, tier)) {
      throw new KuraError("TIER_UNKNOWN", `no tier ${JSON.stringify(tier.slice(0, 64))} is configured`, {
        operation,
        context: { tier, tiers: Object.keys(this.options.tiers) },
      });
    }
  }

  /** The limits of a record: its tier's (none if the tier is no longer configured), then its own. */
  limitsOf(record: TenantRecord): EffectiveLimits {
    const tier = this.options.tiers[record.tier]?.limits ?? {};
    return { ...tier, ...(record.limits as EffectiveLimits) };
  }

  /**
   * The cached record of a tenant allowed to act, without waiting; undefined when it must be
   * looked up (`admit`). Throws TENANT_SUSPENDED for a suspended tenant it knows.
   */
  admitCached(tenantId: string): EffectiveLimits | undefined {
    const entry = this.entries.get(tenantId);
    if (!entry || this.options.clock() >= entry.until) return undefined;
    return this.check(entry);
  }

  /**
   * Admit a call for `tenantId`: resolves to its limits, or throws TENANT_SUSPENDED,
   * TENANT_UNKNOWN (not registered, no auto-creation), or the catalog's failure.
   */
  async admit(tenantId: string): Promise<EffectiveLimits> {
    return this.check(await this.entry(tenantId));
  }

  /** The limits in force for a tenant, whatever its status (writes check them). */
  async limits(tenantId: string): Promise<EffectiveLimits> {
    return (await this.entry(tenantId)).limits;
  }

  /** This process changed the tenant: read it again next time. */
  forget(tenantId: string): void {
    this.entries.delete(tenantId);
  }

  private check(entry: Entry): EffectiveLimits {
    if (entry.record.status === "suspended") {
      throw new KuraError("TENANT_SUSPENDED", `tenant ${entry.record.tenantId} is suspended`, {
        operation: "tenancy.admit",
        context: { tenantId: entry.record.tenantId },
      });
    }
    return entry.limits;
  }

  private async entry(tenantId: string): Promise<Entry> {
    const cached = this.entries.get(tenantId);
    if (cached && this.options.clock() < cached.until) return cached;
    let pending = this.loading.get(tenantId);
    if (!pending) {
      pending = this.load(tenantId).finally(() => this.loading.delete(tenantId));
      this.loading.set(tenantId, pending);
    }
    return pending;
  }

  private async load(tenantId: string): Promise<Entry> {
    const { catalog, clock } = this.options;
    let record = await catalog.getTenant(tenantId);
    if (!record) {
      if (!this.options.autoCreate) {
        throw new KuraError("TENANT_UNKNOWN", `tenant ${tenantId} is not registered`, {
          operation: "tenancy.admit",
          context: { tenantId },
        });
      }
      record = await this.register(tenantId);
    }
    const entry = { record, limits: this.limitsOf(record), until: clock() + this.ttlMs };
    if (this.entries.size >= MAX_ENTRIES) {
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
    this.entries.set(tenantId, entry);
    return entry;
  }

  /** Register a tenant on first use; another node (or request) may have registered it first. */
  private async register(tenantId: string): Promise<TenantRecord> {
    const at = this.options.clock();
    const record: TenantRecord = {
      tenantId,
      name: null,
      status: "active",
      tier: DEFAULT_TIER,
      limits: {},
      domains: [],
      jwt: null,
      createdAt: at,
      updatedAt: at,
    };
    try {
      // Not audited: implicit creation is no one's action, and a new tenant's log starts empty.
      await this.options.catalog.createTenant(record);
      return record;
    } catch (e) {
      if (!isKuraError(e) || e.code !== "TENANT_EXISTS") throw e;
      const existing = await this.options.catalog.getTenant(tenantId);
      if (!existing) throw e;
      return existing;
    }
  }
}
