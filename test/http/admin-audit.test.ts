/**
 * `GET /v1/admin/audit` (SEC-3): the audit log across tenants for the admin identity only,
 * filtered by tenant, action and time, paged by cursor — through a real server on SQLite + fs.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mintToken } from "../../src/http/auth.js";
import { type CallResult, errorCode, type Harness, SECRET, startServer } from "./harness.js";

interface Item {
  tenant_id: string;
  actor: string;
  action: string;
  target: string;
  at: string;
  details: Record<string, unknown>;
}

describe("GET /v1/admin/audit", () => {
  let h: Harness;
  let admin: string;
  /** Between the first tenant's registration and everything after it. */
  let mid: number;
  /** An API key of acme: a tenant's credential. */
  let keySecret: string;

  /** As the admin, unless another token or `null` (anonymous) is given. */
  const get = (query: string, token: string | null = admin): Promise<CallResult> =>
    h.call("GET", `/v1/admin/audit${query}`, token === null ? {} : { token });

  /** Every entry the query matches, following next_cursor page by page. */
  async function all(query: string, limit: number): Promise<{ items: Item[]; pages: number }> {
    const items: Item[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const sep = query === "" ? "?" : "&";
      const r = await get(
        `${query}${sep}limit=${limit}${cursor === null ? "" : `&cursor=${encodeURIComponent(cursor)}`}`,
      );
      expect(r.status, r.text).toBe(200);
      expect(r.json.data.items.length).toBeLessThanOrEqual(limit);
      items.push(...(r.json.data.items as Item[]));
      cursor = r.json.data.next_cursor;
      pages++;
    } while (cursor !== null);
    return { items, pages };
  }

  beforeAll(async () => {
    h = await startServer();
    admin = await mintToken({ secret: SECRET, admin: true, user: "root", ttlSeconds: 600 });
    const created = await h.call("POST", "/v1/admin/tenants", { token: admin, json: { tenant_id: "acme" } });
    expect(created.status, created.text).toBe(201);
    await sleep(5);
    mid = Date.now();
    await sleep(5);
    expect(
      (await h.call("POST", "/v1/admin/tenants", { token: admin, json: { tenant_id: "globex" } })).status,
    ).toBe(201);
    for (const [tenant, text] of [
      ["acme", "one"],
      ["globex", "two"],
      ["acme", "three"],
    ] as const) {
      const r = await h.call("POST", "/v1/chats/c/messages", {
        token: await h.token(tenant),
        json: { role: "user", content: text },
      });
      expect(r.status, r.text).toBe(201);
    }
    expect(
      (await h.call("PATCH", "/v1/admin/tenants/globex", { token: admin, json: { status: "suspended" } }))
        .status,
    ).toBe(200);
    const key = await h.call("POST", "/v1/admin/tenants/acme/keys", {
      token: admin,
      json: { scopes: ["read", "write"] },
    });
    expect(key.status, key.text).toBe(201);
    keySecret = key.json.data.secret;
  });
  afterAll(async () => h?.close());

  it("shows the admin every tenant's entries, in the order recorded", async () => {
    const r = await get("");
    expect(r.status, r.text).toBe(200);
    const items = r.json.data.items as Item[];
    expect(r.json.data.next_cursor).toBeNull();
    expect(items.map((i) => [i.tenant_id, i.action])).toEqual([
      ["acme", "tenant.create"],
      ["globex", "tenant.create"],
      ["acme", "message.append"],
      ["globex", "message.append"],
      ["acme", "message.append"],
      ["globex", "tenant.suspend"],
      ["acme", "key.create"],
    ]);
    expect(items[0]).toMatchObject({ actor: "admin:root", target: "acme", details: { tier: "free" } });
    expect(items[2]?.details.size).toBeGreaterThan(0);
    expect(items.map((i) => Date.parse(i.at))).toEqual(
      [...items.map((i) => Date.parse(i.at))].sort((a, b) => a - b),
    );
    // A tenant's own log is still only its own.
    const own = await h.call("GET", "/v1/audit", { token: await h.token("acme") });
    expect((own.json.data.items as Item[]).length).toBe(4);
  });

  it("refuses a tenant's token (403 ADMIN_REQUIRED) and anonymous calls (401)", async () => {
    const tenant = await get("", await h.token("acme"));
    expect(tenant.status).toBe(403);
    expect(errorCode(tenant)).toBe("ADMIN_REQUIRED");
    const anonymous = await get("", null);
    expect(anonymous.status).toBe(401);
    expect(errorCode(anonymous)).toBe("AUTH_REQUIRED");
    const withKey = await h.call("GET", "/v1/admin/audit", { headers: { "x-api-key": keySecret } });
    expect(withKey.status).toBe(403);
    expect(errorCode(withKey)).toBe("ADMIN_REQUIRED");
  });

  it("filters by tenant_id, action, since and until, alone and together", async () => {
    const actions = async (query: string) =>
      ((await get(query)).json.data.items as Item[]).map((i) => `${i.tenant_id} ${i.action}`);
    expect(await actions("?tenant_id=globex")).toEqual([
      "globex tenant.create",
      "globex message.append",
      "globex tenant.suspend",
    ]);
    expect(await actions("?tenant_id=nobody")).toEqual([]);
    expect(await actions("?action=tenant.create")).toEqual(["acme tenant.create", "globex tenant.create"]);
    expect(await actions("?action=tenant")).toEqual([]);
    expect(await actions(`?until=${mid}`)).toEqual(["acme tenant.create"]);
    const since = await actions(`?since=${encodeURIComponent(new Date(mid).toISOString())}`);
    expect(since).not.toContain("acme tenant.create");
    expect(since).toHaveLength(6);
    expect(
      await actions(`?tenant_id=acme&action=message.append&since=${mid}&until=${Date.now() + 1000}`),
    ).toEqual(["acme message.append", "acme message.append"]);
    expect(await actions(`?since=${mid}&until=${mid}`)).toEqual([]);
  });

  it("pages with cursor and next_cursor, neither repeating nor skipping an entry", async () => {
    const whole = ((await get("?limit=1000")).json.data.items as Item[]).map((i) => JSON.stringify(i));
    const paged = await all("", 2);
    expect(paged.pages).toBe(Math.ceil(whole.length / 2));
    expect(paged.items.map((i) => JSON.stringify(i))).toEqual(whole);
    const acme = await all("?tenant_id=acme", 1);
    expect(acme.items.map((i) => i.action)).toEqual([
      "tenant.create",
      "message.append",
      "message.append",
      "key.create",
    ]);
    expect(acme.pages).toBe(4);
  });

  it("answers 400 with a specific code to bad filter values, and reads nothing", async () => {
    for (const query of [
      "?since=yesterday",
      "?until=2026-13-45T00:00:00Z",
      "?tenant_id=..%2Fescape",
      "?action=has%20space",
      "?limit=0",
      "?limit=1001",
      "?since=2000&until=1000",
      "?tenant=acme",
    ]) {
      const r = await get(query);
      expect(r.status, query).toBe(400);
      expect(errorCode(r), query).toBe("REQUEST_INVALID");
    }
    const tenantsCursor = (await h.call("GET", "/v1/admin/tenants?limit=1", { token: admin })).json.data
      .next_cursor as string;
    for (const cursor of ["garbage!", "eyJrIjoiYXVkaXQifQ", tenantsCursor]) {
      const r = await get(`?cursor=${encodeURIComponent(cursor)}`);
      expect(r.status, cursor).toBe(400);
      expect(errorCode(r), cursor).toBe("CURSOR_INVALID");
    }
  });
  it("shows tenant deletions in the ~admin stream, which outlives the tenant", async () => {
    const r = await h.call("DELETE", "/v1/admin/tenants/globex", { token: admin });
    expect(r.status, r.text).toBe(202);
    await h.kura.tenants.settleDeletions();
    const stream = (await get("?tenant_id=~admin")).json.data.items as Item[];
    expect(stream.map((i) => [i.tenant_id, i.action, i.target, i.actor])).toEqual([
      ["~admin", "tenant.delete", "globex", "admin:root"],
      ["~admin", "tenant.deleted", "globex", "admin:root"],
    ]);
    // The tenant's own entries went with its data; acme's stay.
    expect((await get("?tenant_id=globex")).json.data.items).toEqual([]);
    expect(((await get("?tenant_id=acme")).json.data.items as Item[]).length).toBe(4);
    expect((await get("?tenant_id=~other")).status).toBe(400);
  });
});
