/**
 * The behaviour suite for every VectorIndex adapter (VEC-1…3): distance conventions per metric,
 * dimension checks, idempotent upserts, removal, tenant scoping, filters that still return k hits,
 * recall@10 of every mode measured against the exact reference on a fixed-seed Gaussian mixture,
 * and (for persistent adapters) save and reopen without rebuild.
 */
import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { openExactVectorIndex } from "../../src/adapters/vector/exact/index.js";
import { isKuraError } from "../../src/core/errors.js";
import type {
  VectorIndex,
  VectorIndexes,
  VectorIndexOptions,
  VectorItem,
  VectorMode,
} from "../../src/ports/vector-index.js";

export interface VectorIndexHarness {
  /** A fresh, empty index. */
  open(options: VectorIndexOptions): Promise<VectorIndex>;
  /** For persistent adapters: open an index, and reopen the same one after `close`. */
  persistent?: () => {
    open(options: VectorIndexOptions): Promise<VectorIndex>;
  };
  /**
   * The adapter's indexes of one configuration (`VectorIndexes`), persistent where the adapter
   * is, for `scan`; `persistent` says whether items outlive their instance.
   */
  plane?: () => Promise<{ indexes: VectorIndexes; persistent: boolean }>;
  /** The recall@10 floor of `fast` and `balanced` (1 for exact adapters). */
  recallFloor: number;
  /** Tolerance of reported distances (quantization). */
  distanceTolerance?: number;
}

const tenant = () => `t${randomBytes(5).toString("hex")}`;

/** mulberry32: a small seeded PRNG, so every run sees the same data. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `n` points in `dims` dimensions from a mixture of `clusters` Gaussians (fixed seed). */
export function gaussianMixture(seed: number, n: number, dims: number, clusters: number): Float32Array[] {
  const random = rng(seed);
  const gauss = () => {
    const u = Math.max(random(), 1e-12);
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
  };
  const centers = Array.from({ length: clusters }, () =>
    Float32Array.from({ length: dims }, () => gauss() * 4),
  );
  return Array.from({ length: n }, () => {
    const c = centers[Math.floor(random() * clusters)] as Float32Array;
    return Float32Array.from({ length: dims }, (_, d) => (c[d] as number) + gauss());
  });
}

const isCode = (code: string) => (e: unknown) =>
  isKuraError(e) && e.code === code && e.kind === "InvalidArgument";

