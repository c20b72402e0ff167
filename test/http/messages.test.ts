import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { errorCode, type Harness, readJson, startServer } from "./harness.js";

let h: Harness;
let acme: string;
let globex: string;

beforeAll(async () => {
  h = await startServer();
  acme = await h.token("acme");
  globex = await h.token("globex");
});
afterAll(async () => h?.close());

const append = (chat: string, json: unknown, token = acme) =>
  h.call("POST", `/v1/chats/${chat}/messages`, { token, json });

describe("messages over HTTP", () => {
  it("appends (201, MessageRef in the envelope, X-Request-Id)", async () => {
    const r = await append("c1", { role: "user", content: "会議は東京で", metadata: { lang: "ja" } });
    expect(r.status).toBe(201);
    expect(r.json.success).toBe(true);
    expect(r.json.request_id).toBe(r.headers.get("x-request-id"));
    expect(Date.parse(r.json.timestamp)).toBeGreaterThan(0);
    expect(r.json.data).toMatchObject({
      chat_id: "c1",
      role: "user",
      preview: "会議は東京で",
      content_type: "text/plain",
      version: 1,
      metadata: { lang: "ja" },
    });
    expect(r.json.data.content_url).toMatch(/^local:\/\/storage\/acme\/messages\/\d{4}\/\d{2}\/\d{2}\/c1\//);
    expect(r.json.data.checksum).toMatch(/^[0-9a-f]{64}$/);
  });

  it("keeps a caller's X-Request-Id", async () => {
    const r = await h.call("GET", "/healthz", { headers: { "x-request-id": "trace-42" } });
    expect(r.headers.get("x-request-id")).toBe("trace-42");
    expect(r.json.request_id).toBe("trace-42");
  });

  it("returns the first result for a repeated idempotency key", async () => {
    const body = { role: "user", content: "once", idempotency_key: "k-1" };
    const a = await append("c-idem", body);
    const b = await append("c-idem", body);
    expect(a.status).toBe(201);
    expect(b.json.data.id).toBe(a.json.data.id);
    const other = await append("c-idem", { ...body, content: "different" });
    expect(other.status).toBe(409);
    expect(errorCode(other)).toBe("IDEMPOTENCY_MISMATCH");
  });

  it("survives racing PATCHes: every answer is 200 or 409, and the message stays readable", async () => {
    const id = (await append("c-race", { role: "user", content: "v1" })).json.data.id as string;
    const answers = await Promise.all(
      Array.from({ length: 16 }, (_, i) =>
        h.call("PATCH", `/v1/messages/${id}`, { token: acme, json: { content: `edit ${i}` } }),
      ),
    );
    for (const a of answers) expect([200, 409]).toContain(a.status);
    const ok = answers.filter((a) => a.status === 200).map((a) => a.json.data.version as number);
    expect(ok.length).toBeGreaterThan(0);
    const got = await h.call("GET", `/v1/messages/${id}`, { token: acme });
    expect(got.status).toBe(200);
    expect(got.json.data.version).toBe(Math.max(...ok));
    const page = await h.call("GET", "/v1/chats/c-race/messages?include=content", { token: acme });
    expect(page.status).toBe(200);
    expect(page.json.data.items[0].content).toBe(got.json.data.content);
  });

  it("names the field and what it expected when a body is invalid", async () => {
    const missing = await h.call("POST", "/v1/chats/c-bad/messages", { token: acme, json: { role: "user" } });
    expect(missing.status).toBe(400);
    expect(missing.json.error).toBe("body.content: required");
    const wrong = await h.call("POST", "/v1/chats/c-bad/messages", {
      token: acme,
      json: { role: "user", content: 5 },
    });
    expect(wrong.json.error).toBe("body.content: expected string or array, received number");
    expect(wrong.json.details[0]).toMatchObject({ path: "body.content" });
  });

  it("reads a batch back in the order it was sent", async () => {
    const words = ["first", "second", "third", "fourth", "fifth", "sixth"];
    const r = await h.call("POST", "/v1/chats/c-order/messages:batch", {
      token: acme,
      json: { messages: words.map((content) => ({ role: "user", content })) },
    });
    expect(r.status).toBe(201);
    const asc = await h.call("GET", "/v1/chats/c-order/messages?order=asc&include=content", { token: acme });
    expect(asc.json.data.items.map((m: { content: string }) => m.content)).toEqual(words);
  });

  it("batch appends all or nothing", async () => {
    const bad = await h.call("POST", "/v1/chats/c-batch/messages:batch", {
      token: acme,
      json: {
        messages: [
          { role: "user", content: "ok" },
          { role: "BAD ROLE", content: "x" },
        ],
      },
    });
    expect(bad.status).toBe(400);
    expect(errorCode(bad)).toBe("MESSAGE_INVALID");
    expect(errorCode(await h.call("GET", "/v1/chats/c-batch/messages", { token: acme }))).toBe(
      "CHAT_NOT_FOUND",
    );
    const ok = await h.call("POST", "/v1/chats/c-batch/messages:batch", {
      token: acme,
      json: { messages: [1, 2, 3].map((i) => ({ role: "user", content: `m${i}` })) },
    });
    expect(ok.status).toBe(201);
    expect(ok.json.data.items.map((m: { preview: string }) => m.preview)).toEqual(["m1", "m2", "m3"]);
  });

  it("pages history with limit, cursor, order, time range and include=content", async () => {
    for (let i = 0; i < 5; i++)
      expect((await append("c-hist", { role: "user", content: `h${i}` })).status).toBe(201);
    const first = await h.call("GET", "/v1/chats/c-hist/messages?limit=2", { token: acme });
    expect(first.status).toBe(200);
    expect(first.json.data.items.map((m: { preview: string }) => m.preview)).toEqual(["h4", "h3"]);
    expect(first.json.data.items[0].content).toBeUndefined();
    const cursor = first.json.data.next_cursor as string;
    const second = await h.call("GET", `/v1/chats/c-hist/messages?limit=2&cursor=${cursor}`, { token: acme });
    expect(second.json.data.items.map((m: { preview: string }) => m.preview)).toEqual(["h2", "h1"]);
    const all = await h.call("GET", "/v1/chats/c-hist/messages?order=asc&include=content", { token: acme });
    expect(all.json.data.items.map((m: { content: string }) => m.content)).toEqual([
      "h0",
      "h1",
      "h2",
      "h3",
      "h4",
    ]);
    expect(all.json.data.next_cursor).toBeNull();
    const future = new Date(Date.now() + 3600_000).toISOString();
    const none = await h.call("GET", `/v1/chats/c-hist/messages?since=${encodeURIComponent(future)}`, {
      token: acme,
    });
    expect(none.json.data.items).toEqual([]);
    const before = await h.call("GET", `/v1/chats/c-hist/messages?until=${Date.now() + 3600_000}`, {
      token: acme,
    });
    expect(before.json.data.items).toHaveLength(5);
    const badCursor = await h.call("GET", "/v1/chats/c-hist/messages?cursor=nope", { token: acme });
    expect(errorCode(badCursor)).toBe("CURSOR_INVALID");
    const badLimit = await h.call("GET", "/v1/chats/c-hist/messages?limit=0", { token: acme });
    expect(errorCode(badLimit)).toBe("REQUEST_INVALID");
    const badOrder = await h.call("GET", "/v1/chats/c-hist/messages?order=sideways", { token: acme });
    expect(badOrder.status).toBe(400);
  });

  it("lists chats with a cursor", async () => {
    const page = await h.call("GET", "/v1/chats?limit=2", { token: acme });
    expect(page.status).toBe(200);
    expect(page.json.data.items).toHaveLength(2);
    const rest = await h.call("GET", `/v1/chats?limit=1000&cursor=${page.json.data.next_cursor}`, {
      token: acme,
    });
    const ids = [...page.json.data.items, ...rest.json.data.items].map((c: { chat_id: string }) => c.chat_id);
    expect(ids).toEqual([...ids].sort());
    expect(ids).toEqual(expect.arrayContaining(["c1", "c-hist", "c-batch", "c-idem"]));
    const other = await h.call("GET", "/v1/chats", { token: globex });
    expect(other.json.data.items).toEqual([]);
  });

  it("gets, batch-gets, edits (new version), deletes, undeletes and erases", async () => {
    const id = (await append("c-life", { role: "assistant", content: [{ type: "text", text: "v1" }] })).json
      .data.id;
    const got = await h.call("GET", `/v1/messages/${id}`, { token: acme });
    expect(got.json.data).toMatchObject({
      id,
      content: [{ type: "text", text: "v1" }],
      content_type: "application/json",
    });

    const many = await h.call("POST", "/v1/messages:batchGet", { token: acme, json: { ids: [id, "nope"] } });
    expect(many.json.data.items.map((m: { id: string }) => m.id)).toEqual([id]);
    expect(many.json.data.missing).toEqual(["nope"]);

    const edited = await h.call("PATCH", `/v1/messages/${id}`, { token: acme, json: { content: "v2" } });
    expect(edited.status).toBe(200);
    expect(edited.json.data.version).toBe(2);
    expect((await h.call("GET", `/v1/messages/${id}`, { token: acme })).json.data.content).toBe("v2");
    const versions = await h.call("GET", `/v1/messages/${id}/versions`, { token: acme });
    expect(versions.json.data.items.map((v: { version: number }) => v.version)).toEqual([1, 2]);

    const del = await h.call("DELETE", `/v1/messages/${id}`, { token: acme });
    expect(del.status).toBe(204);
    expect(del.text).toBe("");
    expect(del.headers.get("x-request-id")).toBeTruthy();
    expect(errorCode(await h.call("GET", `/v1/messages/${id}`, { token: acme }))).toBe("MESSAGE_NOT_FOUND");
    const undone = await h.call("POST", `/v1/messages/${id}:undelete`, { token: acme });
    expect(undone.status).toBe(200);
    expect(undone.json.data.id).toBe(id);
    expect((await h.call("GET", `/v1/messages/${id}`, { token: acme })).status).toBe(200);

    expect((await h.call("DELETE", `/v1/messages/${id}?mode=erase`, { token: acme })).status).toBe(204);
    expect((await h.call("POST", `/v1/messages/${id}:undelete`, { token: acme })).status).toBe(404);
    expect((await h.call("POST", `/v1/messages/${id}:bogus`, { token: acme })).status).toBe(404);
    expect(errorCode(await h.call("DELETE", `/v1/messages/${id}?mode=shred`, { token: acme }))).toBe(
      "REQUEST_INVALID",
    );
  });

  it("refuses messages over the size limit with 413 and stores nothing", async () => {
    const big = "x".repeat(131_073);
    const r = await append("c-big", { role: "user", content: big });
    expect(r.status).toBe(413);
    expect(errorCode(r)).toBe("MESSAGE_TOO_LARGE");
    const huge = await append("c-big", { role: "user", content: "y".repeat(2 * 1024 * 1024) });
    expect(huge.status).toBe(413);
    expect(errorCode(huge)).toBe("REQUEST_TOO_LARGE");
    expect(errorCode(await h.call("GET", "/v1/chats/c-big/messages", { token: acme }))).toBe(
      "CHAT_NOT_FOUND",
    );
    const fits = await append("c-big", { role: "user", content: "z".repeat(131_072) });
    expect(fits.status).toBe(201);
  });

  it("answers 501 NOT_IMPLEMENTED for deleting a whole chat", async () => {
    const r = await h.call("DELETE", "/v1/chats/c1", { token: acme });
    expect(r.status).toBe(501);
    expect(errorCode(r)).toBe("NOT_IMPLEMENTED");
  });
});

describe("streamed append (MSG-7)", () => {
  function chunked(
    chunks: (string | Uint8Array)[],
    delayMs = 5,
    abortAfter?: number,
    controller?: AbortController,
  ) {
    let i = 0;
    return new ReadableStream<Uint8Array>({
      async pull(c) {
        await sleep(delayMs);
        if (abortAfter !== undefined && i === abortAfter) {
          controller?.abort();
          return;
        }
        const next = chunks[i++];
        if (next === undefined) c.close();
        else c.enqueue(typeof next === "string" ? new TextEncoder().encode(next) : next);
      },
    });
  }

  const stream = (chat: string, body: ReadableStream<Uint8Array>, query = "", signal?: AbortSignal) =>
    fetch(`${h.base}/v1/chats/${chat}/messages:stream${query}`, {
      method: "POST",
      headers: { authorization: `Bearer ${acme}`, "content-type": "text/plain; charset=utf-8" },
      body,
      duplex: "half",
      ...(signal ? { signal } : {}),
    } as RequestInit);

  it("stores the chunks as one message when the stream ends", async () => {
    const parts = ["Hello", ", ", "東", "京", "! ", "streamed ".repeat(100)];
    const r = await stream("c-stream", chunked(parts), "?role=assistant&idempotency_key=s-1");
    expect(r.status).toBe(201);
    const ref = (await readJson(r)).data;
    expect(ref.role).toBe("assistant");
    const got = await h.call("GET", `/v1/messages/${ref.id}`, { token: acme });
    expect(got.json.data.content).toBe(parts.join(""));
  });

  it("splits no character across chunks (UTF-8 decoded as a stream)", async () => {
    const bytes = new TextEncoder().encode("会議");
    const r = await stream("c-stream", chunked([bytes.slice(0, 2), bytes.slice(2, 4), bytes.slice(4)]));
    expect(r.status).toBe(201);
    const got = await h.call("GET", `/v1/messages/${(await readJson(r)).data.id}`, { token: acme });
    expect(got.json.data.content).toBe("会議");
  });

  it("stores nothing when the client aborts the stream", async () => {
    const controller = new AbortController();
    await expect(
      stream(
        "c-aborted",
        chunked(["partial ", "reply ", "never ", "finished"], 20, 2, controller),
        "",
        controller.signal,
      ),
    ).rejects.toThrow();
    await sleep(300);
    expect(errorCode(await h.call("GET", "/v1/chats/c-aborted/messages", { token: acme }))).toBe(
      "CHAT_NOT_FOUND",
    );
  });

  it("refuses a stream over the size limit (413) and invalid UTF-8 (400)", async () => {
    const over = await stream(
      "c-stream-big",
      chunked(
        Array.from({ length: 40 }, () => "x".repeat(4096)),
        0,
      ),
    );
    expect(over.status).toBe(413);
    expect((await readJson(over)).error_code).toBe("MESSAGE_TOO_LARGE");
    const bad = await stream("c-stream-bad", chunked([new Uint8Array([0x61, 0xff, 0xfe, 0x62])]));
    expect(bad.status).toBe(400);
    expect((await readJson(bad)).error_code).toBe("INVALID_UTF8");
    expect(errorCode(await h.call("GET", "/v1/chats/c-stream-big/messages", { token: acme }))).toBe(
      "CHAT_NOT_FOUND",
    );
  });
});

describe("tenant isolation (TEN-1)", () => {
  it("never shows one tenant's messages to another: 404, never data", async () => {
    const id = (await append("secret-chat", { role: "user", content: "acme only" })).json.data.id as string;
    const asGlobex = [
      await h.call("GET", `/v1/messages/${id}`, { token: globex }),
      await h.call("GET", `/v1/messages/${id}/versions`, { token: globex }),
      await h.call("PATCH", `/v1/messages/${id}`, { token: globex, json: { content: "pwned" } }),
      await h.call("DELETE", `/v1/messages/${id}`, { token: globex }),
      await h.call("DELETE", `/v1/messages/${id}?mode=erase`, { token: globex }),
      await h.call("POST", `/v1/messages/${id}:undelete`, { token: globex }),
      await h.call("GET", "/v1/chats/secret-chat/messages?include=content", { token: globex }),
    ];
    for (const r of asGlobex) {
      expect(r.status).toBe(404);
      expect(r.text).not.toContain("acme only");
    }
    const batch = await h.call("POST", "/v1/messages:batchGet", { token: globex, json: { ids: [id] } });
    expect(batch.json.data).toEqual({ items: [], missing: [id] });
    const still = await h.call("GET", `/v1/messages/${id}`, { token: acme });
    expect(still.json.data.content).toBe("acme only");
    expect(still.json.data.version).toBe(1);
  });
});
