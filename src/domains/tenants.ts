/**
 * The tenant registry as the admin API offers it (TEN-2, TEN-3, TEN-5; `/v1/admin/tenants`):
 * register, read, list and change tenants — status, tier, limit overrides, name, domains, their
 * own identity provider. Every change is audited (SEC-3) in the tenant's log, in the same
 * transaction, and forgotten by this process's tenancy cache at once.
 */
import { DEFAULT_TIER, TIER_LIMIT_NAMES, type TierLimits } from "../config/schema.js";
import { KuraError } from "../core/errors.js";
import { assertValidId } from "../core/keys.js";
import type { EffectiveLimits, Tenancy } from "../engine/tenancy.js";
import type {
  AuditEntry,
  Catalog,
  TenantChange,
  TenantJwt,
  TenantRecord,
  TenantStatus,
} from "../ports/catalog.js";

export interface TenantInput {
  tenantId: string;
  name?: string | null;
  domains?: readonly string[];
  tier?: string;
  /** Overrides of the tier's limits. */
  limits?: TierLimits;
  jwt?: TenantJwt | null;
}

export interface TenantUpdate {
  name?: string | null;
  status?: TenantStatus;
  domains?: readonly string[];
  tier?: string;
  /** Replaces the overrides whole (`{}`: the tier's limits only). */
  limits?: TierLimits;
  jwt?: TenantJwt | null;
}

/** A registered tenant, with the limits in force (its tier's, then its overrides). */
export interface TenantInfo extends TenantRecord {
  effectiveLimits: EffectiveLimits;
}

export interface TenantsContext {
  catalog: Catalog;
  tenancy: Tenancy;
  clock: () => number;
}

/** Host names: letters, digits, hyphens, dots; at most 253 characters. */
const DOMAIN =
  /^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$/;
const MAX_DOMAINS = 100;
const MAX_NAME = 200;

function invalid(message: string, operation: string): KuraError {
  return new KuraError("INVALID_ARGUMENT", message, { operation });
}

export class Tenants {
  constructor(private readonly ctx: TenantsContext) {}

  /**
   * Admit a call for a tenant (every authenticated request): resolves to the limits in force,
   * or fails with TENANT_SUSPENDED, TENANT_UNKNOWN (not registered, no auto-creation) or the
   * catalog's failure. A tenant seen before is answered from memory (`admitCached`).
   */
  admit(tenantId: string): Promise<EffectiveLimits> {
    return this.ctx.tenancy.admit(tenantId);
  }

  /** `admit` without waiting, when the tenant's record is cached; undefined when it is not. */
  admitCached(tenantId: string): EffectiveLimits | undefined {
    return this.ctx.tenancy.admitCached(tenantId);
  }

  /** Registers a tenant: TENANT_EXISTS if it is (implicitly created ones too), TIER_UNKNOWN, TENANT_DOMAIN_TAKEN. */
  async create(input: TenantInput, options: { actor?: string } = {}): Promise<TenantInfo> {
    const op = "tenants.create";
    assertValidId(input.tenantId, "tenant id", op);
    const at = this.ctx.clock();
    const record: TenantRecord = {
      tenantId: input.tenantId,
      name: this.checkName(input.name ?? null, op),
      status: "active",
      tier: this.checkTier(input.tier ?? DEFAULT_TIER, op),
      limits: this.checkLimits(input.limits ?? {}, op),
      domains: this.checkDomains(input.domains ?? [], op),
      jwt: this.checkJwt(input.jwt ?? null, op),
      createdAt: at,
      updatedAt: at,
    };
    await this.ctx.catalog.createTenant(record, {
      audit: this.audit(record.tenantId, "tenant.create", options.actor, at, { tier: record.tier }),
    });
    this.ctx.tenancy.forget(record.tenantId);
    return this.info(record);
  }

  /** TENANT_NOT_FOUND unless registered. */
  async get(tenantId: string): Promise<TenantInfo> {
    assertValidId(tenantId, "tenant id", "tenants.get");
    const record = await this.ctx.catalog.getTenant(tenantId);
    if (!record) throw notFound(tenantId, "tenants.get");
    return this.info(record);
  }

  /** Registered tenants in id byte order after `after`, at most `limit`, and whether more follow. */
  async list(
    options: { after?: string; limit?: number } = {},
  ): Promise<{ items: TenantInfo[]; more: boolean }> {
    const limit = options.limit ?? 100;
    const rows = await this.ctx.catalog.listTenants({
      limit: limit + 1,
      ...(options.after === undefined ? {} : { afterTenantId: options.after }),
    });
    return { items: rows.slice(0, limit).map((r) => this.info(r)), more: rows.length > limit };
  }

