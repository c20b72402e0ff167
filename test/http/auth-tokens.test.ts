/**
 * Token rules beyond the signature: the tenant a token binds (IDS-1 in full, never the host
 * alone), bounded lifetimes (`exp` required, `auth.max_token_lifetime_seconds`), clock skew
 * (`auth.clock_skew_seconds`), and `kura token` refusing what the server would refuse.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { runToken } from "../../src/cli/token.js";
import { mintToken } from "../../src/http/auth.js";
import { errorCode, getWithHost, type Harness, SECRET, startServer } from "./harness.js";
import { watchProcess } from "./process-watch.js";

const watch = watchProcess();
afterEach(() => {
  expect(watch.escaped).toEqual([]);
});

/** A token signed with the test secret whose claims are exactly `claims` (no iat/exp added). */
const signRaw = (claims: Record<string, unknown>) =>
  new SignJWT(claims).setProtectedHeader({ alg: "HS256" }).sign(new TextEncoder().encode(SECRET));

const nowS = () => Math.floor(Date.now() / 1000);

describe("a tenant id the id rule refuses", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startServer();
  });
  afterAll(async () => h?.close());

  it("is refused with 403 TENANT_UNRESOLVED, and the server keeps answering", async () => {
    for (const tenant of ["ab.", "a.", "x..", "ab.."]) {
      const token = await signRaw({ tenant_id: tenant, iat: nowS(), exp: nowS() + 300 });
      // Twice: the second request takes the verified-token cache path.
      for (let i = 0; i < 2; i++) {
        const r = await h.call("GET", "/v1/usage", { token });
        expect(r.status, `${tenant} #${i}`).toBe(403);
        expect(errorCode(r)).toBe("TENANT_UNRESOLVED");
      }
    }
    expect((await h.call("GET", "/healthz")).status).toBe(200);
  });

  it("is refused by the token minter and by `kura token`", async () => {
    await expect(mintToken({ secret: SECRET, tenant: "ab.", ttlSeconds: 60 })).rejects.toMatchObject({
      code: "TENANT_INVALID",
    });
    const dir = await mkdtemp(join(tmpdir(), "kura-token-"));
    try {
      const env = { KURA_DATA_DIR: dir, KURA_AUTH__JWT_SECRET: SECRET };
      await expect(runToken({ tenant: "ab.", ttl: "1h", env })).rejects.toMatchObject({
        code: "TENANT_INVALID",
      });
      await expect(runToken({ tenant: "acme", ttl: "2d", env })).rejects.toMatchObject({
        code: "INVALID_ARGUMENT",
        message: expect.stringContaining("auth.max_token_lifetime_seconds"),
      });
      // What `kura token` mints by default (1 h) and at the maximum (24 h) is accepted.
      const minted = [
        await runToken({ tenant: "acme", ttl: "1h", env }),
        await runToken({ tenant: "acme", ttl: "1d", env }),
      ];
      for (const token of minted) expect((await h.call("GET", "/v1/usage", { token })).status).toBe(200);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("token lifetimes", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startServer({
      config: { auth: { jwt_secret: SECRET, max_token_lifetime_seconds: 3600, clock_skew_seconds: 30 } },
    });
  });
  afterAll(async () => h?.close());

  const usage = async (claims: Record<string, unknown>) =>
    h.call("GET", "/v1/usage", { token: await signRaw({ tenant_id: "acme", ...claims }) });

  it("refuses a token without exp", async () => {
    for (const claims of [{}, { iat: nowS() }]) {
      const r = await usage(claims);
      expect(r.status, JSON.stringify(claims)).toBe(401);
      expect(errorCode(r)).toBe("AUTH_INVALID");
      expect(r.json.error).toContain("exp");
    }
  });

  it("refuses a lifetime above auth.max_token_lifetime_seconds, with or without iat", async () => {
    const now = nowS();
    for (const claims of [
      { iat: now, exp: now + 3600 + 31 },
      { exp: now + 3600 + 120 },
      // Issued long ago with a far expiry: its lifetime is what counts, not what is left.
      { iat: now - 7200, exp: now + 600 },
    ]) {
      const r = await usage(claims);
      expect(r.status, JSON.stringify(claims)).toBe(401);
      expect(errorCode(r)).toBe("AUTH_INVALID");
    }
    expect((await usage({ iat: now, exp: now + 3600 })).status).toBe(200);
    expect((await usage({ exp: now + 1800 })).status).toBe(200);
  });

  it("refuses iat in the future beyond the clock skew, tolerates it within", async () => {
    const now = nowS();
    const future = await usage({ iat: now + 600, exp: now + 1200 });
    expect(future.status).toBe(401);
    expect(errorCode(future)).toBe("AUTH_INVALID");
    expect(future.json.error).toContain("iat");
    expect((await usage({ iat: now + 10, exp: now + 600 })).status).toBe(200);
  });

  it("applies the clock skew to exp and nbf", async () => {
    const now = nowS();
    expect((await usage({ iat: now - 100, exp: now - 10 })).status).toBe(200);
    const expired = await usage({ iat: now - 100, exp: now - 60 });
    expect(expired.status).toBe(401);
    expect(errorCode(expired)).toBe("AUTH_EXPIRED");
    expect((await usage({ iat: now, nbf: now + 10, exp: now + 600 })).status).toBe(200);
    const early = await usage({ iat: now, nbf: now + 120, exp: now + 600 });
    expect(early.status).toBe(401);
    expect(errorCode(early)).toBe("AUTH_EXPIRED");
  });
});

