/**
 * Per-tenant identity providers (TEN-2, seed 003: each tenant its own user pool): a token whose
 * `iss` is a tenant's `jwt.issuer` is verified against that tenant's JWKS and audience and acts
 * for that tenant only. Two real JWKS servers (node:http serving jose-generated public keys)
 * stand in for two tenants' identity providers, in front of a real `kura serve` on SQLite + fs.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mintToken } from "../../src/http/auth.js";
import { errorCode, getWithHost, type Harness, SECRET, startServer } from "./harness.js";

type PrivateKey = Awaited<ReturnType<typeof generateKeyPair>>["privateKey"];

interface Idp {
  issuer: string;
  jwksUrl: string;
  key: PrivateKey;
  kid: string;
  /** A key of the same algorithm that the JWKS does not publish. */
  stranger: PrivateKey;
  server: Server;
}

/** An identity provider: a key pair whose public half a local JWKS endpoint serves. */
async function startIdp(name: string): Promise<Idp> {
  const kid = `${name}-key-1`;
  const { privateKey, publicKey } = await generateKeyPair("ES256", { extractable: true });
  const stranger = (await generateKeyPair("ES256")).privateKey;
  const body = JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid, alg: "ES256", use: "sig" }] });
  const server = createServer((_req, res) => {
    res.writeHead(200, { "content-type": "application/json" }).end(body);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as AddressInfo).port;
  return {
    issuer: `https://${name}.idp.example/`,
    jwksUrl: `http://127.0.0.1:${port}/.well-known/jwks.json`,
    key: privateKey,
    kid,
    stranger,
    server,
  };
}

async function sign(
  idp: Idp,
  claims: Record<string, unknown>,
  options: { audience?: string; exp?: number; key?: PrivateKey; kid?: string } = {},
): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT(claims)
    .setProtectedHeader({ alg: "ES256", kid: options.kid ?? idp.kid })
    .setIssuer(idp.issuer)
    .setAudience(options.audience ?? "kura-api")
    .setSubject("user-1")
    .setIssuedAt(options.exp !== undefined ? options.exp - 600 : now)
    .setExpirationTime(options.exp ?? now + 300)
    .sign(options.key ?? idp.key);
}

