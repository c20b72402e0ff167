/**
 * `POST /v1/admin/fsck` (CONS-3): the consistency report for the admin only, through a real
 * server on SQLite + fs — a clean store, a lost message body found, repaired (marked), then
 * clean, with reads of that message answering 410 BODY_MISSING; tenant tokens 403, anonymous 401.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LruCache } from "../../src/engine/lru-cache.js";
import { mintToken } from "../../src/http/auth.js";
import { errorCode, type Harness, SECRET, startServer } from "./harness.js";

describe("POST /v1/admin/fsck", () => {
  let h: Harness;
  let admin: string;
  let tenant: string;
  let lost: string;

  beforeAll(async () => {
    // A body cache that keeps nothing (and so no hot-message cache): reads go to the store.
    h = await startServer({ open: { cache: new LruCache(1, 1) } });
    admin = await mintToken({ secret: SECRET, admin: true, user: "root", ttlSeconds: 600 });
    tenant = await h.token("acme");
    for (const content of ["first", "second", "third"]) {
      const r = await h.call("POST", "/v1/chats/c/messages", {
        token: tenant,
        json: { role: "user", content },
      });
      expect(r.status, r.text).toBe(201);
      lost ??= r.json.data.id;
    }
  });
  afterAll(async () => {
    await h?.close();
  });

  it("answers the report to the admin: clean, then a lost body found, marked, and clean again", async () => {
    const clean = await h.call("POST", "/v1/admin/fsck", { token: admin, json: {} });
    expect(clean.status, clean.text).toBe(200);
    expect(clean.json.data.ok).toBe(true);
    expect(clean.json.data.checked.bodies).toBe(3);
    expect(clean.json.data.problems.missing_objects).toBe(0);

    const row = await h.kura.catalog.getMessage("acme", lost);
    await h.kura.store.delete([row?.blobKey as string]);
    const found = await h.call("POST", "/v1/admin/fsck", { token: admin, json: { grace: "0" } });
    expect(found.status, found.text).toBe(200);
    expect(found.json.data.ok).toBe(false);
    expect(found.json.data.problems.missing_objects).toBe(1);
    expect(found.json.data.samples[0]).toMatchObject({ problem: "missing_object", message_id: lost });

    const repaired = await h.call("POST", "/v1/admin/fsck", {
      token: admin,
      json: { repair: true, grace: "0" },
    });
    expect(repaired.status, repaired.text).toBe(200);
    expect(repaired.json.data.remaining).toBe(0);
    expect(repaired.json.data.repairs.marked_missing).toBe(1);

    const audit = await h.call("GET", "/v1/admin/audit?action=fsck.repair", { token: admin });
    expect(audit.status, audit.text).toBe(200);
    expect(audit.json.data.items).toHaveLength(1);
    expect(audit.json.data.items[0]).toMatchObject({ tenant_id: "~admin", actor: "admin:root" });
    expect(audit.json.data.items[0].details.repairs.marked_missing).toBe(1);

    const again = await h.call("POST", "/v1/admin/fsck", { token: admin, json: {} });
    expect(again.json.data.ok).toBe(true);
    expect(again.json.data.checked.known_missing).toBe(1);
  });

  it("reads of a message whose body is lost answer 410 BODY_MISSING, history still lists it", async () => {
    const r = await h.call("GET", `/v1/messages/${lost}`, { token: tenant });
    expect(r.status, r.text).toBe(410);
    expect(errorCode(r)).toBe("BODY_MISSING");
    const history = await h.call("GET", "/v1/chats/c/messages", { token: tenant });
    expect(history.status).toBe(200);
    expect(history.json.data.items.map((m: { id: string }) => m.id)).toContain(lost);
  });

  it("refuses tenant tokens (403 ADMIN_REQUIRED), anonymous calls (401) and bad bodies (400)", async () => {
    const asTenant = await h.call("POST", "/v1/admin/fsck", { token: tenant, json: {} });
    expect(asTenant.status).toBe(403);
    expect(errorCode(asTenant)).toBe("ADMIN_REQUIRED");
    expect((await h.call("POST", "/v1/admin/fsck", { json: {} })).status).toBe(401);
    const badGrace = await h.call("POST", "/v1/admin/fsck", { token: admin, json: { grace: "soon" } });
    expect(badGrace.status).toBe(400);
    expect(errorCode(badGrace)).toBe("INVALID_ARGUMENT");
    const unknown = await h.call("POST", "/v1/admin/fsck", { token: admin, json: { fix: true } });
    expect(unknown.status).toBe(400);
    expect(errorCode(unknown)).toBe("REQUEST_INVALID");
  });
});
