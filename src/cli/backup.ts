/**
 * `kura backup --output FILE` and `kura restore --input FILE` (CONS-4, CLI-1): one archive of a
 * live deployment (`engine/backup.ts`), and its restore into the empty backends of any
 * configuration (`engine/restore.ts`), then the search index (and message embeddings) rebuilt.
 *
 * A backup opens only the data planes (`open/planes.ts`): beside a running `kura serve` — on
 * SQLite too, whose snapshot is a read-only connection of its own — it reads and holds the body
 * pin, nothing else. A restore runs alone on its target (SERVER_RUNNING beside a server).
 *
 * Exit codes: 0 done; 1 the backup was written but the source lacks bodies its catalog names
 * (listed as missing or corrupt: run `kura fsck`); errors as every command's (`exit-codes.ts`):
 * 65 a corrupt archive (BACKUP_CORRUPT), 73 a non-empty target (RESTORE_TARGET_NOT_EMPTY),
 * 75 another backup running (BACKUP_RUNNING) or a server on the restore target, 69 a newer
 * archive or a compression this Node.js lacks (BACKUP_UNSUPPORTED), 64 bad flags.
 */
import { createReadStream, createWriteStream } from "node:fs";
import { open, readFile, rename, rm } from "node:fs/promises";
import { hostname } from "node:os";
import type { Command } from "commander";
import { type BackupProgress, writeBackup } from "../engine/backup.js";
import {
  type BackupManifest,
  type Compression,
  compressionFromMagic,
  compressionOf,
  readManifest,
} from "../engine/backup-archive.js";
import { claimExclusive } from "../engine/presence.js";
import { type RestoreOptions, type RestoreProgress, restoreBackup } from "../engine/restore.js";
import { Kura } from "../kura.js";
import { loadConfig } from "../open/config.js";
import { openDataPlanes } from "../open/planes.js";
import { formatBytes, printJson } from "./output.js";
import { progressReporter } from "./progress.js";

export const BACKUP_EXIT = { ok: 0, damaged: 1 } as const;

const rate = (n: number, seconds: number) => (seconds > 0 ? n / seconds : 0);

/** An archive's compression, from its first bytes. */
async function compressionOfFile(path: string): Promise<Compression> {
  const head = Buffer.alloc(4);
  const file = await open(path, "r");
  try {
    await file.read(head, 0, 4, 0);
  } finally {
    await file.close();
  }
  return compressionFromMagic(head);
}

/** The manifest of an earlier backup: a `manifest.json` of its own, or read from the archive. */
async function manifestOf(path: string): Promise<BackupManifest> {
  if (path.endsWith(".json")) return JSON.parse(await readFile(path, "utf8")) as BackupManifest;
  return readManifest(createReadStream(path), await compressionOfFile(path));
}

