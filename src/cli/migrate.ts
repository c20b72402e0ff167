/**
 * `kura migrate --to TARGET.yaml [--json]` (issue 16): moves the planes whose sections differ
 * between the configuration (`-c` or `$KURA_CONFIG`) and TARGET.yaml — blob and KV —
 * by the same online migration as `POST /v1/admin/migrations` (`engine/migration/`), and waits
 * for it with a progress bar. It writes no configuration: once done it names the file to start
 * servers with (TARGET.yaml) and leaves the source as it was.
 *
 * It opens Kura itself and runs alone: beside a running `kura serve` it refuses
 * (SERVER_RUNNING), since only the process that runs a migration dual-writes; migrate a
 * serving deployment through the HTTP API instead. A migration a stop interrupted is resumed
 * by the next `kura migrate` (or `kura serve`) on the same configuration.
 */
import { hostname } from "node:os";
import type { Command } from "commander";
import { isKuraError, KuraError } from "../core/errors.js";
import type { MigrationTarget, MigrationView } from "../engine/migration/online-migration.js";
import { Kura } from "../kura.js";
import { loadConfig } from "../open/config.js";
import { printJson } from "./output.js";
import { progressReporter } from "./progress.js";

const PLANES = ["storage", "database", "kv"] as const;

/** A value with its object keys sorted, so two resolved sections compare by content. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) =>
    v && typeof v === "object" && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1)))
      : v,
  );
}

export function registerMigrateCommand(program: Command): void {
  program
    .command("migrate")
    .description(
      "move the blob and KV planes to the backends TARGET.yaml names, online (dual write, copy, verify, switch); " +
        "writes no config: start servers with TARGET.yaml once done",
    )
    .requiredOption("--to <file>", "the target deployment's YAML config")
    .option("-c, --config <file>", "YAML config file of the source (default: $KURA_CONFIG)")
    .option("--json", "print the finished migration as JSON")
    .action(async (opts: { to: string; config?: string; json?: boolean }) => {
      const env = process.env;
      const source = await loadConfig({ env, ...(opts.config ? { file: opts.config } : {}) });
      const target = await loadConfig({ env, file: opts.to });
      const sections: MigrationTarget = {};
      for (const plane of PLANES)
        if (canonical(source[plane]) !== canonical(target[plane]))
          sections[plane] = target[plane] as unknown as Record<string, unknown>;
      if (Object.keys(sections).length === 0)
        throw new KuraError(
          "INVALID_ARGUMENT",
          `${opts.to} names the same storage, database and kv: nothing to migrate`,
          {
            operation: "migrate",
          },
        );
      const kura = await Kura.open(source, { env });
      try {
        const alone = await kura.claimExclusive(`migrate:${hostname()}:${process.pid}`, "kura migrate");
        try {
          const view = await follow(kura, await startOrResume(kura, sections), opts.json === true);
          if (opts.json) printJson({ ...view, config_file: opts.to });
          else
            process.stdout.write(
              `migration ${view.id} done: ${view.progress.copied} objects copied ` +
                `(${view.progress.present} already there), ${view.progress.verified} verified.\n` +
                `Start servers with ${opts.to}; the source was left as it was.\n`,
            );
        } finally {
          await alone.stop();
        }
      } finally {
        await kura.close();
      }
    });
}

/** Start one, or follow the one under way if it moves to the same target (a resumed run). */
async function startOrResume(kura: Kura, target: MigrationTarget): Promise<string> {
  try {
    return (await kura.migrations.start(target)).id;
  } catch (e) {
    if (!(isKuraError(e) && e.code === "MIGRATION_RUNNING")) throw e;
    const running = await kura.migrations.get(String(e.context.id));
    if (canonical(running.target) !== canonical(target)) throw e;
    return running.id;
  }
}

async function follow(kura: Kura, id: string, json: boolean): Promise<MigrationView> {
  const progress = progressReporter<{ phase: string; done: number }>("migrate", {
    json,
    describe: (p) => (p.phase === "verifying" ? "objects compared" : "objects listed"),
  });
  try {
    for (;;) {
      const view = await kura.migrations.get(id);
      if (view.state === "done") return view;
      if (view.state === "failed")
        throw new KuraError("MIGRATION_FAILED", `migration ${id} failed: ${view.error ?? "unknown"}`, {
          operation: "migrate",
          context: { id },
        });
      progress.report({
        phase: view.state,
        done: view.state === "verifying" ? view.progress.verified : view.progress.listed,
      });
      await new Promise((r) => setTimeout(r, 200));
    }
  } finally {
    progress.stop();
  }
}
