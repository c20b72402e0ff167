/**
 * The tenant registry over HTTP (TEN-2, TEN-3, TEN-5): the admin identity, `/v1/admin/tenants`,
 * suspension, and `auth.auto_create_tenants` — through a real `kura serve` on SQLite + fs.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runToken } from "../../src/cli/token.js";
import { mintToken } from "../../src/http/auth.js";
import { errorCode, type Harness, SECRET, startServer } from "./harness.js";

const adminToken = () => mintToken({ secret: SECRET, admin: true, ttlSeconds: 600 });

describe("the admin identity and /v1/admin/tenants", () => {
  let h: Harness;
  let admin: string;
  beforeAll(async () => {
    h = await startServer({
      config: { tiers: { pro: { limits: { max_objects: 1000, max_storage_bytes: 1_000_000 } } } },
    });
    admin = await adminToken();
  });
  afterAll(async () => h?.close());

  it("`kura token --admin` mints a token with role admin and no tenant that the admin routes take", async () => {
    const token = await runToken({ admin: true, ttl: "10m", env: { KURA_AUTH__JWT_SECRET: SECRET } });
    const claims = JSON.parse(Buffer.from(token.split(".")[1] as string, "base64url").toString("utf8"));
    expect(claims.role).toBe("admin");
    expect(claims.tenant_id).toBeUndefined();
    expect((await h.call("GET", "/v1/admin/tenants", { token })).status).toBe(200);
    await expect(runToken({ ttl: "10m", env: { KURA_AUTH__JWT_SECRET: SECRET } })).rejects.toMatchObject({
      code: "INVALID_ARGUMENT",
    });
  });

  it("refuses anonymous calls (401), tenant tokens (403) and admin tokens on tenant routes (403)", async () => {
    const anonymous = await h.call("GET", "/v1/admin/tenants");
    expect(anonymous.status).toBe(401);
    expect(errorCode(anonymous)).toBe("AUTH_REQUIRED");
    const tenant = await h.call("POST", "/v1/admin/tenants", {
      token: await h.token("acme"),
      json: { tenant_id: "evil" },
    });
    expect(tenant.status).toBe(403);
    expect(errorCode(tenant)).toBe("ADMIN_REQUIRED");
    const onTenantRoute = await h.call("GET", "/v1/usage", { token: admin });
    expect(onTenantRoute.status).toBe(403);
    expect(errorCode(onTenantRoute)).toBe("ADMIN_REQUIRED");
    // An admin claim signed by anyone but Kura is not the admin: a token without tenant_id.
    const forged = await h.sign(
      { role: "admin" },
      { secret: "another-secret-0123456789abcdef", expiresIn: "5m" },
    );
    expect((await h.call("GET", "/v1/admin/tenants", { token: forged })).status).toBe(401);
  });

  it("registers, reads, lists, changes tenants; refuses a duplicate id, an unknown tier, a taken domain", async () => {
    const created = await h.call("POST", "/v1/admin/tenants", {
      token: admin,
      json: {
        tenant_id: "globex",
        name: "Globex",
        tier: "pro",
        limits: { max_objects: 5 },
        domains: ["Globex.Example.com"],
        jwt: { issuer: "https://idp.globex.test/", jwks_url: "https://idp.globex.test/jwks" },
      },
    });
    expect(created.status, created.text).toBe(201);
    expect(created.json.data).toMatchObject({
      tenant_id: "globex",
      name: "Globex",
      status: "active",
      tier: "pro",
      limits: { max_objects: 5 },
      effective_limits: { max_objects: 5, max_storage_bytes: 1_000_000 },
      domains: ["globex.example.com"],
      jwt: { issuer: "https://idp.globex.test/", jwks_url: "https://idp.globex.test/jwks", audience: null },
    });

    const again = await h.call("POST", "/v1/admin/tenants", { token: admin, json: { tenant_id: "globex" } });
    expect(again.status).toBe(409);
    expect(errorCode(again)).toBe("TENANT_EXISTS");
    const tier = await h.call("POST", "/v1/admin/tenants", {
      token: admin,
      json: { tenant_id: "initech", tier: "platinum" },
    });
    expect(tier.status).toBe(400);
    expect(errorCode(tier)).toBe("TIER_UNKNOWN");
    const taken = await h.call("POST", "/v1/admin/tenants", {
      token: admin,
      json: { tenant_id: "initech", domains: ["globex.example.COM"] },
    });
    expect(taken.status).toBe(409);
    expect(errorCode(taken)).toBe("TENANT_DOMAIN_TAKEN");
    expect((await h.call("GET", "/v1/admin/tenants/initech", { token: admin })).status).toBe(404);

    const got = await h.call("GET", "/v1/admin/tenants/globex", { token: admin });
    expect(got.json.data).toEqual(created.json.data);

    const patched = await h.call("PATCH", "/v1/admin/tenants/globex", {
      token: admin,
      json: { tier: "free", limits: {}, name: null },
    });
    expect(patched.status, patched.text).toBe(200);
    expect(patched.json.data).toMatchObject({ tier: "free", limits: {}, effective_limits: {}, name: null });
    expect(patched.json.data.domains).toEqual(["globex.example.com"]);
    const missing = await h.call("PATCH", "/v1/admin/tenants/nobody", { token: admin, json: { name: "x" } });
    expect(missing.status).toBe(404);
    expect(errorCode(missing)).toBe("TENANT_NOT_FOUND");

    for (const id of ["t-a", "t-b", "t-c"]) {
      expect(
        (await h.call("POST", "/v1/admin/tenants", { token: admin, json: { tenant_id: id } })).status,
      ).toBe(201);
    }
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const query: string = cursor === null ? "" : `&cursor=${cursor}`;
      const page = await h.call("GET", `/v1/admin/tenants?limit=2${query}`, { token: admin });
      expect(page.status, page.text).toBe(200);
      expect(page.json.data.items.length).toBeLessThanOrEqual(2);
      seen.push(...page.json.data.items.map((t: { tenant_id: string }) => t.tenant_id));
      cursor = page.json.data.next_cursor;
    } while (cursor !== null);
    expect(seen).toEqual([...seen].sort());
    expect(seen).toEqual(expect.arrayContaining(["globex", "t-a", "t-b", "t-c"]));
    const bad = await h.call("GET", "/v1/admin/tenants?cursor=bogus", { token: admin });
    expect(errorCode(bad)).toBe("CURSOR_INVALID");
  });

  it("registers a tenant on first use (tier free, unaudited) and audits admin changes in its log", async () => {
    const token = await h.token("hooli");
    expect((await h.call("GET", "/v1/usage", { token })).status).toBe(200);
    const got = await h.call("GET", "/v1/admin/tenants/hooli", { token: admin });
    expect(got.json.data).toMatchObject({ tenant_id: "hooli", tier: "free", status: "active" });
    await h.call("PATCH", "/v1/admin/tenants/hooli", { token: admin, json: { name: "Hooli" } });
    const audit = await h.call("GET", "/v1/audit", { token });
    const actions = audit.json.data.items.map(
      (a: { action: string; actor: string }) => `${a.actor} ${a.action}`,
    );
    expect(actions).toEqual(["admin:admin tenant.update"]);
  });

  it("suspends a tenant: every call answers 403 TENANT_SUSPENDED, reads too, until reactivated", async () => {
    const token = await h.token("umbrella");
    const put = await h.call("PUT", "/v1/kv/ns/k", { token, json: { v: 1 } });
    expect(put.status, put.text).toBe(200);
    const suspend = await h.call("PATCH", "/v1/admin/tenants/umbrella", {
      token: admin,
      json: { status: "suspended" },
    });
    expect(suspend.json.data.status).toBe("suspended");
    for (const [method, path, json] of [
      ["GET", "/v1/kv/ns/k", undefined],
      ["PUT", "/v1/kv/ns/k", { v: 2 }],
      ["POST", "/v1/chats/c1/messages", { role: "user", content: "hi" }],
      ["GET", "/v1/usage", undefined],
    ] as const) {
      const r = await h.call(method, path, { token, ...(json ? { json } : {}) });
      expect(r.status, `${method} ${path}`).toBe(403);
      expect(errorCode(r)).toBe("TENANT_SUSPENDED");
    }
    // Nothing was written while suspended.
    await h.call("PATCH", "/v1/admin/tenants/umbrella", { token: admin, json: { status: "active" } });
    const read = await h.call("GET", "/v1/kv/ns/k", { token });
    expect(read.status).toBe(200);
    expect(read.json.data.value).toEqual({ v: 1 });
    expect((await h.call("GET", "/v1/chats", { token })).json.data.items).toEqual([]);
    // A neighbour was never affected.
    expect((await h.call("GET", "/v1/usage", { token: await h.token("hooli") })).status).toBe(200);
  });

  it("DELETE answers 202 with status deleting, for the admin only, and the tenant then goes", async () => {
    expect(
      (await h.call("DELETE", "/v1/admin/tenants/globex", { token: await h.token("globex") })).status,
    ).toBe(403);
    const r = await h.call("DELETE", "/v1/admin/tenants/globex", { token: admin });
    expect(r.status, r.text).toBe(202);
    expect(r.json.data.status).toBe("deleting");
    await h.kura.tenants.settleDeletions();
    expect(errorCode(await h.call("GET", "/v1/admin/tenants/globex", { token: admin }))).toBe(
      "TENANT_NOT_FOUND",
    );
  });
});

describe("auth.auto_create_tenants: false", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startServer({ config: { auth: { jwt_secret: SECRET, auto_create_tenants: false } } });
  });
  afterAll(async () => h?.close());

  it("refuses a token for an unknown tenant with 403 TENANT_UNKNOWN until the admin registers it", async () => {
    const token = await h.token("newco");
    const refused = await h.call("POST", "/v1/chats/c1/messages", {
      token,
      json: { role: "user", content: "x" },
    });
    expect(refused.status).toBe(403);
    expect(errorCode(refused)).toBe("TENANT_UNKNOWN");
    expect((await h.call("GET", "/v1/usage", { token })).status).toBe(403);
    const admin = await adminToken();
    expect((await h.call("GET", "/v1/admin/tenants", { token: admin })).json.data.items).toEqual([]);
    expect(
      (await h.call("POST", "/v1/admin/tenants", { token: admin, json: { tenant_id: "newco" } })).status,
    ).toBe(201);
    const ok = await h.call("POST", "/v1/chats/c1/messages", { token, json: { role: "user", content: "x" } });
    expect(ok.status, ok.text).toBe(201);
  });
});

describe("API keys", () => {
  let h: Harness;
  let admin: string;
  beforeAll(async () => {
    h = await startServer();
    admin = await adminToken();
    for (const id of ["keyco", "other"])
      await h.call("POST", "/v1/admin/tenants", { token: admin, json: { tenant_id: id } });
  });
  afterAll(async () => h?.close());

  const issue = async (tenant: string, json: unknown) => {
    const r = await h.call("POST", `/v1/admin/tenants/${tenant}/keys`, { token: admin, json });
    expect(r.status, r.text).toBe(201);
    return r.json.data as { key_id: string; secret: string; scopes: string[]; expires_at: string | null };
  };
  const withKey = (secret: string) => ({ headers: { "x-api-key": secret } });

  it("issues a key whose secret is shown once; lists ids and scopes only", async () => {
    const key = await issue("keyco", { scopes: ["write", "read"] });
    expect(key.secret.startsWith(`kura_${key.key_id}_`)).toBe(true);
    expect(key.scopes).toEqual(["read", "write"]);
    expect(key.expires_at).toBeNull();
    const list = await h.call("GET", "/v1/admin/tenants/keyco/keys", { token: admin });
    expect(list.status).toBe(200);
    const listed = list.json.data.items.find((k: { key_id: string }) => k.key_id === key.key_id);
    expect(listed).toMatchObject({ key_id: key.key_id, scopes: ["read", "write"], revoked_at: null });
    expect(list.text).not.toContain(key.secret);
    expect(list.text).not.toContain(key.secret.slice(-43));
    expect((await h.call("GET", "/v1/admin/tenants/nobody/keys", { token: admin })).status).toBe(404);
    const bad = await h.call("POST", "/v1/admin/tenants/keyco/keys", { token: admin, json: { scopes: [] } });
    expect(bad.status).toBe(400);
  });

  it("authenticates as Authorization: Bearer or X-API-Key, as the key's tenant, audited as the key", async () => {
    const key = await issue("keyco", { scopes: ["read", "write"] });
    const put = await h.call("PUT", "/v1/kv/ns/a", { ...withKey(key.secret), json: { v: 1 } });
    expect(put.status, put.text).toBe(200);
    const got = await h.call("GET", "/v1/kv/ns/a", { token: key.secret });
    expect(got.json.data.value).toEqual({ v: 1 });
    // The key's tenant only: another tenant's token sees nothing of it.
    expect((await h.call("GET", "/v1/kv/ns/a", { token: await h.token("other") })).status).toBe(404);
    const sent = await h.call("POST", "/v1/chats/audited/messages", {
      ...withKey(key.secret),
      json: { role: "user", content: "by key" },
    });
    expect(sent.status, sent.text).toBe(201);
    const audit = await h.call("GET", "/v1/audit?limit=1000", withKey(key.secret));
    expect(audit.json.data.items.map((a: { actor: string }) => a.actor)).toContain(`key:${key.key_id}`);
    // A key is not the admin.
    const asAdmin = await h.call("GET", "/v1/admin/tenants", withKey(key.secret));
    expect(errorCode(asAdmin)).toBe("ADMIN_REQUIRED");
  });

  it("lets a read-only key read (search and batch get included) and refuses its writes, storing nothing", async () => {
    const writer = await issue("keyco", { scopes: ["write"] });
    const reader = await issue("keyco", { scopes: ["read"] });
    const appended = await h.call("POST", "/v1/chats/c1/messages", {
      token: writer.secret,
      json: { role: "user", content: "hello keys" },
    });
    expect(appended.status, appended.text).toBe(201);
    const id = appended.json.data.id as string;
    expect((await h.call("GET", `/v1/messages/${id}`, withKey(reader.secret))).status).toBe(200);
    expect((await h.call("GET", "/v1/search?q=hello", withKey(reader.secret))).status).toBe(200);
    const batch = await h.call("POST", "/v1/messages:batchGet", {
      ...withKey(reader.secret),
      json: { ids: [id] },
    });
    expect(batch.status, batch.text).toBe(200);
    const before = (await h.call("GET", "/v1/usage", withKey(reader.secret))).json.data;
    for (const [method, path, json] of [
      ["POST", "/v1/chats/c1/messages", { role: "user", content: "no" }],
      ["PUT", "/v1/kv/ns/b", { v: 1 }],
      ["DELETE", `/v1/messages/${id}`, undefined],
      ["POST", "/v1/objects:presign", { key: "x.txt", method: "PUT" }],
    ] as const) {
      const r = await h.call(method, path, { ...withKey(reader.secret), ...(json ? { json } : {}) });
      expect(r.status, `${method} ${path}`).toBe(403);
      expect(errorCode(r)).toBe("SCOPE_DENIED");
    }
    expect((await h.call("GET", "/v1/usage", withKey(reader.secret))).json.data).toEqual(before);
    expect((await h.call("GET", "/v1/kv/ns/b", withKey(reader.secret))).status).toBe(404);
    expect((await h.call("GET", `/v1/messages/${id}`, withKey(reader.secret))).status).toBe(200);
  });

  it("refuses revoked, expired, malformed and unknown keys (401) and keys of a suspended tenant (403)", async () => {
    const key = await issue("keyco", { scopes: ["read"] });
    expect((await h.call("GET", "/v1/usage", withKey(key.secret))).status).toBe(200);
    const other = await h.call("DELETE", `/v1/admin/tenants/other/keys/${key.key_id}`, { token: admin });
    expect(other.status).toBe(404);
    expect(errorCode(other)).toBe("API_KEY_NOT_FOUND");
    expect(
      (await h.call("DELETE", `/v1/admin/tenants/keyco/keys/${key.key_id}`, { token: admin })).status,
    ).toBe(204);
    const revoked = await h.call("GET", "/v1/usage", withKey(key.secret));
    expect(revoked.status).toBe(401);
    expect(errorCode(revoked)).toBe("API_KEY_INVALID");
    expect(
      (await h.call("DELETE", `/v1/admin/tenants/keyco/keys/${key.key_id}`, { token: admin })).status,
    ).toBe(204);
    const listed = (await h.call("GET", "/v1/admin/tenants/keyco/keys", { token: admin })).json.data.items;
    expect(listed.find((k: { key_id: string }) => k.key_id === key.key_id).revoked_at).not.toBeNull();

    const soon = await issue("keyco", {
      scopes: ["read"],
      expires_at: new Date(Date.now() + 1500).toISOString(),
    });
    expect((await h.call("GET", "/v1/usage", withKey(soon.secret))).status).toBe(200);
    await new Promise((r) => setTimeout(r, 1600));
    expect(errorCode(await h.call("GET", "/v1/usage", withKey(soon.secret)))).toBe("API_KEY_INVALID");
    const past = await h.call("POST", "/v1/admin/tenants/keyco/keys", {
      token: admin,
      json: { scopes: ["read"], expires_at: "2000-01-01T00:00:00Z" },
    });
    expect(past.status).toBe(400);

    const forged = `kura_${key.key_id}_${"A".repeat(43)}`;
    expect(errorCode(await h.call("GET", "/v1/usage", withKey(forged)))).toBe("API_KEY_INVALID");
    expect(errorCode(await h.call("GET", "/v1/usage", withKey("kura_nonsense")))).toBe("API_KEY_INVALID");

    const live = await issue("keyco", { scopes: ["read"] });
    await h.call("PATCH", "/v1/admin/tenants/keyco", { token: admin, json: { status: "suspended" } });
    expect(errorCode(await h.call("GET", "/v1/usage", withKey(live.secret)))).toBe("TENANT_SUSPENDED");
    await h.call("PATCH", "/v1/admin/tenants/keyco", { token: admin, json: { status: "active" } });
    expect((await h.call("GET", "/v1/usage", withKey(live.secret))).status).toBe(200);
  });
});
