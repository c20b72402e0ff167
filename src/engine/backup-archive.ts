/**
 * The backup archive (CONS-4, ADR 0030): a tar stream, plain, gzip or zstd, that holds
 * everything backend-neutral under `kura-backup/`:
 *
 *   header.json                       format, version, when, the source's catalog dialect and schema
 *   bodies/{store id}/{blob key}      every body the catalog snapshot references, bytes as stored
 *   session-files/{key}               session files (not in the catalog)
 *   kv/part-NNNNNN.jsonl              KV entries: {key, value (MessagePack, base64), expires_at}
 *   vectors/{tenant}/{collection}/part-NNNNNN.jsonl
 *                                     a vector collection's items (its index is their store of
 *                                     record): {id, vector (f32 little-endian, base64), user_id?,
 *                                     chat_id?, category?}; the collection in pax `KURA.collection`
 *   catalog/{table}/part-NNNNNN.jsonl rows of each table as JSON objects, one per line
 *   manifest.json                     every entry above with its size and SHA-256, and counts
 *
 * Each entry also carries its SHA-256 in its own header (pax `KURA.sha256`), so a restore checks
 * an entry as it reads it, before applying it, and checks the manifest at the end. Bodies come
 * first and catalog rows last: a restore cut short leaves no row pointing at a missing body.
 * Written and read as streams: no entry larger than one catalog or KV part is held in memory.
 */
import { createHash } from "node:crypto";
import { Readable, Transform, type Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import * as zlib from "node:zlib";
import tar from "tar-stream";
import { KuraError } from "../core/errors.js";

export const ARCHIVE_ROOT = "kura-backup";
export const ARCHIVE_FORMAT = "kura-backup";
/** 2: vector collections' items (version 1 archives have none and restore as before). */
export const ARCHIVE_VERSION = 2;
/** Pax header attributes of an entry. */
export const PAX_SHA256 = "KURA.sha256";
export const PAX_CONTENT_TYPE = "KURA.content_type";
export const PAX_METADATA = "KURA.metadata";
/** A vectors part's collection: `{tenant, name, dimensions, metric}` as JSON. */
export const PAX_COLLECTION = "KURA.collection";

export type Compression = "none" | "gzip" | "zstd";
export type EntryKind = "header" | "body" | "session-file" | "kv" | "vectors" | "catalog";

export interface ManifestEntry {
  name: string;
  kind: EntryKind;
  size: number;
  sha256: string;
}

/** What `header.json` says, and the manifest repeats. */
export interface ArchiveHeader {
  format: typeof ARCHIVE_FORMAT;
  version: number;
  /** When the catalog snapshot was taken (ISO 8601). */
  created_at: string;
  catalog: { dialect: string; schema_version: number };
  storage: { backend: string };
  kv: { backend: string };
  /**
   * An incremental backup: bodies the base archive holds (same name and SHA-256) are left out
   * and listed in the manifest's `in_base`; a restore needs the base (and its own bases).
   */
  incremental_from?: { created_at: string } | undefined;
}

export interface BackupManifest extends ArchiveHeader {
  entries: ManifestEntry[];
  tables: Record<string, { rows: number; columns: readonly string[] }>;
  bodies: { count: number; bytes: number };
  session_files: { count: number; bytes: number };
  kv_entries: number;
  /** Vector collections copied, and their items (absent in version 1 archives). */
  vector_collections?: { count: number; items: number };
  /** Bodies the snapshot references that the store no longer had, or had with other bytes. */
  missing_bodies: string[];
  corrupt_bodies: string[];
  /** Body entries left out of an incremental backup: a base archive holds them. */
  in_base: ManifestEntry[];
}

/** The compression a file name asks for: `.tar`, `.tar.gz`/`.tgz`, `.tar.zst`. */
export function compressionOf(file: string): Compression {
  if (/\.(tar\.gz|tgz)$/i.test(file)) return "gzip";
  if (/\.tar\.zst$/i.test(file)) return "zstd";
  if (/\.tar$/i.test(file)) return "none";
  throw new KuraError("INVALID_ARGUMENT", `the archive name must end in .tar, .tar.gz or .tar.zst: ${file}`, {
    operation: "backup.output",
  });
}

type ZstdZlib = typeof zlib & {
  createZstdCompress?: () => Transform;
  createZstdDecompress?: () => Transform;
};

function zstd(which: "createZstdCompress" | "createZstdDecompress"): Transform {
  const make = (zlib as ZstdZlib)[which];
  if (typeof make !== "function")
    throw new KuraError(
      "BACKUP_UNSUPPORTED",
      `zstd needs a Node.js whose zlib has it (22.15 or later; this is ${process.version}): use .tar.gz`,
      { operation: "backup.compression" },
    );
  return make();
}

/** Whether this Node.js can write and read `.tar.zst`. */
export function zstdAvailable(): boolean {
  return typeof (zlib as ZstdZlib).createZstdCompress === "function";
}

function compressor(c: Compression): Transform | undefined {
  if (c === "gzip") return zlib.createGzip({ level: 6 });
  if (c === "zstd") return zstd("createZstdCompress");
  return undefined;
}

/** The compression of an archive from its first bytes (gzip and zstd magic numbers), else plain tar. */
export function compressionFromMagic(head: Buffer): Compression {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return "gzip";
  if (head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528) return "zstd";
  return "none";
}

export function decompressor(c: Compression): Transform | undefined {
  if (c === "gzip") return zlib.createGunzip();
  if (c === "zstd") return zstd("createZstdDecompress");
  return undefined;
}

export function sha256Hex(data: Buffer): string {
  return createHash("sha256").update(data).digest("hex");
}

/** A pass-through that fails at its end unless the bytes had `size` and `sha256`. */
export function verifying(name: string, size: number, sha256: string): Transform {
  const hash = createHash("sha256");
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      seen += chunk.length;
      cb(null, chunk);
    },
    flush(cb) {
      const actual = hash.digest("hex");
      if (seen !== size || actual !== sha256)
        cb(corrupt(name, `${seen} bytes with SHA-256 ${actual}, expected ${size} bytes with ${sha256}`));
      else cb();
    },
  });
}

