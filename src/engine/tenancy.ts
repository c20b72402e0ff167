/**
 * Tenancy (TEN-2, TEN-3): which tenants may act, and within what limits. The registry lives in
 * the catalog (`Catalog.getTenant`, …); this keeps each tenant's record in memory for
 * `cacheTtlMs` (5 min, TEN-2) so a request costs no catalog read, and forgets it at once when
 * this process changes it (`forget`). Another node's change reaches this one within
 * `refreshMs` (ADR 0029): every change of a registered tenant bumps the catalog's
 * `registryVersion` in its transaction, and a cached record is trusted only while the version
 * was read no longer than `refreshMs` ago — at most one read of one row per `refreshMs`, made
 * by the first request after it; a new version drops every cached record.
 *
 * A tenant the registry does not know is registered on first use (tier `free`) when
 * `autoCreate` is on — tenants stay implicit for the embedded quick start — and refused
 * (`TENANT_UNKNOWN`) when it is off.
 */
import { DEFAULT_TIER, type TierLimits, type TiersConfig } from "../config/schema.js";
import { isKuraError, KuraError } from "../core/errors.js";
import type { Catalog, TenantJwt, TenantRecord } from "../ports/catalog.js";
import type { KvStore } from "../ports/kv-store.js";

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
  /**
   * How long the registry version read last is trusted (`auth.tenant_refresh_ms`): another
   * node's change of a tenant holds here within it (plus one catalog read); default 250 ms.
   */
  refreshMs?: number;
  /**
   * Where `max_requests_per_second` is counted: a store with `takeToken` (Redis) holds one
   * bucket per tenant for every node sharing it; without one (LMDB, memory) each process keeps
   * its own buckets, and the limit holds per node.
   */
  buckets?: Pick<KvStore, "takeToken">;
}

/** A tenant's own token issuer (seed 003: each tenant its own user pool), as `issuer` finds it. */
export interface TenantIssuer extends TenantJwt {
  tenantId: string;
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
  /** Token issuer → the tenant it belongs to, for tenants whose record is cached. */
  private readonly issuers = new Map<string, string>();
  private readonly refreshMs: number;
  /** The registry version the cached records belong to, and when it was read (clock ms). */
  private version: number | undefined;
  private checkedAt = Number.NEGATIVE_INFINITY;
  private checking: Promise<void> | undefined;
  /** Grows whenever the cache is dropped, so a lookup that began before stores nothing. */
  private generation = 0;

  constructor(private readonly options: TenancyOptions) {
    this.ttlMs = options.cacheTtlMs ?? 5 * 60_000;
    this.refreshMs = options.refreshMs ?? 250;
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
    const entry = this.cachedEntry(tenantId);
    // A shared bucket is a round trip: `admit` takes from it.
    if (!entry || (this.shared && entry.limits.max_requests_per_second !== undefined)) return undefined;
    this.checkStatus(entry);
    this.take(tenantId, entry.limits.max_requests_per_second);
    return entry.limits;
  }

  /**
   * Admit a call for `tenantId`: resolves to its limits, or throws TENANT_SUSPENDED,
   * TENANT_UNKNOWN (not registered, no auto-creation), or the catalog's failure.
   */
  async admit(tenantId: string): Promise<EffectiveLimits> {
    const entry = await this.entry(tenantId);
    this.checkStatus(entry);
    const perSecond = entry.limits.max_requests_per_second;
    if (perSecond !== undefined && this.shared) await this.takeShared(tenantId, perSecond);
    else this.take(tenantId, perSecond);
    return entry.limits;
  }

  private get shared(): boolean {
    return this.options.buckets?.takeToken !== undefined;
  }

  /**
   * Takes one request from the tenant's bucket in the shared store, so the limit holds across
   * nodes. When the store cannot answer, this node's own bucket stands in (the limit then holds
   * per node) rather than refusing the tenant's calls.
   */
  private async takeShared(tenantId: string, perSecond: number): Promise<void> {
    let result: { taken: boolean; retryAfterMs: number };
    try {
      result = await (this.options.buckets as Required<Pick<KvStore, "takeToken">>).takeToken(tenantId, {
        perSecond,
        burst: perSecond,
      });
    } catch {
      this.take(tenantId, perSecond);
      return;
    }
    if (!result.taken)
      throw rateLimited(tenantId, perSecond, Math.max(1, Math.ceil(result.retryAfterMs / 1000)));
  }

  /** The limits in force for a tenant, whatever its status (writes check them). */
  async limits(tenantId: string): Promise<EffectiveLimits> {
    return (await this.entry(tenantId)).limits;
  }

  /**
   * The storage limits the write protocol checks again inside the commit (`checkQuota`), so
   * that writes racing each other cannot together pass them. A tenant the registry does not
   * know (and may not create) has its default tier's.
   */
  async storageQuota(tenantId: string): Promise<{ maxBytes?: number; maxObjects?: number }> {
    let limits: EffectiveLimits;
    try {
      limits = await this.limits(tenantId);
    } catch (e) {
      if (!isKuraError(e) || e.code !== "TENANT_UNKNOWN") throw e;
      limits = this.options.tiers[DEFAULT_TIER]?.limits ?? {};
    }
    return {
      ...(limits.max_storage_bytes === undefined ? {} : { maxBytes: limits.max_storage_bytes }),
      ...(limits.max_objects === undefined ? {} : { maxObjects: limits.max_objects }),
    };
  }

