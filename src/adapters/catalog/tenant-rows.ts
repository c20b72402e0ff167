/**
 * The tenant registry and API keys as rows, shared by both dialects (`sqlite/tenants.ts`,
 * `postgres/tenants.ts`): column orders, record ↔ values, and the registry's errors.
 */
import { KuraError } from "../../core/errors.js";
import type { ApiKeyRecord, TenantChange, TenantJwt, TenantRecord } from "../../ports/catalog.js";
import type { DbRow } from "./rows.js";

export const TENANT_COLUMNS = [
  "tenant_id",
  "name",
  "status",
  "tier",
  "limits",
  "domains",
  "jwt",
  "created_at",
  "updated_at",
] as const;

export const API_KEY_COLUMNS = [
  "key_id",
  "tenant_id",
  "secret_hash",
  "scopes",
  "created_at",
  "expires_at",
  "revoked_at",
] as const;

/** Domains are matched without regard to letter case: stored lower case, each once. */
export function normalizeDomains(domains: readonly string[]): string[] {
  return [...new Set(domains.map((d) => d.toLowerCase()))];
}

export function tenantValues(r: TenantRecord): unknown[] {
  return [
    r.tenantId,
    r.name,
    r.status,
    r.tier,
    JSON.stringify(r.limits),
    JSON.stringify(normalizeDomains(r.domains)),
    r.jwt === null ? null : JSON.stringify(r.jwt),
    r.createdAt,
    r.updatedAt,
  ];
}

export function toTenantRecord(r: DbRow): TenantRecord {
  return {
    tenantId: r.tenant_id as string,
    name: (r.name as string | null) ?? null,
    status: r.status as TenantRecord["status"],
    tier: r.tier as string,
    limits: JSON.parse(r.limits as string) as Record<string, number>,
    domains: JSON.parse(r.domains as string) as string[],
    jwt: r.jwt === null || r.jwt === undefined ? null : (JSON.parse(r.jwt as string) as TenantJwt),
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
  };
}

/** `current` with `change` applied at `at`. */
export function changed(current: TenantRecord, change: TenantChange, at: number): TenantRecord {
  const next: TenantRecord = { ...current, updatedAt: at };
  if (change.name !== undefined) next.name = change.name;
  if (change.status !== undefined) next.status = change.status;
  if (change.tier !== undefined) next.tier = change.tier;
  if (change.limits !== undefined) next.limits = change.limits;
  if (change.domains !== undefined) next.domains = normalizeDomains(change.domains);
  if (change.jwt !== undefined) next.jwt = change.jwt;
  return next;
}

export function apiKeyValues(k: ApiKeyRecord): unknown[] {
  return [k.keyId, k.tenantId, k.secretHash, JSON.stringify(k.scopes), k.createdAt, k.expiresAt, k.revokedAt];
}

export function toApiKey(r: DbRow): ApiKeyRecord {
  const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));
  return {
    keyId: r.key_id as string,
    tenantId: r.tenant_id as string,
    secretHash: r.secret_hash as string,
    scopes: JSON.parse(r.scopes as string) as string[],
    createdAt: Number(r.created_at),
    expiresAt: num(r.expires_at),
    revokedAt: num(r.revoked_at),
  };
}

export function tenantExists(tenantId: string, operation: string): KuraError {
  return new KuraError("TENANT_EXISTS", `tenant ${tenantId} is already registered`, {
    operation,
    context: { tenantId },
  });
}

export function domainTaken(domain: string, operation: string): KuraError {
  return new KuraError("TENANT_DOMAIN_TAKEN", `the domain ${domain} belongs to another tenant`, {
    operation,
    context: { domain },
  });
}

/** The refusal of a batch that would take a tenant past a quota (`checkQuota`). */
export function quotaExceeded(
  tenantId: string,
  limit: "max_storage_bytes" | "max_objects",
  used: number,
  max: number,
): KuraError {
  return new KuraError(
    "QUOTA_EXCEEDED",
    `the write would take the tenant past ${limit} (${used} with it, limit ${max}); nothing was stored`,
    { operation: "catalog.commit", context: { tenantId, limit, used, max } },
  );
}

export function issuerTaken(issuer: string, operation: string): KuraError {
  return new KuraError("TENANT_ISSUER_TAKEN", "the token issuer belongs to another tenant", {
    operation,
    context: { issuer: issuer.slice(0, 200) },
  });
}
