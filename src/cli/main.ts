#!/usr/bin/env node
/**
 * The `kura` command line. Transport only: it parses flags, reads the environment (the only
 * place besides config loading that may), calls the library, and maps errors to exit codes.
 */
import { hostname } from "node:os";
import { Command, CommanderError } from "commander";
import { stringify as stringifyYaml } from "yaml";
import { redactConfig } from "../config/index.js";
import { isKuraError } from "../core/errors.js";
import { Kura } from "../kura.js";
import { loadConfig } from "../open/config.js";
import { registerBackupCommands } from "./backup.js";
import { exitCodeFor } from "./exit-codes.js";
import { registerFsckCommand } from "./fsck.js";
import { registerKeysCommands } from "./keys.js";
import { registerLifecycleCommand } from "./lifecycle.js";
import { registerMigrateCommand } from "./migrate.js";
import { registerNodesCommands } from "./nodes.js";
import { runServe } from "./serve.js";
import { registerStatsCommand } from "./stats.js";
import { registerTenantCommands } from "./tenants.js";
import { runToken } from "./token.js";

const program = new Command()
  .name("kura")
  .description("Kura (蔵): storage engine and service for application data")
  .version("0.1.0")
  // Usage errors (unknown option, missing argument) come back as CommanderErrors: exit 64.
  .exitOverride()
  .showHelpAfterError("(kura --help for usage)");

program
  .command("config")
  .description("print the effective configuration (secrets redacted) as YAML, and exit")
  .option("-c, --config <file>", "YAML config file (default: $KURA_CONFIG)")
  .option("--json", "print JSON instead of YAML")
  .action(async (opts: { config?: string; json?: boolean }) => {
    const config = await loadConfig({ env: process.env, ...(opts.config ? { file: opts.config } : {}) });
    const redacted = redactConfig(config);
    process.stdout.write(opts.json ? `${JSON.stringify(redacted, null, 2)}\n` : stringifyYaml(redacted));
  });

program
  .command("serve")
  .description("run the HTTP service (embedded defaults without a config)")
  .option("-c, --config <file>", "YAML config file (default: $KURA_CONFIG)")
  .option("-p, --port <port>", "port (default 8787, or server.port)")
  .option("-H, --host <host>", "interface (default 127.0.0.1, or server.host)")
  .option("--s3-port <port>", "also serve the S3-compatible API on this port (or server.s3.port)")
  .option("--log-level <level>", "trace, debug, info, warn, error (default info, or $KURA_LOG_LEVEL)")
  .option("--jobs-interval <seconds>", "seconds between maintenance job runs; 0 = never", "60")
  .action(
    async (opts: {
      config?: string;
      port?: string;
      host?: string;
      s3Port?: string;
      logLevel?: string;
      jobsInterval?: string;
    }) => {
      await runServe({ ...opts, env: process.env, print: (line) => process.stderr.write(`${line}\n`) });
    },
  );

program
  .command("token")
  .description(
    "print a development token (HS256) for a tenant, minted from the configured or generated secret",
  )
  .option("-t, --tenant <tenant>", "tenant id (the tenant_id claim)")
  .option("--admin", 'an admin token instead (role: "admin", no tenant): the /v1/admin routes')
  .option("-u, --user <user>", "user id (the sub claim)")
  .option(
    "--ttl <ttl>",
    "lifetime: 30s, 15m, 1h, 1d (at most auth.max_token_lifetime_seconds, 24 h by default)",
    "1h",
  )
  .option("-c, --config <file>", "YAML config file (default: $KURA_CONFIG)")
  .action(async (opts: { tenant?: string; admin?: boolean; user?: string; ttl: string; config?: string }) => {
    process.stdout.write(`${await runToken({ ...opts, env: process.env })}\n`);
  });

