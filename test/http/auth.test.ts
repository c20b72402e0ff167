import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { exportJWK, generateKeyPair, type JWK, SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { errorCode, getWithHost, type Harness, SECRET, startServer } from "./harness.js";

const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString("base64url");

describe("HS256 tokens (SEC-1)", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startServer();
  });
  afterAll(async () => h?.close());

  const usage = (authorization?: string) =>
    h.call("GET", "/v1/usage", authorization ? { headers: { authorization } } : {});

  it("accepts a valid token and scopes the request to its tenant", async () => {
    const r = await usage(`Bearer ${await h.token("acme")}`);
    expect(r.status).toBe(200);
    expect(r.json.data.tenant_id).toBe("acme");
  });

  it("refuses missing, malformed, forged, alg-none, expired and not-yet-valid tokens with 401", async () => {
    const now = Math.floor(Date.now() / 1000);
    const cases: [string | undefined, string][] = [
      [undefined, "AUTH_REQUIRED"],
      ["Basic dXNlcjpwYXNz", "AUTH_INVALID"],
      ["Bearer", "AUTH_INVALID"],
      ["Bearer not.a.jwt", "AUTH_INVALID"],
      [
        `Bearer ${await h.sign({ tenant_id: "acme" }, { secret: "another-secret-another-secret-xx" })}`,
        "AUTH_INVALID",
      ],
      [
        `Bearer ${b64({ alg: "none", typ: "JWT" })}.${b64({ tenant_id: "acme", exp: now + 600 })}.`,
        "AUTH_INVALID",
      ],
      [`Bearer ${b64({ alg: "none" })}.${b64({ tenant_id: "acme" })}.c2ln`, "AUTH_INVALID"],
      [`Bearer ${await h.sign({ tenant_id: "acme" }, { expiresIn: now - 60 })}`, "AUTH_EXPIRED"],
      [`Bearer ${await h.sign({ tenant_id: "acme", nbf: now + 3600 }, { expiresIn: "2h" })}`, "AUTH_EXPIRED"],
      [
        `Bearer ${await h.token("acme", { ttlSeconds: 1 }).then((t) => `${t.slice(0, -3)}AAA`)}`,
        "AUTH_INVALID",
      ],
    ];
    // HS512 with the right secret: not an accepted algorithm.
    const hs512 = await new SignJWT({ tenant_id: "acme" })
      .setProtectedHeader({ alg: "HS512" })
      .sign(new TextEncoder().encode(SECRET));
    cases.push([`Bearer ${hs512}`, "AUTH_INVALID"]);
    for (const [header, code] of cases) {
      const r = await usage(header);
      expect(r.status, header).toBe(401);
      expect(errorCode(r), header).toBe(code);
      expect(r.text).not.toContain(SECRET);
    }
  });

  it("needs a tenant: no tenant_id claim or an invalid one → 403", async () => {
    for (const claims of [
      { sub: "u1" },
      { tenant_id: "../etc" },
      { tenant_id: 42 },
      { tenant_id: "" },
      { tenant_id: "ab." },
    ]) {
      const r = await usage(`Bearer ${await h.sign(claims, { expiresIn: "5m" })}`);
      expect(r.status, JSON.stringify(claims)).toBe(403);
      expect(errorCode(r)).toBe("TENANT_UNRESOLVED");
    }
  });
});

describe("issuer and audience", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startServer({
      config: { auth: { jwt_secret: SECRET, issuer: "https://id.example", audience: "kura" } },
    });
  });
  afterAll(async () => h?.close());

  it("refuses a wrong or missing issuer/audience with 401", async () => {
    const ok = await h.sign(
      { tenant_id: "acme", iss: "https://id.example", aud: "kura" },
      { expiresIn: "5m" },
    );
    expect((await h.call("GET", "/v1/usage", { token: ok })).status).toBe(200);
    for (const claims of [
      { tenant_id: "acme", iss: "https://evil.example", aud: "kura" },
      { tenant_id: "acme", iss: "https://id.example", aud: "other" },
      { tenant_id: "acme" },
    ]) {
      const r = await h.call("GET", "/v1/usage", { token: await h.sign(claims, { expiresIn: "5m" }) });
      expect(r.status).toBe(401);
      expect(errorCode(r)).toBe("AUTH_INVALID");
    }
  });
});

