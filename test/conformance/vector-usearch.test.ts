import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { openExactVectorIndex } from "../../src/adapters/vector/exact/index.js";
import { openUsearchVectorIndex, type Quantization } from "../../src/adapters/vector/usearch/index.js";
import { isKuraError } from "../../src/core/errors.js";
import type { VectorMode } from "../../src/ports/vector-index.js";
import { gaussianMixture, vectorIndexConformance } from "./vector-index.suite.js";

const dirs: string[] = [];
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), "kura-usearch-"));
  dirs.push(dir);
  return dir;
};
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

for (const quantization of ["f32", "f16"] as Quantization[]) {
  vectorIndexConformance(`usearch ${quantization}`, {
    open: (options) => openUsearchVectorIndex({ ...options, quantization }),
    persistent: () => {
      const dir = tempDir();
      return { open: (options) => openUsearchVectorIndex({ ...options, quantization, dir }) };
    },
    recallFloor: 0.9,
    distanceTolerance: quantization === "f32" ? 1e-4 : 1e-3,
  });
}

describe("usearch specifics", () => {
  it("i8 serves cosine with re-ranking (recall@10 against exact ≥ 0.97 at 384 dimensions), refuses other metrics", async () => {
    await expect(
      openUsearchVectorIndex({ dimensions: 4, metric: "l2", quantization: "i8" }),
    ).rejects.toSatisfy(
      (e: unknown) =>
        isKuraError(e) && e.code === "VECTOR_QUANTIZATION_UNSUPPORTED" && e.kind === "ConfigInvalid",
    );
    const dims = 384;
    const all = gaussianMixture(2027, 3100, dims, 20);
    const items = all.slice(0, 3000).map((vector, i) => ({ tenantId: "t", id: `g${i}`, vector }));
    const truth = openExactVectorIndex({ dimensions: dims, metric: "cosine" });
    await truth.upsert(items);
    const dir = tempDir();
    let index = await openUsearchVectorIndex({ dimensions: dims, metric: "cosine", quantization: "i8", dir });
    await index.upsert(items);
    const measure = async (mode: VectorMode) => {
      let found = 0;
      for (const q of all.slice(3000)) {
        const want = new Set((await truth.query({ tenantId: "t", vector: q, k: 10 })).map((h) => h.id));
        for (const h of await index.query({ tenantId: "t", vector: q, k: 10, mode }))
          if (want.has(h.id)) found++;
      }
      return found / 1000;
    };
    const recall = { fast: await measure("fast"), balanced: await measure("balanced") };
    console.info(`usearch i8 cosine recall@10 (3,000 × 384, 100 queries): ${JSON.stringify(recall)}`);
    // The 8-bit graph alone gives ~0.7 here; re-ranking its candidates by the f32 vectors kept in
    // LMDB restores recall while the graph stays at one byte per component.
    expect(recall.fast).toBeGreaterThanOrEqual(0.97);
    expect(recall.balanced).toBeGreaterThanOrEqual(0.97);
    await index.close();
    index = await openUsearchVectorIndex({ dimensions: dims, metric: "cosine", quantization: "i8", dir });
    expect(await index.count("t")).toBe(3000);
    expect(await measure("balanced")).toBe(recall.balanced);
    await index.close();
  }, 60_000);

  it("refuses to reopen an index with another configuration", async () => {
    const dir = tempDir();
    const a = await openUsearchVectorIndex({ dimensions: 4, metric: "l2", dir });
    await a.upsert([{ tenantId: "t", id: "x", vector: [1, 2, 3, 4] }]);
    await a.close();
    await expect(openUsearchVectorIndex({ dimensions: 8, metric: "l2", dir })).rejects.toSatisfy(
      (e: unknown) => isKuraError(e) && e.code === "VECTOR_INDEX_CONFIG_CHANGED",
    );
  });

  it("rebuilds a damaged or missing graph file from the items it keeps in LMDB", async () => {
    const dir = tempDir();
    const data = gaussianMixture(1, 200, 4, 2);
    const a = await openUsearchVectorIndex({ dimensions: 4, metric: "l2", dir });
    await a.upsert(data.map((vector, i) => ({ tenantId: "t", id: `x${i}`, vector })));
    const q = { tenantId: "t", vector: data[7] as Float32Array, k: 5, mode: "accurate" as const };
    const before = await a.query(q);
    await a.close();
    writeFileSync(join(dir, "index.usearch"), "garbage");
    const b = await openUsearchVectorIndex({ dimensions: 4, metric: "l2", dir });
    expect(await b.count("t")).toBe(200);
    expect(await b.query(q)).toEqual(before);
    await b.close();
    rmSync(join(dir, "index.usearch"));
    const c = await openUsearchVectorIndex({ dimensions: 4, metric: "l2", dir });
    expect(await c.query(q)).toEqual(before);
    await c.close();
  });
});
