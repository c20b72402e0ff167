/**
 * `kura keys rotate TENANT | shred TENANT --yes | reencrypt [TENANT] | rewrap` (SEC-2): the data
 * keys of encryption at rest, as the admin routes offer them. Opened as `kura gc` opens Kura
 * (on SQLite alone: SERVER_RUNNING beside a `kura serve`, whose admin routes do the same).
 * ENCRYPTION_DISABLED (exit 69) without an `encryption` section.
 */
import type { Command } from "commander";
import { KuraError } from "../core/errors.js";
import { type ConfigOption, withKura } from "./open-kura.js";
import { printJson } from "./output.js";

interface KeysOptions extends ConfigOption {
  json?: boolean;
  yes?: boolean;
}

function print(opts: KeysOptions, doc: Record<string, unknown>, line: string): void {
  if (opts.json) printJson(doc);
  else process.stdout.write(`${line}\n`);
}

export function registerKeysCommands(program: Command): void {
  const keys = program.command("keys").description("Encryption at rest: data keys (SEC-2)");
  const common = (c: Command) =>
    c.option("-c, --config <file>", "config file (default $KURA_CONFIG)").option("--json", "print JSON");
  common(
    keys
      .command("rotate <tenant>")
      .description("A new data key version for the tenant: new writes use it, old data stays readable"),
  ).action(async (tenant: string, opts: KeysOptions) => {
    const r = await withKura("keys rotate", opts, (kura) =>
      kura.encryption.rotate(tenant, { actor: "admin:cli" }),
    );
    print(
      opts,
      { tenant_id: r.tenantId, version: r.version },
      `${r.tenantId}: data key version ${r.version}`,
    );
  });
  common(
    keys
      .command("shred <tenant>")
      .description("Destroy the tenant's data keys: everything it stored becomes unreadable, for good")
      .option("--yes", "confirm: this cannot be undone"),
  ).action(async (tenant: string, opts: KeysOptions) => {
    if (!opts.yes)
      throw new KuraError("INVALID_ARGUMENT", "shredding cannot be undone: confirm with --yes", {
        operation: "cli.keys.shred",
      });
    const r = await withKura("keys shred", opts, (kura) =>
      kura.encryption.shred(tenant, { actor: "admin:cli" }),
    );
    print(
      opts,
      { tenant_id: r.tenantId, destroyed_keys: r.destroyedKeys },
      `${r.tenantId}: ${r.destroyedKeys} data key version(s) destroyed`,
    );
  });
  common(
    keys
      .command("reencrypt [tenant]")
      .description("Seal again under the newest key what older versions sealed (the reencrypt-keys job)"),
  ).action(async (tenant: string | undefined, opts: KeysOptions) => {
    const reports = await withKura("keys reencrypt", opts, async (kura) =>
      tenant ? [await kura.encryption.reencrypt(tenant)] : await kura.encryption.reencryptAll(),
    );
    print(
      opts,
      { tenants: reports.map((r) => ({ tenant_id: r.tenantId, bodies: r.bodies, kv_values: r.kvValues })) },
      reports
        .map((r) => `${r.tenantId}: ${r.bodies} bodies, ${r.kvValues} KV values re-encrypted`)
        .join("\n") || "nothing to re-encrypt",
    );
  });
  common(
    keys
      .command("rewrap")
      .description("Wrap every data key with the current master key (after a master-key rotation)"),
  ).action(async (opts: KeysOptions) => {
    const r = await withKura("keys rewrap", opts, (kura) => kura.encryption.rewrap({ actor: "admin:cli" }));
    print(opts, { rewrapped: r.rewrapped }, `${r.rewrapped} data key(s) wrapped again`);
  });
}
