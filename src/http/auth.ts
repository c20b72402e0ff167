/**
 * Authentication and tenant resolution (SEC-1, TEN-2): `Authorization: Bearer <jwt>` verified
 * with jose — HS256 with the configured (or generated) secret, RS256/ES256 against a JWKS URL
 * whose keys are cached for 24 h and refetched when a token names an unknown `kid` (rotation).
 * A token binds its tenant: the `tenant_id` claim is required, and when the host is a subdomain
 * `{tenant}.{base_domain}` the two must agree — the host alone never grants a tenant, or any
 * identity-provider token lacking the claim could act for every tenant.
 *
 * A tenant may have its own identity provider (seed 003: each tenant its own user pool,
 * `jwt: {issuer, jwks_url, audience}` in the registry): an RS256/ES256 token whose `iss` is a
 * tenant's issuer is verified against that tenant's JWKS (cached as above, one key set per URL)
 * and audience, and acts for that tenant only — its `tenant_id` claim, when present, and the
 * subdomain must name the same tenant (TENANT_MISMATCH otherwise). An issuer no tenant has is
 * verified as before: against `auth.jwks_url` when configured, otherwise refused (AUTH_INVALID).
 *
 * Lifetimes are bounded: `exp` is required, `exp − (iat or now)` may not exceed
 * `auth.max_token_lifetime_seconds`, and `iat`, `nbf` and `exp` are checked with only
 * `auth.clock_skew_seconds` of tolerance (an `iat` further in the future is refused).
 */
import { randomBytes } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import {
  createRemoteJWKSet,
  decodeJwt,
  decodeProtectedHeader,
  errors,
  type JWTPayload,
  jwtVerify,
  SignJWT,
} from "jose";
import { DEFAULTS, type KuraConfig } from "../config/index.js";
import { KuraError } from "../core/errors.js";
import { ID_PATTERN, isValidId } from "../core/keys.js";

/** Where `kura serve` keeps the HS256 secret it generates when none is configured. */
export const JWT_SECRET_FILE = "jwt-secret";

const HS_ALGORITHMS = ["HS256"];
const JWKS_ALGORITHMS = ["RS256", "ES256"];

export interface JwtSecret {
  secret: string;
  /** The file it was read from or written to, when it was not configured. */
  path?: string;
  /** True when this call created the file. */
  generated: boolean;
}

/**
 * The HS256 secret: `auth.jwt_secret` when configured; otherwise — only when no JWKS URL is
 * configured either — `<data_dir>/jwt-secret`, created (mode 0600) when `create` is set and
 * it does not exist yet. Undefined when there is none.
 */
export async function resolveJwtSecret(
  config: KuraConfig,
  options: { create: boolean },
): Promise<JwtSecret | undefined> {
  if (config.auth.jwt_secret) return { secret: config.auth.jwt_secret, generated: false };
  if (config.auth.jwks_url) return undefined;
  const path = join(config.data_dir, JWT_SECRET_FILE);
  const read = async () => (await readFile(path, "utf8")).trim();
  try {
    return { secret: await read(), path, generated: false };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT" || !options.create) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw e;
    }
  }
  await mkdir(config.data_dir, { recursive: true });
  try {
    await writeFile(path, `${randomBytes(32).toString("base64url")}\n`, { flag: "wx", mode: 0o600 });
    return { secret: await read(), path, generated: true };
  } catch (e) {
    // Another process created it first: use theirs.
    if ((e as NodeJS.ErrnoException).code === "EEXIST")
      return { secret: await read(), path, generated: false };
    throw e;
  }
}

/** `30s`, `15m`, `1h`, `7d` or plain seconds → seconds. */
export function parseTtl(text: string): number {
  const m = /^(\d{1,9})([smhd]?)$/.exec(text.trim());
  if (!m) {
    throw new KuraError(
      "INVALID_ARGUMENT",
      `ttl must look like 30s, 15m, 1h or 7d, not ${text.slice(0, 20)}`,
      {
        operation: "token",
      },
    );
  }
  const n = Number(m[1]);
  const unit = { "": 1, s: 1, m: 60, h: 3600, d: 86_400 }[m[2] as "" | "s" | "m" | "h" | "d"];
  if (n === 0) throw new KuraError("INVALID_ARGUMENT", "ttl must be positive", { operation: "token" });
  return n * unit;
}

