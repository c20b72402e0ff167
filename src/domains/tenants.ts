/**
 * The tenant registry as the admin API offers it (TEN-2, TEN-3, TEN-5; `/v1/admin/tenants`):
 * register, read, list and change tenants — status, tier, limit overrides, name, domains, their
 * own identity provider. Every change is audited (SEC-3) in the tenant's log, in the same
 * transaction, and forgotten by this process's tenancy cache at once.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { DEFAULT_TIER, TIER_LIMIT_NAMES, type TierLimits } from "../config/schema.js";
import { KuraError } from "../core/errors.js";
import { assertValidId } from "../core/keys.js";
import type { EffectiveLimits, Tenancy, TenantIssuer } from "../engine/tenancy.js";
import type { DeletionProgress, TenantDeletions } from "../engine/tenant-deletion.js";
import type {
  ApiKeyRecord,
  AuditEntry,
  Catalog,
  TenantChange,
  TenantJwt,
  TenantRecord,
  TenantStatus,
} from "../ports/catalog.js";
import { type AuditLogPage, type AuditLogQuery, readAuditLog } from "./admin-audit.js";
import { readStorageStats, type StatsOptions, type StorageStats } from "./storage-stats.js";

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
  /** With `status: "deleting"`: what the deletion job has removed so far, per plane. */
  deletion?: DeletionProgress;
}

/** What an API key may do: `read` (GET, HEAD and the POSTs that only read), `write` (everything). */
export const KEY_SCOPES = ["read", "write"] as const;
export type KeyScope = (typeof KEY_SCOPES)[number];

/** An API key as listed: never its secret. */
export interface ApiKeyInfo {
  keyId: string;
  tenantId: string;
  scopes: string[];
  createdAt: number;
  expiresAt: number | null;
  revokedAt: number | null;
}

/** A key just created: the only time its secret is seen (only its SHA-256 is stored). */
export interface NewApiKey extends ApiKeyInfo {
  secret: string;
}

/** Who an API key authenticates. */
export interface KeyIdentity {
  tenantId: string;
  keyId: string;
  scopes: readonly string[];
}

/**
 * `kura_<key id>_<43 base64url characters: 256 random bits>`. The key id inside lets the key be
 * looked up without scanning; the secret is compared by its SHA-256, in constant time.
 */
const SECRET_FORMAT = /^kura_(kk[0-9a-f]{20})_([A-Za-z0-9_-]{43})$/;

/** True for what looks like a Kura API key (rather than a JWT) in `Authorization: Bearer`. */
export function isApiKeySecret(credential: string): boolean {
  return credential.startsWith("kura_");
}

const sha256 = (text: string) => createHash("sha256").update(text, "utf8").digest("hex");

/**
 * The secret of key `keyId` derived from the server's secret (ADR 0035): the same format as a
 * random one (`kura_<key id>_<43 base64url characters>`, HMAC-SHA256), so the S3 endpoint can
 * compute it again to check a SigV4 signature while the catalog still holds only its SHA-256.
 */
function derivedSecret(serverSecret: string, keyId: string): string {
  const mac = createHmac("sha256", serverSecret).update(`kura api key secret v1\0${keyId}`, "utf8");
  return `kura_${keyId}_${mac.digest("base64url")}`;
}

function keyInfo(k: ApiKeyRecord): ApiKeyInfo {
  return {
    keyId: k.keyId,
    tenantId: k.tenantId,
    scopes: k.scopes,
    createdAt: k.createdAt,
    expiresAt: k.expiresAt,
    revokedAt: k.revokedAt,
  };
}

function keyInvalid(why: string): KuraError {
  return new KuraError("API_KEY_INVALID", `the API key ${why}`, { operation: "tenants.authenticateKey" });
}

export interface TenantsContext {
  catalog: Catalog;
  tenancy: Tenancy;
  clock: () => number;
  /** The deletion jobs (`engine/tenant-deletion.ts`). */
  deletions: TenantDeletions;
  /** The server's secret new keys' secrets are derived from (ADR 0035); none: random secrets. */
  keySecret?: () => string | undefined;
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

  /** The tenant whose own token issuer (`jwt.issuer`) `iss` is; undefined if none (TEN-2). */
  issuer(iss: string): Promise<TenantIssuer | undefined> {
    return this.ctx.tenancy.issuer(iss);
  }