  /** This process changed the tenant: read it again next time. */
  forget(tenantId: string): void {
    this.entries.delete(tenantId);
    for (const [issuer, owner] of this.issuers) if (owner === tenantId) this.issuers.delete(issuer);
  }

  /**
   * The registered tenant whose own token issuer (`jwt.issuer`) is exactly `iss`, with its JWKS
   * URL and audience; undefined when no tenant's is. Whatever the tenant's status: admission
   * (`admit`) refuses a suspended one afterwards.
   */
  async issuer(iss: string): Promise<TenantIssuer | undefined> {
    await this.refresh();
    const generation = this.generation;
    let tenantId = this.issuers.get(iss);
    if (tenantId === undefined) {
      tenantId = await this.options.catalog.tenantOfIssuer(iss);
      if (tenantId === undefined) return undefined;
    }
    const jwt = (await this.entry(tenantId)).record.jwt;
    if (jwt?.issuer !== iss) return undefined;
    if (generation === this.generation) this.issuers.set(iss, tenantId);
    return { ...jwt, tenantId };
  }

  /** `issuer` without waiting, when the answer is cached and current; undefined otherwise. */
  issuerCached(iss: string): TenantIssuer | undefined {
    const tenantId = this.issuers.get(iss);
    const jwt = tenantId === undefined ? undefined : this.cachedEntry(tenantId)?.record.jwt;
    return jwt?.issuer === iss ? { ...jwt, tenantId: tenantId as string } : undefined;
  }

  /**
   * Refuses a write the tenant's limits do not allow, before anything is written: a message or
   * object above its size limit is PAYLOAD_TOO_LARGE (413); one that would take the tenant's
   * stored bytes (`GET /v1/usage`) past `max_storage_bytes`, or its objects past `max_objects`,
   * is QUOTA_EXCEEDED (507). Usage is read exactly (folded totals and pending deltas). Writes
   * racing each other may each pass this check; the commit checks again (`storageQuota`), so
   * together they never take the tenant past a limit.
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
    throw rateLimited(tenantId, perSecond, Math.max(1, Math.ceil((1 - bucket.tokens) / perSecond)));
  }

  /** Throws TENANT_SUSPENDED or TENANT_DELETING unless the tenant may act. */
  private checkStatus(entry: Entry): void {
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
  }

  /** The cached entry, when it is within its TTL and the registry version was read recently. */
  private cachedEntry(tenantId: string): Entry | undefined {
    const now = this.options.clock();
    if (now - this.checkedAt >= this.refreshMs) return undefined;
    const entry = this.entries.get(tenantId);
    return entry && now < entry.until ? entry : undefined;
  }

  /**
   * Reads the registry version unless it was read within `refreshMs` (one read in flight at a
   * time); a new version drops every cached record. When the catalog cannot answer, the cache
   * stays as it is (each record still expires with its TTL) and the read is tried again after
   * `refreshMs`: the catalog's failure reaches callers through the reads that need it.
   */
  private refresh(): Promise<void> {
    if (this.options.clock() - this.checkedAt < this.refreshMs) return Promise.resolve();
    this.checking ??= (async () => {
      const startedAt = this.options.clock();
      try {
        const version = await this.options.catalog.registryVersion();
        if (this.version !== undefined && version !== this.version) this.drop();
        this.version = version;
      } catch {
        // Kept as is: see above.
      } finally {
        this.checkedAt = startedAt;
        this.checking = undefined;
      }
    })();
    return this.checking;
  }

  /** Forgets every cached record (another node changed the registry). */
  private drop(): void {
    this.entries.clear();
    this.issuers.clear();
    this.generation += 1;
  }

  private async entry(tenantId: string): Promise<Entry> {
    await this.refresh();
    const cached = this.cachedEntry(tenantId);
    if (cached) return cached;
    let pending = this.loading.get(tenantId);
    if (!pending) {
      pending = this.load(tenantId).finally(() => this.loading.delete(tenantId));
      this.loading.set(tenantId, pending);
    }
    return pending;
  }

  private async load(tenantId: string): Promise<Entry> {
    const { catalog, clock } = this.options;
    const generation = this.generation;
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
    // The registry changed while this read: the record may be older than the change.
    if (generation !== this.generation) return entry;
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

function rateLimited(tenantId: string, perSecond: number, retryAfterSeconds: number): KuraError {
  return new KuraError(
    "RATE_LIMITED",
    `tenant ${tenantId} sent more than ${perSecond} requests per second; retry after ${retryAfterSeconds} s`,
    { operation: "tenancy.admit", context: { tenantId, limit: perSecond, retryAfterSeconds } },
  );
}

function quota(tenantId: string, limit: string, used: number, adding: number, max: number): KuraError {
  return new KuraError(
    "QUOTA_EXCEEDED",
    `the write would take the tenant past ${limit} (${used} used, ${adding} more, limit ${max}); nothing was stored`,
    { operation: "tenancy.checkWrite", context: { tenantId, limit, used, adding, max } },
  );
}
