/**
 * `kura stats [--json] [--cold-after DAYS]` (CLI-1): what every tenant stores — its exact usage
 * (as `GET /v1/usage` reports it), the bodies and bytes per plane, its live messages by body
 * size, with seed 000's lines at 4 KB and 128 KB, and its bodies hot (written within the last
 * DAYS) and cold — through the library on the configuration. `kura stats --cost [--prices FILE]`:
 * the monthly cost of those bodies per provider and class and what archiving and packing would
 * save (`domains/cost.ts`).
 */
import { readFile } from "node:fs/promises";
import type { Command } from "commander";
import { stringify } from "yaml";
import { KuraError } from "../core/errors.js";
import { type CostReport, costReport, costSizeBounds } from "../domains/cost.js";
import { DEFAULT_PRICES, type Prices, parsePrices } from "../domains/cost-prices.js";
import {
  DEFAULT_COLD_AFTER_DAYS,
  type MessageSizes,
  type PlaneStats,
  type StorageStats,
} from "../domains/storage-stats.js";
import { type ConfigOption, withKura } from "./open-kura.js";
import { formatBytes, printJson, printTable } from "./output.js";

const PLANES = ["messages", "objects"];

function sizesJson(s: MessageSizes) {
  return { bounds: s.bounds, counts: s.counts, at_least_4kb: s.atLeast4Kb, at_least_128kb: s.atLeast128Kb };
}

const planesJson = (planes: Record<string, PlaneStats>) =>
  Object.fromEntries(
    [...new Set([...PLANES, ...Object.keys(planes)])].map((p) => [p, planes[p] ?? { bodies: 0, bytes: 0 }]),
  );

/** The `--json` document: snake_case, every plane named even when empty. */
export function statsJson(stats: StorageStats) {
  return {
    tenants: stats.tenants.map((t) => ({
      tenant_id: t.tenantId,
      status: t.status,
      tier: t.tier,
      usage: { bytes: t.usage.bytes, objects: t.usage.objects, messages: t.usage.messages },
      planes: planesJson(t.planes),
      message_sizes: sizesJson(t.messageSizes),
      age: t.age,
    })),
    totals: {
      usage: stats.totals.usage,
      planes: planesJson(stats.totals.planes),
      message_sizes: sizesJson(stats.totals.messageSizes),
      age: stats.totals.age,
    },
    cold_after_days: stats.coldAfterDays,
  };
}

const READS_NOTE =
  "reads are not measured: no GET or retrieval cost is included; add reads_per_month / 1000 × reads.get_per_1000 and GB read × reads.retrieval_per_gb";

/** The `--cost --json` document. */
export function costJson(stats: StorageStats, report: CostReport, source: string) {
  const sum = (c: { bodies: number[]; bytes: number[] }) => ({
    bodies: c.bodies.reduce((a, b) => a + b, 0),
    bytes: c.bytes.reduce((a, b) => a + b, 0),
  });
  const { hot, cold } = stats.totals.age;
  return {
    prices: { as_of: report.as_of, currency: report.currency, source, gb_bytes: report.gb_bytes },
    cold_after_days: stats.coldAfterDays,
    usage: {
      bodies: hot.bodies + cold.bodies,
      bytes: hot.bytes + cold.bytes,
      hot,
      cold,
      written_last_30_days: sum(stats.totals.profile.lastMonth),
    },
    estimates: report.estimates,
    savings: report.savings,
    notes: [
      READS_NOTE,
      "PUTs per month: the bodies written in the last 30 days that are still stored",
      "not included: minimum storage durations (early deletion), data transfer, volume tiers, discounts",
      `prices are list prices as of ${report.as_of}: check them and pass your own with --prices FILE`,
    ],
  };
}

const money = (x: number) => (Math.abs(x) >= 1 ? x.toFixed(2) : x.toPrecision(3));

