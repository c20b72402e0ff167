/**
 * Memories (MEM-1) over a real KV store (memory adapter), the usearch vector index and the
 * embedded hashing embedder: CRUD, per-user and per-tenant scoping, search by text and vector.
 */
import { describe, expect, it } from "vitest";
import { createHashingEmbedder } from "../../src/adapters/embedder/hashing/index.js";
import { memoryKvStore } from "../../src/adapters/kv/memory/index.js";
import { openUsearchVectorIndex } from "../../src/adapters/vector/usearch/index.js";
import { isKuraError } from "../../src/core/errors.js";
import { Memories, type MemoriesContext, type MemoryInput } from "../../src/domains/memories.js";

async function context(): Promise<MemoriesContext & { tick: () => void }> {
  let now = Date.UTC(2026, 0, 1);
  const embedder = createHashingEmbedder({ dimensions: 128 });
  return {
    kv: await memoryKvStore.create(memoryKvStore.parseOptions({})),
    index: await openUsearchVectorIndex({ dimensions: 128, metric: "cosine" }),
    embedder,
    clock: () => now,
    tick: () => {
      now += 1000;
    },
  };
}

describe("memories", () => {
  it("puts, gets, lists, replaces and deletes a user's memories", async () => {
    const ctx = await context();
    const m = new Memories(ctx, "acme");
    const a = await m.put("alice", {
      content: "Alice prefers meetings in the morning",
      category: "preference",
    });
    ctx.tick();
    const b = await m.put("alice", { content: "東京オフィスの会議室は三階です" });
    expect(a.memoryId).toMatch(/^[0-9a-f-]{36}$/);
    expect(a).toMatchObject({
      userId: "alice",
      category: "preference",
      createdAt: "2026-01-01T00:00:00.000Z",
    });
    expect(b.category).toBeNull();
    expect(await m.get("alice", a.memoryId)).toEqual(a);
    expect((await m.list("alice")).items.map((x) => x.memoryId)).toEqual([a.memoryId, b.memoryId]);
    ctx.tick();
    const a2 = await m.put("alice", { memoryId: a.memoryId, content: "Alice prefers afternoons now" });
    expect(a2.createdAt).toBe(a.createdAt);
    expect(a2.updatedAt).toBe("2026-01-01T00:00:02.000Z");
    expect(await ctx.index.count("acme")).toBe(2);
    expect(await m.delete("alice", b.memoryId)).toBe(true);
    expect(await m.delete("alice", b.memoryId)).toBe(false);
    expect(await m.get("alice", b.memoryId)).toBeUndefined();
    expect((await m.list("alice")).items).toHaveLength(1);
    expect(await ctx.index.count("acme")).toBe(1);
  });

  it("searches by text and by vector, scoped per user and tenant", async () => {
    const ctx = await context();
    const acme = new Memories(ctx, "acme");
    const other = new Memories(ctx, "other");
    await acme.put("alice", {
      memoryId: "m1",
      content: "the quarterly report is due on Monday",
      category: "work",
    });
    await acme.put("alice", { memoryId: "m2", content: "favourite food is ramen", category: "food" });
    await acme.put("alice", { memoryId: "m3", content: "東京の会議は午後三時から" });
    await acme.put("bob", { memoryId: "b1", content: "the quarterly report is due on Monday" });
    await other.put("alice", { memoryId: "o1", content: "the quarterly report is due on Monday" });

    const hits = await acme.search("alice", { query: "quarterly report", k: 3 });
    expect(hits.map((h) => h.memory.memoryId).sort()).toEqual(["m1", "m2", "m3"]);
    expect(hits[0]?.memory.memoryId).toBe("m1");
    expect(hits.every((h) => h.memory.userId === "alice")).toBe(true);
    expect((await acme.search("alice", { query: "会議", k: 1 }))[0]?.memory.memoryId).toBe("m3");
    expect(
      (await acme.search("alice", { query: "report", category: "food", k: 5 })).map((h) => h.memory.memoryId),
    ).toEqual(["m2"]);
    expect((await acme.search("bob", { query: "ramen", k: 5 })).map((h) => h.memory.memoryId)).toEqual([
      "b1",
    ]);
    expect((await other.search("alice", { query: "report", k: 5 })).map((h) => h.memory.memoryId)).toEqual([
      "o1",
    ]);

    const [v] = await ctx.embedder.embed(["favourite food is ramen"]);
    const byVector = await acme.search("alice", { vector: v as Float32Array, k: 1 });
    expect(byVector[0]?.memory.memoryId).toBe("m2");
    expect(byVector[0]?.distance).toBeLessThan(1e-3);
  });

  it("names results in camelCase and stores records under the names earlier releases stored", async () => {
    const ctx = await context();
    const m = new Memories(ctx, "acme");
    const a = await m.put("alice", { memoryId: "m1", content: "likes green tea", category: "food" });
    expect(a).toEqual({
      userId: "alice",
      memoryId: "m1",
      content: "likes green tea",
      category: "food",
      createdAt: "2026-01-01T00:00:00.000Z",
      updatedAt: "2026-01-01T00:00:00.000Z",
    });
    const stored = (await ctx.kv.get("acme:memory:alice:m1")) as Record<string, unknown>;
    expect(Object.keys(stored).sort()).toEqual([
      "category",
      "content",
      "created_at",
      "embedding",
      "memory_id",
      "updated_at",
      "user_id",
    ]);
    expect(stored).toMatchObject({ user_id: "alice", memory_id: "m1", created_at: a.createdAt });
  });

  it("reads, finds and replaces a record stored by an earlier release (snake_case, no embedding)", async () => {
    const ctx = await context();
    await ctx.kv.set("acme:memory:alice:old1", {
      user_id: "alice",
      memory_id: "old1",
      content: "the office is on the third floor",
      category: "work",
      created_at: "2025-06-01T00:00:00.000Z",
      updated_at: "2025-06-02T00:00:00.000Z",
    });
    const m = new Memories(ctx, "acme");
    const expected = {
      userId: "alice",
      memoryId: "old1",
      content: "the office is on the third floor",
      category: "work",
      createdAt: "2025-06-01T00:00:00.000Z",
      updatedAt: "2025-06-02T00:00:00.000Z",
    };
    expect(await m.get("alice", "old1")).toEqual(expected);
    expect((await m.list("alice")).items).toEqual([expected]);
    const [hit] = await m.search("alice", { query: "third floor office", k: 1 });
    expect(hit?.memory).toEqual(expected);
    const replaced = await m.put("alice", {
      memoryId: "old1",
      content: "the office moved to the fifth floor",
    });
    expect(replaced).toMatchObject({ memoryId: "old1", createdAt: "2025-06-01T00:00:00.000Z" });
    expect(replaced.updatedAt).toBe("2026-01-01T00:00:00.000Z");
  });

  it("refuses memory_id, the input's earlier name, instead of storing a new memory", async () => {
    const ctx = await context();
    const m = new Memories(ctx, "acme");
    const input = { memory_id: "m1", content: "x" } as unknown as MemoryInput;
    await expect(m.put("alice", input)).rejects.toSatisfy(
      (e: unknown) => isKuraError(e) && e.code === "INVALID_ARGUMENT" && /memoryId/.test(e.message),
    );
    expect((await m.list("alice")).items).toEqual([]);
  });

  it("rejects bad input with specific errors", async () => {
    const ctx = await context();
    const m = new Memories(ctx, "acme");
    const code = (c: string) => (e: unknown) => isKuraError(e) && e.code === c;
    await expect(m.put("alice", { content: "" })).rejects.toSatisfy(code("INVALID_ARGUMENT"));
    await expect(m.put("alice", { content: "lone \ud800 surrogate" })).rejects.toSatisfy(
      code("INVALID_UTF8"),
    );
    expect((await m.list("alice")).items).toHaveLength(0);
    await expect(m.put("al/ice", { content: "x" })).rejects.toSatisfy(
      (e: unknown) => isKuraError(e) && e.kind === "InvalidArgument",
    );
    await expect(m.search("alice", {})).rejects.toSatisfy(code("INVALID_ARGUMENT"));
    await expect(m.search("alice", { vector: [1, 2, 3] })).rejects.toSatisfy(
      code("VECTOR_DIMENSIONS_MISMATCH"),
    );
    const wrong = { ...ctx, embedder: createHashingEmbedder({ dimensions: 64 }) };
    expect(() => new Memories(wrong, "acme")).toThrow(/dimensions/);
  });
});
