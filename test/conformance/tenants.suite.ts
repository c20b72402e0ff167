/**
 * The tenant registry and API keys of the Catalog port (TEN-2, TEN-5), one behaviour suite for
 * every catalog adapter: each statement of the port's Behavior lists, on a real database.
 */
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isKuraError } from "../../src/core/errors.js";
import type { ApiKeyRecord, AuditEntry, Catalog, TenantRecord } from "../../src/ports/catalog.js";
import type { CatalogHarness } from "./catalog.suite.js";

const id = (tag = "t") => `${tag}-${randomBytes(5).toString("hex")}`;

async function expectCode(p: Promise<unknown>, code: string): Promise<void> {
  try {
    await p;
  } catch (e) {
    if (!isKuraError(e)) throw e;
    expect(e.code).toBe(code);
    return;
  }
  throw new Error(`expected ${code}, but it succeeded`);
}

function record(tenantId: string, over: Partial<TenantRecord> = {}): TenantRecord {
  return {
    tenantId,
    name: "Ünïcode 'name'; DROP TABLE x; --",
    status: "active",
    tier: "free",
    limits: { max_storage_bytes: 1_000_000, max_objects: 10 },
    domains: [],
    jwt: null,
    createdAt: 1_700_000_000_000,
    updatedAt: 1_700_000_000_000,
    ...over,
  };
}

function audit(tenantId: string, action: string): AuditEntry {
  return { tenantId, actor: "admin", action, target: tenantId, at: Date.now(), details: { n: 1 } };
}

function key(tenantId: string, over: Partial<ApiKeyRecord> = {}): ApiKeyRecord {
  return {
    keyId: id("k"),
    tenantId,
    secretHash: randomBytes(32).toString("hex"),
    scopes: ["read"],
    createdAt: 1_700_000_000_000,
    expiresAt: null,
    revokedAt: null,
    ...over,
  };
}

