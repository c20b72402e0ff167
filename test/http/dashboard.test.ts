/**
 * `GET /v1/dashboard` and `GET /v1/admin/dashboard` (UI-1, OBS-1) through a real server on
 * SQLite + fs: storage by plane and tenant, message sizes against the 4 KB / 128 KB lines,
 * ingest and query rates, latency percentiles, outbox lag, cache counters, the last lifecycle
 * run and consistency check, cost; a tenant sees only itself; the admin route refuses tenants.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mintToken } from "../../src/http/auth.js";
import { errorCode, type Harness, SECRET, startServer } from "./harness.js";

describe("dashboards", () => {
  let h: Harness;
  let admin: string;
  let acme: string;
  let globex: string;

  beforeAll(async () => {
    h = await startServer({ server: { validateResponses: true } });
    admin = await mintToken({ secret: SECRET, admin: true, user: "root", ttlSeconds: 600 });
    acme = await h.token("acme");
    globex = await h.token("globex");
    for (const content of ["short", "x".repeat(5000), "y".repeat(20_000)]) {
      const r = await h.call("POST", "/v1/chats/c/messages", {
        token: acme,
        json: { role: "user", content },
      });
      expect(r.status, r.text).toBe(201);
    }
    const put = await h.call("PUT", "/v1/objects/docs/a.txt", { token: globex, body: "hello objects" });
    expect(put.status, put.text).toBe(200);
    expect((await h.call("GET", "/v1/search?q=short", { token: acme })).status).toBe(200);
    expect((await h.call("POST", "/v1/admin/fsck", { token: admin, json: {} })).status).toBe(200);
    expect((await h.call("POST", "/v1/admin/lifecycle:run", { token: admin, json: {} })).status).toBe(200);
  });
  afterAll(async () => h?.close());

  it("gives the admin every tenant's storage, sizes, activity and the server's parts", async () => {
    const r = await h.call("GET", "/v1/admin/dashboard", { token: admin });
    expect(r.status, r.text).toBe(200);
    const d = r.json.data;
    expect(d.tenant_id).toBeNull();
    expect(d.storage.tenants.map((t: { tenant_id: string }) => t.tenant_id)).toEqual(["acme", "globex"]);
    const planes = Object.fromEntries(d.storage.planes.map((p: { plane: string }) => [p.plane, p]));
    expect(planes.messages.bodies).toBe(3);
    expect(planes.objects).toMatchObject({ bodies: 1, bytes: 13 });
    // 5000 and 20000 bytes of text are at least 4 KB; none reaches 128 KB.
    expect(d.message_sizes.at_least_4kb).toBe(2);
    expect(d.message_sizes.at_least_128kb).toBe(0);
    expect(d.message_sizes.counts.reduce((a: number, b: number) => a + b, 0)).toBe(3);
    expect(d.message_sizes.alert_lines.map((l: { bytes: number }) => l.bytes)).toEqual([4096, 131_072]);
    expect(d.activity.rates.length).toBe(30);
    const sum = (k: string) =>
      d.activity.rates.reduce((a: number, p: Record<string, number>) => a + (p[k] ?? 0), 0);
    expect(sum("ingest_per_s")).toBeGreaterThan(0);
    expect(sum("query_per_s")).toBeGreaterThan(0);
    expect(d.activity.latency_ms.requests).toBeGreaterThanOrEqual(5);
    expect(d.activity.latency_ms.p50).toBeGreaterThan(0);
    expect(d.outbox.map((o: { projector: string }) => o.projector)).toContain("search");
    expect(d.cache.tiers.length).toBeGreaterThan(0);
    expect(d.fsck, JSON.stringify(d.fsck)).toMatchObject({ ok: true, source: "server" });
    expect(d.lifecycle_runs[0].actor).toContain("root");
    expect(d.cost.estimates.length).toBeGreaterThan(0);
    expect(d.cost.estimates.every((e: { monthly_usd: number }) => e.monthly_usd >= 0)).toBe(true);
  });

  it("narrows to one tenant with ?tenant=, and answers 404 for an unknown one", async () => {
    const r = await h.call("GET", "/v1/admin/dashboard?tenant=globex", { token: admin });
    expect(r.status, r.text).toBe(200);
    expect(r.json.data.tenant_id).toBe("globex");
    expect(r.json.data.storage.tenants).toHaveLength(1);
    expect(r.json.data.storage.planes).toEqual([{ plane: "objects", bodies: 1, bytes: 13 }]);
    expect(r.json.data.message_sizes.counts.every((n: number) => n === 0)).toBe(true);
    const none = await h.call("GET", "/v1/admin/dashboard?tenant=nobody", { token: admin });
    expect(none.status).toBe(404);
    expect(errorCode(none)).toBe("TENANT_NOT_FOUND");
    const bad = await h.call("GET", "/v1/admin/dashboard?tenant=../x", { token: admin });
    expect(bad.status).toBe(400);
  });

  it("shows a tenant only itself, without the server's internals", async () => {
    const r = await h.call("GET", "/v1/dashboard", { token: acme });
    expect(r.status, r.text).toBe(200);
    const d = r.json.data;
    expect(d.tenant_id).toBe("acme");
    expect(d.storage.tenants, JSON.stringify(d.storage.tenants)).toEqual([
      expect.objectContaining({ tenant_id: "acme", messages: 3 }),
    ]);
    expect(d.storage.planes.map((p: { plane: string }) => p.plane)).toEqual(["messages"]);
    expect(d.outbox).toBeNull();
    expect(d.cache).toBeNull();
    expect(d.lifecycle_runs).toBeNull();
    expect(d.fsck).toBeNull();
    expect(JSON.stringify(d)).not.toContain("globex");
  });

  it("keeps the admin route for the admin and the tenant route for tenants", async () => {
    const asTenant = await h.call("GET", "/v1/admin/dashboard", { token: acme });
    expect(asTenant.status).toBe(403);
    const asAdmin = await h.call("GET", "/v1/dashboard", { token: admin });
    expect(asAdmin.status).toBe(403);
    expect((await h.call("GET", "/v1/dashboard")).status).toBe(401);
  });
});