describe("per-tenant JWT issuers", () => {
  let h: Harness;
  let a: Idp;
  let b: Idp;
  let admin: string;

  beforeAll(async () => {
    [a, b] = await Promise.all([startIdp("alpha"), startIdp("beta")]);
    h = await startServer({
      config: {
        server: { base_domain: "kura.test" },
        auth: { jwt_secret: SECRET, auto_create_tenants: false },
      },
      // The verified-token cache stays on: a registry change must hold past it.
      server: { auth: { jwksCooldownMs: 0 } },
    });
    admin = await mintToken({ secret: SECRET, admin: true, ttlSeconds: 600 });
    for (const [id, idp] of [
      ["alpha", a],
      ["beta", b],
    ] as const) {
      const r = await h.call("POST", "/v1/admin/tenants", {
        token: admin,
        json: { tenant_id: id, jwt: { issuer: idp.issuer, jwks_url: idp.jwksUrl, audience: "kura-api" } },
      });
      expect(r.status).toBe(201);
    }
  });

  afterAll(async () => {
    await h?.close();
    for (const idp of [a, b]) await new Promise<void>((r) => (idp ? idp.server.close(() => r()) : r()));
  });

  it("a token of the tenant's own issuer acts for that tenant, with or without a tenant_id claim", async () => {
    const put = await h.call("PUT", "/v1/kv/notes/k1", {
      token: await sign(a, {}),
      json: { note: "from alpha's user pool" },
    });
    expect(put.status).toBe(200);
    const got = await h.call("GET", "/v1/kv/notes/k1", { token: await sign(a, { tenant_id: "alpha" }) });
    expect(got.status).toBe(200);
    expect(got.json.data.value).toEqual({ note: "from alpha's user pool" });
    // The value is alpha's: beta's users do not see it.
    expect((await h.call("GET", "/v1/kv/notes/k1", { token: await sign(b, {}) })).status).toBe(404);
    // On alpha's subdomain too.
    const onHost = await getWithHost(h, "alpha.kura.test", "/v1/kv/notes/k1", await sign(a, {}));
    expect(onHost.status).toBe(200);
  });

  it("refuses a wrong audience, an expired token and a key the JWKS does not publish (401)", async () => {
    const wrongAudience = await h.call("GET", "/v1/usage", {
      token: await sign(a, {}, { audience: "other" }),
    });
    expect(wrongAudience.status).toBe(401);
    expect(errorCode(wrongAudience)).toBe("AUTH_INVALID");

    const past = Math.floor(Date.now() / 1000) - 3600;
    const expired = await h.call("GET", "/v1/usage", { token: await sign(a, {}, { exp: past }) });
    expect(expired.status).toBe(401);
    expect(errorCode(expired)).toBe("AUTH_EXPIRED");

    for (const token of [
      await sign(a, {}, { key: a.stranger, kid: "not-published" }),
      // The published kid, signed by another key: the signature does not verify.
      await sign(a, {}, { key: a.stranger }),
      // Signed by beta's key but naming alpha's issuer.
      await sign({ ...b, issuer: a.issuer }, {}, { kid: a.kid }),
    ]) {
      const r = await h.call("GET", "/v1/usage", { token });
      expect(r.status).toBe(401);
      expect(errorCode(r)).toBe("AUTH_INVALID");
    }
  });

  it("refuses a token of one tenant's issuer that names another tenant (403 TENANT_MISMATCH)", async () => {
    const claimsBeta = await h.call("PUT", "/v1/kv/notes/k2", {
      token: await sign(a, { tenant_id: "beta" }),
      json: { value: "x" },
    });
    expect(claimsBeta.status).toBe(403);
    expect(errorCode(claimsBeta)).toBe("TENANT_MISMATCH");
    const onBetaHost = await getWithHost(h, "beta.kura.test", "/v1/kv/notes/k1", await sign(a, {}));
    expect(onBetaHost.status).toBe(403);
    expect(JSON.parse(onBetaHost.body).error_code).toBe("TENANT_MISMATCH");
    expect((await h.call("GET", "/v1/kv/notes/k2", { token: await sign(b, {}) })).status).toBe(404);
  });

  it("refuses an issuer no tenant has (401)", async () => {
    const unknown = await sign({ ...a, issuer: "https://nobody.idp.example/" }, { tenant_id: "alpha" });
    const r = await h.call("GET", "/v1/usage", { token: unknown });
    expect(r.status).toBe(401);
    expect(errorCode(r)).toBe("AUTH_INVALID");
  });

  it("follows the registry: a changed audience or issuer holds at once, a taken issuer is refused", async () => {
    const token = await sign(a, {});
    expect((await h.call("GET", "/v1/usage", { token })).status).toBe(200);
    const patched = await h.call("PATCH", "/v1/admin/tenants/alpha", {
      token: admin,
      json: { jwt: { issuer: a.issuer, jwks_url: a.jwksUrl, audience: "kura-api-v2" } },
    });
    expect(patched.status).toBe(200);
    expect((await h.call("GET", "/v1/usage", { token })).status).toBe(401);
    const v2 = await h.call("GET", "/v1/usage", { token: await sign(a, {}, { audience: "kura-api-v2" }) });
    expect(v2.status).toBe(200);

    const taken = await h.call("PATCH", "/v1/admin/tenants/beta", {
      token: admin,
      json: { jwt: { issuer: a.issuer, jwks_url: b.jwksUrl, audience: null } },
    });
    expect(taken.status).toBe(409);
    expect(errorCode(taken)).toBe("TENANT_ISSUER_TAKEN");
    // Beta's own issuer still works: the refused change left it as it was.
    expect((await h.call("GET", "/v1/usage", { token: await sign(b, {}) })).status).toBe(200);

    const suspended = await h.call("PATCH", "/v1/admin/tenants/alpha", {
      token: admin,
      json: { status: "suspended" },
    });
    expect(suspended.status).toBe(200);
    const refused = await h.call("GET", "/v1/usage", {
      token: await sign(a, {}, { audience: "kura-api-v2" }),
    });
    expect(refused.status).toBe(403);
    expect(errorCode(refused)).toBe("TENANT_SUSPENDED");
  });
});