describe("tenant from the subdomain (TEN-2)", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startServer({ config: { auth: { jwt_secret: SECRET }, server: { base_domain: "kura.test" } } });
  });
  afterAll(async () => h?.close());

  const get = (host: string, path: string, token: string) => getWithHost(h, host, path, token);

  it("accepts a matching subdomain, refuses a different one with 403", async () => {
    const acme = await h.token("acme");
    await h.call("PUT", "/v1/objects/note.txt", { token: acme, body: "acme's note" });
    const same = await get("acme.kura.test", "/v1/objects/note.txt", acme);
    expect(same.status).toBe(200);
    expect(same.body).toBe("acme's note");
    const other = await get("globex.kura.test:8787", "/v1/objects/note.txt", acme);
    expect(other.status).toBe(403);
    expect(JSON.parse(other.body).error_code).toBe("TENANT_MISMATCH");
    expect(other.body).not.toContain("acme's note");
  });

  it("never takes the tenant from the subdomain alone: a token without tenant_id is refused", async () => {
    const anyTenant = await h.sign({ sub: "user-1" }, { expiresIn: "5m" });
    for (const host of ["acme.kura.test", "kura.test", "a.b.kura.test"]) {
      const r = await get(host, "/v1/usage", anyTenant);
      expect(r.status, host).toBe(403);
      expect(JSON.parse(r.body).error_code).toBe("TENANT_UNRESOLVED");
    }
  });
});

describe("RS256/ES256 via JWKS with caching and key rotation", () => {
  let h: Harness;
  let jwks: Server;
  let keys: JWK[] = [];
  let fetches = 0;
  type PrivateKey = Awaited<ReturnType<typeof generateKeyPair>>["privateKey"];
  type Signer = { kid: string; alg: "RS256" | "ES256"; privateKey: PrivateKey; jwk: JWK };
  const signers: Record<string, Signer> = {};

  async function makeKey(kid: string, alg: "RS256" | "ES256"): Promise<Signer> {
    const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
    const jwk = { ...(await exportJWK(publicKey)), kid, alg, use: "sig" };
    const s = { kid, alg, privateKey, jwk };
    signers[kid] = s;
    return s;
  }

  const signWith = (s: Signer, claims: Record<string, unknown> = { tenant_id: "acme" }) =>
    new SignJWT(claims)
      .setProtectedHeader({ alg: s.alg, kid: s.kid })
      .setIssuedAt()
      .setExpirationTime("5m")
      .sign(s.privateKey);

  beforeAll(async () => {
    keys = [(await makeKey("rsa-1", "RS256")).jwk, (await makeKey("ec-1", "ES256")).jwk];
    await makeKey("rsa-2", "RS256");
    jwks = createServer((_req, res) => {
      fetches++;
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ keys }));
    });
    await new Promise<void>((r) => jwks.listen(0, "127.0.0.1", r));
    const url = `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/.well-known/jwks.json`;
    h = await startServer({
      config: { auth: { jwks_url: url } },
      server: { auth: { jwksCooldownMs: 0, verifiedCacheMs: 0 } },
    });
  });
  afterAll(async () => {
    await h?.close();
    jwks?.close();
  });

  const usage = (token: string) => h.call("GET", "/v1/usage", { token });

  it("accepts RS256 and ES256 tokens and fetches the key set once", async () => {
    expect((await usage(await signWith(signers["rsa-1"] as Signer))).status).toBe(200);
    expect((await usage(await signWith(signers["ec-1"] as Signer))).status).toBe(200);
    for (let i = 0; i < 5; i++)
      expect((await usage(await signWith(signers["rsa-1"] as Signer))).status).toBe(200);
    expect(fetches).toBe(1);
  });

  it("refuses HS256, forged signatures and unknown keys", async () => {
    const hs = await h.sign({ tenant_id: "acme" }, { expiresIn: "5m" });
    expect(errorCode(await usage(hs))).toBe("AUTH_INVALID");
    // Signed by rsa-2 but claiming to be rsa-1.
    const forged = await new SignJWT({ tenant_id: "acme" })
      .setProtectedHeader({ alg: "RS256", kid: "rsa-1" })
      .setExpirationTime("5m")
      .sign((signers["rsa-2"] as Signer).privateKey);
    expect(errorCode(await usage(forged))).toBe("AUTH_INVALID");
    const unknown = await usage(await signWith(signers["rsa-2"] as Signer));
    expect(unknown.status).toBe(401);
    expect(errorCode(unknown)).toBe("AUTH_INVALID");
  });

  it("follows key rotation: a new kid is fetched, a removed one is refused", async () => {
    keys = [(signers["rsa-2"] as Signer).jwk, (signers["ec-1"] as Signer).jwk];
    const before = fetches;
    expect((await usage(await signWith(signers["rsa-2"] as Signer))).status).toBe(200);
    expect(fetches).toBeGreaterThan(before);
    const old = await usage(await signWith(signers["rsa-1"] as Signer));
    expect(old.status).toBe(401);
  });

  it("answers 503 with Retry-After when the key set cannot be fetched", async () => {
    await new Promise<void>((r) => jwks.close(() => r()));
    const fresh = await makeKey("rsa-3", "RS256");
    const r = await usage(await signWith(fresh));
    expect(r.status).toBe(503);
    expect(errorCode(r)).toBe("AUTH_KEYS_UNAVAILABLE");
    expect(r.headers.get("retry-after")).toBe("1");
    // Keys already cached still work.
    expect((await usage(await signWith(signers["ec-1"] as Signer))).status).toBe(200);
  });
});
