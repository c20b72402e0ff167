/**
 * Vector and hybrid search over messages (VEC-4, VEC-5) through the library: messages embedded
 * by the outbox projector, kept in step with deletes, fused with full-text by reciprocal rank
 * fusion, filtered, persisted across a restart, and healed after an embedder outage.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createHashingEmbedder } from "../../src/adapters/embedder/hashing/index.js";
import { isKuraError, KuraError } from "../../src/core/errors.js";
import { RRF_K, type SearchResult } from "../../src/engine/search.js";
import type { Kura } from "../../src/kura.js";
import type { Embedder } from "../../src/ports/embedder.js";
import { type TestKuraFactory, testKura } from "../support/kura.js";

const DIMS = 256;
const config = { vector: { dimensions: DIMS, metric: "cosine", embed_messages: true } };

/** The hashing embedder, with an outage switch. */
function switchable(): Embedder & { down: boolean; calls: number } {
  const inner = createHashingEmbedder({ dimensions: DIMS });
  const e = {
    name: "switchable",
    dimensions: DIMS,
    down: false,
    calls: 0,
    async embed(texts: readonly string[]) {
      e.calls++;
      if (e.down) throw new KuraError("EMBEDDER_UNAVAILABLE", "embedder is down", { operation: "embed" });
      return inner.embed(texts);
    },
  };
  return e;
}

const TEXTS = [
  "quarterly budget review meeting with finance",
  "budget numbers for the quarterly report",
  "lunch plans near the office",
  "明日の会議は東京で午後三時から始まります",
  "東京駅から新幹線で大阪に向かいました",
  "the finance team approved the budget",
  "weekend hiking trip photos",
  "review of the hiking gear budget",
];