/** Default of `auth.max_token_lifetime_seconds`: 24 h. */
export const DEFAULT_MAX_TOKEN_LIFETIME_SECONDS = DEFAULTS.max_token_lifetime_seconds;
/** Default of `auth.clock_skew_seconds`: 60 s. */
export const DEFAULT_CLOCK_SKEW_SECONDS = DEFAULTS.clock_skew_seconds;

/**
 * A development token (HS256) for `tenant`, as `kura token` prints it. Refuses (TENANT_INVALID)
 * a tenant id the id rule (IDS-1) refuses, e.g. `ab.`: the server would refuse the token.
 */
export async function mintToken(options: {
  secret: string;
  /** The tenant_id claim; omitted with `admin`. */
  tenant?: string;
  /** An admin token (`kura token --admin`): `role: "admin"` and no tenant. */
  admin?: boolean;
  user?: string;
  ttlSeconds: number;
  issuer?: string | null;
  audience?: string | null;
  now?: number;
}): Promise<string> {
  const iat = Math.floor((options.now ?? Date.now()) / 1000);
  if (options.admin) {
    let admin = new SignJWT({ role: ADMIN_ROLE })
      .setProtectedHeader({ alg: "HS256", typ: "JWT" })
      .setIssuedAt(iat)
      .setExpirationTime(iat + options.ttlSeconds)
      .setSubject(options.user ?? "admin");
    if (options.issuer) admin = admin.setIssuer(options.issuer);
    if (options.audience) admin = admin.setAudience(options.audience);
    return admin.sign(new TextEncoder().encode(options.secret));
  }
  if (!isValidId(options.tenant)) {
    throw new KuraError(
      "TENANT_INVALID",
      `invalid tenant id ${JSON.stringify(String(options.tenant).slice(0, 130))}: tenant ids match ${ID_PATTERN.source} and do not end in '.'`,
      { operation: "token" },
    );
  }
  let jwt = new SignJWT({ tenant_id: options.tenant })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setIssuedAt(iat)
    .setExpirationTime(iat + options.ttlSeconds)
    .setSubject(options.user ?? "dev");
  if (options.issuer) jwt = jwt.setIssuer(options.issuer);
  if (options.audience) jwt = jwt.setAudience(options.audience);
  return jwt.sign(new TextEncoder().encode(options.secret));
}

export interface AuthOptions {
  /** HS256 secret; tokens signed with HS256 are refused without one. */
  secret?: string | undefined;
  /** JWKS URL for RS256/ES256 tokens. */
  jwksUrl?: string | null;
  issuer?: string | null;
  audience?: string | null;
  /** `{tenant}.{base_domain}` subdomains must agree with the token's tenant. */
  baseDomain?: string | null;
  /** How long fetched JWKS keys are trusted; default 24 h (SEC-1). */
  jwksCacheMs?: number;
  /** Minimum time between refetches for an unknown `kid`; default 30 s. */
  jwksCooldownMs?: number;
  /** Clock skew tolerated on `iat`/`nbf`/`exp` (`auth.clock_skew_seconds`); default 60 s. */
  clockToleranceSeconds?: number;
  /** Longest accepted `exp − iat` (`auth.max_token_lifetime_seconds`); default 24 h. */
  maxLifetimeSeconds?: number;
  clock?: () => number;
  /**
   * How long a verified token's claims are reused without verifying the signature again
   * (never past its `exp`); default 60 s, 0 disables. Bounds how long a token signed by a key
   * removed from the JWKS stays accepted.
   */
  verifiedCacheMs?: number;
  /** Tenants' own issuers (the registry's `jwt` settings); none when absent. */
  tenantIssuers?: TenantIssuers;
}

