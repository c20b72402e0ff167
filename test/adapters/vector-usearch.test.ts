/**
 * What the usearch adapter does beyond the port's contract: i8 with re-ranking, exact
 * `accurate` scans, the re-ranking copy and its encodings, what the definition gives each index.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { openExactVectorIndex } from "../../src/adapters/vector/exact/index.js";
import {
  defaultRerankCopy,
  openUsearchVectorIndex,
  type Quantization,
  type RerankCopy,
  rerankWidth,
  type UsearchVectorIndex,
  usearchVectorIndex,
} from "../../src/adapters/vector/usearch/index.js";
import { f16Values, toBf16, toF16, VectorCopy } from "../../src/adapters/vector/usearch/vector-copy.js";
import { isKuraError } from "../../src/core/errors.js";
import type { VectorHit, VectorIndex, VectorMetric, VectorMode } from "../../src/ports/vector-index.js";
import { gaussianMixture } from "../conformance/vector-index.suite.js";

const dirs: string[] = [];
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), "kura-usearch-"));
  dirs.push(dir);
  return dir;
};
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

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

  it("accurate scans in chunks and answers as the exact index does: same ids in the same order, ties by id, filters", async () => {
    // 2,600 items per tenant (three chunks of the scan), a third of them duplicates of others
    // (equal distances, ordered by id), filter fields on every item.
    const dims = 16;
    const base = gaussianMixture(7, 1800, dims, 6);
    const vectorOf = (i: number) => base[i < 1800 ? i : (i * 7) % 1800] as Float32Array;
    const queries = gaussianMixture(8, 12, dims, 6);
    for (const metric of ["cosine", "l2", "ip"] as VectorMetric[]) {
      const items = ["a", "b"].flatMap((tenantId) =>
        Array.from({ length: 2600 }, (_, i) => ({
          tenantId,
          id: `${tenantId}${String(i).padStart(4, "0")}`,
          vector: vectorOf(i),
          category: i % 3 === 0 ? "x" : "y",
        })),
      );
      const truth = openExactVectorIndex({ dimensions: dims, metric });
      await truth.upsert(items);
      const compare = async (index: VectorIndex) => {
        for (const vector of queries)
          for (const query of [
            { tenantId: "a", vector, k: 25 },
            { tenantId: "b", vector, k: 7, filter: { category: "x" } },
          ]) {
            const want = await truth.query({ ...query, mode: "accurate" });
            const got = await index.query({ ...query, mode: "accurate" });
            expect(got.map((h) => h.id)).toEqual(want.map((h) => h.id));
            for (const [i, h] of got.entries())
              expect(h.distance).toBeCloseTo((want[i] as VectorHit).distance, 4);
            if (query.filter) expect(got.every((h) => h.category === "x")).toBe(true);
          }
      };
      const memory = await openUsearchVectorIndex({ dimensions: dims, metric });
      await memory.upsert(items);
      await compare(memory);
      await memory.close();
      const dir = tempDir();
      const persistent = await openUsearchVectorIndex({ dimensions: dims, metric, dir, quantization: "f16" });
      await persistent.upsert(items);
      await compare(persistent);
      await persistent.close();
      const reopened = await openUsearchVectorIndex({ dimensions: dims, metric, dir, quantization: "f16" });
      await compare(reopened);
      await reopened.close();
    }
  }, 120_000);

  it("re-ranked hits carry the exact distance of the stored vector without a copy, also after upserts, removes and a reopen", async () => {
    const dims = 32;
    const data = gaussianMixture(11, 700, dims, 5);
    const items = data.slice(0, 600).map((vector, i) => ({ tenantId: "t", id: `r${i}`, vector }));
    const queries = data.slice(600);
    for (const quantization of ["f16", "i8"] as Quantization[]) {
      const dir = tempDir();
      const truth = openExactVectorIndex({ dimensions: dims, metric: "cosine" });
      const open = () =>
        openUsearchVectorIndex({ dimensions: dims, metric: "cosine", quantization, dir, rerankCopy: "none" });
      let index = await open();
      await truth.upsert(items);
      await index.upsert(items);
      // Every hit's distance is the exact one of its item; hits are ordered by (distance, id).
      const check = async () => {
        for (const vector of queries.slice(0, 20))
          for (const mode of ["fast", "balanced"] as VectorMode[]) {
            const hits = await index.query({ tenantId: "t", vector, k: 10, mode });
            expect(hits).toHaveLength(10);
            const exact = new Map(
              (await truth.query({ tenantId: "t", vector, k: 600, mode: "accurate" })).map((h) => [
                h.id,
                h.distance,
              ]),
            );
            for (const h of hits) expect(h.distance).toBeCloseTo(exact.get(h.id) as number, 5);
            for (let i = 1; i < hits.length; i++) {
              const [a, b] = [hits[i - 1] as VectorHit, hits[i] as VectorHit];
              expect(a.distance < b.distance || (a.distance === b.distance && a.id < b.id)).toBe(true);
            }
          }
      };
      await check();
      // Replace the vectors of 100 items (each moved onto a query) and remove 100 others.
      const moved = items
        .slice(0, 100)
        .map((item, i) => ({ ...item, vector: queries[i % 100] as Float32Array }));
      const gone = items.slice(100, 200).map((item) => item.id);
      for (const target of [truth, index]) {
        await target.upsert(moved);
        await target.remove("t", gone);
      }
      await check();
      const nearest = await index.query({
        tenantId: "t",
        vector: queries[3] as Float32Array,
        k: 1,
        mode: "fast",
      });
      expect(nearest[0]?.distance).toBeCloseTo(0, 5);
      for (const vector of queries.slice(0, 20))
        for (const h of await index.query({ tenantId: "t", vector, k: 10, mode: "fast" }))
          expect(gone).not.toContain(h.id);
      await index.close();
      index = await open();
      await check();
      await index.close();
    }
  }, 120_000);

  it("re-ranking from the 16-bit copy answers as re-ranking from LMDB: after upserts, removes and a reopen", async () => {
    // 60 items per tenant: `fast` asks for 64 candidates, so every item of the tenant is a
    // candidate whatever the graph, and the two indexes differ only in what re-ranking reads.
    const dims = 64;
    const data = gaussianMixture(21, 120, dims, 120);
    const items = ["a", "b"].flatMap((tenantId) =>
      data.slice(0, 60).map((vector, i) => ({
        tenantId,
        id: `${tenantId}${String(i).padStart(2, "0")}`,
        vector,
        category: i % 2 ? "x" : "y",
      })),
    );
    const queries = data.slice(60);
    for (const format of ["f16", "bf16"] as RerankCopy[]) {
      const copyDir = tempDir();
      const open = (rerankCopy: RerankCopy, dir: string) =>
        openUsearchVectorIndex({ dimensions: dims, metric: "cosine", quantization: "i8", dir, rerankCopy });
      let withCopy = await open(format, copyDir);
      const without = await open("none", tempDir());
      expect(without.rerankCopyBytes()).toBe(0);
      for (const index of [withCopy, without]) await index.upsert(items);
      expect(withCopy.rerankCopyBytes()).toBeGreaterThanOrEqual(120 * dims * 2);
      const tolerance = format === "f16" ? 1e-3 : 1e-2;
      const asked = (vector: Float32Array) => [
        { tenantId: "a", vector, k: 10 },
        { tenantId: "b", vector, k: 5, filter: { category: "x" } },
      ];
      const answers = async (index: VectorIndex, k?: number) => {
        const out: VectorHit[][] = [];
        for (const vector of queries)
          for (const query of asked(vector))
            out.push(await index.query({ ...query, ...(k ? { k } : {}), mode: "fast" }));
        return out;
      };
      // Same ids in the same order, except where two items' exact distances differ by less than
      // the copy's rounding; distances within it.
      const same = async () => {
        const got = await answers(withCopy);
        const want = await answers(without);
        const all = await answers(without, 60);
        let positions = 0;
        let equal = 0;
        for (const [i, hits] of got.entries()) {
          const exact = want[i] as VectorHit[];
          const exactOf = new Map((all[i] as VectorHit[]).map((h) => [h.id, h.distance]));
          expect(hits).toHaveLength(exact.length);
          for (const [j, h] of hits.entries()) {
            const w = exact[j] as VectorHit;
            positions++;
            if (h.id === w.id) equal++;
            else expect(Math.abs((exactOf.get(h.id) as number) - w.distance)).toBeLessThan(tolerance);
            expect(Math.abs(h.distance - w.distance)).toBeLessThan(tolerance);
          }
        }
        console.info(`${format} copy: ${equal} of ${positions} positions identical`);
        expect(equal / positions).toBeGreaterThanOrEqual(0.98);
        return got;
      };
      await same();
      // Move 10 items of tenant a onto queries (each must now come first for its query, at
      // distance ~0) and remove 10 others.
      const moved = items.slice(0, 10).map((item, i) => ({ ...item, vector: queries[i] as Float32Array }));
      const gone = items.slice(10, 20).map((item) => item.id);
      for (const index of [withCopy, without]) {
        await index.upsert(moved);
        await index.remove("a", gone);
      }
      const after = await same();
      for (let i = 0; i < 10; i++) {
        const first = (after[2 * i] as VectorHit[])[0] as VectorHit;
        expect(first.id).toBe(moved[i]?.id);
        expect(first.distance).toBeLessThan(format === "f16" ? 1e-3 : 1e-2);
      }
      for (const hits of after) for (const h of hits) expect(gone).not.toContain(h.id);
      // Removed slots are reused by new items; the removed ids stay gone.
      const added = data.slice(100, 110).map((vector, i) => ({ tenantId: "a", id: `n${i}`, vector }));
      for (const index of [withCopy, without]) await index.upsert(added);
      const before = await same();
      for (const hits of before) for (const h of hits) expect(gone).not.toContain(h.id);
      // The copy is rebuilt from LMDB on open: the same answers.
      await withCopy.close();
      withCopy = await open(format, copyDir);
      expect(withCopy.rerankCopyBytes()).toBeGreaterThan(0);
      expect(await answers(withCopy)).toEqual(before);
      await withCopy.close();
      await without.close();
    }
  }, 60_000);

  it("keeps a re-ranking copy by default only where re-ranking reads every candidate (i8), never without a directory; f16 keeps one when asked", async () => {
    expect(defaultRerankCopy("i8")).toBe("f16");
    expect(defaultRerankCopy("f16")).toBe("none");
    expect(defaultRerankCopy("f32")).toBe("none");
    const vector = [1, 0, 0, 0];
    for (const [quantization, dir, copied] of [
      ["i8", tempDir(), true],
      ["i8", undefined, false],
      ["f16", tempDir(), false],
      ["f32", tempDir(), false],
    ] as Array<[Quantization, string | undefined, boolean]>) {
      const index = await openUsearchVectorIndex({
        dimensions: 4,
        metric: "cosine",
        quantization,
        ...(dir ? { dir } : {}),
      });
      await index.upsert([{ tenantId: "t", id: "x", vector }]);
      expect(index.rerankCopyBytes() > 0).toBe(copied);
      await index.close();
    }
    // Asked for, an f16 graph keeps one too; with l2 the copy decodes through its table.
    const data = gaussianMixture(31, 70, 16, 70);
    for (const metric of ["l2", "ip"] as VectorMetric[]) {
      const index = await openUsearchVectorIndex({
        dimensions: 16,
        metric,
        quantization: "f16",
        dir: tempDir(),
        rerankCopy: "f16",
      });
      await index.upsert(data.slice(0, 60).map((vector, i) => ({ tenantId: "t", id: `x${i}`, vector })));
      expect(index.rerankCopyBytes()).toBeGreaterThan(0);
      // The graph is approximate (its first 16 candidates are re-ranked), so the nearest is
      // required for most queries, not all; every distance reported must be the exact one.
      let nearestFound = 0;
      const queries = data.slice(60);
      for (const vector of queries) {
        const exact = await index.query({ tenantId: "t", vector, k: 60, mode: "accurate" });
        const exactOf = new Map(exact.map((h) => [h.id, h.distance]));
        const hits = await index.query({ tenantId: "t", vector, k: 5, mode: "fast" });
        if (hits[0]?.id === exact[0]?.id) nearestFound++;
        for (let i = 1; i < hits.length; i++)
          expect((hits[i] as { distance: number }).distance).toBeGreaterThanOrEqual(
            (hits[i - 1] as { distance: number }).distance,
          );
        for (const h of hits)
          expect(Math.abs(h.distance - (exactOf.get(h.id) as number))).toBeLessThan(
            1e-3 * Math.max(1, Math.abs(h.distance)),
          );
      }
      expect(nearestFound).toBeGreaterThanOrEqual(queries.length - 2);
      await index.close();
    }
  });

  it("encodes f16 and bf16 as IEEE half and the rounded upper half of the f32", () => {
    expect(toF16(1)).toBe(0x3c00);
    expect(toF16(-2)).toBe(0xc000);
    expect(toF16(65504)).toBe(0x7bff);
    expect(toF16(1e6)).toBe(0x7c00);
    expect(toF16(2 ** -24)).toBe(1);
    expect(toF16(2 ** -26)).toBe(0);
    expect(toF16(1 + 2 ** -11)).toBe(0x3c00); // a tie rounds to even
    expect(toF16(1 + 3 * 2 ** -11)).toBe(0x3c02);
    const values = f16Values();
    for (const x of [0.036, -0.5, 1 / 3, 2 ** -20, 1000.5])
      expect(Math.abs((values[toF16(x)] as number) - x)).toBeLessThanOrEqual(Math.abs(x) * 2 ** -11);
    expect(toBf16(1)).toBe(0x3f80);
    expect(toBf16(-1)).toBe(0xbf80);
    expect(toBf16(1 + 2 ** -8)).toBe(0x3f80); // a tie rounds to even
    expect(toBf16(1 + 3 * 2 ** -8)).toBe(0x3f82);
    for (const [format, shift] of [
      ["f16", false],
      ["f16", true],
      ["bf16", false],
    ] as const) {
      const copy = new VectorCopy(format, 4, { shift });
      // 1e-5 is an f16 subnormal: the copy keeps it as zero.
      copy.put(5, Float32Array.from([0.25, -1, 0.1, 1e-5]));
      const matrix = new Float32Array(8);
      const words = new Uint32Array(matrix.buffer);
      expect(copy.decodeInto(5, matrix, words, 1)).toBe(true);
      const decoded = Array.from(matrix.subarray(4));
      expect(decoded[0]).toBe(0.25);
      expect(decoded[1]).toBe(-1);
      expect(Math.abs((decoded[2] as number) - 0.1)).toBeLessThan(format === "f16" ? 1e-4 : 1e-3);
      expect(Math.abs((decoded[3] as number) - 1e-5)).toBeLessThan(format === "f16" ? 1.1e-5 : 1e-7);
      copy.delete(5);
      expect(copy.decodeInto(5, matrix, words, 0)).toBe(false);
      expect(copy.size).toBe(0);
    }
  });

  it("decodes f16 with integer operations to exactly the values the table gives", () => {
    const dims = 2048;
    const vector = new Float32Array(dims);
    let seed = 7;
    for (let i = 0; i < dims; i++) {
      seed = (seed * 1103515245 + 12345) >>> 0;
      // Magnitudes from 2^-16 to 1, both signs: normal halves, subnormals (kept as zero), ±1.
      vector[i] = (seed & 1 ? -1 : 1) * 2 ** (-16 * ((seed >>> 8) / 2 ** 24));
    }
    vector[0] = 0;
    vector[1] = -0;
    vector[2] = 1;
    const decode = (shift: boolean) => {
      const copy = new VectorCopy("f16", dims, { shift });
      copy.put(1, vector);
      const matrix = new Float32Array(dims);
      copy.decodeInto(1, matrix, new Uint32Array(matrix.buffer), 0);
      return matrix;
    };
    const byShift = decode(true);
    const byTable = decode(false);
    for (let i = 0; i < dims; i++) expect(byShift[i], `component ${i}`).toBe(byTable[i]);
    // Every decoded component is zero or a normal f32 near the original (no scaled-down values).
    for (let i = 3; i < dims; i++)
      if (byShift[i] !== 0)
        expect(Math.abs((byShift[i] as number) - (vector[i] as number))).toBeLessThanOrEqual(
          Math.abs(vector[i] as number) * 2 ** -11,
        );
  });

  it("re-ranks every candidate of an i8 graph and the first max(2k, 16) of an f16 graph", () => {
    expect(rerankWidth("i8", 10, 64)).toBe(64);
    expect(rerankWidth("f16", 10, 64)).toBe(20);
    expect(rerankWidth("f16", 1, 64)).toBe(16);
    expect(rerankWidth("f16", 10, 12)).toBe(12);
  });
});

describe("usearch definition", () => {
  it("keeps each index in a directory of its own, and gives i8 to cosine indexes only (f16 to the others)", async () => {
    const dir = tempDir();
    const indexes = await usearchVectorIndex.create(
      usearchVectorIndex.parseOptions({ dir, quantization: "i8" }),
    );
    const own = (await indexes.open({ name: "memories", dimensions: 4, metric: "l2" })) as UsearchVectorIndex;
    const collection = (await indexes.open({
      name: "docs",
      tenantId: "acme",
      dimensions: 4,
      metric: "cosine",
    })) as UsearchVectorIndex;
    for (const index of [own, collection])
      await index.upsert([{ tenantId: "acme", id: "a", vector: [1, 0, 0, 0] }]);
    // i8 re-ranks from a 16-bit copy of the vectors; f16 keeps none.
    expect(collection.rerankCopyBytes()).toBeGreaterThan(0);
    expect(own.rerankCopyBytes()).toBe(0);
    await own.close();
    await collection.close();
    expect(existsSync(join(dir, "memories", "items"))).toBe(true);
    expect(existsSync(join(dir, "tenants", "acme", "docs", "items"))).toBe(true);
    await expect(indexes.open({ name: "Not/A name", dimensions: 4, metric: "l2" })).rejects.toSatisfy(
      (e: unknown) => isKuraError(e) && e.code === "INVALID_ARGUMENT",
    );
    await indexes.close();
  });
});
