/**
 * `kura backup` and `kura restore` (CONS-4) on embedded defaults (SQLite + fs), beside `tar` of
 * the same data directory — the limit: a copy of the files with no snapshot, no checksums and no
 * backend neutrality. Bodies: small messages (about 1 KB each) and larger objects. Rates are of
 * the body bytes and bodies the backup holds, for Kura and tar alike, so a ratio is
 * tar's time ÷ Kura's. The restore is timed without the search rebuild (`kura reindex`) that
 * `kura restore` runs after it.
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { writeBackup } from "../../src/engine/backup.js";
import { restoreBackup } from "../../src/engine/restore.js";
import { Kura } from "../../src/kura.js";
import { resolveConfig } from "../../src/open/config.js";
import { openDataPlanes } from "../../src/open/planes.js";
import { type BenchContext, ratioOf, type Scenario } from "../lib.js";

const run = promisify(execFile);

async function timed<T>(work: () => Promise<T>): Promise<{ value: T; seconds: number }> {
  const started = performance.now();
  const value = await work();
  return { value, seconds: (performance.now() - started) / 1000 };
}

export const backup: Scenario = {
  name: "backup",
  async run(ctx: BenchContext) {
    const messages = ctx.quick ? 5_000 : 50_000;
    const objects = ctx.quick ? 50 : 400;
    const objectBytes = 256 * 1024;
    const source = join(ctx.dir, "source");
    const config = await resolveConfig({ data_dir: source }, { env: {} });

    const seeding = await Kura.open(config);
    const tenant = seeding.tenant("bench");
    const line = "the quick brown fox jumps over the lazy dog ".repeat(22);
    for (let i = 0; i < messages; i += 500)
      await tenant.messages.appendMany(
        `chat-${i % 20}`,
        Array.from({ length: Math.min(500, messages - i) }, (_, j) => ({
          role: "user",
          content: `${i + j} ${line}`,
        })),
      );
    for (let i = 0; i < objects; i++) await tenant.objects.put(`files/${i}.bin`, randomBytes(objectBytes));
    await seeding.close();

    const archive = join(ctx.dir, "kura.tar");
    const planes = await openDataPlanes(config);
    const made = await timed(async () => {
      try {
        return await writeBackup(planes, createWriteStream(archive), { compression: "none", owner: "bench" });
      } finally {
        await planes.close();
      }
    });
    const { bodies } = made.value.manifest;
    const tarFile = join(ctx.dir, "plain.tar");
    const tarred = await timed(() => run("tar", ["-cf", tarFile, "-C", source, "."]));

    const target = await resolveConfig({ data_dir: join(ctx.dir, "target") }, { env: {} });
    const into = await openDataPlanes(target);
    const restored = await timed(async () => {
      try {
        return await restoreBackup(into, createReadStream(archive), { compression: "none" });
      } finally {
        await into.close();
      }
    });
    const untarDir = join(ctx.dir, "untar");
    await mkdir(untarDir, { recursive: true });
    const untarred = await timed(() => run("tar", ["-xf", tarFile, "-C", untarDir]));

    const mb = bodies.bytes / 1e6;
    ctx.log(
      `${bodies.count} bodies, ${mb.toFixed(1)} MB: backup ${made.seconds.toFixed(2)} s (tar -cf ${tarred.seconds.toFixed(2)} s), ` +
        `restore ${restored.seconds.toFixed(2)} s (tar -xf ${untarred.seconds.toFixed(2)} s)`,
    );
    const rows = [
      ["backup", made.seconds, "tar -cf of the data directory", tarred.seconds],
      ["restore", restored.seconds, "tar -xf of that tar", untarred.seconds],
    ] as const;
    for (const [what, seconds, baseline, baseSeconds] of rows) {
      ctx.record({
        scenario: "backup",
        metric: `${what} MB/s (bodies)`,
        value: mb / seconds,
        unit: "MB/s",
        baseline,
        baseline_value: mb / baseSeconds,
        ratio: ratioOf(mb / seconds, mb / baseSeconds),
      });
      ctx.record({
        scenario: "backup",
        metric: `${what} objects/s`,
        value: bodies.count / seconds,
        unit: "objects/s",
        baseline,
        baseline_value: bodies.count / baseSeconds,
        ratio: ratioOf(bodies.count / seconds, bodies.count / baseSeconds),
      });
    }
  },
};
