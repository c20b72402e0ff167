#!/usr/bin/env node
/**
 * The `kura` command line. Transport only: it parses flags, reads the environment (the only
 * place besides config loading that may), calls the library, and maps errors to exit codes.
 */
import { Command } from "commander";
import { loadConfig, redactConfig } from "../config/index.js";
import { isKuraError } from "../core/errors.js";
import { runDemo } from "./demo.js";
import { exitCodeFor } from "./exit-codes.js";

const program = new Command()
  .name("kura")
  .description("Kura (蔵): storage engine and service for application data")
  .version("0.1.0");

program
  .command("demo")
  .description("store and read a few objects on the embedded fs backend, printing each step")
  .option("--data-dir <dir>", "data directory", "./data")
  .action(async (opts: { dataDir: string }) => {
    await runDemo({ dataDir: opts.dataDir, print: (line) => process.stdout.write(`${line}\n`) });
  });

program
  .command("config")
  .description("print the effective configuration (secrets redacted) and exit")
  .option("-c, --config <file>", "YAML config file (default: $KURA_CONFIG)")
  .action(async (opts: { config?: string }) => {
    const config = await loadConfig({ env: process.env, ...(opts.config ? { file: opts.config } : {}) });
    process.stdout.write(`${JSON.stringify(redactConfig(config), null, 2)}\n`);
  });

program.parseAsync(process.argv).catch((e: unknown) => {
  if (isKuraError(e)) {
    process.stderr.write(`kura: ${e.code}: ${e.message}\n`);
    process.exit(exitCodeFor(e));
  }
  process.stderr.write(`kura: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