describe("vector and hybrid search over messages", () => {
  let factory: TestKuraFactory;
  let kura: Kura;
  let embedder: ReturnType<typeof switchable>;
  const ids: string[] = [];

  beforeEach(async () => {
    factory = await testKura("sqlite");
    embedder = switchable();
    kura = await factory.open({ config, embedder });
    const t = kura.tenant("acme");
    ids.length = 0;
    for (const [i, text] of TEXTS.entries())
      ids.push(
        (
          await t.messages.append(i % 2 === 0 ? "c1" : "c2", {
            role: i < 4 ? "user" : "assistant",
            content: text,
          })
        ).id,
      );
    await kura
      .tenant("other")
      .messages.append("c1", { role: "user", content: "quarterly budget review meeting" });
    await kura.pumpOutbox();
  });
  afterEach(async () => {
    await kura.close();
    await factory.cleanup();
  });

  it("finds messages by the embedding of the query, nearest first, within the tenant only", async () => {
    const t = kura.tenant("acme");
    const r = await t.search("quarterly budget review", { mode: "vector", limit: 3 });
    expect(r.mode).toBe("vector");
    expect(r.backend).toBe("usearch");
    expect(r.hits[0]?.id).toBe(ids[0]);
    expect(r.hits.map((h) => h.id)).toContain(ids[1]);
    expect(r.hits.every((h) => ids.includes(h.id))).toBe(true);
    for (let i = 1; i < r.hits.length; i++)
      expect(r.hits[i - 1]?.score as number).toBeGreaterThanOrEqual(r.hits[i]?.score as number);
    const ja = await t.search("東京の会議", { mode: "vector", limit: 1 });
    expect(ja.hits[0]?.id).toBe(ids[3]);
    // A query vector instead of text: the embedding of message 6 finds message 6.
    const [v] = await createHashingEmbedder({ dimensions: DIMS }).embed([TEXTS[6] as string]);
    const byVector = await t.search("", { mode: "vector", vector: Array.from(v as Float32Array), limit: 1 });
    expect(byVector.hits[0]?.id).toBe(ids[6]);
  });

  it("hybrid ranks by reciprocal rank fusion of the full-text and vector rankings", async () => {
    const t = kura.tenant("acme");
    const q = "budget review";
    const full = await t.search(q, { mode: "fulltext", limit: 100 });
    const near = await t.search(q, { mode: "vector", limit: 100 });
    const expected = new Map<string, number>();
    for (const list of [full.hits, near.hits])
      for (const [rank, h] of list.entries())
        expected.set(h.id, (expected.get(h.id) ?? 0) + 1 / (RRF_K + rank + 1));
    const hybrid = await t.search(q, { mode: "hybrid", limit: 100 });
    expect(hybrid.mode).toBe("hybrid");
    expect(hybrid.backend).toBe("sqlite-fts+usearch");
    const order = [...expected].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
    expect(hybrid.hits.map((h) => h.id)).toEqual(order.map(([id]) => id));
    for (const h of hybrid.hits) expect(h.score).toBeCloseTo(expected.get(h.id) as number, 12);
    // A message in both lists outranks one in either list alone at the same ranks.
    const both = hybrid.hits.find((h) => full.hits.some((f) => f.id === h.id));
    expect(both && near.hits.some((n) => n.id === both.id)).toBe(true);
    // Full-text hits keep their highlighted snippets.
    const top = hybrid.hits[0];
    expect(top?.highlights.length).toBeGreaterThan(0);
  });

  it("applies chat, role and time filters, and pages with a cursor", async () => {
    const t = kura.tenant("acme");
    const inC2 = await t.search("budget", { mode: "hybrid", chatId: "c2", limit: 100 });
    expect(inC2.hits.length).toBeGreaterThan(0);
    expect(inC2.hits.every((h) => h.chatId === "c2")).toBe(true);
    const assistant = await t.search("budget", { mode: "vector", role: "assistant", limit: 100 });
    expect(assistant.hits.length).toBeGreaterThan(0);
    expect(assistant.hits.every((h) => h.role === "assistant")).toBe(true);
    const none = await t.search("budget", { mode: "vector", until: "2000-01-01T00:00:00Z" });
    expect(none.hits).toEqual([]);
    const all = await t.search("budget", { mode: "vector", limit: 8 });
    const first = await t.search("budget", { mode: "vector", limit: 3 });
    expect(first.cursor).toBeDefined();
    const second = await t.search("budget", { mode: "vector", limit: 3, cursor: first.cursor as string });
    expect([...first.hits, ...second.hits].map((h) => h.id)).toEqual(all.hits.slice(0, 6).map((h) => h.id));
  });

  it("a deleted message leaves the vector index; an undeleted one returns", async () => {
    const t = kura.tenant("acme");
    const target = ids[6] as string;
    await t.messages.delete(target);
    await kura.pumpOutbox();
    expect(await kura.vectors.messages?.index.count("acme")).toBe(TEXTS.length - 1);
    const r = await t.search(TEXTS[6] as string, { mode: "vector", limit: 10 });
    expect(r.hits.map((h) => h.id)).not.toContain(target);
    await t.messages.undelete(target);
    await kura.pumpOutbox();
    const back = await t.search(TEXTS[6] as string, { mode: "vector", limit: 1 });
    expect(back.hits[0]?.id).toBe(target);
  });

  it("an embedder outage holds the projector back; recovery embeds what was missed", async () => {
    const t = kura.tenant("acme");
    embedder.down = true;
    const late = await t.messages.append("c1", { role: "user", content: "zebra crossing signal timing" });
    await kura.pumpOutbox();
    expect(await kura.outboxLag("vectors")).toBeGreaterThan(0);
    // Full-text search is a separate projector and is not held back.
    expect((await t.search("zebra")).hits.map((h) => h.id)).toEqual([late.id]);
    embedder.down = false;
    await kura.pumpOutbox();
    expect(await kura.outboxLag("vectors")).toBe(0);
    const r = await t.search("zebra crossing", { mode: "vector", limit: 1 });
    expect(r.hits[0]?.id).toBe(late.id);
  });

  it("the message index persists across a restart without re-embedding", async () => {
    await kura.close();
    const again = switchable();
    kura = await factory.open({ config, embedder: again });
    await kura.pumpOutbox();
    expect(await kura.vectors.messages?.index.count("acme")).toBe(TEXTS.length);
    const before = again.calls;
    const r = await kura.tenant("acme").search("hiking photos", { mode: "vector", limit: 1 });
    expect(r.hits[0]?.id).toBe(ids[6]);
    expect(again.calls - before).toBe(1); // the query only
  });

  it("a lost messages index is embedded again on open", async () => {
    await kura.close();
    const { rm } = await import("node:fs/promises");
    const { join } = await import("node:path");
    await rm(join(factory.dir, "vectors", "messages"), { recursive: true, force: true });
    kura = await factory.open({ config, embedder: switchable() });
    await kura.close(); // waits for the background re-embedding
    kura = await factory.open({ config, embedder: switchable() });
    expect(await kura.vectors.messages?.index.count("acme")).toBe(TEXTS.length);
    const r = await kura.tenant("acme").search("hiking photos", { mode: "vector", limit: 1 });
    expect(r.hits[0]?.id).toBe(ids[6]);
  });

  it("rebuild re-embeds every message of the catalog, and drops the deleted one", async () => {
    const n = await kura.vectors.rebuildMessages(kura.catalog);
    expect(n).toBe(TEXTS.length + 1);
    expect(await kura.vectors.messages?.index.count("acme")).toBe(TEXTS.length);
  });
});

describe("vector search when messages are not embedded", () => {
  it("answers VECTOR_SEARCH_DISABLED, and full-text still works", async () => {
    const factory = await testKura("sqlite");
    const kura = await factory.open({ config: { vector: { dimensions: 64 } } });
    try {
      const t = kura.tenant("acme");
      await t.messages.append("c", { role: "user", content: "hello vector world" });
      await kura.pumpOutbox();
      const err = await t.search("hello", { mode: "hybrid" }).catch((e: unknown) => e);
      expect(isKuraError(err) && err.code === "VECTOR_SEARCH_DISABLED" && err.kind === "Unsupported").toBe(
        true,
      );
      const ok: SearchResult = await t.search("hello");
      expect(ok.hits).toHaveLength(1);
      const bad = await t.search("hello", { mode: "semantic" as "vector" }).catch((e: unknown) => e);
      expect(isKuraError(bad) && bad.code === "INVALID_ARGUMENT").toBe(true);
    } finally {
      await kura.close();
      await factory.cleanup();
    }
  });
});