function printCost(stats: StorageStats, report: CostReport, source: string): void {
  const { hot, cold } = stats.totals.age;
  process.stdout.write(
    `bodies: ${hot.bodies + cold.bodies} (${formatBytes(hot.bytes + cold.bytes)}); ` +
      `hot (last ${stats.coldAfterDays} days): ${hot.bodies} (${formatBytes(hot.bytes)}); ` +
      `cold: ${cold.bodies} (${formatBytes(cold.bytes)})\n` +
      `prices: ${source}, as of ${report.as_of}, ${report.currency} per month\n\n`,
  );
  printTable(
    ["PROVIDER", "CLASS", "REGION", "STORAGE", "PUTS", "REQUESTS", "TOTAL"],
    report.estimates.map((e) => [
      e.provider,
      e.class,
      e.region,
      money(e.storage_usd),
      String(e.requests.reduce((a, r) => a + r.count, 0)),
      money(e.requests_usd),
      money(e.total_usd),
    ]),
  );
  const a = report.savings.archive;
  process.stdout.write(
    `\narchive: the ${a.cold_bodies} cold bodies (${formatBytes(a.cold_bytes)}) moved from the hot class\n`,
  );
  printTable(
    ["PROVIDER", "TO CLASS", "BEFORE", "AFTER", "SAVES/MONTH", "ONCE"],
    a.by_class.map((s) => [
      s.provider,
      s.class,
      money(s.monthly_usd_before),
      money(s.monthly_usd_after),
      money(s.monthly_savings_usd),
      money(s.one_time_usd),
    ]),
  );
  const p = report.savings.packing;
  process.stdout.write(
    `\npacking: the ${p.small_bodies} bodies under ${formatBytes(p.small_under_bytes)} (${formatBytes(p.small_bytes)}) in ${formatBytes(p.pack_bytes)} packs\n`,
  );
  printTable(
    ["PROVIDER", "CLASS", "PACKS", "STORAGE BEFORE", "AFTER", "REQUESTS BEFORE", "AFTER", "SAVES/MONTH"],
    p.by_class.map((s) => [
      s.provider,
      s.class,
      String(s.packs),
      money(s.storage_usd_before),
      money(s.storage_usd_after),
      money(s.requests_usd_before),
      money(s.requests_usd_after),
      money(s.monthly_savings_usd),
    ]),
  );
  process.stdout.write(`\nnote: ${READS_NOTE}\n`);
  process.stdout.write(
    `note: list prices as of ${report.as_of}, to be checked; minimum storage durations and transfer are not included\n`,
  );
}

function coldAfter(value: string | undefined): number {
  if (value === undefined) return DEFAULT_COLD_AFTER_DAYS;
  const days = Number(value);
  if (value.trim() === "" || !Number.isFinite(days) || days < 0)
    throw new KuraError("INVALID_ARGUMENT", `--cold-after must be a number of days >= 0, not ${value}`, {
      operation: "stats",
    });
  return days;
}

async function loadPrices(file: string | undefined): Promise<Prices> {
  if (file === undefined) return DEFAULT_PRICES;
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (e) {
    throw new KuraError("INVALID_ARGUMENT", `--prices ${file}: ${(e as Error).message}`, {
      operation: "stats",
    });
  }
  return parsePrices(text, file);
}

const bucketName = (bounds: readonly number[], i: number) => {
  const kb = (b: number) => `${b / 1024}K`;
  if (i === 0) return `<${kb(bounds[0] as number)}`;
  if (i === bounds.length) return `>=${kb(bounds[i - 1] as number)}`;
  return `${kb(bounds[i - 1] as number)}-${kb(bounds[i] as number)}`;
};

const share = (part: number, whole: number) => (whole === 0 ? "-" : `${((100 * part) / whole).toFixed(1)}%`);