  /** Changes the fields given; TENANT_NOT_FOUND, TIER_UNKNOWN, TENANT_DOMAIN_TAKEN. */
  async update(
    tenantId: string,
    update: TenantUpdate,
    options: { actor?: string } = {},
  ): Promise<TenantInfo> {
    const op = "tenants.update";
    assertValidId(tenantId, "tenant id", op);
    const change: TenantChange = {};
    if (update.name !== undefined) change.name = this.checkName(update.name, op);
    if (update.status !== undefined) {
      if (update.status !== "active" && update.status !== "suspended")
        throw invalid("status must be active or suspended", op);
      change.status = update.status;
    }
    if (update.tier !== undefined) change.tier = this.checkTier(update.tier, op);
    if (update.limits !== undefined) change.limits = this.checkLimits(update.limits, op);
    if (update.domains !== undefined) change.domains = this.checkDomains(update.domains, op);
    if (update.jwt !== undefined) change.jwt = this.checkJwt(update.jwt, op);
    const at = this.ctx.clock();
    const action =
      change.status === "suspended"
        ? "tenant.suspend"
        : change.status === "active"
          ? "tenant.activate"
          : "tenant.update";
    const record = await this.ctx.catalog.updateTenant(tenantId, change, {
      at,
      audit: this.audit(tenantId, action, options.actor, at, { fields: Object.keys(change) }),
    });
    this.ctx.tenancy.forget(tenantId);
    if (!record) throw notFound(tenantId, op);
    return this.info(record);
  }

  private info(record: TenantRecord): TenantInfo {
    return { ...record, effectiveLimits: this.ctx.tenancy.limitsOf(record) };
  }

  private audit(
    tenantId: string,
    action: string,
    actor: string | undefined,
    at: number,
    details: Record<string, unknown>,
  ): AuditEntry {
    return { tenantId, actor: actor ?? "admin", action, target: tenantId, at, details };
  }

  private checkName(name: string | null, op: string): string | null {
    if (name !== null && (typeof name !== "string" || name.length > MAX_NAME))
      throw invalid(`name must be a string of at most ${MAX_NAME} characters`, op);
    return name;
  }

  private checkTier(tier: string, op: string): string {
    this.ctx.tenancy.assertTier(tier, op);
    return tier;
  }

  private checkLimits(limits: TierLimits, op: string): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [name, value] of Object.entries(limits)) {
      if (!(TIER_LIMIT_NAMES as readonly string[]).includes(name))
        throw invalid(`unknown limit ${name.slice(0, 64)} (known: ${TIER_LIMIT_NAMES.join(", ")})`, op);
      if (value === undefined) continue;
      if (!Number.isSafeInteger(value) || value < 1)
        throw invalid(`limit ${name} must be an integer >= 1`, op);
      out[name] = value;
    }
    return out;
  }

  private checkDomains(domains: readonly string[], op: string): string[] {
    if (!Array.isArray(domains) || domains.length > MAX_DOMAINS)
      throw invalid(`domains must be a list of at most ${MAX_DOMAINS} host names`, op);
    for (const d of domains)
      if (typeof d !== "string" || !DOMAIN.test(d))
        throw invalid(`not a host name: ${String(d).slice(0, 64)}`, op);
    return [...new Set(domains.map((d) => d.toLowerCase()))];
  }

  private checkJwt(jwt: TenantJwt | null, op: string): TenantJwt | null {
    if (jwt === null) return null;
    if (typeof jwt.issuer !== "string" || jwt.issuer.length === 0 || jwt.issuer.length > 1024)
      throw invalid("jwt.issuer must be a non-empty string", op);
    if (typeof jwt.jwksUrl !== "string" || !/^https?:\/\/\S{1,2040}$/i.test(jwt.jwksUrl))
      throw invalid("jwt.jwks_url must be an http(s) URL", op);
    if (jwt.audience !== null && (typeof jwt.audience !== "string" || jwt.audience.length > 1024))
      throw invalid("jwt.audience must be a string or null", op);
    return { issuer: jwt.issuer, jwksUrl: jwt.jwksUrl, audience: jwt.audience };
  }
}

function notFound(tenantId: string, operation: string): KuraError {
  return new KuraError("TENANT_NOT_FOUND", `no tenant ${tenantId} is registered`, {
    operation,
    context: { tenantId },
  });
}