export function registerBackupCommands(program: Command): void {
  program
    .command("backup")
    .description(
      "write one archive (.tar, .tar.gz, .tar.zst) of the catalog at one point in time, the bodies it " +
        "references, session files and KV, while kura serve keeps running",
    )
    .requiredOption("-o, --output <file>", "the archive to write (.tar, .tar.gz or .tar.zst)")
    .option("-c, --config <file>", "YAML config file (default: $KURA_CONFIG)")
    .option(
      "--incremental-from <file>",
      "an earlier archive (or its manifest.json): bodies it holds are left out (restore with --base)",
    )
    .option("--json", "print the result as JSON")
    .action(async (opts: { output: string; config?: string; incrementalFrom?: string; json?: boolean }) => {
      const compression = compressionOf(opts.output);
      const base = opts.incrementalFrom === undefined ? undefined : await manifestOf(opts.incrementalFrom);
      const config = await loadConfig({ env: process.env, ...(opts.config ? { file: opts.config } : {}) });
      const planes = await openDataPlanes(config);
      const partial = `${opts.output}.partial`;
      const progress = progressReporter<BackupProgress>("backup", {
        json: opts.json === true,
        describe: (p) => formatBytes(p.written),
        total: (p) => ("total" in p && typeof p.total === "number" ? p.total : undefined),
      });
      try {
        const summary = await writeBackup(planes, createWriteStream(partial), {
          compression,
          owner: `backup:${hostname()}:${process.pid}`,
          base,
          onProgress: (p) => progress.report(p),
        });
        progress.stop();
        // The archive gets its name only once complete: a file of that name is a whole backup.
        await rename(partial, opts.output);
        const m = summary.manifest;
        const rows = Object.values(m.tables).reduce((n, t) => n + t.rows, 0);
        const damaged = m.missing_bodies.length + m.corrupt_bodies.length;
        if (opts.json)
          printJson({
            output: opts.output,
            created_at: m.created_at,
            bytes: summary.written,
            seconds: summary.seconds,
            bodies: m.bodies,
            session_files: m.session_files,
            kv_entries: m.kv_entries,
            vector_collections: m.vector_collections ?? { count: 0, items: 0 },
            tables: Object.fromEntries(Object.entries(m.tables).map(([t, v]) => [t, v.rows])),
            missing_bodies: m.missing_bodies,
            corrupt_bodies: m.corrupt_bodies,
            in_base: m.in_base.length,
            mb_per_s: rate(m.bodies.bytes / 1e6, summary.seconds),
            objects_per_s: rate(m.bodies.count, summary.seconds),
          });
        else {
          process.stdout.write(
            `backed up ${m.bodies.count} bodies (${formatBytes(m.bodies.bytes)}), ${m.session_files.count} session files, ` +
              `${m.kv_entries} KV entries, ${m.vector_collections?.items ?? 0} vectors of ${m.vector_collections?.count ?? 0} collection(s) ` +
              `and ${rows} catalog rows as of ${m.created_at}\n` +
              (m.in_base.length > 0 ? `${m.in_base.length} bodies left to the base archive\n` : "") +
              `wrote ${opts.output} (${formatBytes(summary.written)}) in ${summary.seconds.toFixed(1)} s\n`,
          );
          if (damaged > 0)
            process.stdout.write(
              `the source lacks ${m.missing_bodies.length} bodies and has ${m.corrupt_bodies.length} corrupt ones its catalog names (see the manifest; run kura fsck)\n`,
            );
        }
        if (damaged > 0) process.exitCode = BACKUP_EXIT.damaged;
      } catch (e) {
        progress.stop();
        await rm(partial, { force: true });
        throw e;
      } finally {
        await planes.close();
      }
    });

  program
    .command("restore")
    .description(
      "restore an archive of kura backup into the empty backends of a configuration (any kind), then rebuild the search index",
    )
    .requiredOption("-i, --input <file>", "the archive to read")
    .option("-c, --config <file>", "YAML config file of the target (default: $KURA_CONFIG)")
    .option("--force", "restore into a target that holds data, keeping what exists under the same keys")
    .option("--base <files...>", "for an incremental archive: its base archives (every one of the chain)")
    .option("--no-reindex", "do not rebuild the search index (and message embeddings) afterwards")
    .option("--json", "print the result as JSON")
    .action(
      async (opts: {
        input: string;
        config?: string;
        force?: boolean;
        base?: string[];
        reindex: boolean;
        json?: boolean;
      }) => {
        const compression = await compressionOfFile(opts.input);
        let incremental: RestoreOptions["incremental"];
        if (opts.base && opts.base.length > 0) {
          const bases = [];
          for (const path of opts.base)
            bases.push({ open: () => createReadStream(path), compression: await compressionOfFile(path) });
          incremental = { manifest: await readManifest(createReadStream(opts.input), compression), bases };
        }
        const config = await loadConfig({ env: process.env, ...(opts.config ? { file: opts.config } : {}) });
        const planes = await openDataPlanes(config);
        const progress = progressReporter<RestoreProgress>("restore", {
          json: opts.json === true,
          describe: (p) => `(${formatBytes(p.read)} read)`,
          total: (p) => ("total" in p && typeof p.total === "number" ? p.total : undefined),
        });
        let summary: Awaited<ReturnType<typeof restoreBackup>>;
        try {
          // Nothing else may write the target meanwhile (nor serve a half-restored catalog).
          const alone = await claimExclusive(
            planes.catalog,
            `restore:${hostname()}:${process.pid}`,
            "kura restore",
          );
          try {
            summary = await restoreBackup(planes, createReadStream(opts.input), {
              compression,
              force: opts.force === true,
              ...(incremental ? { incremental } : {}),
              onProgress: (p) => progress.report(p),
            });
          } finally {
            await alone.stop();
          }
        } finally {
          progress.stop();
          await planes.close();
        }
        let reindexed: { messages: number; embedded: number | undefined } | undefined;
        if (opts.reindex) {
          const kura = await Kura.open(config, { env: process.env });
          try {
            const alone = await kura.claimExclusive(`restore:${hostname()}:${process.pid}`, "kura restore");
            try {
              const messages = await kura.rebuildSearch();
              const embedded = config.vector.embed_messages ? await kura.reembedMessages() : undefined;
              reindexed = { messages, embedded };
            } finally {
              await alone.stop();
            }
          } finally {
            await kura.close();
          }
        }
        const rows = Object.values(summary.tables).reduce((n, t) => n + t.rows, 0);
        const inserted = Object.values(summary.tables).reduce((n, t) => n + t.inserted, 0);
        if (opts.json)
          printJson({
            input: opts.input,
            created_at: summary.header.created_at,
            source: {
              catalog: summary.header.catalog.dialect,
              storage: summary.header.storage.backend,
              kv: summary.header.kv.backend,
            },
            seconds: summary.seconds,
            bodies: summary.bodies,
            session_files: summary.sessionFiles,
            kv_entries: summary.kvEntries,
            vectors: summary.vectors,
            tables: summary.tables,
            reindexed: reindexed ?? null,
            mb_per_s: rate(summary.bodies.bytes / 1e6, summary.seconds),
            objects_per_s: rate(summary.bodies.count, summary.seconds),
          });
        else {
          process.stdout.write(
            `restored ${summary.bodies.count} bodies (${formatBytes(summary.bodies.bytes)}), ${summary.sessionFiles} session files, ` +
              `${summary.kvEntries} KV entries, ${summary.vectors} collection vectors and ${inserted} of ${rows} catalog rows ` +
              `(backup of ${summary.header.created_at}) ` +
              `in ${summary.seconds.toFixed(1)} s\n`,
          );
          if (reindexed)
            process.stdout.write(
              `rebuilt the search index from ${reindexed.messages} message(s)` +
                (reindexed.embedded === undefined ? "\n" : ` and embedded ${reindexed.embedded}\n`),
            );
        }
      },
    );
}