export function vectorIndexConformance(name: string, harness: VectorIndexHarness): void {
  const tol = harness.distanceTolerance ?? 1e-4;

  describe(`VectorIndex conformance: ${name}`, () => {
    it("follows the distance convention of each metric", async () => {
      for (const metric of ["l2", "cosine", "ip"] as const) {
        const index = await harness.open({ dimensions: 3, metric });
        const t = tenant();
        await index.upsert([
          { tenantId: t, id: "a", vector: [1, 0, 0] },
          { tenantId: t, id: "b", vector: [0, 1, 0] },
          { tenantId: t, id: "c", vector: [0.6, 0.8, 0] },
        ]);
        const hits = await index.query({ tenantId: t, vector: [1, 0, 0], k: 3, mode: "accurate" });
        expect(hits.map((h) => h.id)).toEqual(["a", "c", "b"]);
        const expected =
          metric === "l2" ? [0, 0.16 + 0.64, 2] : metric === "cosine" ? [0, 0.4, 1] : [0, 0.4, 1];
        for (const [i, h] of hits.entries())
          expect(Math.abs(h.distance - (expected[i] as number))).toBeLessThan(tol * 10);
        await index.close();
      }
    });

    it("rejects wrong dimensions and non-finite values before writing anything", async () => {
      const index = await harness.open({ dimensions: 4, metric: "l2" });
      const t = tenant();
      await expect(
        index.upsert([
          { tenantId: t, id: "ok", vector: [1, 2, 3, 4] },
          { tenantId: t, id: "bad", vector: [1, 2, 3] },
        ]),
      ).rejects.toSatisfy(isCode("VECTOR_DIMENSIONS_MISMATCH"));
      await expect(
        index.upsert([{ tenantId: t, id: "nan", vector: [1, Number.NaN, 3, 4] }]),
      ).rejects.toSatisfy(isCode("VECTOR_INVALID"));
      expect(await index.count(t)).toBe(0);
      await expect(index.query({ tenantId: t, vector: [1, 2], k: 1 })).rejects.toSatisfy(
        isCode("VECTOR_DIMENSIONS_MISMATCH"),
      );
      await expect(index.query({ tenantId: t, vector: [1, 2, 3, 4], k: 0 })).rejects.toSatisfy(
        isCode("INVALID_ARGUMENT"),
      );
      await index.close();
    });

    it("upsert replaces an item wholesale and is idempotent", async () => {
      const index = await harness.open({ dimensions: 2, metric: "l2" });
      const t = tenant();
      const item: VectorItem = { tenantId: t, id: "x", vector: [1, 1], category: "old" };
      await index.upsert([item]);
      await index.upsert([item]);
      expect(await index.count(t)).toBe(1);
      await index.upsert([{ tenantId: t, id: "x", vector: [5, 5], category: "new" }]);
      await index.upsert([{ tenantId: t, id: "y", vector: [1, 1] }]);
      expect(await index.count(t)).toBe(2);
      const hits = await index.query({ tenantId: t, vector: [5, 5], k: 2 });
      expect(hits[0]).toMatchObject({ id: "x", category: "new" });
      expect(await index.query({ tenantId: t, vector: [5, 5], k: 2, filter: { category: "old" } })).toEqual(
        [],
      );
      await index.close();
    });

    it("respects deletes; removing an absent id is a no-op", async () => {
      const index = await harness.open({ dimensions: 2, metric: "l2" });
      const t = tenant();
      await index.upsert(
        Array.from({ length: 20 }, (_, i) => ({ tenantId: t, id: `v${i}`, vector: [i, i] })),
      );
      await index.remove(t, ["v0", "v1", "absent"]);
      expect(await index.count(t)).toBe(18);
      const hits = await index.query({ tenantId: t, vector: [0, 0], k: 5 });
      expect(hits.map((h) => h.id)).toEqual(["v2", "v3", "v4", "v5", "v6"]);
      await index.close();
    });

    it("existing names the ids a tenant holds, after upserts and removals", async () => {
      const index = await harness.open({ dimensions: 3, metric: "l2" });
      const [t, u] = [tenant(), tenant()];
      await index.upsert([
        { tenantId: t, id: "a", vector: [1, 0, 0] },
        { tenantId: t, id: "b", vector: [0, 1, 0] },
        { tenantId: u, id: "a", vector: [0, 0, 1] },
      ]);
      expect(await index.existing(t, ["a", "b", "c"])).toEqual(new Set(["a", "b"]));
      await index.remove(t, ["a"]);
      expect(await index.existing(t, ["a", "b"])).toEqual(new Set(["b"]));
      expect(await index.existing(u, ["a", "b"])).toEqual(new Set(["a"]));
      expect(await index.existing(tenant(), ["a"])).toEqual(new Set());
      expect(await index.existing(t, [])).toEqual(new Set());
      await index.close();
    });

    it("scopes every query to its tenant", async () => {
      const index = await harness.open({ dimensions: 2, metric: "l2" });
      const a = tenant();
      const b = tenant();
      await index.upsert([
        ...Array.from({ length: 50 }, (_, i) => ({ tenantId: a, id: `s${i}`, vector: [i, 0] })),
        ...Array.from({ length: 50 }, (_, i) => ({ tenantId: b, id: `s${i}`, vector: [i + 0.5, 0] })),
      ]);
      expect(await index.count(a)).toBe(50);
      expect(await index.count(b)).toBe(50);
      const hits = await index.query({ tenantId: a, vector: [0.5, 0], k: 10 });
      expect(hits).toHaveLength(10);
      for (const h of hits) expect(Number(h.id.slice(1)) === Math.round(Number(h.id.slice(1)))).toBe(true);
      // Distances come from tenant a's vectors (integers on the axis), never b's (halves).
      for (const h of hits) expect(Math.abs((Math.sqrt(h.distance) % 1) - 0.5)).toBeLessThan(0.01);
      await index.remove(a, ["s0"]);
      expect(await index.count(b)).toBe(50);
      expect(await index.query({ tenantId: tenant(), vector: [0, 0], k: 3 })).toEqual([]);
      await index.close();
    });

    it("still returns k hits for a selective filter far from the query", async () => {
      const index = await harness.open({ dimensions: 8, metric: "l2" });
      const t = tenant();
      const data = gaussianMixture(7, 3000, 8, 4);
      await index.upsert(
        data.map((vector, i) => ({
          tenantId: t,
          id: `p${i}`,
          vector,
          userId: `u${i % 3}`,
          chatId: `c${i % 5}`,
          category: i % 300 === 299 ? "rare" : "common",
        })),
      );
      const far = new Float32Array(8).fill(100);
      for (const mode of ["fast", "balanced", "accurate"] as VectorMode[]) {
        const rare = await index.query({
          tenantId: t,
          vector: far.map(() => 0),
          k: 10,
          filter: { category: "rare" },
          mode,
        });
        expect(rare).toHaveLength(10);
        for (const h of rare) expect(h.category).toBe("rare");
      }
      const both = await index.query({
        tenantId: t,
        vector: far,
        k: 7,
        filter: { userId: "u1", chatId: "c2" },
      });
      expect(both).toHaveLength(7);
      for (const h of both) expect(h).toMatchObject({ userId: "u1", chatId: "c2" });
      await index.close();
    });

    it("measures recall@10 of each mode against exact on a 5,000 × 64 Gaussian mixture", async () => {
      const dims = 64;
      const all = gaussianMixture(2026, 5100, dims, 20);
      const data = all.slice(0, 5000);
      const queries = all.slice(5000);
      const t = tenant();
      const items = data.map((vector, i) => ({ tenantId: t, id: `g${i}`, vector }));
      const truth = openExactVectorIndex({ dimensions: dims, metric: "l2" });
      await truth.upsert(items);
      const index = await harness.open({ dimensions: dims, metric: "l2" });
      await index.upsert(items);
      const recall: Record<string, number> = {};
      for (const mode of ["fast", "balanced", "accurate"] as VectorMode[]) {
        let found = 0;
        for (const q of queries) {
          const want = new Set((await truth.query({ tenantId: t, vector: q, k: 10 })).map((h) => h.id));
          const got = await index.query({ tenantId: t, vector: q, k: 10, mode });
          expect(got).toHaveLength(10);
          for (const h of got) if (want.has(h.id)) found++;
        }
        recall[mode] = found / (queries.length * 10);
      }
      console.info(`${name} recall@10 (5,000 × 64, 100 queries): ${JSON.stringify(recall)}`);
      expect(recall.fast).toBeGreaterThanOrEqual(harness.recallFloor);
      expect(recall.balanced).toBeGreaterThanOrEqual(harness.recallFloor);
      expect(recall.balanced).toBeGreaterThanOrEqual((recall.fast as number) - 0.01);
      expect(recall.accurate).toBeGreaterThanOrEqual(0.99);
      await index.close();
    }, 60_000);

    it("a closed index refuses every call with CLOSED; closing twice is fine", async () => {
      const index = await harness.open({ dimensions: 2, metric: "l2" });
      const t = `t-${randomBytes(4).toString("hex")}`;
      await index.upsert([{ tenantId: t, id: "a", vector: [1, 0] }]);
      await index.close();
      await index.close();
      for (const call of [
        () => index.upsert([{ tenantId: t, id: "b", vector: [0, 1] }]),
        () => index.query({ tenantId: t, vector: [1, 0], k: 1 }),
        () => index.count(t),
        () => index.remove(t, ["a"]),
      ])
        await expect(call()).rejects.toSatisfy(
          (e: unknown) => isKuraError(e) && e.code === "CLOSED" && e.kind === "Unavailable" && !e.retryable,
        );
    });

    it.skipIf(!harness.plane)(
      "scan pages through the items of record, each once, beside a live instance; nothing for an index never made",
      async () => {
        const plane = await harness.plane?.();
        if (!plane) return;
        const { indexes } = plane;
        const place = {
          name: `scan${randomBytes(3).toString("hex")}`,
          tenantId: "owner",
          dimensions: 4,
          metric: "l2" as const,
        };
        const vectors = gaussianMixture(9, 12, 4, 2);
        const [a, b] = [tenant(), tenant()];
        const index = await indexes.open(place);
        await index.upsert(
          vectors.map((vector, i) => ({
            tenantId: i % 3 === 0 ? b : a,
            id: `v${i}`,
            vector,
            ...(i % 2 === 0 ? { chatId: `c${i}` } : {}),
            ...(i === 5 ? { userId: "u5", category: "k" } : {}),
          })),
        );
        await index.upsert([{ tenantId: a, id: "v1", vector: [1, 2, 3, 4] }]);
        await index.remove(a, ["v2"]);
        const scanAll = async (limit: number) => {
          const out: Array<VectorItem & { vector: Float32Array }> = [];
          let after: string | undefined;
          for (let pages = 0; pages < 100; pages++) {
            const page = await indexes.scan(place, { limit, ...(after === undefined ? {} : { after }) });
            expect(page.items.length).toBeLessThanOrEqual(limit);
            out.push(...page.items);
            if (page.next === undefined) return out;
            after = page.next;
          }
          throw new Error("scan did not end");
        };
        const expected = new Map<
          string,
          { tenantId: string; vector: number[]; filter: Record<string, string> }
        >();
        vectors.forEach((vector, i) => {
          if (i === 2) return;
          expected.set(`v${i}`, {
            tenantId: i % 3 === 0 ? b : a,
            vector: i === 1 ? [1, 2, 3, 4] : Array.from(vector),
            filter: {
              ...(i % 2 === 0 && i !== 1 ? { chatId: `c${i}` } : {}),
              ...(i === 5 ? { userId: "u5", category: "k" } : {}),
            },
          });
        });
        const check = (items: Array<VectorItem & { vector: Float32Array }>) => {
          if (!plane.persistent) {
            expect(items).toEqual([]);
            return;
          }
          expect(items.map((x) => x.id).sort()).toEqual([...expected.keys()].sort());
          for (const item of items) {
            const want = expected.get(item.id);
            expect(item.tenantId).toBe(want?.tenantId);
            const { tenantId: _t, id: _i, vector, ...filter } = item;
            expect(filter).toEqual(want?.filter);
            expect(Array.from(vector).map((x) => Math.round(x * 1e3) / 1e3)).toEqual(
              want?.vector.map((x) => Math.round(x * 1e3) / 1e3),
            );
          }
        };
        // Beside the live instance, then after it closed; pages of 1, 5 and more than all.
        check(await scanAll(1));
        expect(
          (await index.query({ tenantId: a, vector: [1, 2, 3, 4], k: 1, mode: "accurate" }))[0]?.id,
        ).toBe("v1");
        await index.upsert([{ tenantId: a, id: "v1", vector: [1, 2, 3, 4] }]);
        await index.close();
        check(await scanAll(5));
        check(await scanAll(1000));
        expect(await indexes.scan({ ...place, name: "never-made" }, { limit: 10 })).toEqual({ items: [] });
        await expect(indexes.scan(place, { limit: 10, after: '["x"' })).rejects.toSatisfy(
          (e: unknown) => isKuraError(e) && e.code === "CURSOR_INVALID",
        );
        await expect(indexes.scan(place, { limit: 0 })).rejects.toSatisfy(
          (e: unknown) => isKuraError(e) && e.code === "INVALID_ARGUMENT",
        );
        await indexes.close();
      },
    );

    it("drop deletes the index: reopened, it is empty", async () => {
      const options: VectorIndexOptions = { dimensions: 8, metric: "l2" };
      const store = harness.persistent?.();
      const open = store ? store.open : harness.open;
      const t = tenant();
      const a = await open(options);
      await a.upsert(gaussianMixture(5, 20, 8, 2).map((vector, i) => ({ tenantId: t, id: `d${i}`, vector })));
      expect(await a.count(t)).toBe(20);
      await a.drop();
      const b = await open(options);
      expect(await b.count(t)).toBe(0);
      expect(await b.query({ tenantId: t, vector: new Float32Array(8), k: 5 })).toEqual([]);
      await b.close();
    });

    it.skipIf(!harness.persistent)("saves and reopens without rebuild: queries answer the same", async () => {
      const store = harness.persistent?.();
      if (!store) return;
      const options: VectorIndexOptions = { dimensions: 16, metric: "cosine" };
      const t = tenant();
      const data = gaussianMixture(11, 1000, 16, 5);
      const a = await store.open(options);
      await a.upsert(data.map((vector, i) => ({ tenantId: t, id: `r${i}`, vector, userId: `u${i % 2}` })));
      await a.remove(t, ["r0"]);
      const queries = gaussianMixture(12, 10, 16, 5);
      const before = await Promise.all(queries.map((q) => a.query({ tenantId: t, vector: q, k: 10 })));
      await a.close();
      const b = await store.open(options);
      expect(await b.count(t)).toBe(999);
      const after = await Promise.all(queries.map((q) => b.query({ tenantId: t, vector: q, k: 10 })));
      expect(after).toEqual(before);
      const filtered = await b.query({
        tenantId: t,
        vector: data[0] as Float32Array,
        k: 5,
        filter: { userId: "u1" },
      });
      expect(filtered.every((h) => h.userId === "u1" && h.id !== "r0")).toBe(true);
      await b.upsert([{ tenantId: t, id: "new", vector: data[0] as Float32Array }]);
      expect((await b.query({ tenantId: t, vector: data[0] as Float32Array, k: 1 }))[0]?.id).toBe("new");
      await b.close();
    });
  });
}
