/**
 * `kura stats [--json]` (CLI-1): what every tenant stores — its exact usage (as `GET /v1/usage`
 * reports it), the bodies and bytes per plane, and its live messages by body size, with seed
 * 000's lines at 4 KB and 128 KB — through the library on the configuration.
 */
import type { Command } from "commander";
import type { MessageSizes, PlaneStats, StorageStats } from "../domains/storage-stats.js";
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
    })),
    totals: {
      usage: stats.totals.usage,
      planes: planesJson(stats.totals.planes),
      message_sizes: sizesJson(stats.totals.messageSizes),
    },
  };
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
  ]);
  printTable(
    ["TENANT", "STATUS", "MESSAGES", "BODIES", "BYTES", "MESSAGE BODIES", "OBJECT BODIES", ">=4K", ">=128K"],
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
      "per tenant and plane: exact usage (bytes, bodies, messages), message and object bodies, and live messages by body size (4 KB and 128 KB lines)",
    )
    .option("-c, --config <file>", "YAML config file (default: $KURA_CONFIG)")
    .option("--json", "print JSON")
    .action(async (opts: ConfigOption & { json?: boolean }) => {
      await withKura("stats", opts, async (kura) => {
        const stats = await kura.tenants.stats();
        if (opts.json) printJson(statsJson(stats));
        else printStats(stats);
      });
    });
}
