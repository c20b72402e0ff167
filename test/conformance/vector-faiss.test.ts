/**
 * The vector conformance suite on the faiss adapter, IVF-Flat and IVF-PQ, trained early enough
 * that the recall, filter and persistence tests run on a trained index; then what is its own:
 * the exact answers before training, the index file loaded as saved, rebuilt from the store of
 * record after a crash or when missing, and removal by masking. Needs faiss-node built by
 * scripts/test-servers/install-faiss.sh (skipped outside CI without it).
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  faissVectorIndex as definition,
  type FaissVectorIndex,
} from "../../src/adapters/vector/faiss/index.js";
import type { VectorIndexOptions } from "../../src/ports/vector-index.js";
import { backendAvailable } from "../support/backends.js";
import { gaussianMixture, vectorIndexConformance } from "./vector-index.suite.js";

// libgomp reads this when faiss-node loads: on a shared machine one thread trains several
// times faster than threads waiting for cores.
process.env.OMP_NUM_THREADS ??= "1";
export const FAISS_MODULE = join(
  process.env.KURA_TEST_SERVER_CACHE ?? join(homedir(), ".cache/kura-test-servers"),
  "faiss-node",
);
const built = existsSync(join(FAISS_MODULE, "build/Release/faiss-node.node"));
const run = backendAvailable(
  "faiss",
  built ? undefined : `faiss-node is not built in ${FAISS_MODULE} (scripts/test-servers/install-faiss.sh)`,
);

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), "kura-faiss-"));
  dirs.push(dir);
  return dir;
};
let n = 0;
const opener =
  (options: Record<string, unknown>, name?: string) =>
  async ({ dimensions, metric }: VectorIndexOptions) =>
    (await definition.create(definition.parseOptions({ module_path: FAISS_MODULE, ...options }))).open({
      name: name ?? `i${++n}`,
      dimensions,
      metric,
    });

if (run) {
  for (const index of ["ivf_flat", "ivf_pq"]) {
    // 32 lists trained on the first 2,000 vectors: the 3,000- and 5,000-item tests run trained.
    const options = { index, nlist: 32, m: 16, train_size: 2000, nprobe_fast: 4, nprobe_balanced: 12 };
    vectorIndexConformance(`faiss ${index}`, {
      open: opener(options),
      persistent: () => {
        const dir = tempDir();
        // Trained at 500 of the 1,000 items the reopening test writes.
        return { open: opener({ ...options, nlist: 16, train_size: 500, dir }, "reopened") };
      },
      plane: async () => ({
        indexes: await definition.create(
          definition.parseOptions({ module_path: FAISS_MODULE, ...options, dir: tempDir() }),
        ),
        persistent: true,
      }),
      recallFloor: 0.9,
    });
  }

  describe("faiss adapter", () => {
    const dims = 16;
    const data = gaussianMixture(21, 1200, dims, 8);
    const queries = gaussianMixture(22, 10, dims, 8);
    const items = data.map((vector, i) => ({ tenantId: "t", id: `x${i}`, vector }));
    const options = (dir: string, extra: Record<string, unknown> = {}) => ({
      index: "ivf_pq",
      nlist: 16,
      m: 8,
      train_size: 600,
      nprobe_fast: 2,
      nprobe_balanced: 4,
      dir,
      ...extra,
    });
    const open = async (dir: string, extra: Record<string, unknown> = {}) =>
      (await opener(options(dir, extra), "own")({ dimensions: dims, metric: "l2" })) as FaissVectorIndex;
    const answers = (index: FaissVectorIndex) =>
      Promise.all(queries.map((vector) => index.query({ tenantId: "t", vector, k: 10, mode: "fast" })));

    it("answers exactly until train_size items are held, then trains on the upsert that reaches it", async () => {
      const index = await open(tempDir());
      await index.upsert(items.slice(0, 599));
      expect(index.trained()).toBe(false);
      const exact = await index.query({
        tenantId: "t",
        vector: queries[0] as Float32Array,
        k: 10,
        mode: "accurate",
      });
      expect(
        await index.query({ tenantId: "t", vector: queries[0] as Float32Array, k: 10, mode: "fast" }),
      ).toEqual(exact);
      await index.upsert(items.slice(599, 600));
      expect(index.trained()).toBe(true);
      expect(index.indexBytes()).toBeGreaterThan(0);
      expect(await index.count("t")).toBe(600);
      await index.close();
    });

    it("reopens the saved index as it was; after a crash or without its file, rebuilds it from LMDB", async () => {
      const dir = tempDir();
      const a = await open(dir);
      await a.upsert(items);
      await a.remove("t", ["x1", "x2"]);
      const before = await answers(a);
      await a.close();
      const file = join(dir, "tenants", "owner", "own", "index.faiss");
      expect(existsSync(file)).toBe(false);
      // Kura's own index under its name: the file sits beside the items.
      expect(existsSync(join(dir, "own", "index.faiss"))).toBe(true);

      const b = await open(dir);
      expect(b.trained()).toBe(true);
      expect(await answers(b)).toEqual(before);
      // Written and not saved: the state says dirty, as after a crash.
      await b.upsert([{ tenantId: "t", id: "late", vector: queries[0] as Float32Array }]);
      await (b as unknown as { store: { close(): Promise<void> } }).store.close();

      const c = await open(dir);
      expect(c.trained()).toBe(true);
      expect(await c.count("t")).toBe(1199);
      expect(
        (await c.query({ tenantId: "t", vector: queries[0] as Float32Array, k: 1, mode: "fast" }))[0]?.id,
      ).toBe("late");
      await c.remove("t", ["late"]);
      expect(await answers(c)).toEqual(before);
      await c.close();

      rmSync(join(dir, "own", "index.faiss"));
      const d = await open(dir);
      expect(d.trained()).toBe(true);
      expect(await d.count("t")).toBe(1198);
      const hits = await answers(d);
      for (const list of hits) expect(list.map((h) => h.id)).not.toContain("x1");
      await d.close();
    });

    it("a file built with other lists is retrained, not trusted", async () => {
      const dir = tempDir();
      const a = await open(dir);
      await a.upsert(items);
      await a.close();
      const b = await open(dir, { nlist: 8 });
      expect(b.trained()).toBe(true);
      const hits = await b.query({ tenantId: "t", vector: data[5] as Float32Array, k: 1, mode: "fast" });
      expect(hits[0]).toMatchObject({ id: "x5", distance: 0 });
      await b.close();
    });

    it("removes by masking and rebuilds once masked labels outnumber live ones", async () => {
      const index = await open(tempDir());
      await index.upsert(items);
      const gone = items.slice(0, 1100).map((i) => i.id);
      await index.remove("t", gone);
      expect(await index.count("t")).toBe(100);
      const hits = await index.query({ tenantId: "t", vector: data[0] as Float32Array, k: 10, mode: "fast" });
      expect(hits).toHaveLength(10);
      for (const h of hits) expect(Number(h.id.slice(1))).toBeGreaterThanOrEqual(1100);
      await index.close();
    });

    it("refuses a training size below the lists, and a module that is not faiss-node", async () => {
      await expect(open(tempDir(), { train_size: 10 })).rejects.toMatchObject({ code: "CONFIG_INVALID" });
      const indexes = await definition.create(definition.parseOptions({ module_path: tempDir() }));
      await expect(indexes.open({ name: "x", dimensions: 4, metric: "l2" })).rejects.toMatchObject({
        code: "VECTOR_UNAVAILABLE",
        message: expect.stringContaining("install-faiss.sh"),
      });
    });
  });
}
