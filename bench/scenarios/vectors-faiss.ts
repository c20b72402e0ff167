/**
 * The FAISS rows of the vectors scenario: Kura's faiss adapter (IVF-PQ and IVF-Flat, in its own
 * directory: the inverted-file index in memory, items and f32 vectors in LMDB, candidates re-ranked
 * by exact f32 distance) on the same data, queries and truth as usearch and LanceDB, beside Kura's
 * usearch f32 adapter. Build time includes the training, which runs in the upsert that reaches
 * `train_size`; index memory is the size of the file the adapter saves (the binding exposes no
 * memory accounting).
 *
 * Parameters: `--quick` (5,000 × 128): 64 lists, PQ32, trained on all 5,000 vectors (about 2 s of
 * training on one thread; the whole FAISS part stays well under a minute). Full size
 * (100,000 × 768): 1,024 lists, PQ64 (seed 004 names IVF4096,PQ64; 4,096 lists want 160,000
 * training points, more than the data), trained on the first 40,000. nprobe per mode as the
 * rows say. The faiss-node module comes from `KURA_VECTOR__MODULE_PATH` or the test-server cache
 * (scripts/test-servers/install-faiss.sh); without it the rows are skipped. OpenMP runs one
 * thread (`OMP_NUM_THREADS=1` unless set): on a shared machine more threads trained several times
 * slower.
 */
import { existsSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { loadFaiss } from "../../src/adapters/vector/faiss/binding.js";
import { type FaissKind, openFaissVectorIndex } from "../../src/adapters/vector/faiss/index.js";
import type { VectorMode } from "../../src/ports/vector-index.js";
import { type BenchContext, ratioOf } from "../lib.js";
import { row, type VectorDataset } from "../vector-data.js";

/** What the vectors scenario measured for one index, as the FAISS rows compare with it. */
export interface ComparedRun {
  build: number;
  bytes: number;
  modes: Record<VectorMode, { p50: number; p95: number; recall: number; cpu: number }>;
}

type MeasureModes = (
  search: (mode: VectorMode) => (q: number) => Promise<number[]>,
) => Promise<ComparedRun["modes"]>;

const MODES: VectorMode[] = ["fast", "balanced", "accurate"];
const K = 10;

function modulePath(): string | undefined {
  const configured = process.env.KURA_VECTOR__MODULE_PATH;
  if (configured) return configured;
  const cached = join(
    process.env.KURA_TEST_SERVER_CACHE ?? join(homedir(), ".cache/kura-test-servers"),
    "faiss-node",
  );
  return existsSync(join(cached, "build/Release/faiss-node.node")) ? cached : undefined;
}

export async function faissRows(
  ctx: BenchContext,
  data: VectorDataset,
  measureModes: MeasureModes,
  batch: number,
  usearch: ComparedRun | undefined,
  lancedb: ComparedRun | undefined,
): Promise<void> {
  const path = modulePath();
  if (!path) {
    ctx.log("FAISS: faiss-node not built (scripts/test-servers/install-faiss.sh), skipped");
    return;
  }
  process.env.OMP_NUM_THREADS ??= "1";
  const faiss = loadFaiss(path);
  const params = ctx.quick
    ? { nlist: 64, m: 32, trainSize: 5_000, nprobeFast: 4, nprobeBalanced: 16 }
    : { nlist: 1024, m: 64, trainSize: 40_000, nprobeFast: 16, nprobeBalanced: 64 };
  const { dimensions, count } = data;
  for (const kind of ["ivf_pq", "ivf_flat"] as FaissKind[]) {
    const dir = join(ctx.dir, `faiss-${kind}`);
    const rssBefore = process.memoryUsage().rss;
    const index = await openFaissVectorIndex({ dimensions, metric: "cosine", faiss, kind, dir, ...params });
    const items = Array.from({ length: count }, (_, i) => ({
      tenantId: "bench",
      id: String(i),
      vector: row(data.vectors, dimensions, i),
    }));
    const started = performance.now();
    for (let i = 0; i < count; i += batch) await index.upsert(items.slice(i, i + batch));
    const build = (performance.now() - started) / 1000;
    const bytes = index.indexBytes();
    const modes = await measureModes((mode) => async (q) => {
      const hits = await index.query({
        tenantId: "bench",
        vector: row(data.queries, dimensions, q),
        k: K,
        mode,
      });
      return hits.map((h) => Number(h.id));
    });
    const rssBytes = process.memoryUsage().rss - rssBefore;
    await index.drop();
    const label = kind === "ivf_pq" ? `IVF${params.nlist},PQ${params.m}` : `IVF${params.nlist},Flat`;
    ctx.log(
      `Kura faiss ${label}: build ${build.toFixed(1)} s (trained on ${params.trainSize.toLocaleString("en-US")}), ` +
        `index file ${(bytes / 1e6).toFixed(1)} MB, process RSS grew ${(rssBytes / 1e6).toFixed(0)} MB`,
    );
    for (const mode of MODES) {
      const m = modes[mode];
      const how =
        mode === "accurate"
          ? "exact over LMDB"
          : `nprobe ${mode === "fast" ? params.nprobeFast : params.nprobeBalanced}, re-ranked by f32`;
      ctx.log(
        `  ${mode} (${how}): p50 ${m.p50.toFixed(3)} ms, p95 ${m.p95.toFixed(3)} ms, recall@10 ${m.recall.toFixed(4)}`,
      );
    }
    const scenario = `vectors faiss ${kind}`;
    const against = (
      metric: string,
      value: number,
      unit: string,
      base: number | undefined,
      name: string,
      higher = false,
    ) =>
      ctx.record({
        scenario,
        metric,
        value,
        unit,
        baseline: base === undefined ? null : name,
        baseline_value: base ?? null,
        ratio: base === undefined ? null : ratioOf(value, base, higher),
      });
    against("build (training included)", build, "s", usearch?.build, "Kura usearch f32");
    against(
      "index memory (file as saved)",
      bytes / 1e6,
      "MB",
      usearch && usearch.bytes / 1e6,
      "Kura usearch f32 graph",
    );
    against("process RSS growth (build and queries)", rssBytes / 1e6, "MB", undefined, "");
    for (const mode of MODES) {
      const m = modes[mode];
      against(`${mode} p95`, m.p95, "ms", usearch?.modes[mode].p95, "Kura usearch f32");
      against(`${mode} recall@10`, m.recall, "", usearch?.modes[mode].recall, "Kura usearch f32", true);
      if (lancedb) {
        against(`${mode} p95 vs LanceDB`, m.p95, "ms", lancedb.modes[mode].p95, "LanceDB");
        against(`${mode} recall@10 vs LanceDB`, m.recall, "", lancedb.modes[mode].recall, "LanceDB", true);
      }
    }
  }
}