describe.each(["HS256", "JWKS (RS256)"])("the host never grants a tenant (base_domain, %s)", (mode) => {
  let h: Harness;
  let jwks: Server | undefined;
  /** Signs `claims` (plus iat and a 5-minute exp) the way this server's tokens are signed. */
  let sign: (claims: Record<string, unknown>) => Promise<string>;
  beforeAll(async () => {
    if (mode === "HS256") {
      h = await startServer({
        config: { auth: { jwt_secret: SECRET }, server: { base_domain: "kura.test" } },
      });
      sign = (claims) => h.sign(claims, { expiresIn: "5m" });
      return;
    }
    const { privateKey, publicKey } = await generateKeyPair("RS256", { extractable: true });
    const jwk = { ...(await exportJWK(publicKey)), kid: "idp-1", alg: "RS256", use: "sig" };
    const server = createServer((_req, res) => {
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ keys: [jwk] }));
    });
    jwks = server;
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json`;
    h = await startServer({
      config: { auth: { jwt_secret: null, jwks_url: url }, server: { base_domain: "kura.test" } },
    });
    sign = (claims) =>
      new SignJWT(claims)
        .setProtectedHeader({ alg: "RS256", kid: "idp-1" })
        .setIssuedAt()
        .setExpirationTime("5m")
        .sign(privateKey);
  });
  afterAll(async () => {
    await h?.close();
    jwks?.close();
  });

  const get = (host: string, path: string, token: string) => getWithHost(h, host, path, token);

  it("refuses a token without tenant_id on any subdomain with 403 TENANT_UNRESOLVED", async () => {
    const acme = await sign({ tenant_id: "acme" });
    expect(
      (await h.call("PUT", "/v1/objects/secret.txt", { token: acme, body: "acme's secret" })).status,
    ).toBe(200);
    const noTenant = await sign({ sub: "user-1" });
    for (const host of ["acme.kura.test", "globex.kura.test:8787", "kura.test", "127.0.0.1"]) {
      for (const path of ["/v1/usage", "/v1/objects/secret.txt"]) {
        const r = await get(host, path, noTenant);
        expect(r.status, `${host}${path}`).toBe(403);
        expect(JSON.parse(r.body).error_code).toBe("TENANT_UNRESOLVED");
        expect(r.body).not.toContain("acme's secret");
      }
    }
  });

  it("accepts a claim on its own subdomain or without one; a disagreeing subdomain is 403", async () => {
    const acme = await sign({ tenant_id: "acme" });
    const same = await get("acme.kura.test", "/v1/usage", acme);
    expect(same.status).toBe(200);
    expect(JSON.parse(same.body).data.tenant_id).toBe("acme");
    expect((await get("127.0.0.1", "/v1/usage", acme)).status).toBe(200);
    const other = await get("globex.kura.test", "/v1/usage", acme);
    expect(other.status).toBe(403);
    expect(JSON.parse(other.body).error_code).toBe("TENANT_MISMATCH");
  });
});