/** A tenant's own token issuer: its tenant, JWKS URL and audience. */
export interface TenantIssuer {
  tenantId: string;
  issuer: string;
  jwksUrl: string;
  audience: string | null;
}

/** Finds the tenant whose own issuer a token names (engine/tenancy.ts, through the registry). */
export interface TenantIssuers {
  /** The tenant whose issuer `iss` is exactly; undefined when none. */
  issuer(iss: string): Promise<TenantIssuer | undefined>;
  /** `issuer` without waiting, when known and current; undefined when it must be looked up. */
  issuerCached(iss: string): TenantIssuer | undefined;
}

/** Tenants' key sets kept at most (one per JWKS URL; all dropped when full). */
const TENANT_JWKS_ENTRIES = 1000;

/** The `role` claim of admin tokens. */
export const ADMIN_ROLE = "admin";

/** Verified tokens remembered at most (oldest forgotten first). */
const VERIFIED_CACHE_ENTRIES = 10_000;

/**
 * Who calls: a tenant's user (token with `tenant_id`), one of its API keys, or the admin
 * (`role: "admin"`, no tenant, signed with Kura's own HS256 secret: another issuer's token
 * never makes its holder the admin).
 */
export interface Principal {
  role: "tenant" | "admin";
  /** The tenant acted for; undefined for the admin. */
  tenantId: string | undefined;
  /** The token's `sub` (the key id for an API key), when it has one. */
  subject: string | undefined;
  claims: JWTPayload;
  /** An API key's scopes (`read`, `write`); undefined for tokens, which may do everything. */
  scopes?: readonly string[];
}

/**
 * A token whose signature verified; `ownSecret`: signed with Kura's HS256 secret; `tenant`:
 * verified with this tenant's own issuer settings.
 */
interface VerifiedToken {
  payload: JWTPayload;
  ownSecret: boolean;
  tenant?: TenantIssuer;
}

const sameIssuer = (a: TenantIssuer | undefined, b: TenantIssuer) =>
  a !== undefined &&
  a.tenantId === b.tenantId &&
  a.issuer === b.issuer &&
  a.jwksUrl === b.jwksUrl &&
  a.audience === b.audience;

export class Authenticator {
  private readonly hsKey: Uint8Array | undefined;
  private readonly jwks: ReturnType<typeof createRemoteJWKSet> | undefined;
  private readonly algorithms: string[];
  private readonly baseDomain: string | undefined;
  /** token → its verified claims and until when they may be reused (ms). */
  private readonly verified = new Map<string, { token: VerifiedToken; until: number }>();
  /** Tenants' key sets by JWKS URL. */
  private readonly tenantJwks = new Map<string, ReturnType<typeof createRemoteJWKSet>>();

  constructor(private readonly options: AuthOptions) {
    this.hsKey = options.secret ? new TextEncoder().encode(options.secret) : undefined;
    this.jwks = options.jwksUrl
      ? createRemoteJWKSet(new URL(options.jwksUrl), {
          cacheMaxAge: options.jwksCacheMs ?? 24 * 3600_000,
          cooldownDuration: options.jwksCooldownMs ?? 30_000,
          timeoutDuration: 5000,
        })
      : undefined;
    this.algorithms = [...(this.hsKey ? HS_ALGORITHMS : []), ...(this.jwks ? JWKS_ALGORITHMS : [])];
    this.baseDomain = options.baseDomain
      ? options.baseDomain.toLowerCase().replace(/^\.+|\.+$/g, "")
      : undefined;
  }

  /** True when some token could be accepted (a secret, a JWKS URL or tenants' issuers). */
  get enabled(): boolean {
    return this.algorithms.length > 0 || this.options.tenantIssuers !== undefined;
  }

