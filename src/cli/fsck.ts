/**
 * `kura fsck [--json] [--repair] [--grace DURATION]` (CONS-3, CLI-1): checks that the planes
 * agree (`kura.fsck`, `engine/fsck.ts`) and with `--repair` fixes what can be fixed. Opened as
 * `kura gc` opens Kura: on a catalog one process owns (SQLite) it runs alone and refuses to
 * start beside a `kura serve` (SERVER_RUNNING: use `POST /v1/admin/fsck` then).
 *
 * Exit codes, after e2fsck's: 0 nothing wrong; 1 problems found and all repaired (a second run
 * is clean); 4 problems left (found without `--repair`, or some not repairable). Errors exit as
 * every command's do (`exit-codes.ts`).
 */
import type { Command } from "commander";
import { parseDurationMs } from "../core/time.js";
import type { FsckProgress, FsckReport } from "../engine/fsck.js";
import { type ConfigOption, withKura } from "./open-kura.js";
import { formatBytes, printJson, printTable } from "./output.js";
import { progressReporter } from "./progress.js";

export const FSCK_EXIT = { clean: 0, repaired: 1, problems: 4 } as const;

export function fsckExitCode(report: FsckReport): number {
  if (report.ok) return FSCK_EXIT.clean;
  return report.repair && report.remaining === 0 ? FSCK_EXIT.repaired : FSCK_EXIT.problems;
}

function printReport(report: FsckReport): void {
  const c = report.checked;
  process.stdout.write(
    `checked ${c.bodies} bodies (${formatBytes(c.bytes)}), ${c.stored_objects} stored objects, ` +
      `${c.messages} messages, ${c.search_documents} search documents, ${c.tenants} tenants, ` +
      `${c.outbox_events} change-feed events\n`,
  );
  if (c.known_missing + c.known_corrupt > 0)
    process.stdout.write(
      `known damage (marked by an earlier repair): ${c.known_missing} missing, ${c.known_corrupt} corrupt bodies\n`,
    );
  if (c.in_flight + c.recent_unreferenced > 0)
    process.stdout.write(
      `not orphans: ${c.in_flight} bodies of writes under way, ${c.recent_unreferenced} younger than the grace\n`,
    );
  printTable(
    ["PROBLEM", "FOUND"],
    Object.entries(report.problems).map(([name, n]) => [name, String(n)]),
  );
  if (report.repair) {
    const r = report.repairs;
    process.stdout.write(
      `repaired: ${r.marked_missing} missing and ${r.marked_corrupt} corrupt bodies marked, ` +
        `${r.orphans_deleted} orphans deleted, ${r.reindexed} messages re-indexed, ` +
        `${r.usage_fixed} tenants' usage fixed, ${r.marks_cleared} marks cleared\n`,
    );
  }
  if (report.samples.length > 0) {
    process.stdout.write("\n");
    printTable(
      ["PROBLEM", "TENANT", "WHAT", "REPAIRED", "DETAIL"],
      report.samples.map((s) => [
        s.problem,
        s.tenant_id ?? "-",
        s.message_id ?? s.key ?? "-",
        s.repaired ? "yes" : "no",
        s.detail,
      ]),
    );
  }
  const verdict = report.ok
    ? "clean"
    : report.repair && report.remaining === 0
      ? "problems found, all repaired"
      : `${report.remaining} problem(s) left`;
  process.stdout.write(`${verdict} (${report.seconds.toFixed(1)} s)\n`);
}

export function registerFsckCommand(program: Command): void {
  program
    .command("fsck")
    .description(
      "check that bodies, catalog, search index, usage and outbox agree (CONS-3); --repair fixes what it can. " +
        "Exit 0 clean, 1 all problems repaired, 4 problems left",
    )
    .option("-c, --config <file>", "YAML config file (default: $KURA_CONFIG)")
    .option("--json", "print the report as JSON")
    .option(
      "--repair",
      "re-index drifted messages, fix usage, delete orphans older than the grace, mark lost bodies",
    )
    .option("--grace <duration>", "orphans younger than this are kept: 0, 30s, 30m, 1h, 2d", "1h")
    .action(async (opts: ConfigOption & { json?: boolean; repair?: boolean; grace: string }) => {
      const graceMs = parseDurationMs(opts.grace, "fsck");
      await withKura("fsck", opts, async (kura) => {
        // The total is unknown until the end of each phase: the bar counts what was checked.
        const progress = progressReporter<FsckProgress>("fsck", {
          json: opts.json === true,
          describe: () => "checked",
        });
        let report: FsckReport;
        try {
          report = await kura.fsck({
            repair: opts.repair === true,
            graceMs,
            onProgress: progress.report,
            actor: "admin:cli",
          });
        } finally {
          progress.stop();
        }
        if (opts.json) printJson(report);
        else printReport(report);
        process.exitCode = fsckExitCode(report);
      });
    });
}
