/**
 * Restore (CONS-4): an archive of `backup.ts` into the planes of any configuration — a SQLite +
 * fs backup into PostgreSQL + S3 and back — read as a stream, entry by entry, each checked
 * against its SHA-256 before it is applied (`BACKUP_CORRUPT` otherwise), and the whole against
 * the manifest at the end.
 *
 * The target must be empty (no catalog row, KV entry or body) unless forced; a forced restore
 * keeps whatever exists under the same key (rows, KV keys; bodies are written again), so a
 * restore cut short can be run again. Bodies come before rows in the archive, so a restore cut
 * short leaves no row pointing at a missing body. KV versions start again at 1 (a KV write
 * cannot set one); vector collections' items are upserted into the target's indexes (opened,
 * and created, through `planes.vectors`); the full-text index and message embeddings are not in
 * the archive: rebuild them afterwards (`kura restore` does: `kura reindex`).
 */
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import tar from "tar-stream";
import { isKuraError, KuraError } from "../core/errors.js";
import { type BlobStore, type PutManyItem, putEach } from "../ports/blob-store.js";
import type { CatalogDumpRow } from "../ports/catalog.js";
import type { KvSetManyItem } from "../ports/kv-store.js";
import type { VectorIndex, VectorItem, VectorMetric } from "../ports/vector-index.js";
import { type BackupPlanes, KV_PACKR } from "./backup.js";
import {
  ARCHIVE_FORMAT,
  ARCHIVE_ROOT,
  ARCHIVE_VERSION,
  type ArchiveHeader,
  type BackupManifest,
  type Compression,
  corrupt,
  decompressor,
  type ManifestEntry,
  PAX_COLLECTION,
  PAX_CONTENT_TYPE,
  PAX_METADATA,
  PAX_SHA256,
  sha256Hex,
  verifying,
} from "./backup-archive.js";

/** Entries up to this size are read whole and checked before anything is written. */
const BUFFERED_ENTRY_BYTES = 8 * 1024 * 1024;
const LOAD_ROWS = 1000;
const KV_BATCH = 200;
const PUTS_IN_FLIGHT = 16;
const BATCH_BODIES = 64;
const BATCH_BYTES = 4 * 1024 * 1024;

/** An archive entry as tar-stream hands it out: its header, then its bytes. */
type Entry = AsyncIterable<Buffer> & { header: tar.Header };

const paxOf = (entry: Entry): Record<string, string> => (entry.header.pax ?? {}) as Record<string, string>;

export type RestorePlanes = Omit<BackupPlanes, "backends">;

export interface RestoreProgress {
  phase: "bodies" | "session-files" | "kv" | "vectors" | "catalog" | "done";
  /** Items of the phase done; `total` from the archive's manifest is unknown until its end. */
  done: number;
  /** Archive bytes read so far (before decompression). */
  read: number;
}

export interface RestoreOptions {
  compression: Compression;
  /** Restore into a target that holds data (keeping what exists under the same keys). */
  force?: boolean;
  onProgress?: (progress: RestoreProgress) => void;
  /**
   * For an incremental archive: its manifest (`readManifest`, read beforehand) and its base
   * archives (every one of its chain, any order), from which the bodies it names in `in_base`
   * are restored first.
   */
  incremental?: {
    manifest: BackupManifest;
    bases: readonly { open: () => Readable; compression: Compression }[];
  };
}

export interface RestoreSummary {
  header: ArchiveHeader;
  manifest: BackupManifest;
  bodies: { count: number; bytes: number };
  sessionFiles: number;
  kvEntries: number;
  /** Vector collections' items upserted. */
  vectors: number;
  /** Rows per table: in the archive, and new in the target (fewer when forced into one with data). */
  tables: Record<string, { rows: number; inserted: number }>;
  seconds: number;
}