  /**
   * The principal of a request, from its `Authorization` header and host name.
   * Throws AUTH_REQUIRED / AUTH_INVALID / AUTH_EXPIRED (401), AUTH_KEYS_UNAVAILABLE (503),
   * TENANT_MISMATCH / TENANT_UNRESOLVED (403). A token without `exp`, with an `iat` in the
   * future or a lifetime above the maximum is AUTH_INVALID.
   */
  async authenticate(authorization: string | undefined, hostname: string): Promise<Principal> {
    return this.principalOf(await this.verify(this.tokenOf(authorization)), hostname);
  }

  /**
   * The principal without waiting, when the token was verified recently (the common case for a
   * client sending the same token again); undefined when it must be verified. Throws as
   * `authenticate` does for malformed headers and tenant problems.
   */
  cached(authorization: string | undefined, hostname: string): Principal | undefined {
    const token = this.tokenOf(authorization);
    const hit = this.verified.get(token);
    if (!hit || (this.options.clock ?? Date.now)() >= hit.until) return undefined;
    // A tenant's issuer settings may have changed since: only reuse what still matches them.
    const tenant = hit.token.tenant;
    if (tenant && !sameIssuer(this.options.tenantIssuers?.issuerCached(tenant.issuer), tenant))
      return undefined;
    return this.principalOf(hit.token, hostname);
  }

  private tokenOf(authorization: string | undefined): string {
    const op = "http.auth";
    if (!authorization) throw new KuraError("AUTH_REQUIRED", "missing bearer token", { operation: op });
    const m = /^Bearer[ \t]+([A-Za-z0-9._~+/=-]{1,8192})[ \t]*$/i.exec(authorization);
    if (!m) throw new KuraError("AUTH_INVALID", "expected Authorization: Bearer <jwt>", { operation: op });
    return m[1] as string;
  }

  private principalOf({ payload, ownSecret, tenant }: VerifiedToken, hostname: string): Principal {
    const subject = typeof payload.sub === "string" ? payload.sub : undefined;
    if (ownSecret && payload.role === ADMIN_ROLE && payload.tenant_id === undefined)
      return { role: "admin", tenantId: undefined, subject, claims: payload };
    return { role: "tenant", tenantId: this.tenantOf(payload, hostname, tenant), subject, claims: payload };
  }

  private async verify(token: string): Promise<VerifiedToken> {
    const now = (this.options.clock ?? Date.now)();
    const hit = this.verified.get(token);
    if (hit) {
      const tenant = hit.token.tenant;
      const current =
        now < hit.until &&
        (!tenant || sameIssuer(await this.options.tenantIssuers?.issuer(tenant.issuer), tenant));
      if (current) return hit.token;
      this.verified.delete(token);
    }
    const verified = await this.verifySignature(token);
    const payload = verified.payload;
    this.checkLifetime(payload, now);
    const cacheMs = this.options.verifiedCacheMs ?? 60_000;
    if (cacheMs > 0) {
      const exp = typeof payload.exp === "number" ? payload.exp * 1000 : Number.POSITIVE_INFINITY;
      if (this.verified.size >= VERIFIED_CACHE_ENTRIES) {
        const oldest = this.verified.keys().next().value;
        if (oldest !== undefined) this.verified.delete(oldest);
      }
      this.verified.set(token, { token: verified, until: Math.min(exp, now + cacheMs) });
    }
    return verified;
  }

