/**
 * `vector.backend: faiss` chosen by configuration: Kura loads faiss-node from
 * `vector.module_path` (in the main thread and in the projection worker that owns the message
 * embeddings) for memories, message search and tenant collections, a collection's index trained
 * once it holds `train_size` vectors; everything outlives a restart. Needs faiss-node built by
 * scripts/test-servers/install-faiss.sh (skipped outside CI without it).
 */
import { existsSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Kura } from "../../src/kura.js";
import { backendAvailable } from "../support/backends.js";
import { type TestKuraFactory, testKura } from "../support/kura.js";

process.env.OMP_NUM_THREADS ??= "1";
const FAISS_MODULE = join(
  process.env.KURA_TEST_SERVER_CACHE ?? join(homedir(), ".cache/kura-test-servers"),
  "faiss-node",
);
const run = backendAvailable(
  "faiss-kura",
  existsSync(join(FAISS_MODULE, "build/Release/faiss-node.node"))
    ? undefined
    : `faiss-node is not built in ${FAISS_MODULE} (scripts/test-servers/install-faiss.sh)`,
);

describe.skipIf(!run)("faiss selected by configuration", () => {
  let factory: TestKuraFactory;
  let kura: Kura;
  const config = (modulePath = FAISS_MODULE) => ({
    vector: {
      backend: "faiss",
      module_path: modulePath,
      dimensions: 64,
      metric: "cosine",
      embed_messages: true,
      faiss: { index: "ivf_flat", nlist: 2, train_size: 8, nprobe_fast: 1, nprobe_balanced: 2 },
    },
  });
  const points = Array.from({ length: 12 }, (_, i) => [Math.cos(i / 2), Math.sin(i / 2), i / 12]);

  beforeAll(async () => {
    factory = await testKura("sqlite");
    kura = await factory.open({ config: config() });
  }, 60_000);
  afterAll(async () => {
    await kura?.close();
    await factory?.cleanup();
  });

  it("memories, message search and collections answer through faiss", async () => {
    const t = kura.tenant("acme");
    const m = await t.memories.put("alice", { content: "Alice likes green tea in the morning" });
    await t.memories.put("alice", { content: "The project deadline is in March" });
    await t.memories.put("bob", { content: "Bob likes green tea too" });
    const found = await t.memories.search("alice", { query: "green tea", k: 1 });
    expect(found.map((h) => h.memory.memoryId)).toEqual([m.memoryId]);

    const a = await t.messages.append("c1", { role: "user", content: "quarterly budget review meeting" });
    await t.messages.append("c1", { role: "user", content: "weekend hiking photos" });
    await kura.pumpOutbox();
    expect(kura.vectorProjection).toBe("worker");
    const r = await t.search("budget review", { mode: "vector", limit: 1 });
    expect(r.backend).toBe("faiss");
    expect(r.hits.map((h) => h.id)).toEqual([a.id]);

    await t.vectors.create("docs", { dimensions: 3, metric: "l2" });
    for (const [i, p] of points.entries()) await t.vectors.put("docs", `p${i}`, p);
    for (const mode of ["fast", "balanced", "accurate"] as const)
      expect(
        (await t.vectors.query("docs", { vector: points[7] as number[], k: 1, mode })).map((h) => h.id),
      ).toEqual(["p7"]);
    await t.vectors.delete("docs", "p7");
    expect(
      (await t.vectors.query("docs", { vector: points[7] as number[], k: 2, mode: "fast" })).length,
    ).toBe(2);
    expect(
      (await t.vectors.query("docs", { vector: points[7] as number[], k: 11, mode: "fast" })).map(
        (h) => h.id,
      ),
    ).not.toContain("p7");
  });

  it("survives a restart; a module path that holds no faiss-node is refused saying how to build it", async () => {
    await kura.close();
    kura = await factory.open({ config: config() });
    const t = kura.tenant("acme");
    expect((await t.memories.search("alice", { query: "deadline March", k: 1 }))[0]?.memory.content).toBe(
      "The project deadline is in March",
    );
    expect(await t.vectors.count("docs")).toBe(11);
    expect((await t.vectors.query("docs", { vector: points[3] as number[], k: 1 }))[0]?.id).toBe("p3");
    await kura.close();
    await expect(factory.open({ config: config(join(FAISS_MODULE, "missing")) })).rejects.toMatchObject({
      code: "VECTOR_UNAVAILABLE",
      message: expect.stringContaining("install-faiss.sh"),
    });
    kura = await factory.open({ config: config() });
  });
});
