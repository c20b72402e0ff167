/**
 * Highlights of hybrid search: a hit the full-text half found carries the snippet and highlights
 * `mode=fulltext` gives it; a hit only the vector half found carries the message's preview, with
 * the query's words highlighted where the preview has them and none otherwise.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Harness, startServer } from "./harness.js";

type Hit = { id: string; snippet: string; highlights: [number, number][] };

describe("hybrid search highlights (vector.embed_messages, hashing embedder)", () => {
  let h: Harness;
  let acme: string;
  const ids: Record<string, string> = {};

  beforeAll(async () => {
    h = await startServer({
      config: { vector: { dimensions: 128, metric: "cosine", embed_messages: true } },
    });
    acme = await h.token("acme");
    const messages = {
      short: "The quarterly Budget review is on Friday",
      // The word lies beyond the 200-character preview: only the full-text snippet shows it.
      long: `${"an agenda of many other things to discuss first, ".repeat(6)}and then the budget`,
      parts: [{ type: "text", text: "draft budget numbers attached" }],
      other: "weekend hiking trip photos",
      japanese: "明日の会議は東京で",
    };
    for (const [name, content] of Object.entries(messages)) {
      const r = await h.call("POST", "/v1/chats/c1/messages", {
        token: acme,
        json: { role: "user", content },
      });
      expect(r.status).toBe(201);
      ids[name] = r.json.data.id;
    }
    await h.kura.pumpOutbox();
  });
  afterAll(async () => h?.close());

  const search = async (q: string, mode: string): Promise<Hit[]> => {
    const r = await h.call("GET", `/v1/search?q=${encodeURIComponent(q)}&mode=${mode}&limit=20`, {
      token: acme,
    });
    expect(r.status, r.text).toBe(200);
    return r.json.data.items;
  };
  const marked = (hit: Hit) => hit.highlights.map(([a, b]) => hit.snippet.slice(a, b));

  it("a full-text hit carries the highlights mode=fulltext gives it", async () => {
    for (const q of ["budget", "東京"]) {
      const text = await search(q, "fulltext");
      const hybrid = await search(q, "hybrid");
      expect(text.length).toBeGreaterThan(0);
      for (const t of text) {
        const same = hybrid.find((x) => x.id === t.id);
        expect(same, `${q}: ${t.snippet}`).toBeDefined();
        expect(same?.snippet).toBe(t.snippet);
        expect(same?.highlights).toEqual(t.highlights);
        expect(marked(t).length, `${q}: ${t.snippet}`).toBeGreaterThan(0);
        for (const m of marked(t)) expect(m.toLowerCase()).toBe(q.toLowerCase());
      }
    }
    // The long message's word is past its preview: the full-text snippet still marks it.
    const long = (await search("budget", "hybrid")).find((x) => x.id === ids.long);
    expect(long && marked(long)).toEqual(["budget"]);
  });

  it("a hit only the vector half found has the query's words marked in its preview, or nothing", async () => {
    const text = new Set((await search("budget", "fulltext")).map((x) => x.id));
    const vectorOnly = (await search("budget", "hybrid")).filter((x) => !text.has(x.id));
    expect(vectorOnly.map((x) => x.id)).toEqual(expect.arrayContaining([ids.other, ids.japanese]));
    for (const hit of vectorOnly) expect(hit.highlights).toEqual([]);
    // A query whose full-text half needs both words: the vector half brings messages with one.
    const both = await search("budget photos", "hybrid");
    const parts = both.find((x) => x.id === ids.parts);
    expect(parts && marked(parts)).toEqual(["budget"]);
    const other = both.find((x) => x.id === ids.other);
    expect(other && marked(other)).toEqual(["photos"]);
  });
});
