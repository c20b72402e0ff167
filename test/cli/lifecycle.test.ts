/**
 * `kura lifecycle run [--dry-run] [--json]` (LIFE-1): the lifecycle engine on the configuration,
 * its report as text or JSON, a dry run that changes nothing, and the refusal beside a running
 * `kura serve` on SQLite (as `kura gc`).
 */
import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Kura } from "../../src/kura.js";

const MAIN = resolve(import.meta.dirname, "../../src/cli/main.ts");
const TSX = createRequire(import.meta.url).resolve("tsx");
const run = promisify(execFile);

describe("kura lifecycle run", () => {
  let cwd: string;
  let env: Record<string, string>;
  const config = () => ({ data_dir: join(cwd, "data"), retention: { deleted_messages_days: 0 } });
  beforeAll(async () => {
    cwd = await mkdtemp(join(tmpdir(), "kura-lifecycle-"));
    env = {
      PATH: process.env.PATH ?? "",
      HOME: process.env.HOME ?? "",
      KURA_DATA_DIR: join(cwd, "data"),
      KURA_RETENTION__DELETED_MESSAGES_DAYS: "0",
    };
  });
  afterAll(async () => {
    await rm(cwd, { recursive: true, force: true });
  });

  it("reports what a dry run would do without doing it, then does it, as JSON and as text", {
    timeout: 60_000,
  }, async () => {
    let kura = await Kura.open(config());
    const t = kura.tenant("acme");
    const gone = await t.messages.append("c", { role: "user", content: "to purge" });
    const kept = await t.messages.append("held", { role: "user", content: "held" });
    await t.legalHolds.create({ chatId: "held", reason: "case" });
    await t.messages.delete(gone.id);
    await t.messages.delete(kept.id);
    await kura.close();

    const dry = await run(
      process.execPath,
      ["--import", TSX, MAIN, "lifecycle", "run", "--dry-run", "--json"],
      {
        cwd,
        env,
      },
    );
    const doc = JSON.parse(dry.stdout);
    expect(doc).toMatchObject({ dry_run: true, counts: { messages_purged: 1, held: 1, kv_expired: null } });
    kura = await Kura.open(config());
    expect((await kura.catalog.getMessage("acme", gone.id))?.id).toBe(gone.id);
    await kura.close();

    const text = await run(process.execPath, ["--import", TSX, MAIN, "lifecycle", "run"], { cwd, env });
    expect(text.stdout).toMatch(/lifecycle run at .*: acted on/);
    expect(text.stdout).toMatch(/messages purged \(soft-deleted past retention\)\s+1/);
    expect(text.stdout).toMatch(/messages kept by legal holds\s+1/);
    kura = await Kura.open(config());
    try {
      expect(await kura.catalog.getMessage("acme", gone.id)).toBeUndefined();
      expect((await kura.catalog.getMessage("acme", kept.id))?.id).toBe(kept.id);
      const runs = await kura.tenants.auditLog({ limit: 10, action: "lifecycle.run" });
      expect(runs.items.map((e) => e.actor)).toEqual(["admin:cli"]);
    } finally {
      await kura.close();
    }
  });

  it("on a SQLite catalog, refuses to run beside a kura serve", { timeout: 60_000 }, async () => {
    const kura = await Kura.open(config());
    const server = kura.announceServer("test-server");
    try {
      const failed = await run(process.execPath, ["--import", TSX, MAIN, "lifecycle", "run"], {
        cwd,
        env,
      }).then(
        () => undefined,
        (e: { code?: number; stderr?: string }) => e,
      );
      expect(failed?.code).toBe(75);
      expect(failed?.stderr).toContain("SERVER_RUNNING");
    } finally {
      await server.stop();
      await kura.close();
    }
  });
});