  /** `issuer` without waiting, when the answer is cached and current; undefined otherwise. */
  issuerCached(iss: string): TenantIssuer | undefined {
    return this.ctx.tenancy.issuerCached(iss);
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

  /** TENANT_NOT_FOUND unless registered; a tenant being deleted comes with the deletion's progress. */
  async get(tenantId: string): Promise<TenantInfo> {
    assertValidId(tenantId, "tenant id", "tenants.get");
    const record = await this.ctx.catalog.getTenant(tenantId);
    if (!record) throw notFound(tenantId, "tenants.get");
    if (record.status !== "deleting") return this.info(record);
    const deletion = await this.ctx.deletions.progress(tenantId);
    return { ...this.info(record), ...(deletion ? { deletion } : {}) };
  }

  /**
   * Deletes a registered tenant and all its data, in the background (TENANT_NOT_FOUND unless
   * registered): resolves at once to the record with `status: "deleting"`, from when every call
   * of the tenant is refused (TENANT_DELETING), and the id cannot be registered again
   * (TENANT_EXISTS). A job then removes its messages (every version's body), objects, KV,
   * sessions and their files, search entries, vector collections and memories, usage, audit
   * log, API keys and domains, resuming after a restart; then `get` answers TENANT_NOT_FOUND
   * and the id starts empty. Deleting it again while that runs changes nothing. The request and
   * the completion are audited in the admin stream (`~admin`), which outlives the tenant.
   */
  async delete(tenantId: string, options: { actor?: string } = {}): Promise<TenantInfo> {
    const op = "tenants.delete";
    assertValidId(tenantId, "tenant id", op);
    const record = await this.ctx.deletions.start(tenantId, options.actor ?? "admin");
    if (!record) throw notFound(tenantId, op);
    return this.get(tenantId).catch((e: unknown) => {
      // Finished already (a small tenant): the record as it was when the deletion began.
      if (e instanceof KuraError && e.code === "TENANT_NOT_FOUND") return this.info(record);
      throw e;
    });
  }

  /** Resolves once the deletions this process runs have stopped (tests, `kura tenants delete --wait`). */
  settleDeletions(): Promise<void> {
    return this.ctx.deletions.settle();
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
    const current = await this.ctx.catalog.getTenant(tenantId);
    if (current?.status === "deleting") throw deleting(tenantId, op);
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

  /** The audit log across tenants (SEC-3), a page at a time: see `readAuditLog`. */
  auditLog(query: AuditLogQuery = {}): Promise<AuditLogPage> {
    return readAuditLog(this.ctx.catalog, query);
  }

  /**
   * What every tenant stores: exact usage, bodies per plane, message sizes, bodies written within
   * the last `coldAfterDays` (default 30) and before (`kura stats`); `sizeBounds` splits the
   * bodies' profile for the cost estimate.
   */
  stats(options: Omit<StatsOptions, "now"> = {}): Promise<StorageStats> {
    return readStorageStats(this.ctx.catalog, { ...options, now: this.ctx.clock() });
  }

  // --- API keys (TEN-5) ---------------------------------------------------------------------

  /**
   * Issues an API key for a registered tenant (TENANT_NOT_FOUND otherwise): `scopes` from
   * `read`, `write`; `expiresAt` (ms) in the future or none. The secret is returned here only.
   */
  async createKey(
    tenantId: string,
    input: { scopes: readonly string[]; expiresAt?: number | null },
    options: { actor?: string } = {},
  ): Promise<NewApiKey> {
    const op = "tenants.createKey";
    if ((await this.get(tenantId)).status === "deleting") throw deleting(tenantId, op);
    const scopes = [...new Set(input.scopes)].sort();
    if (scopes.length === 0 || scopes.some((s) => !(KEY_SCOPES as readonly string[]).includes(s)))
      throw invalid(`scopes must be a non-empty list of ${KEY_SCOPES.join(", ")}`, op);
    const at = this.ctx.clock();
    const expiresAt = input.expiresAt ?? null;
    if (expiresAt !== null && (!Number.isSafeInteger(expiresAt) || expiresAt <= at))
      throw invalid("expires_at must be in the future", op);
    const keyId = `kk${randomBytes(10).toString("hex")}`;
    const serverSecret = this.ctx.keySecret?.();
    const secret = serverSecret
      ? derivedSecret(serverSecret, keyId)
      : `kura_${keyId}_${randomBytes(32).toString("base64url")}`;
    const record: ApiKeyRecord = {
      keyId,
      tenantId,
      secretHash: sha256(secret),
      scopes,
      createdAt: at,
      expiresAt,
      revokedAt: null,
    };
    await this.ctx.catalog.createApiKey(record, {
      audit: this.audit(tenantId, "key.create", options.actor, at, { keyId, scopes }),
    });
    return { ...keyInfo(record), secret };
  }

  /** A registered tenant's keys, revoked ones included, without secrets (TENANT_NOT_FOUND). */
  async listKeys(tenantId: string): Promise<ApiKeyInfo[]> {
    await this.get(tenantId);
    return (await this.ctx.catalog.listApiKeys(tenantId)).map(keyInfo);
  }

  /**
   * Revokes a key at once: the next request with it fails on every node (keys are read from the
   * catalog on each request, never cached). API_KEY_NOT_FOUND for a key the tenant does not
   * have; revoking a revoked key changes nothing.
   */
  async revokeKey(tenantId: string, keyId: string, options: { actor?: string } = {}): Promise<void> {
    const op = "tenants.revokeKey";
    assertValidId(tenantId, "tenant id", op);
    const key = await this.ctx.catalog.getApiKey(keyId);
    if (!key || key.tenantId !== tenantId) {
      throw new KuraError("API_KEY_NOT_FOUND", `tenant ${tenantId} has no API key ${keyId.slice(0, 64)}`, {
        operation: op,
        context: { tenantId },
      });
    }
    const at = this.ctx.clock();
    await this.ctx.catalog.revokeApiKey(tenantId, keyId, {
      at,
      audit: this.audit(tenantId, "key.revoke", options.actor, at, { keyId }),
    });
  }

  /**
   * Who a key's secret authenticates; API_KEY_INVALID when it is malformed, unknown, revoked or
   * expired. The tenant's own status is checked after, by `admit`.
   */
  async authenticateKey(secret: string): Promise<KeyIdentity> {
    const m = SECRET_FORMAT.exec(secret);
    if (!m) throw keyInvalid("is malformed");
    const key = await this.ctx.catalog.getApiKey(m[1] as string);
    const expected = Buffer.from(key?.secretHash ?? "0".repeat(64), "hex");
    const matches = timingSafeEqual(Buffer.from(sha256(secret), "hex"), expected);
    if (!key || !matches) throw keyInvalid("is not known");
    if (key.revokedAt !== null) throw keyInvalid("was revoked");
    if (key.expiresAt !== null && this.ctx.clock() >= key.expiresAt) throw keyInvalid("has expired");
    return { tenantId: key.tenantId, keyId: key.keyId, scopes: key.scopes };
  }

  /**
   * The secret of a live key, for checking a SigV4 signature made with it (the S3 endpoint):
   * derived from the server's secret and checked against the stored SHA-256. S3_ACCESS_KEY_UNKNOWN
   * when the key is unknown, revoked, expired, or was not derived from this server's secret (a
   * key created before it was known: create a new one).
   */
  async signingSecret(keyId: string): Promise<{ identity: KeyIdentity; secret: string }> {
    const op = "tenants.signingSecret";
    const unknown = (why: string) =>
      new KuraError("S3_ACCESS_KEY_UNKNOWN", `the access key id ${why}`, { operation: op });
    if (!/^kk[0-9a-f]{20}$/.test(keyId)) throw unknown("is not a Kura API key id");
    const serverSecret = this.ctx.keySecret?.();
    const key = await this.ctx.catalog.getApiKey(keyId);
    if (!key || !serverSecret) throw unknown("is not known");
    const secret = derivedSecret(serverSecret, keyId);
    if (!timingSafeEqual(Buffer.from(sha256(secret), "hex"), Buffer.from(key.secretHash, "hex")))
      throw unknown("has a secret this server cannot check signatures with");
    if (key.revokedAt !== null) throw unknown("was revoked");
    if (key.expiresAt !== null && this.ctx.clock() >= key.expiresAt) throw unknown("has expired");
    return { identity: { tenantId: key.tenantId, keyId: key.keyId, scopes: key.scopes }, secret };
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

function deleting(tenantId: string, operation: string): KuraError {
  return new KuraError("TENANT_DELETING", `tenant ${tenantId} is being deleted`, {
    operation,
    context: { tenantId },
  });
}

function notFound(tenantId: string, operation: string): KuraError {
  return new KuraError("TENANT_NOT_FOUND", `no tenant ${tenantId} is registered`, {
    operation,
    context: { tenantId },
  });
}
