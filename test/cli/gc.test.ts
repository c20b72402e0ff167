/**
 * `kura gc` (CLI-1): runs every maintenance job once — outbox pruning (OUT-1) among them — and
 * says what each did, as text or `--json`.
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

describe("kura gc", () => {
  let cwd: string;
  let env: Record<string, string>;
  beforeAll(async () => {
    cwd = await mkdtemp(join(tmpdir(), "kura-gc-"));
    env = {
      PATH: process.env.PATH ?? "",
      HOME: process.env.HOME ?? "",
      KURA_DATA_DIR: join(cwd, "data"),
      KURA_OUTBOX__RETENTION_HOURS: "0",
    };
  });
  afterAll(async () => {
    await rm(cwd, { recursive: true, force: true });
  });

  it("prunes the consumed outbox and reports every job, as JSON and as text", {
    timeout: 60_000,
  }, async () => {
    const config = { data_dir: join(cwd, "data") };
    let kura = await Kura.open(config);
    const t = kura.tenant("acme");
    for (const text of ["one", "two", "three"]) await t.messages.append("c", { role: "user", content: text });
    await kura.close();

    const json = await run(process.execPath, ["--import", TSX, MAIN, "gc", "--json"], { cwd, env });
    const out = JSON.parse(json.stdout) as {
      jobs: { name: string; ran: boolean; result?: Record<string, number>; error?: string }[];
      seconds: number;
    };
    const names = out.jobs.map((j) => j.name);
    for (const name of ["gc-orphans", "lifecycle", "fold-usage", "prune-outbox"])
      expect(names).toContain(name);
    expect(out.jobs.filter((j) => j.error !== undefined)).toEqual([]);
    // The projectors caught up first, so every event went (retention 0).
    expect(out.jobs.find((j) => j.name === "prune-outbox")?.result).toEqual({ deleted: 3 });

    const text = await run(process.execPath, ["--import", TSX, MAIN, "gc"], { cwd, env });
    expect(text.stdout).toContain("prune-outbox: deleted 0");
    expect(text.stdout).toMatch(/gc-orphans: scanned \d+, deleted 0/);

    kura = await Kura.open(config);
    try {
      expect(await kura.catalog.readOutbox(undefined, 10)).toEqual([]);
      // Nothing a projection needs was lost.
      expect((await kura.tenant("acme").search("two")).hits).toHaveLength(1);
      expect((await kura.tenant("acme").changes()).map((e) => e.seq)).toEqual([]);
      expect(await kura.tenant("acme").changesHorizon()).toBe(3);
    } finally {
      await kura.close();
    }
  });

  it("on a SQLite catalog, refuses to run beside a kura serve (which runs the jobs itself)", {
    timeout: 60_000,
  }, async () => {
    const kura = await Kura.open({ data_dir: join(cwd, "data") });
    const server = kura.announceServer("test-server");
    try {
      const failed = await run(process.execPath, ["--import", TSX, MAIN, "gc"], { cwd, env }).then(
        () => undefined,
        (e: { code?: number; stderr?: string }) => e,
      );
      expect(failed?.code).not.toBe(0);
      expect(failed?.stderr).toContain("SERVER_RUNNING");
    } finally {
      await server.stop();
      await kura.close();
    }
  });
});
