/**
 * Opening Kura for an operator command from the configuration (`-c` or `$KURA_CONFIG`), as
 * `kura gc` does: on a catalog that one process owns (SQLite) the command runs alone and
 * refuses to start beside a `kura serve` (SERVER_RUNNING; use the HTTP admin API then), on a
 * shared one (PostgreSQL) it runs beside the servers.
 */
import { hostname } from "node:os";
import { resolveJwtSecret } from "../http/auth.js";
import { Kura } from "../kura.js";
import { loadConfig } from "../open/config.js";

export interface ConfigOption {
  config?: string;
}

/** Runs `work` with an open Kura and closes it however `work` ends. */
export async function withKura<T>(
  command: string,
  opts: ConfigOption,
  work: (kura: Kura) => Promise<T>,
): Promise<T> {
  const config = await loadConfig({ env: process.env, ...(opts.config ? { file: opts.config } : {}) });
  // Over a shared catalog a command is no node: it neither registers nor feeds a node's indexes.
  const kura = await Kura.open(config, { env: process.env, node: "visit" });
  // API keys created here get secrets the S3 endpoint can check (ADR 0035), as kura serve's do.
  const secret = await resolveJwtSecret(config, { create: false }).catch(() => undefined);
  if (secret) kura.useApiKeySecret(secret.secret);
  let alone: Awaited<ReturnType<Kura["claimExclusive"]>> | undefined;
  try {
    if (!kura.catalog.capabilities.multiProcess)
      alone = await kura.claimExclusive(
        `${command.replace(/\s+/g, "-")}:${hostname()}:${process.pid}`,
        `kura ${command}`,
      );
    return await work(kura);
  } finally {
    await alone?.stop();
    await kura.close();
  }
}
