/**
 * `GET /v1/sessions` (the active sessions: those with live metadata) and
 * `GET /v1/sessions/{session_id}` (its metadata entries with version and expiry, and its files),
 * through a real server: pages merge by id, expired metadata drops a session, tenants see only
 * their own sessions, and a malformed id is refused.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { errorCode, type Harness, startServer } from "./harness.js";

describe("listing sessions", () => {
  let h: Harness;
  let acme: string;
  let globex: string;

  beforeAll(async () => {
    h = await startServer({ server: { validateResponses: true } });
    acme = await h.token("acme");
    globex = await h.token("globex");
    for (const [sid, key, ttl] of [
      ["s1", "user", 600],
      ["s1", "cart", 60],
      ["s2", "user", 600],
      ["s3", "theme", 1],
    ] as const) {
      const r = await h.call("PUT", `/v1/sessions/${sid}/meta/${key}?ttl=${ttl}`, {
        token: acme,
        json: { v: key },
      });
      expect(r.status, r.text).toBe(200);
    }
    const f = await h.call("PUT", "/v1/sessions/s1/files/notes/a.txt", { token: acme, body: "hello" });
    expect(f.status, f.text).toBeLessThan(300);
    const other = await h.call("PUT", "/v1/sessions/g1/meta/user", { token: globex, json: 1 });
    expect(other.status).toBe(200);
  });
  afterAll(async () => h?.close());

  it("lists the sessions with live metadata, each once across pages, with the latest expiry", async () => {
    const seen = new Map<string, { keys: number; expires_at: string | null }>();
    let cursor: string | null = null;
    let pages = 0;
    do {
      const q: string = cursor ? `&cursor=${encodeURIComponent(cursor)}` : "";
      const r = await h.call("GET", `/v1/sessions?limit=1${q}`, { token: acme });
      expect(r.status, r.text).toBe(200);
      for (const s of r.json.data.items) {
        const before = seen.get(s.session_id);
        seen.set(s.session_id, {
          keys: (before?.keys ?? 0) + s.keys,
          expires_at: [before?.expires_at, s.expires_at].filter(Boolean).sort().at(-1) ?? null,
        });
      }
      cursor = r.json.data.next_cursor;
      pages++;
    } while (cursor && pages < 20);
    expect([...seen.keys()].sort()).toEqual(["s1", "s2", "s3"]);
    expect(seen.get("s1")?.keys).toBe(2);
    // s1 lives while its longest-lived key does (600 s, not the cart's 60 s).
    const s1 = Date.parse(seen.get("s1")?.expires_at as string);
    expect(s1 - Date.now()).toBeGreaterThan(300_000);
  });

  it("drops a session once its metadata expired", async () => {
    await new Promise((r) => setTimeout(r, 1500));
    const r = await h.call("GET", "/v1/sessions", { token: acme });
    expect(r.json.data.items.map((s: { session_id: string }) => s.session_id).sort()).toEqual(["s1", "s2"]);
  });

  it("shows one session's metadata with version and expiry, and its files", async () => {
    const r = await h.call("GET", "/v1/sessions/s1", { token: acme });
    expect(r.status, r.text).toBe(200);
    const d = r.json.data;
    expect(d.session_id).toBe("s1");
    expect(d.metadata.map((m: { key: string }) => m.key)).toEqual(["cart", "user"]);
    expect(d.metadata[0]).toMatchObject({ key: "cart", value: { v: "cart" }, version: 1 });
    const cartLeft = Date.parse(d.metadata[0].expires_at) - Date.now();
    expect(cartLeft).toBeGreaterThan(0);
    expect(cartLeft).toBeLessThanOrEqual(60_000);
    expect(d.files).toEqual([expect.objectContaining({ path: "notes/a.txt", size: 5 })]);
    const unknown = await h.call("GET", "/v1/sessions/nobody", { token: acme });
    expect(unknown.json.data).toEqual({ session_id: "nobody", metadata: [], files: [] });
  });

  it("keeps tenants apart and refuses malformed ids", async () => {
    const r = await h.call("GET", "/v1/sessions", { token: globex });
    expect(r.json.data.items.map((s: { session_id: string }) => s.session_id)).toEqual(["g1"]);
    const theirs = await h.call("GET", "/v1/sessions/s1", { token: globex });
    expect(theirs.json.data.metadata).toEqual([]);
    expect(theirs.json.data.files).toEqual([]);
    const bad = await h.call("GET", "/v1/sessions/..%2Fx", { token: acme });
    expect(bad.status).toBe(400);
    expect(["REQUEST_INVALID", "SESSION_ID_INVALID"]).toContain(errorCode(bad));
  });
});
