/**
 * `kura fsck` (CONS-3, CLI-1) as a process: exit 0 on a clean store, 4 with problems found, 1
 * when `--repair` fixed them all, and 0 again after; `--json` prints the report; `--grace`
 * takes durations; SERVER_RUNNING beside a `kura serve` on SQLite.
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

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

async function kura(args: string[], cwd: string, env: Record<string, string>): Promise<Outcome> {
  try {
    const { stdout, stderr } = await run(process.execPath, ["--import", TSX, MAIN, ...args], { cwd, env });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    return { code: err.code ?? -1, stdout: err.stdout ?? "", stderr: err.stderr ?? "" };
  }
}

describe("kura fsck", () => {
  let cwd: string;
  let env: Record<string, string>;
  let config: { data_dir: string };
  beforeAll(async () => {
    cwd = await mkdtemp(join(tmpdir(), "kura-fsck-"));
    config = { data_dir: join(cwd, "data") };
    env = { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", KURA_DATA_DIR: config.data_dir };
    const k = await Kura.open(config);
    const t = k.tenant("acme");
    for (const text of ["one", "two", "three"]) await t.messages.append("c", { role: "user", content: text });
    await k.close();
  });
  afterAll(async () => {
    await rm(cwd, { recursive: true, force: true });
  });

  it("exits 0 clean, 4 with problems, 1 when --repair fixed them, then 0", { timeout: 90_000 }, async () => {
    const clean = await kura(["fsck", "--json"], cwd, env);
    expect(clean.code).toBe(0);
    const report = JSON.parse(clean.stdout) as {
      ok: boolean;
      checked: Record<string, number>;
      problems: Record<string, number>;
      samples: unknown[];
    };
    expect(report.ok).toBe(true);
    expect(report.checked.bodies).toBe(3);
    expect(Object.keys(report.problems).sort()).toEqual(
      [
        "checksum_mismatches",
        "index_drift",
        "missing_objects",
        "orphan_objects",
        "outbox",
        "usage_drift",
      ].sort(),
    );
    expect(report.samples).toEqual([]);

    // A body lost and a usage counter gone wrong.
    const k = await Kura.open(config);
    const [first] = (await k.tenant("acme").messages.history("c", { limit: 1, order: "asc" })).items;
    const row = await k.catalog.getMessage("acme", first?.id as string);
    await k.store.delete([row?.blobKey as string]);
    await k.catalog.commit([
      { ops: [{ op: "addUsage", delta: { tenantId: "acme", bytes: 0, objects: 0, messages: 5 } }] },
    ]);
    await k.close();

    const found = await kura(["fsck"], cwd, env);
    expect(found.code).toBe(4);
    expect(found.stdout).toMatch(/missing_objects\s+1/);
    expect(found.stdout).toMatch(/usage_drift\s+1/);
    expect(found.stdout).toContain("2 problem(s) left");

    const repaired = await kura(["fsck", "--repair", "--grace", "0", "--json"], cwd, env);
    expect(repaired.code).toBe(1);
    const r = JSON.parse(repaired.stdout) as { remaining: number; repairs: Record<string, number> };
    expect(r.remaining).toBe(0);
    expect(r.repairs.marked_missing).toBe(1);
    expect(r.repairs.usage_fixed).toBe(1);

    const after = await kura(["fsck"], cwd, env);
    expect(after.code).toBe(0);
    expect(after.stdout).toContain("known damage (marked by an earlier repair): 1 missing");
    expect(after.stdout).toMatch(/clean \(/);
  });

  it("refuses a malformed --grace with exit 64", async () => {
    const bad = await kura(["fsck", "--grace", "soon"], cwd, env);
    expect(bad.code).toBe(64);
    expect(bad.stderr).toContain("INVALID_ARGUMENT");
  });

  it("refuses to run beside a kura serve on SQLite (SERVER_RUNNING, exit 75)", async () => {
    const k = await Kura.open(config);
    const presence = k.announceServer("test-server");
    try {
      const refused = await kura(["fsck"], cwd, env);
      expect(refused.code).toBe(75);
      expect(refused.stderr).toContain("SERVER_RUNNING");
    } finally {
      await presence.stop();
      await k.close();
    }
  });
});
