/**
 * Benchmark harness: runs scenarios, prints a table and writes `bench-results.json` in the
 * SPEC §4c shape: `{scenario, metric, value, unit, baseline, baseline_value, ratio}`, where
 * ratio = Kura ÷ baseline for throughputs (above 1 = Kura faster) and baseline ÷ Kura for
 * latencies (so above 1 always means Kura is better).
 */

export interface BenchResult {
  scenario: string;
  metric: string;
  value: number;
  unit: string;
  baseline: string | null;
  baseline_value: number | null;
  ratio: number | null;
}

export interface BenchContext {
  quick: boolean;
  /** The command line's arguments, for scenario options such as `--quantizations=i8`. */
  args: readonly string[];
  /** Scratch directory for this run (removed afterwards). */
  dir: string;
  record(result: Omit<BenchResult, "ratio"> & { ratio?: number | null }): void;
  log(line: string): void;
}

export interface Scenario {
  name: string;
  run(ctx: BenchContext): Promise<void>;
}

/**
 * Run `op(i)` `total` times with `concurrency` workers; returns operations per second.
 * A short warm-up (5 % of the ops, at least 10) runs first and is not counted.
 */
export async function throughput(
  total: number,
  concurrency: number,
  op: (i: number) => Promise<unknown>,
  warmup = Math.max(10, Math.floor(total / 20)),
): Promise<number> {
  let next = 0;
  const worker = async (limit: number, offset: number) => {
    for (;;) {
      const i = next++;
      if (i >= limit) return;
      await op(offset + i);
    }
  };
  await Promise.all(
    Array.from({ length: Math.min(concurrency, warmup) }, () => worker(warmup, 1_000_000_000)),
  );
  next = 0;
  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, () => worker(total, 0)));
  return total / ((performance.now() - started) / 1000);
}

/**
 * Latency percentiles (ms) of `op` run `total` times one after another, after a warm-up of
 * 10 % of the runs (at least 20) that is not measured: steady-state latency, not JIT warm-up.
 */
export async function latencies(
  total: number,
  op: (i: number) => Promise<unknown>,
): Promise<{ p50: number; p99: number; p95: number }> {
  for (let i = 0; i < Math.max(20, Math.floor(total / 10)); i++) await op(i);
  const samples: number[] = [];
  for (let i = 0; i < total; i++) {
    const t = performance.now();
    await op(i);
    samples.push(performance.now() - t);
  }
  samples.sort((a, b) => a - b);
  const at = (q: number) => samples[Math.min(samples.length - 1, Math.floor(q * samples.length))] as number;
  return { p50: at(0.5), p95: at(0.95), p99: at(0.99) };
}

export function ratioOf(value: number, baseline: number, higherIsBetter = true): number {
  if (!baseline || !value) return 0;
  return higherIsBetter ? value / baseline : baseline / value;
}

export function formatTable(results: BenchResult[]): string {
  const rows = results.map((r) => [
    r.scenario,
    r.metric,
    `${fmt(r.value)} ${r.unit}`,
    r.baseline ? `${r.baseline}: ${fmt(r.baseline_value ?? 0)}` : "",
    r.ratio === null ? "" : `${r.ratio.toFixed(2)}×`,
  ]);
  const header = ["scenario", "metric", "kura", "baseline", "ratio"];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i] as number)).join("  ");
  return [line(header), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n");
}

function fmt(n: number): string {
  if (n >= 100) return Math.round(n).toLocaleString("en-US");
  return n.toPrecision(3);
}
