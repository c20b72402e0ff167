/**
 * `kura backup` and `kura restore` (CONS-4, CLI-1) as processes: a backup beside a running
 * server on SQLite (the server announced on the catalog and writing), a restore into another
 * configuration with the search index rebuilt, exit 73 for a non-empty target without --force,
 * 65 for a damaged archive, 64 for an archive name of no known kind.
 */
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
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

describe("kura backup and kura restore", () => {
  let cwd: string;
  let env: Record<string, string>;
  let source: Kura;
  const ids: string[] = [];

  beforeAll(async () => {
    cwd = await mkdtemp(join(tmpdir(), "kura-backup-cli-"));
    env = { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", KURA_DATA_DIR: join(cwd, "source") };
    source = await Kura.open({ data_dir: join(cwd, "source") });
    const t = source.tenant("acme");
    for (const text of ["alpha heron", "beta heron", "gamma"])
      ids.push((await t.messages.append("c", { role: "user", content: text })).id);
    await t.objects.put("a.txt", Buffer.from("object a"), { contentType: "text/plain" });
    await t.kv("ns").set("k", { v: 1 });
  });

  afterAll(async () => {
    await source?.close();
    await rm(cwd, { recursive: true, force: true });
  });

  it("backs up beside a running server, and restores into another configuration", {
    timeout: 120_000,
  }, async () => {
    // This process is the server: announced on the catalog, and writing while the backup runs.
    const presence = source.announceServer("test-server");
    let writing = true;
    const writer = (async () => {
      let n = 0;
      while (writing) {
        await source.tenant("acme").messages.append("load", { role: "user", content: `load ${n++}` });
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    let backup: Outcome;
    try {
      backup = await kura(["backup", "--output", join(cwd, "b.tar.gz"), "--json"], cwd, env);
    } finally {
      writing = false;
      await writer;
      await presence.stop();
    }
    expect(backup.stderr).toBe("");
    expect(backup.code).toBe(0);
    const result = JSON.parse(backup.stdout) as {
      bodies: { count: number };
      kv_entries: number;
      tables: Record<string, number>;
      missing_bodies: string[];
      mb_per_s: number;
      objects_per_s: number;
    };
    expect(result.bodies.count).toBeGreaterThanOrEqual(4);
    expect(result.tables.messages).toBeGreaterThanOrEqual(3);
    expect(result.missing_bodies).toEqual([]);
    expect(result.objects_per_s).toBeGreaterThan(0);

    const target = { ...env, KURA_DATA_DIR: join(cwd, "target") };
    const restore = await kura(["restore", "--input", join(cwd, "b.tar.gz")], cwd, target);
    expect(restore.code).toBe(0);
    expect(restore.stdout).toMatch(/restored \d+ bodies/);
    expect(restore.stdout).toMatch(/rebuilt the search index from \d+ message/);
    // Off a terminal: progress as plain lines on stderr.
    expect(restore.stderr).toMatch(/^restore: /m);

    const restored = await Kura.open({ data_dir: join(cwd, "target") });
    try {
      const t = restored.tenant("acme");
      for (const [i, text] of ["alpha heron", "beta heron", "gamma"].entries())
        expect((await t.messages.get(ids[i] as string)).content).toBe(text);
      expect((await t.objects.getBuffer("a.txt")).data.toString()).toBe("object a");
      expect(await t.kv("ns").get("k")).toEqual({ v: 1 });
      expect((await t.search("heron")).hits.map((h) => h.id).sort()).toEqual([ids[0], ids[1]].sort());
    } finally {
      await restored.close();
    }

    const again = await kura(["restore", "--input", join(cwd, "b.tar.gz")], cwd, target);
    expect(again.code).toBe(73);
    expect(again.stderr).toContain("RESTORE_TARGET_NOT_EMPTY");
    const forced = await kura(
      ["restore", "--input", join(cwd, "b.tar.gz"), "--force", "--json"],
      cwd,
      target,
    );
    expect(forced.code).toBe(0);
    expect(JSON.parse(forced.stdout).tables.messages.inserted).toBe(0);
  });

  it("rejects a damaged archive (65) and an archive name of no known kind (64)", {
    timeout: 60_000,
  }, async () => {
    const plain = join(cwd, "p.tar");
    expect((await kura(["backup", "-o", plain], cwd, env)).code).toBe(0);
    const bytes = await readFile(plain);
    const at = bytes.indexOf(Buffer.from("object a"));
    bytes[at] = (bytes[at] as number) ^ 1;
    await writeFile(plain, bytes);
    const damaged = await kura(["restore", "-i", plain], cwd, { ...env, KURA_DATA_DIR: join(cwd, "t2") });
    expect(damaged.code).toBe(65);
    expect(damaged.stderr).toContain("BACKUP_CORRUPT");

    const zip = await kura(["backup", "-o", join(cwd, "b.zip")], cwd, env);
    expect(zip.code).toBe(64);
  });

  it("an incremental backup restores with --base, and is refused without it (69)", {
    timeout: 120_000,
  }, async () => {
    const full = join(cwd, "full.tar.gz");
    expect((await kura(["backup", "-o", full], cwd, env)).code).toBe(0);
    const later = (await source.tenant("acme").messages.append("c", { role: "user", content: "later heron" }))
      .id;
    const inc = join(cwd, "inc.tar.gz");
    const made = await kura(["backup", "-o", inc, "--incremental-from", full, "--json"], cwd, env);
    expect(made.code).toBe(0);
    const result = JSON.parse(made.stdout) as { bodies: { count: number }; in_base: number };
    expect(result.bodies.count).toBe(1);
    expect(result.in_base).toBeGreaterThan(0);

    const alone = await kura(["restore", "-i", inc], cwd, { ...env, KURA_DATA_DIR: join(cwd, "t-alone") });
    expect(alone.code).toBe(69);
    expect(alone.stderr).toContain("BACKUP_UNSUPPORTED");

    const target = { ...env, KURA_DATA_DIR: join(cwd, "t-inc") };
    const restored = await kura(["restore", "-i", inc, "--base", full], cwd, target);
    expect(restored.code).toBe(0);
    const k = await Kura.open({ data_dir: join(cwd, "t-inc") });
    try {
      const t = k.tenant("acme");
      expect((await t.messages.get(later)).content).toBe("later heron");
      expect((await t.messages.get(ids[0] as string)).content).toBe("alpha heron");
      expect((await t.search("heron")).hits.length).toBe(3);
    } finally {
      await k.close();
    }
  });
});