program
  .command("reindex")
  .description(
    "rebuild the full-text search index from the catalog's messages (SRCH-4); stop every kura serve first",
  )
  .option("-c, --config <file>", "YAML config file (default: $KURA_CONFIG)")
  .option("--vectors", "instead, embed every message again (after changing the embedder or its model)")
  .option("--json", "print the result as JSON")
  .action(async (opts: { config?: string; json?: boolean; vectors?: boolean }) => {
    const config = await loadConfig({ env: process.env, ...(opts.config ? { file: opts.config } : {}) });
    const kura = await Kura.open(config, { env: process.env });
    let alone: Awaited<ReturnType<Kura["claimExclusive"]>> | undefined;
    try {
      // A server beside the rebuild would keep serving from the index being dropped and miss
      // messages appended meanwhile: refuse while one runs, and keep new ones out meanwhile.
      alone = await kura.claimExclusive(`reindex:${hostname()}:${process.pid}`, "kura reindex");
      const started = performance.now();
      // Every message of the catalog is re-projected (live ones indexed, others removed).
      const messages = opts.vectors ? await kura.reembedMessages() : await kura.rebuildSearch();
      const seconds = (performance.now() - started) / 1000;
      const what = opts.vectors ? "the message embeddings" : "the search index";
      process.stdout.write(
        opts.json
          ? `${JSON.stringify({ messages, seconds })}\n`
          : `rebuilt ${what} from ${messages} message(s) in ${seconds.toFixed(1)} s\n`,
      );
    } finally {
      await alone?.stop();
      await kura.close();
    }
  });

program
  .command("gc")
  .description(
    "run the maintenance jobs once: orphan-body GC, purge of deleted and expired messages, KV and " +
      "session-file expiry, usage folding, and outbox pruning (outbox.retention_hours); exit 1 if a job failed",
  )
  .option("-c, --config <file>", "YAML config file (default: $KURA_CONFIG)")
  .option("--json", "print the job reports as JSON")
  .action(async (opts: { config?: string; json?: boolean }) => {
    const config = await loadConfig({ env: process.env, ...(opts.config ? { file: opts.config } : {}) });
    const kura = await Kura.open(config, { env: process.env, node: "visit" });
    let alone: Awaited<ReturnType<Kura["claimExclusive"]>> | undefined;
    try {
      // A catalog that one process owns (SQLite) is a running server's to maintain: it runs
      // these jobs itself. A shared one (PostgreSQL) takes a lease per job, so gc runs beside.
      if (!kura.catalog.capabilities.multiProcess)
        alone = await kura.claimExclusive(`gc:${hostname()}:${process.pid}`, "kura gc");
      const started = performance.now();
      // Projectors catch up first: the prune can then take every event they have passed.
      await kura.pumpOutbox();
      const jobs = await kura.runJobs();
      const seconds = (performance.now() - started) / 1000;
      if (opts.json) process.stdout.write(`${JSON.stringify({ jobs, seconds })}\n`);
      else {
        for (const job of jobs) process.stdout.write(`${describeJob(job)}\n`);
        process.stdout.write(`done in ${seconds.toFixed(1)} s\n`);
      }
      if (jobs.some((j) => j.error !== undefined)) process.exitCode = 1;
    } finally {
      await alone?.stop();
      await kura.close();
    }
  });

registerTenantCommands(program);
registerStatsCommand(program);
registerBackupCommands(program);
registerFsckCommand(program);
registerMigrateCommand(program);
registerLifecycleCommand(program);
registerKeysCommands(program);
registerNodesCommands(program);

type JobReport = Awaited<ReturnType<Kura["runJobs"]>>[number];

/** One line per job: `prune-outbox: deleted 1200`, or why it did not run. */
function describeJob(job: JobReport): string {
  if (!job.ran) return `${job.name}: skipped (another node holds its lease)`;
  if (job.error !== undefined) return `${job.name}: FAILED: ${job.error}`;
  const counts = Object.entries(job.result ?? {}).map(([k, v]) => `${k} ${v}`);
  return `${job.name}: ${counts.length > 0 ? counts.join(", ") : "done"}`;
}

program.parseAsync(process.argv).catch((e: unknown) => {
  if (e instanceof CommanderError) {
    // --help and --version end with code 0 and have printed already; usage errors too.
    process.exit(e.exitCode === 0 ? 0 : 64);
  }
  if (isKuraError(e)) {
    process.stderr.write(`kura: ${e.code}: ${e.message}\n`);
    process.exit(exitCodeFor(e));
  }
  process.stderr.write(`kura: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