export function tenantRegistryConformance(name: string, makeHarness: () => Promise<CatalogHarness>): void {
  describe(`tenant registry conformance: ${name}`, () => {
    let h: CatalogHarness;
    let c: Catalog;
    beforeAll(async () => {
      h = await makeHarness();
      c = await h.open();
    });
    afterAll(async () => {
      await c?.close();
      await h?.cleanup();
    });

    const auditCount = async (tenantId: string) => (await c.auditLog(tenantId, { limit: 1000 })).length;

    it("creates a tenant that reads back exactly as given, with its audit entry", async () => {
      const t = id();
      const r = record(t, {
        domains: ["Chat.Example.COM", "chat.example.com", "other.example.org"],
        jwt: { issuer: "https://idp.example.com/", jwksUrl: "https://idp.example.com/jwks", audience: null },
      });
      await c.createTenant(r, { audit: audit(t, "tenant.create") });
      expect(await c.getTenant(t)).toEqual({ ...r, domains: ["chat.example.com", "other.example.org"] });
      expect(await c.tenantOfDomain("CHAT.example.com")).toBe(t);
      expect((await c.auditLog(t, { limit: 10 })).map((a) => a.action)).toEqual(["tenant.create"]);
    });

    it("refuses an id already registered and a domain another tenant holds, writing nothing", async () => {
      const a = id();
      const b = id();
      const domain = `${id("d")}.example.com`;
      await c.createTenant(record(a, { domains: [domain] }));
      await expectCode(c.createTenant(record(a), { audit: audit(a, "tenant.create") }), "TENANT_EXISTS");
      expect(await auditCount(a)).toBe(0);
      await expectCode(
        c.createTenant(record(b, { domains: [`x.${domain}`, domain.toUpperCase()] }), {
          audit: audit(b, "tenant.create"),
        }),
        "TENANT_DOMAIN_TAKEN",
      );
      expect(await c.getTenant(b)).toBeUndefined();
      expect(await c.tenantOfDomain(`x.${domain}`)).toBeUndefined();
      expect(await auditCount(b)).toBe(0);
    });

    it("implicit tenants (ensureTenant) are not registered, and registering touches no data", async () => {
      const t = id();
      const outcomes = await c.commit([{ ops: [{ op: "ensureTenant", tenantId: t, at: 1 }] }]);
      expect(outcomes[0]?.ok).toBe(true);
      expect(await c.getTenant(t)).toBeUndefined();
      await c.createTenant(record(t));
      expect(await c.usage(t)).toEqual({ tenantId: t, bytes: 0, objects: 0, messages: 0 });
    });

    it("lists tenants in id byte order after a position, at most limit", async () => {
      const prefix = id("list");
      const ids = [`${prefix}-b`, `${prefix}-A`, `${prefix}-a`, `${prefix}-c`];
      for (const t of ids) await c.createTenant(record(t));
      const page = await c.listTenants({ afterTenantId: `${prefix}-A`, limit: 2 });
      expect(page.map((r) => r.tenantId)).toEqual([`${prefix}-a`, `${prefix}-b`]);
      const all = await c.listTenants({ limit: 1000 });
      const ours = all.map((r) => r.tenantId).filter((t) => t.startsWith(prefix));
      expect(ours).toEqual([`${prefix}-A`, `${prefix}-a`, `${prefix}-b`, `${prefix}-c`]);
      await expectCode(c.listTenants({ limit: 0 }), "INVALID_ARGUMENT");
    });

    it("updates only the fields given, replaces domains whole, and audits only real changes", async () => {
      const t = id();
      const other = id();
      const mine = `${id("d")}.example.com`;
      const theirs = `${id("d")}.example.com`;
      await c.createTenant(record(t, { domains: [mine] }));
      await c.createTenant(record(other, { domains: [theirs] }));
      const next = await c.updateTenant(
        t,
        { status: "suspended", limits: { max_objects: 3 } },
        { at: 1_800_000_000_000, audit: audit(t, "tenant.update") },
      );
      expect(next).toMatchObject({ status: "suspended", limits: { max_objects: 3 }, tier: "free" });
      expect(await c.getTenant(t)).toEqual(next);
      expect(next?.updatedAt).toBe(1_800_000_000_000);
      expect(next?.domains).toEqual([mine]);

      await expectCode(
        c.updateTenant(t, { domains: [theirs], name: "x" }, { at: 1, audit: audit(t, "tenant.update") }),
        "TENANT_DOMAIN_TAKEN",
      );
      expect(await c.getTenant(t)).toEqual(next);
      expect(await c.tenantOfDomain(mine)).toBe(t);

      const moved = await c.updateTenant(t, { domains: [`new.${mine}`] }, { at: 2 });
      expect(moved?.domains).toEqual([`new.${mine}`]);
      expect(await c.tenantOfDomain(mine)).toBeUndefined();
      expect(await c.tenantOfDomain(`new.${mine}`)).toBe(t);

      const unknown = id();
      expect(await c.updateTenant(unknown, { name: "x" }, { at: 3, audit: audit(unknown, "x") })).toBe(
        undefined,
      );
      expect(await auditCount(unknown)).toBe(0);
      expect(await auditCount(t)).toBe(1);
    });

    it("removes a tenant with its domains and keys; the id can be registered again", async () => {
      const t = id();
      const domain = `${id("d")}.example.com`;
      await c.createTenant(record(t, { domains: [domain] }));
      const k = key(t);
      await c.createApiKey(k);
      expect(await c.removeTenant(t, { audit: audit(t, "tenant.remove") })).toBe(true);
      expect(await c.getTenant(t)).toBeUndefined();
      expect(await c.tenantOfDomain(domain)).toBeUndefined();
      expect(await c.getApiKey(k.keyId)).toBeUndefined();
      expect(await c.removeTenant(t, { audit: audit(t, "tenant.remove") })).toBe(false);
      expect(await auditCount(t)).toBe(1);
      await c.createTenant(record(t));
      expect((await c.getTenant(t))?.tenantId).toBe(t);
    });

    it("gives an issuer to one tenant at most, frees it with jwt null or removal", async () => {
      const t = id();
      const other = id();
      const issuer = `https://${id("idp")}.example.com/`;
      const jwt = (iss: string) => ({ issuer: iss, jwksUrl: `${iss}jwks`, audience: "kura" });
      await c.createTenant(record(t, { jwt: jwt(issuer) }));
      expect(await c.tenantOfIssuer(issuer)).toBe(t);
      expect(await c.tenantOfIssuer(issuer.toUpperCase())).toBeUndefined();
      await expectCode(c.createTenant(record(other, { jwt: jwt(issuer) })), "TENANT_ISSUER_TAKEN");
      expect(await c.getTenant(other)).toBeUndefined();
      await c.createTenant(record(other));
      await expectCode(
        c.updateTenant(
          other,
          { jwt: jwt(issuer), name: "x" },
          { at: 5, audit: audit(other, "tenant.update") },
        ),
        "TENANT_ISSUER_TAKEN",
      );
      expect((await c.getTenant(other))?.jwt).toBeNull();
      expect(await auditCount(other)).toBe(0);

      const moved = `${issuer}v2`;
      await c.updateTenant(t, { jwt: jwt(moved) }, { at: 6 });
      expect(await c.tenantOfIssuer(issuer)).toBeUndefined();
      expect(await c.tenantOfIssuer(moved)).toBe(t);
      await c.updateTenant(other, { jwt: jwt(issuer) }, { at: 7 });
      expect(await c.tenantOfIssuer(issuer)).toBe(other);
      await c.updateTenant(other, { jwt: null }, { at: 8 });
      expect(await c.tenantOfIssuer(issuer)).toBeUndefined();
      await c.updateTenant(t, { name: "kept" }, { at: 9 });
      expect(await c.tenantOfIssuer(moved)).toBe(t);
      expect(await c.removeTenant(t)).toBe(true);
      expect(await c.tenantOfIssuer(moved)).toBeUndefined();
    });

    it("counts registry changes: updates and removals grow the version, registering does not", async () => {
      const t = id();
      const v0 = await c.registryVersion();
      await c.createTenant(record(t));
      expect(await c.registryVersion()).toBe(v0);
      await c.updateTenant(t, { status: "suspended" }, { at: 1 });
      const v1 = await c.registryVersion();
      expect(v1).toBeGreaterThan(v0);
      expect(await c.updateTenant(id(), { name: "x" }, { at: 2 })).toBeUndefined();
      expect(await c.registryVersion()).toBe(v1);
      const holder = id();
      const issuer = `https://${id("idp")}.example.com/`;
      await c.createTenant(record(holder, { jwt: { issuer, jwksUrl: `${issuer}jwks`, audience: null } }));
      await expectCode(
        c.updateTenant(t, { jwt: { issuer, jwksUrl: `${issuer}jwks`, audience: null } }, { at: 3 }),
        "TENANT_ISSUER_TAKEN",
      );
      expect(await c.registryVersion()).toBe(v1);
      const v2 = await c.registryVersion();
      expect(await c.removeTenant(t)).toBe(true);
      expect(await c.registryVersion()).toBeGreaterThan(v2);
      const v3 = await c.registryVersion();
      expect(await c.removeTenant(t)).toBe(false);
      expect(await c.registryVersion()).toBe(v3);
    });

    it("checkQuota fails its batch alone when usage with it is over, counting batches before it", async () => {
      const t = id("q");
      const grow = (bytes: number, objects: number) => ({
        ops: [
          { op: "addUsage" as const, delta: { tenantId: t, bytes, objects, messages: 0 } },
          { op: "checkQuota" as const, tenantId: t, maxBytes: 100, maxObjects: 3 },
        ],
      });
      const [first] = await c.commit([grow(60, 1)]);
      expect(first?.ok).toBe(true);
      // One group: the second batch fits only without the first, the third fits after both.
      const outcomes = await c.commit([grow(30, 1), grow(30, 1), grow(10, 1)]);
      expect(outcomes.map((o) => o.ok)).toEqual([true, false, true]);
      const refused = outcomes[1];
      expect(refused && !refused.ok && refused.error.code).toBe("QUOTA_EXCEEDED");
      expect(await c.usage(t)).toMatchObject({ bytes: 100, objects: 3 });
      const [objects] = await c.commit([grow(0, 1)]);
      expect(objects && !objects.ok && objects.error.code).toBe("QUOTA_EXCEEDED");
      expect(await c.usage(t)).toMatchObject({ bytes: 100, objects: 3 });
    });

    it("stores API keys that read back as given, by id whatever the tenant, and lists a tenant's own", async () => {
      const a = id();
      const b = id();
      const ka = key(a, { scopes: ["read", "write"], expiresAt: 1_900_000_000_000 });
      const kb = key(b);
      await c.createApiKey(ka, { audit: audit(a, "key.create") });
      await c.createApiKey(kb);
      expect(await c.getApiKey(ka.keyId)).toEqual(ka);
      expect(await c.listApiKeys(a)).toEqual([ka]);
      expect(await c.listApiKeys(b)).toEqual([kb]);
      await expectCode(c.createApiKey({ ...key(b), keyId: ka.keyId }), "CATALOG_DUPLICATE");
      expect(await c.getApiKey(ka.keyId)).toEqual(ka);
      expect(await c.getApiKey("no-such-key")).toBeUndefined();
      expect(await auditCount(a)).toBe(1);
    });

    it("revokes a live key of its tenant once; another tenant's or an unknown key is left alone", async () => {
      const a = id();
      const b = id();
      const k = key(a);
      await c.createApiKey(k);
      expect(await c.revokeApiKey(b, k.keyId, { at: 5, audit: audit(b, "key.revoke") })).toBe(false);
      expect(await c.revokeApiKey(a, "nope", { at: 5 })).toBe(false);
      expect((await c.getApiKey(k.keyId))?.revokedAt).toBeNull();
      expect(await c.revokeApiKey(a, k.keyId, { at: 7, audit: audit(a, "key.revoke") })).toBe(true);
      expect(await c.revokeApiKey(a, k.keyId, { at: 9, audit: audit(a, "key.revoke") })).toBe(false);
      expect((await c.getApiKey(k.keyId))?.revokedAt).toBe(7);
      expect(await c.listApiKeys(a)).toEqual([{ ...k, revokedAt: 7 }]);
      expect(await auditCount(a)).toBe(1);
      expect(await auditCount(b)).toBe(0);
    });

    it("refuses registry calls once closed", async () => {
      const closed = await h.open();
      await closed.close();
      await expectCode(closed.getTenant("x"), "CLOSED");
      await expectCode(closed.createTenant(record(id())), "CLOSED");
    });
  });
}
