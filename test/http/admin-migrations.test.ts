/**
 * `POST /v1/admin/migrations` and `GET /v1/admin/migrations/{id}` (issue 16) through a real
 * server on SQLite + fs, migrating its bodies to another fs directory: 202 with the id, the
 * state followed to done, every message readable from a Kura on the target alone; one at a
 * time (409, in `test/engine/migration.test.ts`), the store in use as a target 400, database/kv
 * targets 501, an unknown id 404, tenant tokens 403.
 */
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mintToken } from "../../src/http/auth.js";
import { Kura } from "../../src/kura.js";
import { errorCode, type Harness, SECRET, startServer } from "./harness.js";

describe("/v1/admin/migrations", () => {
  let h: Harness;
  let admin: string;
  let tenant: string;
  const ids: string[] = [];

  beforeAll(async () => {
    h = await startServer({ open: { projectors: "inline" } });
    admin = await mintToken({ secret: SECRET, admin: true, user: "root", ttlSeconds: 600 });
    tenant = await h.token("acme");
    for (let i = 0; i < 30; i++) {
      const r = await h.call("POST", "/v1/chats/c/messages", {
        token: tenant,
        json: { role: "user", content: `m${i}` },
      });
      expect(r.status, r.text).toBe(201);
      ids.push(r.json.data.id);
    }
  });
  afterAll(async () => {
    await h?.close();
  });

  it("starts a migration, follows it to done, and the target alone has every message", async () => {
    const storage = { backend: "fs", options: { base_path: join(h.dir, "target-blobs") } };
    expect(
      (await h.call("POST", "/v1/admin/migrations", { token: tenant, json: { target: { storage } } })).status,
    ).toBe(403);
    const unsupported = await h.call("POST", "/v1/admin/migrations", {
      token: admin,
      json: { target: { database: { backend: "postgres" } } },
    });
    expect(unsupported.status).toBe(501);
    expect(errorCode(unsupported)).toBe("MIGRATION_UNSUPPORTED");

    const started = await h.call("POST", "/v1/admin/migrations", {
      token: admin,
      json: { target: { storage } },
    });
    expect(started.status, started.text).toBe(202);
    const id = started.json.data.id as string;
    // Writes while it runs land in both.
    const during = await h.call("POST", "/v1/chats/c/messages", {
      token: tenant,
      json: { role: "user", content: "during" },
    });
    ids.push(during.json.data.id);
    let state = started.json.data.state as string;
    const deadline = Date.now() + 30_000;
    while (state !== "done" && state !== "failed" && Date.now() < deadline) {
      const got = await h.call("GET", `/v1/admin/migrations/${id}`, { token: admin });
      expect(got.status, got.text).toBe(200);
      state = got.json.data.state;
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(state).toBe("done");
    const done = await h.call("GET", `/v1/admin/migrations/${id}`, { token: admin });
    expect(done.json.data.target).toEqual({ storage });
    expect(done.json.data.progress.listed).toBeGreaterThanOrEqual(30);
    const same = await h.call("POST", "/v1/admin/migrations", {
      token: admin,
      json: { target: { storage: { backend: "fs", options: { base_path: join(h.dir, "blobs") } } } },
    });
    expect(same.status, same.text).toBe(400);
    expect(errorCode(same)).toBe("INVALID_ARGUMENT");
    const missing = await h.call("GET", "/v1/admin/migrations/nope", { token: admin });
    expect(missing.status).toBe(404);
    expect(errorCode(missing)).toBe("MIGRATION_NOT_FOUND");
    expect(h.undocumented).toEqual([]);

    await h.kura.close();
    const target = await Kura.open({ data_dir: h.dir, storage }, { projectors: "inline" });
    try {
      for (const id of ids) expect((await target.tenant("acme").messages.get(id)).id).toBe(id);
    } finally {
      await target.close();
    }
  });
});
