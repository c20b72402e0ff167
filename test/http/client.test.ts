/**
 * `kura/client` against a live `kura serve`: every call goes through the generated types and
 * openapi-fetch (no hand-written URLs), so a route the OpenAPI document declares wrongly shows
 * here as a call that does not compile or does not reach its route. Also: the committed types
 * are what `npm run gen:client` would write now.
 */
import { readFile } from "node:fs/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateClientTypes, SCHEMA_FILE } from "../../scripts/client-gen/generate.js";
import { createKuraClient, type KuraClient } from "../../src/client/index.js";
import { type Harness, startServer } from "./harness.js";

let h: Harness;
let kura: KuraClient;

beforeAll(async () => {
  h = await startServer();
  kura = createKuraClient({ baseUrl: `${h.base}/`, token: await h.token("acme") });
});
afterAll(async () => h?.close());

describe("kura/client over a live server", () => {
  it("objects: put, get, list and delete a key containing '/'", async () => {
    const key = "docs/2026/report v1.txt";
    const put = await kura.PUT("/v1/objects/{key}", {
      params: { path: { key } },
      body: "hello, 蔵",
      headers: { "content-type": "text/plain; charset=utf-8" },
    });
    expect(put.error).toBeUndefined();
    expect(put.data?.data).toMatchObject({ key, size: Buffer.byteLength("hello, 蔵") });
    expect(put.response.headers.get("etag")).toBe(put.data?.data.etag);

    const bytes = await kura.PUT("/v1/objects/{key}", {
      params: { path: { key: "docs/bytes.bin" } },
      body: new Uint8Array([0, 1, 2, 255]) as unknown as string,
      headers: { "content-type": "application/octet-stream" },
    });
    expect(bytes.data?.data.size).toBe(4);

    const got = await kura.GET("/v1/objects/{key}", { params: { path: { key } }, parseAs: "text" });
    expect(got.response.status).toBe(200);
    expect(got.data).toBe("hello, 蔵");
    expect(got.response.headers.get("content-type")).toContain("text/plain");
    const raw = await kura.GET("/v1/objects/{key}", {
      params: { path: { key: "docs/bytes.bin" } },
      parseAs: "arrayBuffer",
    });
    expect([...new Uint8Array(raw.data as ArrayBuffer)]).toEqual([0, 1, 2, 255]);

    const list = await kura.GET("/v1/objects", { params: { query: { prefix: "docs/", limit: 10 } } });
    expect(list.data?.data.items.map((o) => o.key).sort()).toEqual([
      "docs/2026/report v1.txt",
      "docs/bytes.bin",
    ]);

    const del = await kura.DELETE("/v1/objects/{key}", { params: { path: { key } } });
    expect(del.response.status).toBe(204);
    const gone = await kura.GET("/v1/objects/{key}", { params: { path: { key } } });
    expect(gone.response.status).toBe(404);
    expect(gone.error?.error_code).toBe("OBJECT_NOT_FOUND");
  });

  it("kv: put, get and compare-and-set on the version", async () => {
    const path = { namespace: "prefs", key: "user:1/theme" };
    const put = await kura.PUT("/v1/kv/{namespace}/{key}", {
      params: { path, query: { ttl: 3600 } },
      body: { mode: "dark" },
    });
    expect(put.data?.data).toMatchObject({ key: "user:1/theme" });
    const v1 = put.data?.data.version as number;

    const got = await kura.GET("/v1/kv/{namespace}/{key}", { params: { path } });
    expect(got.data?.data).toMatchObject({ key: "user:1/theme", value: { mode: "dark" }, version: v1 });
    expect(got.data?.data.expires_at).not.toBeNull();
    const etag = got.response.headers.get("etag") as string;
    expect(etag).toBe(`"${v1}"`);

    const swapped = await kura.PUT("/v1/kv/{namespace}/{key}", {
      params: { path },
      body: { mode: "light" },
      headers: { "If-Match": etag },
    });
    expect(swapped.data?.data.version).toBeGreaterThan(v1);
    const stale = await kura.PUT("/v1/kv/{namespace}/{key}", {
      params: { path },
      body: { mode: "stale" },
      headers: { "If-Match": etag },
    });
    expect(stale.response.status).toBe(412);
    expect(stale.error?.error_code).toBe("KV_VERSION_CONFLICT");

    // A JSON string is a value like any other (sent as JSON, not as text).
    const text = await kura.PUT("/v1/kv/{namespace}/{key}", {
      params: { path: { namespace: "prefs", key: "lang" } },
      body: "ja",
    });
    expect(text.error).toBeUndefined();
    const lang = await kura.GET("/v1/kv/{namespace}/{key}", {
      params: { path: { namespace: "prefs", key: "lang" } },
    });
    expect(lang.data?.data.value).toBe("ja");
  });

  it("sessions: meta and a file under a nested path", async () => {
    const meta = await kura.PUT("/v1/sessions/{session_id}/meta/{key}", {
      params: { path: { session_id: "s-1", key: "user" } },
      body: { id: "alice" },
    });
    expect(meta.error).toBeUndefined();
    const metaBack = await kura.GET("/v1/sessions/{session_id}/meta/{key}", {
      params: { path: { session_id: "s-1", key: "user" } },
    });
    expect(metaBack.data?.data).toMatchObject({ value: { id: "alice" } });

    const file = { session_id: "s-1", path: "uploads/notes.txt" };
    const put = await kura.PUT("/v1/sessions/{session_id}/files/{path}", {
      params: { path: file },
      body: "session notes",
      headers: { "content-type": "text/plain" },
    });
    expect(put.data?.data).toMatchObject({ path: "uploads/notes.txt", size: 13 });
    const got = await kura.GET("/v1/sessions/{session_id}/files/{path}", {
      params: { path: file },
      parseAs: "text",
    });
    expect(got.data).toBe("session notes");
    const files = await kura.GET("/v1/sessions/{session_id}/files", {
      params: { path: { session_id: "s-1" } },
    });
    expect(files.data?.data.items.map((f) => f.path)).toEqual(["uploads/notes.txt"]);
    expect(
      (await kura.DELETE("/v1/sessions/{session_id}/files/{path}", { params: { path: file } })).response
        .status,
    ).toBe(204);
    const gone = await kura.GET("/v1/sessions/{session_id}/files/{path}", { params: { path: file } });
    expect(gone.response.status).toBe(404);
  });

  it("messages: append, history, get; search finds them", async () => {
    const chatId = "chat-client";
    const appended = await kura.POST("/v1/chats/{chat_id}/messages", {
      params: { path: { chat_id: chatId } },
      body: { role: "user", content: "会議は東京で quokka", idempotency_key: "req-1" },
    });
    expect(appended.error).toBeUndefined();
    const id = appended.data?.data.id as string;
    expect(appended.data?.data).toMatchObject({ chat_id: chatId, role: "user" });
    const batch = await kura.POST("/v1/chats/{chat_id}/messages:batch", {
      params: { path: { chat_id: chatId } },
      body: { messages: [{ role: "assistant", content: "了解 quokka" }] },
    });
    expect(batch.error).toBeUndefined();

    const history = await kura.GET("/v1/chats/{chat_id}/messages", {
      params: { path: { chat_id: chatId }, query: { order: "asc", include: "content", limit: 10 } },
    });
    expect(history.data?.data.items.map((m) => ("content" in m ? m.content : m.preview))).toEqual([
      "会議は東京で quokka",
      "了解 quokka",
    ]);

    const one = await kura.GET("/v1/messages/{id}", { params: { path: { id } } });
    expect(one.data?.data).toMatchObject({ id, content: "会議は東京で quokka" });

    const found = await kura.GET("/v1/search", {
      params: { query: { q: "quokka", consistent: "true" } },
    });
    expect(found.error).toBeUndefined();
    expect(found.data?.data.items.map((hit) => hit.id).sort()).toEqual(
      [id, batch.data?.data.items[0]?.id].sort(),
    );
    const posted = await kura.POST("/v1/search", {
      body: { q: "東京", consistent: true, filter: { chat_id: chatId } },
    });
    expect(posted.data?.data.items.map((hit) => hit.id)).toEqual([id]);
  });

  it("sends the token: without it the same call is 401", async () => {
    const anonymous = createKuraClient({ baseUrl: h.base, token: "not-a-jwt" });
    const r = await anonymous.GET("/v1/usage");
    expect(r.response.status).toBe(401);
    expect(r.error?.error_code).toBe("AUTH_INVALID");
  });

  it("uses the fetch it is given", async () => {
    const seen: string[] = [];
    const client = createKuraClient({
      baseUrl: h.base,
      token: await h.token("acme"),
      fetch: (request) => {
        seen.push(`${request.method} ${new URL(request.url).pathname}`);
        return fetch(request);
      },
    });
    expect((await client.GET("/healthz")).data?.data.status).toBe("ok");
    expect(seen).toEqual(["GET /healthz"]);
  });
});

describe("the committed client types", () => {
  it("are what `npm run gen:client` writes from the server's document now", async () => {
    const committed = await readFile(SCHEMA_FILE, "utf8");
    // On a mismatch: run `npm run gen:client` and commit src/client/schema.ts.
    expect(committed === (await generateClientTypes())).toBe(true);
  }, 120_000);
});
