/**
 * `kura lifecycle run [--dry-run] [--json]` (LIFE-1): the lifecycle engine run now on the
 * configuration — TTL expiry, purge, archive, KV and session-file expiry — and what it did, or
 * with `--dry-run` what it would do (nothing changes). Opened as `kura gc` opens Kura: on
 * SQLite alone, refusing beside a running `kura serve` (SERVER_RUNNING, exit 75: use
 * `POST /v1/admin/lifecycle:run` then); on PostgreSQL beside the servers, under the lifecycle
 * lease (LIFECYCLE_RUNNING, exit 75, while the job or another run holds it).
 */
import type { Command } from "commander";
import { lifecycleReportJson } from "../domains/lifecycle.js";
import { type ConfigOption, withKura } from "./open-kura.js";
import { printJson, printTable } from "./output.js";

interface RunOptions extends ConfigOption {
  dryRun?: boolean;
  json?: boolean;
}

const LABELS: Record<string, string> = {
  messages_expired: "messages expired (TTL)",
  messages_purged: "messages purged (soft-deleted past retention)",
  messages_archived: "messages archived",
  objects_archived: "objects archived",
  kv_expired: "KV entries expired",
  session_files_expired: "session files expired",
  held: "messages kept by legal holds",
  failed: "bodies the archive could not move",
};

export function registerLifecycleCommand(program: Command): void {
  const lifecycle = program.command("lifecycle").description("The lifecycle engine (LIFE-1)");
  lifecycle
    .command("run")
    .description("Run expiry, purge and archive now and report what was done (or, --dry-run, would be)")
    .option("-c, --config <file>", "config file (default $KURA_CONFIG)")
    .option("--dry-run", "count what a run would do, changing nothing")
    .option("--json", "print the report as JSON (as POST /v1/admin/lifecycle:run answers)")
    .action(async (opts: RunOptions) => {
      const report = await withKura("lifecycle run", opts, (kura) =>
        kura.runLifecycle({ dryRun: opts.dryRun === true, actor: "admin:cli" }),
      );
      const doc = lifecycleReportJson(report);
      if (opts.json) {
        printJson(doc);
        return;
      }
      const verb = doc.dry_run ? "would act on" : "acted on";
      process.stdout.write(`lifecycle ${doc.dry_run ? "dry run" : "run"} at ${doc.at}: ${verb}\n`);
      printTable(
        ["action", "count"],
        Object.entries(doc.counts).map(([k, v]) => [LABELS[k] ?? k, v === null ? "-" : String(v)]),
      );
    });
}
