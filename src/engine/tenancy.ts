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

/** What a write would add, checked against the tenant's limits before anything is written. */
export interface WriteDemand {
  /** Bytes of bodies the write stores (net of what it replaces). */
  bytes: number;
  /** Objects it adds (net). */
  objects: number;
  /** Sizes to hold against `max_message_bytes` (counted content) … */
  messageSizes?: readonly number[];
  /** … and against `max_object_bytes`. */
  objectSizes?: readonly number[];
}

/** A token bucket per tenant: `max_requests_per_second` tokens, refilled continuously. */
interface Bucket {
  tokens: number;
  at: number;
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
  /** Request buckets per tenant, in this process (`max_requests_per_second` holds per node). */
  private readonly buckets = new Map<string, Bucket>();

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

  /**
   * Refuses a write the tenant's limits do not allow, before anything is written: a message or
   * object above its size limit is PAYLOAD_TOO_LARGE (413); one that would take the tenant's
   * stored bytes (`GET /v1/usage`) past `max_storage_bytes`, or its objects past `max_objects`,
   * is QUOTA_EXCEEDED (507). Usage is read exactly (folded totals and pending deltas); writes
   * racing each other may each pass and together overshoot by what they add.
   */
  async checkWrite(tenantId: string, demand: WriteDemand): Promise<void> {
    const op = "tenancy.checkWrite";
    const limits = await this.limits(tenantId);
    const over = (sizes: readonly number[] | undefined, max: number | undefined, what: string) => {
      const size = max === undefined ? undefined : sizes?.find((n) => n > max);
      if (size !== undefined)
        throw new KuraError(
          "PAYLOAD_TOO_LARGE",
          `the ${what} is ${size} bytes; the tenant's limit is ${max}`,
          {
            operation: op,
            context: { tenantId, size, limit: max },
          },
        );
    };
    over(demand.messageSizes, limits.max_message_bytes, "message");
    over(demand.objectSizes, limits.max_object_bytes, "object");
    const { max_storage_bytes: maxBytes, max_objects: maxObjects } = limits;
    if (maxBytes === undefined && maxObjects === undefined) return;
    if (demand.bytes <= 0 && demand.objects <= 0) return;
    const usage = await this.options.catalog.usage(tenantId);
    if (maxBytes !== undefined && demand.bytes > 0 && usage.bytes + demand.bytes > maxBytes)
      throw quota(tenantId, "max_storage_bytes", usage.bytes, demand.bytes, maxBytes);
    if (maxObjects !== undefined && demand.objects > 0 && usage.objects + demand.objects > maxObjects)
      throw quota(tenantId, "max_objects", usage.objects, demand.objects, maxObjects);
  }

  /**
   * How many bytes one body of unknown length may hold (a streamed upload without a length),
   * replacing a body of `replacing` bytes: the least of `max_object_bytes` and what is left of
   * `max_storage_bytes`; undefined when neither is set. `overLimit` makes the error a stream
   * that passes it fails with.
   */
  async bodyAllowance(tenantId: string, replacing: number): Promise<number | undefined> {
    const limits = await this.limits(tenantId);
    let allowance = limits.max_object_bytes;
    if (limits.max_storage_bytes !== undefined) {
      const usage = await this.options.catalog.usage(tenantId);
      const left = Math.max(0, limits.max_storage_bytes - usage.bytes + replacing);
      allowance = allowance === undefined ? left : Math.min(allowance, left);
    }
    return allowance;
  }

  /** The refusal of a body that grew past `bodyAllowance`. */
  overLimit(tenantId: string, allowance: number): KuraError {
    return new KuraError(
      "PAYLOAD_TOO_LARGE",
      `the body exceeds the ${allowance} bytes the tenant's limits (max_object_bytes, max_storage_bytes) leave; nothing was stored`,
      { operation: "tenancy.checkWrite", context: { tenantId, limit: allowance } },
    );
  }

  /** Takes one request from the tenant's bucket: RATE_LIMITED (429, with Retry-After) when empty. */
  private take(tenantId: string, perSecond: number | undefined): void {
    if (perSecond === undefined) return;
    const now = this.options.clock();
    const bucket = this.buckets.get(tenantId) ?? { tokens: perSecond, at: now };
    bucket.tokens = Math.min(perSecond, bucket.tokens + ((now - bucket.at) / 1000) * perSecond);
    bucket.at = now;
    if (!this.buckets.has(tenantId)) {
      if (this.buckets.size >= MAX_ENTRIES) this.buckets.clear();
      this.buckets.set(tenantId, bucket);
    }
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return;
    }
    const retryAfterSeconds = Math.max(1, Math.ceil((1 - bucket.tokens) / perSecond));
    throw new KuraError(
      "RATE_LIMITED",
      `tenant ${tenantId} sent more than ${perSecond} requests per second; retry after ${retryAfterSeconds} s`,
      { operation: "tenancy.admit", context: { tenantId, limit: perSecond, retryAfterSeconds } },
    );
  }

  private check(entry: Entry): EffectiveLimits {
    if (entry.record.status === "suspended") {
      throw new KuraError("TENANT_SUSPENDED", `tenant ${entry.record.tenantId} is suspended`, {
        operation: "tenancy.admit",
        context: { tenantId: entry.record.tenantId },
      });
    }
    if (entry.record.status === "deleting") {
      throw new KuraError("TENANT_DELETING", `tenant ${entry.record.tenantId} is being deleted`, {
        operation: "tenancy.admit",
        context: { tenantId: entry.record.tenantId },
      });
    }
    this.take(entry.record.tenantId, entry.limits.max_requests_per_second);
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

function quota(tenantId: string, limit: string, used: number, adding: number, max: number): KuraError {
  return new KuraError(
    "QUOTA_EXCEEDED",
    `the write would take the tenant past ${limit} (${used} used, ${adding} more, limit ${max}); nothing was stored`,
    { operation: "tenancy.checkWrite", context: { tenantId, limit, used, adding, max } },
  );
}
