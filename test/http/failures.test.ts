/**
 * API-3 failure semantics over HTTP: blob store down → 503 (with Retry-After) for writes and body
 * reads while metadata stays readable; catalog down → 503.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LruCache } from "../../src/engine/lru-cache.js";
import { FaultController, withFaults } from "../../src/layers/fault-injection.js";
import { errorCode, type Harness, startServer } from "./harness.js";

describe("blob store down", () => {
  const faults = new FaultController();
  let h: Harness;
  let token: string;
  let id: string;

  beforeAll(async () => {
    h = await startServer({ open: { wrapStore: (s) => withFaults(s, faults), cache: new LruCache(0) } });
    token = await h.token("acme");
    id = (await h.call("POST", "/v1/chats/c/messages", { token, json: { role: "user", content: "before" } }))
      .json.data.id;
    await h.call("PUT", "/v1/objects/o.txt", { token, body: "object body" });
    faults.add({ code: "BLOB_BACKEND_UNAVAILABLE" });
  });
  afterAll(async () => {
    faults.clear();
    await h?.close();
  });

  it("answers 503 with Retry-After for writes and body reads", async () => {
    for (const r of [
      await h.call("POST", "/v1/chats/c/messages", { token, json: { role: "user", content: "during" } }),
      await h.call("GET", `/v1/messages/${id}`, { token }),
      await h.call("GET", "/v1/objects/o.txt", { token }),
      await h.call("PUT", "/v1/objects/p.txt", { token, body: "x" }),
    ]) {
      expect(r.status).toBe(503);
      expect(errorCode(r)).toBe("BLOB_BACKEND_UNAVAILABLE");
      expect(Number(r.headers.get("retry-after"))).toBeGreaterThan(0);
    }
    expect((await h.call("GET", "/readyz")).status).toBe(503);
  });

  it("keeps metadata readable", async () => {
    const history = await h.call("GET", "/v1/chats/c/messages", { token });
    expect(history.status).toBe(200);
    expect(history.json.data.items.map((m: { preview: string }) => m.preview)).toEqual(["before"]);
    const head = await fetch(`${h.base}/v1/objects/o.txt`, {
      method: "HEAD",
      headers: { authorization: `Bearer ${token}` },
    });
    expect(head.status).toBe(200);
    expect((await h.call("GET", "/v1/objects", { token })).status).toBe(200);
    expect((await h.call("GET", "/v1/usage", { token })).status).toBe(200);
  });
});

describe("catalog down", () => {
  it("answers 503 with Retry-After", async () => {
    const h = await startServer();
    const token = await h.token("acme");
    await h.kura.catalog.close();
    const r = await h.call("POST", "/v1/chats/c/messages", { token, json: { role: "user", content: "x" } });
    expect(r.status, r.text).toBe(503);
    expect(r.headers.get("retry-after")).toBeTruthy();
    const read = await h.call("GET", "/v1/chats/c/messages", { token });
    expect(read.status, read.text).toBe(503);
    await h.app.close();
  });
});
