import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { errorCode, type Harness, startServer } from "./harness.js";

describe("search over HTTP (SRCH-1…4)", () => {
  let h: Harness;
  let acme: string;
  let other: string;
  const ids: string[] = [];

  beforeAll(async () => {
    h = await startServer();
    acme = await h.token("acme");
    other = await h.token("other");
    for (const [chat, role, content] of [
      ["c1", "user", "明日の会議は東京で午後三時から。"],
      ["c1", "assistant", "今日は雨です。The meeting moved to Friday."],
      ["c2", "user", "東京駅から新幹線で大阪へ。"],
    ] as const) {
      const r = await h.call("POST", `/v1/chats/${chat}/messages`, { token: acme, json: { role, content } });
      expect(r.status).toBe(201);
      ids.push(r.json.data.id);
    }
    await h.call("POST", "/v1/chats/c1/messages", {
      token: other,
      json: { role: "user", content: "東京 other" },
    });
    await h.kura.pumpOutbox();
  });
  afterAll(async () => h?.close());

  it("GET /v1/search ranks hits with highlighted snippets, scoped to the token's tenant", async () => {
    const r = await h.call("GET", `/v1/search?q=${encodeURIComponent("東京")}`, { token: acme });
    expect(r.status).toBe(200);
    expect(r.json.data.degraded).toBe(false);
    expect(r.json.data.backend).toBe("sqlite-fts");
    expect(r.json.data.items.map((i: { id: string }) => i.id).sort()).toEqual([ids[0], ids[2]].sort());
    const hit = r.json.data.items[0];
    expect(hit.highlights.map(([a, b]: [number, number]) => hit.snippet.slice(a, b))).toEqual(["東京"]);
    expect(r.json.data.next_cursor).toBeNull();
  });

  it("filters by chat and role, and pages with a cursor", async () => {
    const byChat = await h.call("GET", `/v1/search?q=${encodeURIComponent("東京")}&chat_id=c2`, {
      token: acme,
    });
    expect(byChat.json.data.items.map((i: { id: string }) => i.id)).toEqual([ids[2]]);
    const rain = await h.call("GET", `/v1/search?q=${encodeURIComponent("雨 meeting")}&role=assistant`, {
      token: acme,
    });
    expect(rain.json.data.items.map((i: { id: string }) => i.id)).toEqual([ids[1]]);
    const first = await h.call("GET", `/v1/search?q=${encodeURIComponent("東京")}&limit=1`, { token: acme });
    expect(first.json.data.items).toHaveLength(1);
    const next = await h.call(
      "GET",
      `/v1/search?q=${encodeURIComponent("東京")}&limit=1&cursor=${first.json.data.next_cursor}`,
      { token: acme },
    );
    expect(next.json.data.items).toHaveLength(1);
    expect(next.json.data.items[0].id).not.toBe(first.json.data.items[0].id);
  });

  it("filters by chat_id; chatId, its deprecated earlier name, is still accepted", async () => {
    const q = `q=${encodeURIComponent("東京")}`;
    const ids2 = (r: { json: { data: { items: { id: string }[] } } }) => r.json.data.items.map((i) => i.id);
    const old = await h.call("GET", `/v1/search?${q}&chatId=c2`, { token: acme });
    expect(old.status).toBe(200);
    expect(ids2(old)).toEqual([ids[2]]);
    expect(ids2(await h.call("GET", `/v1/search?${q}&chat_id=c2&chatId=c2`, { token: acme }))).toEqual([
      ids[2],
    ]);
    const both = await h.call("GET", `/v1/search?${q}&chat_id=c2&chatId=c1`, { token: acme });
    expect(both.status).toBe(400);
    expect(both.json.error).toContain("query.chatId");
    const doc = (await h.call("GET", "/openapi.json")).json;
    const params = doc.paths["/v1/search"].get.parameters as {
      name: string;
      deprecated?: boolean;
      schema: { deprecated?: boolean };
    }[];
    // Deprecated on the parameter, where generated clients mark it.
    expect(params.find((p) => p.name === "chat_id")?.deprecated).toBeUndefined();
    expect(params.find((p) => p.name === "chatId")?.deprecated).toBe(true);
    expect(params.find((p) => p.name === "chatId")?.schema.deprecated).toBeUndefined();
  });

  it("consistent=true reads its own writes: every message appended before the search is found", async () => {
    const words = Array.from({ length: 300 }, (_, i) => ({ role: "user", content: `wombat note ${i}` }));
    const batch = await h.call("POST", "/v1/chats/ryw/messages:batch", {
      token: acme,
      json: { messages: words },
    });
    expect(batch.status).toBe(201);
    const single = await h.call("POST", "/v1/chats/ryw/messages", {
      token: acme,
      json: { role: "user", content: "quokka sighting" },
    });
    const id = single.json.data.id as string;
    const get = await h.call("GET", "/v1/search?q=quokka&consistent=true", { token: acme });
    expect(get.status).toBe(200);
    expect(get.json.data.items.map((x: { id: string }) => x.id)).toEqual([id]);
    const post = await h.call("POST", "/v1/search", {
      token: acme,
      json: { q: "wombat", k: 100, consistent: true, filter: { chat_id: "ryw" } },
    });
    expect(post.json.data.items).toHaveLength(100);
    expect((await h.call("GET", "/v1/search?q=x&consistent=maybe", { token: acme })).status).toBe(400);
  });

  it("POST /v1/search takes {q, k, filter, mode: fulltext}", async () => {
    const r = await h.call("POST", "/v1/search", {
      token: acme,
      json: { q: "会議", k: 5, filter: { chat_id: "c1", role: "user" }, mode: "fulltext" },
    });
    expect(r.status).toBe(200);
    expect(r.json.data.items.map((i: { id: string }) => i.id)).toEqual([ids[0]]);
  });

  it("vector and hybrid modes answer 501 VECTOR_SEARCH_DISABLED without message embeddings; bad input is 400", async () => {
    const v = await h.call("GET", "/v1/search?q=x&mode=vector", { token: acme });
    expect(v.status).toBe(501);
    expect(errorCode(v)).toBe("VECTOR_SEARCH_DISABLED");
    const hy = await h.call("POST", "/v1/search", { token: acme, json: { q: "x", mode: "hybrid" } });
    expect(hy.status).toBe(501);
    expect((await h.call("GET", "/v1/search", { token: acme })).status).toBe(400);
    expect((await h.call("GET", "/v1/search?q=x&limit=1000", { token: acme })).status).toBe(400);
    expect((await h.call("GET", "/v1/search?q=x&mode=semantic", { token: acme })).status).toBe(400);
    expect((await h.call("POST", "/v1/search", { token: acme, json: { k: 3 } })).status).toBe(400);
    expect((await h.call("GET", "/v1/search?q=x")).status).toBe(401);
  });
});