export function corrupt(name: string, why: string): KuraError {
  return new KuraError("BACKUP_CORRUPT", `archive entry ${name}: ${why}`, {
    operation: "restore",
    context: { entry: name },
  });
}

/** Writes entries into a tar stream, compressed into `out`, recording each in the manifest. */
export class ArchiveWriter {
  readonly entries: ManifestEntry[] = [];
  private readonly pack = tar.pack();
  private readonly done: Promise<void>;
  private bytes = 0;

  constructor(out: Writable, compression: Compression) {
    const z = compressor(compression);
    const counter = new Transform({
      transform: (chunk: Buffer, _enc, cb) => {
        this.bytes += chunk.length;
        cb(null, chunk);
      },
    });
    const stages = z ? [this.pack, z, counter, out] : [this.pack, counter, out];
    this.done = (pipeline as (...s: unknown[]) => Promise<void>)(...stages);
    this.done.catch(() => undefined);
  }

  /** Bytes written to the output so far (compressed). */
  get written(): number {
    return this.bytes;
  }

  async addBuffer(
    name: string,
    kind: EntryKind,
    data: Buffer,
    pax: Record<string, string> = {},
  ): Promise<ManifestEntry> {
    return this.addChecked(name, kind, data, sha256Hex(data), pax);
  }

  /**
   * An entry whose bytes are in memory and were checked against `sha256` already (a body read
   * whole against its recorded checksum): handed to the tar stream at once, no stream per entry.
   * The entry's callback comes once the tar stream took the bytes below its high-water mark,
   * so a slow output holds the writer back.
   */
  async addChecked(
    name: string,
    kind: EntryKind,
    data: Buffer,
    sha256: string,
    pax: Record<string, string> = {},
  ): Promise<ManifestEntry> {
    const header = {
      name: `${ARCHIVE_ROOT}/${name}`,
      size: data.length,
      mode: 0o644,
      mtime: new Date(0),
      pax: { [PAX_SHA256]: sha256, ...pax },
    };
    await Promise.race([
      new Promise<void>((resolve, reject) => {
        this.pack.entry(header, data, (e?: Error | null) => (e ? reject(e) : resolve()));
      }),
      this.done,
    ]);
    const record: ManifestEntry = { name, kind, size: data.length, sha256 };
    this.entries.push(record);
    return record;
  }

  /** An entry of known size and SHA-256, its bytes checked as they pass. */
  async addStream(
    name: string,
    kind: EntryKind,
    known: { size: number; sha256: string },
    body: Readable,
    pax: Record<string, string> = {},
  ): Promise<ManifestEntry> {
    const path = `${ARCHIVE_ROOT}/${name}`;
    const entry = this.pack.entry({
      name: path,
      size: known.size,
      mode: 0o644,
      mtime: new Date(0),
      pax: { [PAX_SHA256]: known.sha256, ...pax },
    });
    await Promise.race([pipeline(body, verifying(name, known.size, known.sha256), entry), this.done]);
    const record: ManifestEntry = { name, kind, size: known.size, sha256: known.sha256 };
    this.entries.push(record);
    return record;
  }

  /** Writes the manifest last and waits until the output has everything. */
  async finish(manifest: Omit<BackupManifest, "entries">): Promise<BackupManifest> {
    const full: BackupManifest = { ...manifest, entries: [...this.entries] };
    const data = Buffer.from(`${JSON.stringify(full, null, 1)}\n`, "utf8");
    const entry = this.pack.entry({
      name: `${ARCHIVE_ROOT}/manifest.json`,
      size: data.length,
      mode: 0o644,
      mtime: new Date(0),
    });
    await pipeline(Readable.from([data]), entry);
    this.pack.finalize();
    await this.done;
    return full;
  }

  /** Stop writing after a failure (the output is left incomplete: no manifest). */
  abort(e: unknown): void {
    this.pack.destroy(e instanceof Error ? e : new Error(String(e)));
  }
}

/**
 * The manifest of an archive, read through to its end (nothing else is kept): the base of an
 * incremental backup, or what an incremental restore needs from its bases.
 */
export async function readManifest(input: Readable, compression: Compression): Promise<BackupManifest> {
  const extract = tar.extract();
  const z = decompressor(compression);
  const feeding = (z ? pipeline(input, z, extract) : pipeline(input, extract)).catch((e: unknown) => {
    extract.destroy(e instanceof Error ? e : new Error(String(e)));
  });
  let manifest: BackupManifest | undefined;
  try {
    for await (const entry of extract) {
      if (entry.header.name !== `${ARCHIVE_ROOT}/manifest.json`) {
        for await (const _ of entry);
        continue;
      }
      const chunks: Buffer[] = [];
      for await (const chunk of entry) chunks.push(chunk as Buffer);
      manifest = JSON.parse(Buffer.concat(chunks).toString("utf8")) as BackupManifest;
    }
    await feeding;
  } catch (e) {
    input.destroy();
    throw corrupt("(archive)", `unreadable: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (manifest?.format !== ARCHIVE_FORMAT || !Array.isArray(manifest.entries))
    throw corrupt("manifest.json", "missing: not a whole Kura backup");
  manifest.in_base ??= [];
  return manifest;
}