/** What holds data in the target, empty if nothing does. */
export async function targetContents(planes: RestorePlanes): Promise<string[]> {
  const found: string[] = [];
  if (await planes.catalog.holdsData()) found.push("catalog rows");
  const kv = await planes.kv.scan("", { limit: 1, keysOnly: true });
  if (kv.items.length > 0) found.push("KV entries");
  const stores = new Set([...planes.stores.values(), planes.sessionFiles]);
  for (const store of stores) {
    const page = await store.list("", { limit: 1 });
    if (page.items.length > 0) {
      found.push("stored bodies");
      break;
    }
  }
  return found;
}

export async function restoreBackup(
  planes: RestorePlanes,
  input: Readable,
  options: RestoreOptions,
): Promise<RestoreSummary> {
  const clock = planes.clock ?? Date.now;
  const started = performance.now();
  if (!options.force) {
    const held = await targetContents(planes);
    if (held.length > 0)
      throw new KuraError(
        "RESTORE_TARGET_NOT_EMPTY",
        `the restore target holds ${held.join(", ")}: restore into empty backends, or pass --force`,
        { operation: "restore", context: { holds: held } },
      );
  }
  const targetSchema = await planes.catalog.schemaVersion();
  if (options.incremental) await restoreFromBases(planes, options.incremental);
  let read = 0;
  input.on("data", (chunk: Buffer) => {
    read += chunk.length;
  });
  const extract = tar.extract();
  const z = decompressor(options.compression);
  const feeding = (z ? pipeline(input, z, extract) : pipeline(input, extract)).catch((e: unknown) => {
    extract.destroy(e instanceof Error ? e : new Error(String(e)));
  });

  const seen: ManifestEntry[] = [];
  // Small bodies are written PUTS_IN_FLIGHT at a time; every one lands before the next KV or
  // catalog entry is applied (bodies before the rows that point at them).
  const puts = new Set<Promise<void>>();
  let putFailed: unknown;
  // Into an empty target every key is new: small bodies go in batches (`putMany`: the fs store
  // writes a batch on its writer thread); forced, a put each (the key may exist).
  const batches = new Map<BlobStore, { items: PutManyItem[]; bytes: number }>();
  const flush = async (store: BlobStore) => {
    const batch = batches.get(store);
    if (!batch || batch.items.length === 0) return;
    batches.delete(store);
    const items = batch.items;
    await startPut(
      Promise.resolve({
        write: (store.putMany ? store.putMany(items) : putEach(store, items)).then(() => undefined),
      }),
    );
  };
  const put = async (
    store: BlobStore,
    key: string,
    entry: Entry,
    name: string,
    known: { size: number; sha256: string },
  ) => {
    if (options.force || known.size > BUFFERED_ENTRY_BYTES)
      return startPut(putEntry(store, key, entry, name, known));
    const data = await readVerified(entry, name, known);
    const batch = batches.get(store) ?? { items: [], bytes: 0 };
    batches.set(store, batch);
    batch.items.push({ key, body: data, ...putOptions(entry, name) });
    batch.bytes += data.length;
    if (batch.items.length >= BATCH_BODIES || batch.bytes >= BATCH_BYTES) await flush(store);
  };
  const settlePuts = async () => {
    for (const store of [...batches.keys()]) await flush(store);
    await Promise.all(puts);
    if (putFailed !== undefined) throw putFailed;
  };
  const startPut = async (reading: Promise<{ write: Promise<void> }>) => {
    const { write } = await reading;
    const p = write.then(
      () => {
        puts.delete(p);
      },
      (e: unknown) => {
        puts.delete(p);
        putFailed ??= e;
      },
    );
    puts.add(p);
    if (puts.size >= PUTS_IN_FLIGHT) await Promise.race(puts);
    if (putFailed !== undefined) throw putFailed;
  };
  let header: ArchiveHeader | undefined;
  let manifest: BackupManifest | undefined;
  const summary = { bodies: { count: 0, bytes: 0 }, sessionFiles: 0, kvEntries: 0, vectors: 0 };
  /** Collections' indexes opened for their items, closed (saved) at the end. */
  const collections = new Map<string, Promise<VectorIndex>>();
  const tables: RestoreSummary["tables"] = {};
  const progress = (phase: RestoreProgress["phase"], done: number) =>
    options.onProgress?.({ phase, done, read });
  const primary = planes.stores.get("primary") ?? [...planes.stores.values()][0];
  if (primary === undefined)
    throw new KuraError("INVALID_ARGUMENT", "no blob store to restore into", { operation: "restore" });

  try {
    for await (const source of extract) {
      const entry = source as unknown as Entry;
      const path = entry.header.name;
      if (!path.startsWith(`${ARCHIVE_ROOT}/`)) throw corrupt(path, "not an entry of a Kura backup");
      const name = path.slice(ARCHIVE_ROOT.length + 1);
      if (manifest) throw corrupt(name, "an entry after the manifest");
      const size = entry.header.size ?? 0;
      if (name === "manifest.json") {
        manifest = parseJson(await readAll(entry), name) as BackupManifest;
        continue;
      }
      const sha256 = paxOf(entry)[PAX_SHA256];
      if (typeof sha256 !== "string" || !/^[0-9a-f]{64}$/.test(sha256))
        throw corrupt(name, "no SHA-256 in its header");
      const known = { size, sha256 };
      if (header === undefined) {
        if (name !== "header.json") throw corrupt(name, "the archive does not start with header.json");
        header = parseJson(await readVerified(entry, name, known), name) as ArchiveHeader;
        checkHeader(header, targetSchema, options.incremental !== undefined);
      } else if (name.startsWith("bodies/")) {
        const rest = name.slice("bodies/".length);
        const slash = rest.indexOf("/");
        if (slash <= 0) throw corrupt(name, "no store id in its name");
        const store = planes.stores.get(rest.slice(0, slash)) ?? primary;
        await put(store, rest.slice(slash + 1), entry, name, known);
        summary.bodies.count++;
        summary.bodies.bytes += size;
        if (summary.bodies.count % 50 === 0) progress("bodies", summary.bodies.count);
      } else if (name.startsWith("session-files/")) {
        await put(planes.sessionFiles, name.slice("session-files/".length), entry, name, known);
        summary.sessionFiles++;
        progress("session-files", summary.sessionFiles);
      } else if (name.startsWith("kv/")) {
        await settlePuts();
        const lines = jsonLines(await readVerified(entry, name, known), name);
        summary.kvEntries += await loadKv(planes, lines, name, clock(), options.force === true);
        progress("kv", summary.kvEntries);
      } else if (name.startsWith("vectors/")) {
        await settlePuts();
        const place = collectionOfEntry(paxOf(entry)[PAX_COLLECTION], name);
        const items = vectorLines(jsonLines(await readVerified(entry, name, known), name), place, name);
        const key = `${place.tenantId}\u0000${place.name}`;
        let index = collections.get(key);
        if (!index) {
          index = planes.vectors.open(place);
          index.catch(() => undefined);
          collections.set(key, index);
        }
        for (let i = 0; i < items.length; i += VECTOR_BATCH)
          await (await index).upsert(items.slice(i, i + VECTOR_BATCH));
        summary.vectors += items.length;
        progress("vectors", summary.vectors);
      } else if (name.startsWith("catalog/")) {
        await settlePuts();
        const table = name.split("/")[1] ?? "";
        const rows = jsonLines(await readVerified(entry, name, known), name) as CatalogDumpRow[];
        const t = tables[table] ?? { rows: 0, inserted: 0 };
        tables[table] = t;
        const load = table === "blob_refs" ? rows.filter(notMessageRef) : rows;
        for (let i = 0; i < load.length; i += LOAD_ROWS) {
          t.inserted += await planes.catalog.loadRows(table, load.slice(i, i + LOAD_ROWS));
        }
        t.rows += rows.length;
        progress(
          "catalog",
          Object.values(tables).reduce((n, x) => n + x.rows, 0),
        );
      } else {
        throw corrupt(name, "an entry of no known kind");
      }
      seen.push({ name, kind: kindOf(name), size, sha256 });
    }
    await settlePuts();
    await feeding;
    await closeAll(collections);
  } catch (e) {
    await closeAll(collections);
    await Promise.all(puts);
    extract.destroy();
    input.destroy();
    if (isKuraError(e)) throw e;
    throw corrupt("(archive)", `unreadable: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (header === undefined) throw corrupt("header.json", "missing: not a Kura backup");
  if (manifest === undefined) throw corrupt("manifest.json", "missing: the archive is cut short");
  checkManifest(manifest, seen);
  progress("done", 1);
  return { header, manifest, ...summary, tables, seconds: (performance.now() - started) / 1000 };
}

function kindOf(name: string): ManifestEntry["kind"] {
  if (name === "header.json") return "header";
  if (name.startsWith("bodies/")) return "body";
  if (name.startsWith("session-files/")) return "session-file";
  if (name.startsWith("kv/")) return "kv";
  if (name.startsWith("vectors/")) return "vectors";
  return "catalog";
}

function checkHeader(header: ArchiveHeader, targetSchema: number, withBases: boolean): void {
  if (header.format !== ARCHIVE_FORMAT) throw corrupt("header.json", "not a Kura backup");
  if (typeof header.version !== "number" || header.version > ARCHIVE_VERSION)
    throw new KuraError(
      "BACKUP_UNSUPPORTED",
      `the archive's format version ${header.version} is newer than this Kura's (${ARCHIVE_VERSION}): upgrade Kura`,
      { operation: "restore" },
    );
  if (header.catalog.schema_version > targetSchema)
    throw new KuraError(
      "BACKUP_UNSUPPORTED",
      `the archive's catalog schema (version ${header.catalog.schema_version}) is newer than the target's (${targetSchema}): upgrade Kura`,
      { operation: "restore" },
    );
  if (header.incremental_from !== undefined && !withBases)
    throw new KuraError(
      "BACKUP_UNSUPPORTED",
      `an incremental archive (on top of the backup of ${header.incremental_from.created_at}) is restored with its base archives (--base)`,
      { operation: "restore" },
    );
}

/** The bodies an incremental archive left out, from its bases: each checked, each put once. */
async function restoreFromBases(
  planes: RestorePlanes,
  incremental: NonNullable<RestoreOptions["incremental"]>,
): Promise<void> {
  const needed = new Map<string, ManifestEntry>();
  for (const e of incremental.manifest.in_base ?? []) needed.set(e.name, e);
  const primary = planes.stores.get("primary") ?? [...planes.stores.values()][0];
  for (const base of incremental.bases) {
    if (needed.size === 0) break;
    const input = base.open();
    const extract = tar.extract();
    const z = decompressor(base.compression);
    const feeding = (z ? pipeline(input, z, extract) : pipeline(input, extract)).catch((e: unknown) => {
      extract.destroy(e instanceof Error ? e : new Error(String(e)));
    });
    try {
      for await (const source of extract) {
        const entry = source as unknown as Entry;
        const name = entry.header.name.slice(ARCHIVE_ROOT.length + 1);
        const want = needed.get(name);
        if (want === undefined || paxOf(entry)[PAX_SHA256] !== want.sha256) {
          for await (const _ of entry);
          continue;
        }
        const rest = name.slice("bodies/".length);
        const slash = rest.indexOf("/");
        const store = planes.stores.get(rest.slice(0, slash)) ?? primary;
        if (store === undefined) throw corrupt(name, "no store to restore it into");
        await (await putEntry(store, rest.slice(slash + 1), entry, name, want)).write;
        needed.delete(name);
      }
      await feeding;
    } catch (e) {
      input.destroy();
      if (isKuraError(e)) throw e;
      throw corrupt("(base archive)", `unreadable: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  const [first] = needed.keys();
  if (first !== undefined)
    throw corrupt(
      first,
      `in none of the base archives given (${needed.size} bodies missing): pass every base of the chain`,
    );
}

/** Every entry the manifest lists was read, with the same size and SHA-256, and no other. */
function checkManifest(manifest: BackupManifest, seen: readonly ManifestEntry[]): void {
  if (manifest.format !== ARCHIVE_FORMAT || !Array.isArray(manifest.entries))
    throw corrupt("manifest.json", "not a Kura backup manifest");
  const listed = new Map(manifest.entries.map((e) => [e.name, e]));
  for (const e of seen) {
    const m = listed.get(e.name);
    if (m === undefined) throw corrupt(e.name, "not listed in the manifest");
    if (m.size !== e.size || m.sha256 !== e.sha256)
      throw corrupt(e.name, "its size or SHA-256 differ from the manifest's");
    listed.delete(e.name);
  }
  const [first] = listed.keys();
  if (first !== undefined)
    throw corrupt(first, `listed in the manifest but missing from the archive (${listed.size} in all)`);
}

async function readAll(entry: AsyncIterable<Buffer>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of entry) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function readVerified(
  entry: AsyncIterable<Buffer>,
  name: string,
  known: { size: number; sha256: string },
): Promise<Buffer> {
  const data = await readAll(entry);
  const actual = sha256Hex(data);
  if (data.length !== known.size || actual !== known.sha256)
    throw corrupt(
      name,
      `${data.length} bytes with SHA-256 ${actual}, expected ${known.size} bytes with ${known.sha256}`,
    );
  return data;
}

/**
 * Whether a `blob_refs` row is to be loaded: not the ref row of a message body, which archives of
 * earlier releases hold — a message body's ref is its message or version row (ADR 0032), and a
 * ref row beside it would outlive an erase of the message.
 */
function notMessageRef(row: CatalogDumpRow): boolean {
  return row.kind !== "message" && row.kind !== "message-version";
}

function parseJson(data: Buffer, name: string): unknown {
  try {
    return JSON.parse(data.toString("utf8"));
  } catch {
    throw corrupt(name, "not JSON");
  }
}

function jsonLines(data: Buffer, name: string): unknown[] {
  const out: unknown[] = [];
  for (const line of data.toString("utf8").split("\n"))
    if (line.length > 0) out.push(parseJson(Buffer.from(line), name));
  return out;
}

/**
 * A body or session file into `store`, checked before (small) or while (large) it is written.
 * Reads the entry (it must be consumed before the next one) and returns the write: still under
 * way for a small entry, done for a large one.
 */
async function putEntry(
  store: BlobStore,
  key: string,
  entry: Entry,
  name: string,
  known: { size: number; sha256: string },
): Promise<{ write: Promise<void> }> {
  const options = putOptions(entry, name);
  if (known.size <= BUFFERED_ENTRY_BYTES) {
    const data = await readVerified(entry, name, known);
    return { write: store.put(key, data, options).then(() => undefined) };
  }
  try {
    const result = await store.put(
      key,
      Readable.from(entry).pipe(verifying(name, known.size, known.sha256)),
      options,
    );
    if (result.sha256 !== known.sha256) throw corrupt(name, "stored with another SHA-256");
  } catch (e) {
    await store.delete(key).catch(() => undefined);
    throw e;
  }
  return { write: Promise.resolve() };
}

/** The content type and metadata an entry's header carries for its body. */
function putOptions(entry: Entry, name: string): { contentType: string; metadata?: Record<string, string> } {
  const pax = paxOf(entry);
  const metadata = pax[PAX_METADATA];
  return {
    contentType: pax[PAX_CONTENT_TYPE] ?? "application/octet-stream",
    ...(metadata ? { metadata: parseJson(Buffer.from(metadata), name) as Record<string, string> } : {}),
  };
}

interface KvLine {
  key: string;
  value: string;
  expires_at: number | null;
}

const VECTOR_BATCH = 500;
const METRICS: readonly string[] = ["l2", "cosine", "ip"] satisfies VectorMetric[];
const ENTRY_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** A vectors part's collection, from its pax header: checked, since it names where items go. */
function collectionOfEntry(
  raw: string | undefined,
  name: string,
): { tenantId: string; name: string; dimensions: number; metric: VectorMetric } {
  const c = (raw === undefined ? undefined : parseJson(Buffer.from(raw), name)) as
    | { tenant?: unknown; name?: unknown; dimensions?: unknown; metric?: unknown }
    | undefined;
  if (
    typeof c !== "object" ||
    c === null ||
    typeof c.tenant !== "string" ||
    !ENTRY_ID.test(c.tenant) ||
    typeof c.name !== "string" ||
    !ENTRY_ID.test(c.name) ||
    name.split("/")[1] !== c.tenant ||
    name.split("/")[2] !== c.name ||
    !Number.isInteger(c.dimensions) ||
    (c.dimensions as number) < 1 ||
    typeof c.metric !== "string" ||
    !METRICS.includes(c.metric)
  )
    throw corrupt(name, "a vectors part without a valid collection in its header");
  return {
    tenantId: c.tenant,
    name: c.name,
    dimensions: c.dimensions as number,
    metric: c.metric as VectorMetric,
  };
}

interface VectorLine {
  id: string;
  vector: string;
  user_id?: string;
  chat_id?: string;
  category?: string;
}

function vectorLines(
  lines: readonly unknown[],
  place: { tenantId: string; dimensions: number },
  name: string,
): VectorItem[] {
  return lines.map((raw) => {
    const line = raw as VectorLine;
    if (typeof line?.id !== "string" || typeof line.vector !== "string")
      throw corrupt(name, "a vector line without id or vector");
    const bytes = Buffer.from(line.vector, "base64");
    if (bytes.length !== place.dimensions * 4) throw corrupt(name, `vector ${line.id} has the wrong length`);
    const vector = new Float32Array(place.dimensions);
    new Uint8Array(vector.buffer).set(bytes);
    return {
      tenantId: place.tenantId,
      id: line.id,
      vector,
      ...(typeof line.user_id === "string" ? { userId: line.user_id } : {}),
      ...(typeof line.chat_id === "string" ? { chatId: line.chat_id } : {}),
      ...(typeof line.category === "string" ? { category: line.category } : {}),
    };
  });
}

/** Closes (and so saves) the collections' indexes a restore opened. */
async function closeAll(collections: Map<string, Promise<VectorIndex>>): Promise<void> {
  const opened = [...collections.values()];
  collections.clear();
  await Promise.all(opened.map(async (p) => (await p.catch(() => undefined))?.close()));
}

async function loadKv(
  planes: RestorePlanes,
  lines: readonly unknown[],
  name: string,
  now: number,
  force: boolean,
): Promise<number> {
  const items: KvSetManyItem[] = [];
  for (const raw of lines) {
    const line = raw as KvLine;
    if (typeof line?.key !== "string" || typeof line.value !== "string")
      throw corrupt(name, "a KV line without key or value");
    if (line.expires_at !== null && line.expires_at <= now) continue;
    const item: KvSetManyItem = { key: line.key, value: KV_PACKR.unpack(Buffer.from(line.value, "base64")) };
    if (line.expires_at !== null) item.ttlMs = line.expires_at - now;
    items.push(item);
  }
  if (force) {
    // Keys that exist keep their values.
    for (const item of items) {
      await planes.kv
        .set(item.key, item.value, { ifVersion: 0, ...(item.ttlMs ? { ttlMs: item.ttlMs } : {}) })
        .catch((e: unknown) => {
          if (!(isKuraError(e) && e.code === "KV_VERSION_CONFLICT")) throw e;
        });
    }
  } else {
    for (let i = 0; i < items.length; i += KV_BATCH) await planes.kv.setMany(items.slice(i, i + KV_BATCH));
  }
  return items.length;
}