describe("vector and hybrid search over HTTP (VEC-4)", () => {
  let h: Harness;
  let acme: string;
  const ids: string[] = [];

  beforeAll(async () => {
    h = await startServer({
      config: { vector: { dimensions: 128, metric: "cosine", embed_messages: true } },
    });
    acme = await h.token("acme");
    for (const content of [
      "quarterly budget review with finance",
      "weekend hiking trip photos",
      "明日の会議は東京で午後三時から",
    ]) {
      const r = await h.call("POST", "/v1/chats/c1/messages", {
        token: acme,
        json: { role: "user", content },
      });
      ids.push(r.json.data.id);
    }
    const other = await h.token("other");
    await h.call("POST", "/v1/chats/c1/messages", {
      token: other,
      json: { role: "user", content: "quarterly budget review with finance" },
    });
    await h.kura.pumpOutbox();
  });
  afterAll(async () => h?.close());

  it("GET mode=vector and mode=hybrid rank the tenant's messages", async () => {
    const v = await h.call("GET", `/v1/search?q=${encodeURIComponent("budget review")}&mode=vector&limit=2`, {
      token: acme,
    });
    expect(v.status).toBe(200);
    expect(v.json.data).toMatchObject({ mode: "vector", degraded: false, backend: "usearch" });
    expect(v.json.data.items[0].id).toBe(ids[0]);
    expect(v.json.data.items.every((i: { id: string }) => ids.includes(i.id))).toBe(true);
    const hy = await h.call("GET", `/v1/search?q=${encodeURIComponent("東京の会議")}&mode=hybrid`, {
      token: acme,
    });
    expect(hy.status).toBe(200);
    expect(hy.json.data.mode).toBe("hybrid");
    expect(hy.json.data.items[0].id).toBe(ids[2]);
  });

  it("POST with a vector searches by it; a vector of the wrong length is 400", async () => {
    const { createHashingEmbedder } = await import("../../src/adapters/embedder/hashing/index.js");
    const [vector] = await createHashingEmbedder({ dimensions: 128 }).embed(["weekend hiking trip photos"]);
    const r = await h.call("POST", "/v1/search", {
      token: acme,
      json: { vector: Array.from(vector as Float32Array), k: 1 },
    });
    expect(r.status).toBe(200);
    expect(r.json.data.mode).toBe("vector");
    expect(r.json.data.items.map((i: { id: string }) => i.id)).toEqual([ids[1]]);
    const bad = await h.call("POST", "/v1/search", { token: acme, json: { vector: [1, 2, 3] } });
    expect(bad.status).toBe(400);
    expect(errorCode(bad)).toBe("VECTOR_DIMENSIONS_MISMATCH");
    const mixed = await h.call("POST", "/v1/search", {
      token: acme,
      json: { vector: Array.from(vector as Float32Array), mode: "hybrid" },
    });
    expect(mixed.status).toBe(400);
  });
});