  private async verifySignature(token: string): Promise<VerifiedToken> {
    const op = "http.auth";
    if (!this.enabled)
      throw new KuraError("AUTH_INVALID", "no token can be verified: auth is not configured", {
        operation: op,
      });
    const tenant = await this.tenantIssuerOf(token);
    if (tenant) return this.verifyForTenant(token, tenant);
    if (this.algorithms.length === 0)
      throw new KuraError("AUTH_INVALID", "the token's issuer is not a tenant's issuer", { operation: op });
    try {
      const { payload, protectedHeader } = await jwtVerify(
        token,
        async (header, jws) => {
          if (header.alg === "HS256" && this.hsKey) return this.hsKey;
          if (this.jwks && JWKS_ALGORITHMS.includes(header.alg)) return this.jwks(header, jws);
          throw new errors.JOSEAlgNotAllowed(`"alg" (Algorithm) Header Parameter value not allowed`);
        },
        {
          algorithms: this.algorithms,
          ...(this.options.issuer ? { issuer: this.options.issuer } : {}),
          ...(this.options.audience ? { audience: this.options.audience } : {}),
          requiredClaims: ["exp"],
          clockTolerance: this.skewSeconds,
          ...(this.options.clock ? { currentDate: new Date(this.options.clock()) } : {}),
        },
      );
      return { payload, ownSecret: protectedHeader.alg === "HS256" };
    } catch (e) {
      throw authError(e);
    }
  }

  /**
   * The tenant whose own issuer the token names (`iss`, read before verifying: the tenant's
   * keys then verify it), for RS256/ES256 tokens whose issuer is not `auth.issuer`.
   */
  private async tenantIssuerOf(token: string): Promise<TenantIssuer | undefined> {
    const issuers = this.options.tenantIssuers;
    if (!issuers) return undefined;
    let alg: unknown;
    let iss: unknown;
    try {
      alg = decodeProtectedHeader(token).alg;
      iss = decodeJwt(token).iss;
    } catch {
      return undefined; // malformed: verification below says so
    }
    if (typeof alg !== "string" || !JWKS_ALGORITHMS.includes(alg)) return undefined;
    if (typeof iss !== "string" || iss.length === 0 || iss.length > 1024) return undefined;
    if (iss === this.options.issuer) return undefined;
    return issuers.issuerCached(iss) ?? (await issuers.issuer(iss));
  }

  /** Verifies a token against its tenant's JWKS, issuer and audience. */
  private async verifyForTenant(token: string, tenant: TenantIssuer): Promise<VerifiedToken> {
    let jwks = this.tenantJwks.get(tenant.jwksUrl);
    if (!jwks) {
      if (this.tenantJwks.size >= TENANT_JWKS_ENTRIES) this.tenantJwks.clear();
      jwks = createRemoteJWKSet(new URL(tenant.jwksUrl), {
        cacheMaxAge: this.options.jwksCacheMs ?? 24 * 3600_000,
        cooldownDuration: this.options.jwksCooldownMs ?? 30_000,
        timeoutDuration: 5000,
      });
      this.tenantJwks.set(tenant.jwksUrl, jwks);
    }
    try {
      const { payload } = await jwtVerify(token, jwks, {
        algorithms: JWKS_ALGORITHMS,
        issuer: tenant.issuer,
        ...(tenant.audience ? { audience: tenant.audience } : {}),
        requiredClaims: ["exp"],
        clockTolerance: this.skewSeconds,
        ...(this.options.clock ? { currentDate: new Date(this.options.clock()) } : {}),
      });
      return { payload, ownSecret: false, tenant };
    } catch (e) {
      throw authError(e);
    }
  }

  private get skewSeconds(): number {
    return this.options.clockToleranceSeconds ?? DEFAULT_CLOCK_SKEW_SECONDS;
  }

  /** `iat` not in the future and `exp − iat` within the maximum (jose checked `exp` and `nbf`). */
  private checkLifetime(payload: JWTPayload, nowMs: number): void {
    const op = "http.auth";
    const now = Math.floor(nowMs / 1000);
    const skew = this.skewSeconds;
    const max = this.options.maxLifetimeSeconds ?? DEFAULT_MAX_TOKEN_LIFETIME_SECONDS;
    const exp = payload.exp as number; // required and checked to be a number by jwtVerify
    const iat = typeof payload.iat === "number" ? payload.iat : undefined;
    if (iat !== undefined && iat > now + skew) {
      throw new KuraError("AUTH_INVALID", "the token's iat claim is in the future", { operation: op });
    }
    // Without iat, the lifetime left is what counts; with it, the lifetime it was minted with.
    if (exp - Math.min(iat ?? now, now) > max + skew) {
      throw new KuraError(
        "AUTH_INVALID",
        `the token's lifetime exceeds the maximum of ${max} s (auth.max_token_lifetime_seconds)`,
        { operation: op },
      );
    }
  }

