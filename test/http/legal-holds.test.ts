/**
 * Legal holds and the on-demand lifecycle run over HTTP (LIFE-1): `POST|GET /v1/legal-holds`,
 * `GET|DELETE /v1/legal-holds/{id}` for a tenant (only its own holds), an erase of held data
 * answering 409 LEGAL_HOLD, and `POST /v1/admin/lifecycle:run` for the admin only — through a
 * real server on SQLite + fs with an injected clock.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mintToken } from "../../src/http/auth.js";
import { errorCode, type Harness, SECRET, startServer } from "./harness.js";

const DAY = 86_400_000;

describe("legal holds and lifecycle:run over HTTP", () => {
  let h: Harness;
  let now = Date.now();
  let acme: string;
  let globex: string;
  let admin: string;

  beforeAll(async () => {
    h = await startServer({
      config: { retention: { deleted_messages_days: 30 } },
      open: { clock: () => now, projectors: "inline" },
    });
    acme = await h.token("acme");
    globex = await h.token("globex");
    admin = await mintToken({ secret: SECRET, admin: true, user: "root", ttlSeconds: 600 });
  });
  afterAll(async () => {
    await h?.close();
  });

  const append = async (chat: string, content: string, metadata?: Record<string, unknown>) => {
    const r = await h.call("POST", `/v1/chats/${chat}/messages`, {
      token: acme,
      json: { role: "user", content, ...(metadata ? { metadata } : {}) },
    });
    expect(r.status, r.text).toBe(201);
    return r.json.data.id as string;
  };

  it("places, lists (paged), reads and removes a tenant's holds; another tenant sees none", async () => {
    const m = await append("c-list", "hello");
    const created = [];
    for (const json of [
      { chat_id: "c-list", reason: "matter 1" },
      { user_id: "u-1", reason: "matter 2" },
      { message_id: m, reason: "matter 3 会議" },
    ]) {
      const r = await h.call("POST", "/v1/legal-holds", { token: acme, json });
      expect(r.status, r.text).toBe(201);
      expect(r.json.data).toMatchObject({ ...json, created_by: expect.any(String) });
      created.push(r.json.data.id as string);
    }
    const page1 = await h.call("GET", "/v1/legal-holds?limit=2", { token: acme });
    expect(page1.status, page1.text).toBe(200);
    expect(page1.json.data.items.map((x: { id: string }) => x.id)).toEqual(created.slice(0, 2));
    const cursor = encodeURIComponent(page1.json.data.next_cursor);
    const page2 = await h.call("GET", `/v1/legal-holds?limit=2&cursor=${cursor}`, { token: acme });
    expect(page2.json.data.items.map((x: { id: string }) => x.id)).toEqual(created.slice(2));
    expect(page2.json.data.next_cursor).toBeNull();

    const theirs = await h.call("GET", "/v1/legal-holds", { token: globex });
    expect(theirs.json.data.items).toEqual([]);
    expect(errorCode(await h.call("GET", `/v1/legal-holds/${created[0]}`, { token: globex }))).toBe(
      "LEGAL_HOLD_NOT_FOUND",
    );
    const del = await h.call("DELETE", `/v1/legal-holds/${created[0]}`, { token: globex });
    expect(del.status).toBe(404);
    expect((await h.call("GET", `/v1/legal-holds/${created[0]}`, { token: acme })).json.data.reason).toBe(
      "matter 1",
    );
    for (const id of created)
      expect((await h.call("DELETE", `/v1/legal-holds/${id}`, { token: acme })).status).toBe(204);
    expect((await h.call("DELETE", `/v1/legal-holds/${created[0]}`, { token: acme })).status).toBe(404);
  });

  it("refuses a hold naming none or two things, a bad id or an unknown message", async () => {
    for (const json of [
      { reason: "none" },
      { chat_id: "c", user_id: "u", reason: "two" },
      { chat_id: "../x", reason: "bad id" },
      { chat_id: "c", reason: "" },
    ]) {
      const r = await h.call("POST", "/v1/legal-holds", { token: acme, json });
      expect(r.status, JSON.stringify(json)).toBe(400);
    }
    const unknown = await h.call("POST", "/v1/legal-holds", {
      token: acme,
      json: { message_id: "0190b6c8-0000-7000-8000-000000000000", reason: "x" },
    });
    expect(errorCode(unknown)).toBe("MESSAGE_NOT_FOUND");
  });

  it("held messages cannot be erased (409 LEGAL_HOLD) but can be soft-deleted; the lifecycle skips them", async () => {
    const held = await append("c-held", "keep for court", { user_id: "u-held" });
    const free = await append("c-free", "ordinary");
    const hold = await h.call("POST", "/v1/legal-holds", {
      token: acme,
      json: { user_id: "u-held", reason: "litigation" },
    });
    expect(hold.status).toBe(201);
    const erase = await h.call("DELETE", `/v1/messages/${held}?mode=erase`, { token: acme });
    expect(erase.status, erase.text).toBe(409);
    expect(errorCode(erase)).toBe("LEGAL_HOLD");
    expect((await h.call("DELETE", `/v1/messages/${held}`, { token: acme })).status).toBe(204);
    expect((await h.call("DELETE", `/v1/messages/${free}`, { token: acme })).status).toBe(204);
    now += 31 * DAY;

    // The admin only; a dry run first changes nothing.
    expect((await h.call("POST", "/v1/admin/lifecycle:run", { token: acme, json: {} })).status).toBe(403);
    expect((await h.call("POST", "/v1/admin/lifecycle:run", { json: {} })).status).toBe(401);
    const dry = await h.call("POST", "/v1/admin/lifecycle:run", { token: admin, json: { dry_run: true } });
    expect(dry.status, dry.text).toBe(200);
    expect(dry.json.data).toMatchObject({
      dry_run: true,
      counts: { messages_purged: 1, held: 1, kv_expired: null },
    });
    expect((await h.kura.catalog.getMessage("acme", free))?.id).toBe(free);
    const run = await h.call("POST", "/v1/admin/lifecycle:run", { token: admin, json: {} });
    expect(run.status, run.text).toBe(200);
    expect(run.json.data).toMatchObject({ dry_run: false, counts: { messages_purged: 1, held: 1 } });
    expect(await h.kura.catalog.getMessage("acme", free)).toBeUndefined();
    expect((await h.kura.catalog.getMessage("acme", held))?.id).toBe(held);
    // Undelete still works on held data, and the run was audited in the admin stream.
    expect((await h.call("POST", `/v1/messages/${held}:undelete`, { token: acme })).status).toBe(200);
    const audit = await h.call("GET", "/v1/admin/audit?action=lifecycle.run", { token: admin });
    expect(audit.json.data.items).toHaveLength(1);
    expect(audit.json.data.items[0]).toMatchObject({ tenant_id: "~admin", actor: "admin:root" });
    const mine = await h.call("GET", "/v1/audit?limit=1000", { token: acme });
    const actions = mine.json.data.items.map((e: { action: string }) => e.action);
    expect(actions).toContain("legal_hold.create");
    expect(actions).toContain("message.purged");
  });
});