function printStats(stats: StorageStats): void {
  const plane = (planes: Record<string, PlaneStats>, name: string) => {
    const p = planes[name];
    return p ? `${p.bodies} / ${formatBytes(p.bytes)}` : "-";
  };
  const rows = stats.tenants.map((t) => [
    t.tenantId,
    t.status ?? "(unregistered)",
    String(t.usage.messages),
    String(t.usage.objects),
    formatBytes(t.usage.bytes),
    plane(t.planes, "messages"),
    plane(t.planes, "objects"),
    share(
      t.messageSizes.atLeast4Kb,
      t.messageSizes.counts.reduce((a, b) => a + b, 0),
    ),
    String(t.messageSizes.atLeast128Kb),
    `${t.age.hot.bodies} / ${formatBytes(t.age.hot.bytes)}`,
    `${t.age.cold.bodies} / ${formatBytes(t.age.cold.bytes)}`,
  ]);
  const total = stats.totals;
  const live = total.messageSizes.counts.reduce((a, b) => a + b, 0);
  rows.push([
    "TOTAL",
    "",
    String(total.usage.messages),
    String(total.usage.objects),
    formatBytes(total.usage.bytes),
    plane(total.planes, "messages"),
    plane(total.planes, "objects"),
    share(total.messageSizes.atLeast4Kb, live),
    String(total.messageSizes.atLeast128Kb),
    `${total.age.hot.bodies} / ${formatBytes(total.age.hot.bytes)}`,
    `${total.age.cold.bodies} / ${formatBytes(total.age.cold.bytes)}`,
  ]);
  printTable(
    [
      "TENANT",
      "STATUS",
      "MESSAGES",
      "BODIES",
      "BYTES",
      "MESSAGE BODIES",
      "OBJECT BODIES",
      ">=4K",
      ">=128K",
      `HOT (<${stats.coldAfterDays}D)`,
      "COLD",
    ],
    rows,
  );
  process.stdout.write("\nlive messages by body size (all tenants)\n");
  const { bounds, counts } = total.messageSizes;
  printTable(
    ["SIZE", "MESSAGES", "SHARE"],
    counts.map((n, i) => [bucketName(bounds, i), String(n), share(n, live)]),
  );
  if (live > 0 && total.messageSizes.atLeast4Kb / live >= 0.1)
    process.stdout.write("note: 10 % or more of the messages are 4 KB or larger\n");
}

export function registerStatsCommand(program: Command): void {
  program
    .command("stats")
    .description(
      "per tenant and plane: exact usage (bytes, bodies, messages), message and object bodies, live messages by body size (4 KB and 128 KB lines) and bodies hot and cold; --cost: the monthly cost per provider and storage class and what archiving and packing would save",
    )
    .option("-c, --config <file>", "YAML config file (default: $KURA_CONFIG)")
    .option("--json", "print JSON")
    .option("--cold-after <days>", "bodies written this many days ago or earlier are cold (default 30)")
    .option("--cost", "estimate the monthly storage and request cost from the stored bodies")
    .option("--prices <file>", "with --cost: a JSON or YAML prices file instead of the built-in list prices")
    .option("--print-prices", "print the built-in prices as YAML (a prices file to edit) and exit")
    .action(
      async (
        opts: ConfigOption & {
          json?: boolean;
          coldAfter?: string;
          cost?: boolean;
          prices?: string;
          printPrices?: boolean;
        },
      ) => {
        if (opts.printPrices) {
          process.stdout.write(stringify(DEFAULT_PRICES));
          return;
        }
        const coldAfterDays = coldAfter(opts.coldAfter);
        if (opts.prices !== undefined && !opts.cost)
          throw new KuraError("INVALID_ARGUMENT", "--prices goes with --cost", { operation: "stats" });
        const prices = opts.cost ? await loadPrices(opts.prices) : undefined;
        await withKura("stats", opts, async (kura) => {
          const stats = await kura.tenants.stats({
            coldAfterDays,
            ...(prices ? { sizeBounds: costSizeBounds(prices) } : {}),
          });
          if (prices) {
            const report = costReport(stats.totals.profile, prices);
            const source = opts.prices ?? "built-in";
            if (opts.json) printJson(costJson(stats, report, source));
            else printCost(stats, report, source);
          } else if (opts.json) printJson(statsJson(stats));
          else printStats(stats);
        });
      },
    );
}