  private tenantOf(payload: JWTPayload, hostname: string, tenant: TenantIssuer | undefined): string {
    const op = "http.auth";
    if (tenant) {
      // A tenant's own issuer speaks for that tenant only, whatever the token claims.
      if (payload.tenant_id !== undefined && payload.tenant_id !== tenant.tenantId) {
        throw new KuraError("TENANT_MISMATCH", "the token's issuer belongs to another tenant than it names", {
          operation: op,
        });
      }
      this.checkHost(tenant.tenantId, hostname, "token");
      return tenant.tenantId;
    }
    const claim = payload.tenant_id;
    if (claim === undefined) {
      // The host never grants a tenant on its own: the token must say which one it is for.
      throw new KuraError("TENANT_UNRESOLVED", "the token has no tenant_id claim", { operation: op });
    }
    if (!isValidId(claim)) {
      throw new KuraError("TENANT_UNRESOLVED", "the token's tenant_id claim is not a valid tenant id", {
        operation: op,
      });
    }
    const fromHost = this.subdomainTenant(hostname);
    if (fromHost !== undefined && claim !== fromHost) {
      throw new KuraError("TENANT_MISMATCH", "the token is for another tenant than this subdomain", {
        operation: op,
      });
    }
    return claim;
  }

  /**
   * An API key binds its tenant as a token does: on a subdomain `{tenant}.{base_domain}` of
   * another tenant it is TENANT_MISMATCH.
   */
  checkHost(tenantId: string, hostname: string, what = "API key"): void {
    const fromHost = this.subdomainTenant(hostname);
    if (fromHost !== undefined && fromHost !== tenantId) {
      throw new KuraError("TENANT_MISMATCH", `the ${what} is for another tenant than this subdomain`, {
        operation: "http.auth",
      });
    }
  }

  /** `acme` for `acme.example.com` when base_domain is `example.com`; otherwise undefined. */
  private subdomainTenant(hostname: string): string | undefined {
    if (!this.baseDomain) return undefined;
    const host = hostname.toLowerCase().replace(/\.$/, "");
    const suffix = `.${this.baseDomain}`;
    if (!host.endsWith(suffix)) return undefined;
    const label = host.slice(0, -suffix.length);
    if (!isValidId(label) || label.includes(".")) {
      throw new KuraError("TENANT_UNRESOLVED", "the subdomain is not a valid tenant id", {
        operation: "http.auth",
      });
    }
    return label;
  }
}

function authError(e: unknown): KuraError {
  const op = "http.auth";
  if (e instanceof errors.JWTExpired) {
    return new KuraError("AUTH_EXPIRED", "the token has expired", { operation: op, cause: e });
  }
  if (e instanceof errors.JWTClaimValidationFailed && e.claim === "nbf") {
    return new KuraError("AUTH_EXPIRED", "the token is not valid yet", { operation: op, cause: e });
  }
  const unreachable =
    !(e instanceof errors.JOSEError) ||
    e instanceof errors.JWKSTimeout ||
    e instanceof errors.JWKSInvalid ||
    e.code === "ERR_JOSE_GENERIC";
  if (unreachable) {
    return new KuraError("AUTH_KEYS_UNAVAILABLE", "the signing keys could not be fetched", {
      operation: op,
      cause: e,
    });
  }
  const why =
    e instanceof errors.JWTClaimValidationFailed
      ? `the token's ${e.claim} claim is not accepted`
      : e instanceof errors.JOSEAlgNotAllowed
        ? "the token's algorithm is not accepted"
        : e instanceof errors.JWKSNoMatchingKey
          ? "no signing key matches the token"
          : "the token is malformed or its signature does not verify";
  return new KuraError("AUTH_INVALID", why, { operation: op, cause: e });
}
