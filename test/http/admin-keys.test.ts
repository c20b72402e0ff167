/**
 * `POST /v1/admin/tenants/{id}/keys:rotate` and `POST /v1/admin/tenants/{id}:shred` (SEC-2)
 * through a real server with encryption on: a rotation keeps old and new messages readable;
 * after a shred every read of the tenant answers 410 TENANT_KEYS_DESTROYED, search finds nothing
 * and writes are refused, another tenant untouched; tenant tokens 403; without encryption 501.
 */
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mintToken } from "../../src/http/auth.js";
import { errorCode, type Harness, SECRET, startServer } from "./harness.js";

describe("admin key routes with encryption on", () => {
  let h: Harness;
  let admin: string;
  let acme: string;
  let beta: string;

  beforeAll(async () => {
    h = await startServer({
      config: { encryption: { master_key: randomBytes(32).toString("base64") } },
      open: { projectors: "inline" },
    });
    admin = await mintToken({ secret: SECRET, admin: true, user: "root", ttlSeconds: 600 });
    acme = await h.token("acme");
    beta = await h.token("beta");
  });
  afterAll(async () => {
    await h?.close();
  });

  const append = async (token: string, content: string) => {
    const r = await h.call("POST", "/v1/chats/c/messages", { token, json: { role: "user", content } });
    expect(r.status, r.text).toBe(201);
    return r.json.data.id as string;
  };

  it("rotates, keeps old and new data readable, then shreds", async () => {
    const before = await append(acme, "written under version one");
    const other = await append(beta, "another tenant's message");
    expect((await h.call("POST", "/v1/admin/tenants/acme/keys:rotate", { token: acme })).status).toBe(403);
    const rotated = await h.call("POST", "/v1/admin/tenants/acme/keys:rotate", { token: admin });
    expect(rotated.status, rotated.text).toBe(200);
    expect(rotated.json.data).toEqual({ tenant_id: "acme", version: 2 });
    const after = await append(acme, "written under version two");
    for (const [id, content] of [
      [before, "written under version one"],
      [after, "written under version two"],
    ]) {
      const r = await h.call("GET", `/v1/messages/${id}`, { token: acme });
      expect(r.status, r.text).toBe(200);
      expect(r.json.data.content).toBe(content);
    }

    const shred = await h.call("POST", "/v1/admin/tenants/acme:shred", { token: admin });
    expect(shred.status, shred.text).toBe(200);
    expect(shred.json.data).toEqual({ tenant_id: "acme", destroyed_keys: 2 });
    const read = await h.call("GET", `/v1/messages/${before}`, { token: acme });
    expect(read.status).toBe(410);
    expect(errorCode(read)).toBe("TENANT_KEYS_DESTROYED");
    const history = await h.call("GET", "/v1/chats/c/messages", { token: acme });
    expect(history.status).toBe(410);
    const search = await h.call("GET", "/v1/search?q=version", { token: acme });
    expect(search.status, search.text).toBe(200);
    expect(search.json.data.items).toEqual([]);
    const write = await h.call("POST", "/v1/chats/c/messages", {
      token: acme,
      json: { role: "user", content: "more" },
    });
    expect(write.status).toBe(410);
    const untouched = await h.call("GET", `/v1/messages/${other}`, { token: beta });
    expect(untouched.status, untouched.text).toBe(200);
    const audit = await h.call("GET", "/v1/admin/audit?action=tenant.shred", { token: admin });
    expect(audit.status, audit.text).toBe(200);
    expect(audit.json.data.items).toHaveLength(1);
    expect(audit.json.data.items[0]).toMatchObject({ actor: "admin:root", target: "acme" });
    expect(h.undocumented).toEqual([]);
  });
});

describe("admin key routes without encryption", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startServer();
  });
  afterAll(async () => {
    await h?.close();
  });

  it("answers 501 ENCRYPTION_DISABLED", async () => {
    const admin = await mintToken({ secret: SECRET, admin: true, user: "root", ttlSeconds: 600 });
    const r = await h.call("POST", "/v1/admin/tenants/acme:shred", { token: admin });
    expect(r.status).toBe(501);
    expect(errorCode(r)).toBe("ENCRYPTION_DISABLED");
  });
});
