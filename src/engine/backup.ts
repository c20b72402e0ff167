/**
 * Online backup (CONS-4): one archive (`backup-archive.ts`) of a live deployment, while its
 * servers keep writing.
 *
 * 1. Pin the bodies (`backup-pin.ts`): from now on no body is deleted, so every body the
 *    snapshot references stays readable until the copy is done.
 * 2. Open the catalog snapshot: every table as of one point in time. Every write acknowledged
 *    before the backup started is in it; every write committed after it is not — not even in
 *    part, since a write's rows, refs and events commit in one transaction.
 * 3. Copy the bodies the snapshot's blob refs name, each checked against its recorded SHA-256;
 *    then the session files and the KV entries as they are when they are read (those planes
 *    have no transaction with the catalog), then the items of every vector collection whose
 *    definition the KV copy held (the collection's index is their store of record), as they
 *    are when read; then the snapshot's rows, table by table.
 * 4. Write the manifest, close the snapshot, release the pin.
 *
 * The full-text index, message embeddings and memories' index are projections of the catalog
 * and KV: a restore rebuilds them.
 */
import type { Writable } from "node:stream";
import { Packr } from "msgpackr";
import { isKuraError } from "../core/errors.js";
import type { BlobStore } from "../ports/blob-store.js";
import type { Catalog, CatalogDumpRow, CatalogSnapshot } from "../ports/catalog.js";
import type { KvStore } from "../ports/kv-store.js";
import type { VectorIndexes, VectorIndexPlace, VectorMetric } from "../ports/vector-index.js";
import {
  ARCHIVE_FORMAT,
  ARCHIVE_VERSION,
  type ArchiveHeader,
  ArchiveWriter,
  type BackupManifest,
  type Compression,
  type ManifestEntry,
  PAX_COLLECTION,
  PAX_CONTENT_TYPE,
  PAX_METADATA,
} from "./backup-archive.js";
import { pinBodies } from "./backup-pin.js";
import { UPLOAD_STATE_PREFIX } from "./uploads.js";

/** KV values as the archive holds them: MessagePack, typed arrays and buffers kept. */
export const KV_PACKR = new Packr({ moreTypes: true, useRecords: false });

/** Bodies up to this size are read whole (a damaged one is then recorded and skipped). */
const BUFFERED_BODY_BYTES = 8 * 1024 * 1024;
/** A catalog or KV part closes at this many bytes of JSON lines. */
const PART_BYTES = 8 * 1024 * 1024;
const ROWS_PAGE = 1000;
/** Bodies read ahead of the one the archive takes next. */
const READ_AHEAD = 16;

/** The planes of a deployment, as a backup reads them and a restore writes them. */
export interface BackupPlanes {
  catalog: Catalog;
  /** Every configured store by id; `primary` is where new bodies go. */
  stores: ReadonlyMap<string, BlobStore>;
  /** Where session files live (the primary store, or a store of its own). */
  sessionFiles: BlobStore;
  kv: KvStore;
  /** The configuration's vector indexes: tenant collections are read (`scan`) and restored. */
  vectors: VectorIndexes;
  /** The configured backends, for the header. */
  backends: { storage: string; kv: string };
  clock?: () => number;
}

export interface BackupProgress {
  phase: "bodies" | "session-files" | "kv" | "vectors" | "catalog" | "done";
  /** Items of the phase done (bodies, files, entries, vectors, rows). */
  done: number;
  /** Items of the phase in all, when known. */
  total: number | undefined;
  /** Archive bytes written so far (after compression). */
  written: number;
}

export interface BackupOptions {
  compression: Compression;
  /** Who holds the body pin (host and pid for the CLI). */
  owner: string;
  onProgress?: (progress: BackupProgress) => void;
  /**
   * The manifest of an earlier backup (`readManifest`): bodies it holds or names in `in_base`,
   * with the same SHA-256, are left out of this one (an incremental backup).
   */
  base?: BackupManifest | undefined;
  /** Called once the snapshot is open (tests: writes after it must not be in the archive). */
  afterSnapshot?: () => Promise<void>;
}

export interface BackupSummary {
  manifest: BackupManifest;
  /** Archive bytes written (compressed). */
  written: number;
  seconds: number;
}

/** Writes a backup of `planes` into `out` (closed at the end). */
export async function writeBackup(
  planes: BackupPlanes,
  out: Writable,
  options: BackupOptions,
): Promise<BackupSummary> {
  const clock = planes.clock ?? Date.now;
  const started = performance.now();
  const pin = await pinBodies(planes.catalog, options.owner, clock);
  let snapshot: CatalogSnapshot | undefined;
  let archive: ArchiveWriter | undefined;
  try {
    snapshot = await planes.catalog.openSnapshot();
    const createdAt = new Date(clock()).toISOString();
    await options.afterSnapshot?.();
    archive = new ArchiveWriter(out, options.compression);
    const header: ArchiveHeader = {
      format: ARCHIVE_FORMAT,
      version: ARCHIVE_VERSION,
      created_at: createdAt,
      catalog: { dialect: planes.catalog.dialect, schema_version: snapshot.schemaVersion },
      storage: { backend: planes.backends.storage },
      kv: { backend: planes.backends.kv },
      ...(options.base ? { incremental_from: { created_at: options.base.created_at } } : {}),
    };
    await archive.addBuffer("header.json", "header", Buffer.from(`${JSON.stringify(header, null, 1)}\n`));
    const w = archive;
    const progress = (phase: BackupProgress["phase"], done: number, total?: number) =>
      options.onProgress?.({ phase, done, total, written: w.written });

    const bodies = await copyBodies(planes, snapshot, w, options.base, progress);
    const sessionFiles = await copySessionFiles(planes, w, progress);
    const collections: CollectionPlace[] = [];
    const kvEntries = await copyKv(planes.kv, w, clock, progress, collections);
    const vectors = await copyCollections(planes.vectors, collections, w, progress);
    const tables = await copyRows(snapshot, w, progress);
    const manifest = await w.finish({
      ...header,
      tables,
      bodies: { count: bodies.count, bytes: bodies.bytes },
      session_files: sessionFiles,
      kv_entries: kvEntries,
      vector_collections: vectors,
      missing_bodies: bodies.missing,
      corrupt_bodies: bodies.corrupt,
      in_base: bodies.inBase,
    });
    progress("done", 1, 1);
    return { manifest, written: w.written, seconds: (performance.now() - started) / 1000 };
  } catch (e) {
    archive?.abort(e);
    if (!archive) out.destroy();
    throw e;
  } finally {
    await snapshot?.close().catch(() => undefined);
    await pin.release();
  }
}

interface BodyCopy {
  count: number;
  bytes: number;
  missing: string[];
  corrupt: string[];
  inBase: ManifestEntry[];
}

/**
 * Every body the snapshot references, as rows with `store_id`, `blob_key`, `size_bytes` and
 * `checksum`: the ref rows (objects), every message version row, and the message rows whose
 * version has no version row (unedited messages) — a message body's ref is its row.
 */
async function* bodyRefs(snapshot: CatalogSnapshot): AsyncIterable<CatalogDumpRow[]> {
  const versions = new Set<string>();
  for await (const page of snapshot.rows("message_versions", { pageSize: ROWS_PAGE })) {
    for (const v of page)
      versions.add(`${String(v.tenant_id)}\0${String(v.message_id)}\0${String(v.version)}`);
    yield page;
  }
  // A ref row of a message body (left by an earlier release) repeats a row read below.
  for await (const page of snapshot.rows("blob_refs", { pageSize: ROWS_PAGE }))
    yield page.filter((r) => r.kind !== "message" && r.kind !== "message-version");
  for await (const page of snapshot.rows("messages", { pageSize: ROWS_PAGE })) {
    const unversioned = page.filter(
      (m) => !versions.has(`${String(m.tenant_id)}\0${String(m.id)}\0${String(m.version)}`),
    );
    if (unversioned.length > 0) yield unversioned;
  }
}

async function copyBodies(
  planes: BackupPlanes,
  snapshot: CatalogSnapshot,
  archive: ArchiveWriter,
  base: BackupManifest | undefined,
  progress: (phase: "bodies", done: number, total?: number) => void,
): Promise<BodyCopy> {
  const inBase = new Map<string, ManifestEntry>();
  for (const e of [...(base?.entries ?? []), ...(base?.in_base ?? [])])
    if (e.kind === "body") inBase.set(`${e.name}\0${e.sha256}`, e);
  let total = 0;
  for await (const page of bodyRefs(snapshot)) total += page.length;
  const copy: BodyCopy = { count: 0, bytes: 0, missing: [], corrupt: [], inBase: [] };
  let done = 0;
  progress("bodies", 0, total);
  for await (const page of bodyRefs(snapshot)) {
    const refs = page.flatMap((ref) => {
      const storeId = String(ref.store_id);
      const key = String(ref.blob_key);
      const name = `bodies/${storeId}/${key}`;
      const earlier = inBase.get(`${name}\0${String(ref.checksum)}`);
      if (earlier) {
        copy.inBase.push(earlier);
        done++;
        return [];
      }
      return {
        key,
        name,
        store: planes.stores.get(storeId) ?? planes.stores.get("primary"),
        known: { size: Number(ref.size_bytes), sha256: String(ref.checksum) },
      };
    });
    // Reads run READ_AHEAD bodies ahead of the archive, which takes them in order.
    const reads: Promise<Fetched>[] = [];
    const readAt = (i: number) => {
      const ref = refs[i];
      if (ref === undefined || reads[i] !== undefined) return;
      const read = fetchBody(ref.store, ref.key, ref.known);
      // A failure is thrown where the body's turn comes; reads ahead of a failure are abandoned.
      read.catch(() => undefined);
      reads[i] = read;
    };
    for (let i = 0; i < refs.length; i++) {
      for (let j = i; j < Math.min(refs.length, i + READ_AHEAD); j++) readAt(j);
      const ref = refs[i] as (typeof refs)[number];
      const fetched = await (reads[i] as Promise<Fetched>);
      reads[i] = DONE;
      done++;
      if (fetched.kind === "missing") copy.missing.push(ref.name);
      else if (fetched.kind === "corrupt") copy.corrupt.push(ref.name);
      else {
        if (fetched.kind === "data")
          await archive.addChecked(ref.name, "body", fetched.data, ref.known.sha256, pax(fetched.info));
        else {
          const { info, body } = await (ref.store as BlobStore).get(ref.key, {
            expectedSha256: ref.known.sha256,
          });
          await archive.addStream(ref.name, "body", ref.known, body, pax(info));
        }
        copy.count++;
        copy.bytes += ref.known.size;
      }
      if (done % 50 === 0) progress("bodies", done, total);
    }
  }
  progress("bodies", done, total);
  return copy;
}

type Fetched =
  | { kind: "data"; info: { contentType: string; metadata: Record<string, string> }; data: Buffer }
  | { kind: "large" }
  | { kind: "missing" }
  | { kind: "corrupt" };

const DONE: Promise<Fetched> = Promise.resolve({ kind: "missing" });

/** A body read whole and checked by the store against its recorded SHA-256; large ones are streamed later. */
async function fetchBody(
  store: BlobStore | undefined,
  key: string,
  known: { size: number; sha256: string },
): Promise<Fetched> {
  if (store === undefined) return { kind: "missing" };
  if (known.size > BUFFERED_BODY_BYTES) return { kind: "large" };
  try {
    const { info, data } = await store.getBuffer(key, { expectedSha256: known.sha256 });
    return data.length === known.size ? { kind: "data", info, data } : { kind: "corrupt" };
  } catch (e) {
    if (isKuraError(e) && e.code === "BLOB_NOT_FOUND") return { kind: "missing" };
    if (isKuraError(e) && e.code === "BLOB_CHECKSUM_MISMATCH") return { kind: "corrupt" };
    throw e;
  }
}

function pax(info: { contentType: string; metadata: Record<string, string> }): Record<string, string> {
  const out: Record<string, string> = { [PAX_CONTENT_TYPE]: info.contentType };
  if (Object.keys(info.metadata).length > 0) out[PAX_METADATA] = JSON.stringify(info.metadata);
  return out;
}

/**
 * Session files: `{tenant}/sessions/…` of the session-files store (every key when the store is
 * theirs alone), read whole and as they are now.
 */
async function copySessionFiles(
  planes: BackupPlanes,
  archive: ArchiveWriter,
  progress: (phase: "session-files", done: number) => void,
): Promise<{ count: number; bytes: number }> {
  const store = planes.sessionFiles;
  const shared = [...planes.stores.values()].includes(store);
  let count = 0;
  let bytes = 0;
  let cursor: string | undefined;
  do {
    const page = await store.list("", { limit: 1000, ...(cursor ? { cursor } : {}) });
    cursor = page.cursor;
    for (const item of page.items) {
      if (shared && item.key.split("/")[1] !== "sessions") continue;
      let got: { info: { contentType: string; metadata: Record<string, string> }; data: Buffer };
      try {
        got = await store.getBuffer(item.key);
      } catch (e) {
        // Expired and removed since the listing.
        if (isKuraError(e) && e.code === "BLOB_NOT_FOUND") continue;
        throw e;
      }
      await archive.addBuffer(`session-files/${item.key}`, "session-file", got.data, pax(got.info));
      count++;
      bytes += got.data.length;
    }
    progress("session-files", count);
  } while (cursor);
  return { count, bytes };
}

/** A tenant collection's place, from its definition in the KV plane. */
type CollectionPlace = VectorIndexPlace & { tenantId: string };

/**
 * The definition of a tenant's vector collection, if `key` holds one: `{tenant}:vcoll:{name}`
 * → `{name, dimensions, metric}` (`domains/vectors.ts`).
 */
export function collectionOf(key: string, value: unknown): CollectionPlace | undefined {
  const at = key.indexOf(":vcoll:");
  if (at <= 0 || key.indexOf(":") !== at) return undefined;
  const def = value as { name?: unknown; dimensions?: unknown; metric?: unknown } | null;
  if (typeof def !== "object" || def === null) return undefined;
  const name = key.slice(at + ":vcoll:".length);
  if (def.name !== name || !Number.isInteger(def.dimensions) || typeof def.metric !== "string")
    return undefined;
  return {
    tenantId: key.slice(0, at),
    name,
    dimensions: def.dimensions as number,
    metric: def.metric as VectorMetric,
  };
}

/**
 * Every KV entry as it is when read: JSON lines of {key, value (MessagePack, base64), expires_at}.
 * Not the states of resumable uploads in progress: their parts are not bodies of record, so a
 * restored state would name parts the target lacks; the client starts such an upload again.
 */
async function copyKv(
  kv: KvStore,
  archive: ArchiveWriter,
  clock: () => number,
  progress: (phase: "kv", done: number) => void,
  collections: CollectionPlace[],
): Promise<number> {
  const part = new PartWriter(archive, "kv", "kv");
  let cursor: string | undefined;
  let entries = 0;
  const seen = kv.capabilities.orderedScan ? undefined : new Set<string>();
  do {
    const page = await kv.scan("", { limit: 1000, ...(cursor ? { cursor } : {}) });
    cursor = page.cursor;
    for (const item of page.items) {
      if (seen) {
        if (seen.has(item.key)) continue;
        seen.add(item.key);
      }
      if (item.expiresAt !== undefined && item.expiresAt <= clock()) continue;
      if (item.key.startsWith(UPLOAD_STATE_PREFIX)) continue;
      const collection = collectionOf(item.key, item.value);
      if (collection) collections.push(collection);
      const value = KV_PACKR.pack(item.value).toString("base64");
      await part.add({ key: item.key, value, expires_at: item.expiresAt ?? null });
      entries++;
    }
    progress("kv", entries);
  } while (cursor);
  await part.close();
  return entries;
}

/** Items of a scan page: a vectors part holds this many lines at most, so a restore reads little at once. */
const VECTORS_PAGE = 1000;

/** Each collection's items as its index holds them now, in parts of JSON lines. */
async function copyCollections(
  indexes: VectorIndexes,
  collections: readonly CollectionPlace[],
  archive: ArchiveWriter,
  progress: (phase: "vectors", done: number) => void,
): Promise<{ count: number; items: number }> {
  let items = 0;
  for (const place of collections) {
    const pax = {
      [PAX_COLLECTION]: JSON.stringify({
        tenant: place.tenantId,
        name: place.name,
        dimensions: place.dimensions,
        metric: place.metric,
      }),
    };
    const part = new PartWriter(archive, `vectors/${place.tenantId}/${place.name}`, "vectors", pax);
    let after: string | undefined;
    do {
      const page = await indexes.scan(place, {
        limit: VECTORS_PAGE,
        ...(after === undefined ? {} : { after }),
      });
      after = page.next;
      for (const item of page.items) {
        const v = item.vector;
        await part.add({
          id: item.id,
          vector: Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString("base64"),
          ...(item.userId === undefined ? {} : { user_id: item.userId }),
          ...(item.chatId === undefined ? {} : { chat_id: item.chatId }),
          ...(item.category === undefined ? {} : { category: item.category }),
        });
        items++;
      }
      progress("vectors", items);
    } while (after !== undefined);
    await part.close();
  }
  return { count: collections.length, items };
}

async function copyRows(
  snapshot: CatalogSnapshot,
  archive: ArchiveWriter,
  progress: (phase: "catalog", done: number) => void,
): Promise<BackupManifest["tables"]> {
  const tables: BackupManifest["tables"] = {};
  let done = 0;
  for (const table of snapshot.tables) {
    const part = new PartWriter(archive, `catalog/${table.name}`, "catalog");
    let rows = 0;
    for await (const page of snapshot.rows(table.name, { pageSize: ROWS_PAGE })) {
      for (const row of page) await part.add(row);
      rows += page.length;
      done += page.length;
      progress("catalog", done);
    }
    await part.close();
    tables[table.name] = { rows, columns: table.columns };
  }
  return tables;
}

/** JSON lines into numbered part entries of at most about PART_BYTES each. */
class PartWriter {
  private lines: Buffer[] = [];
  private size = 0;
  private n = 0;

  constructor(
    private readonly archive: ArchiveWriter,
    private readonly dir: string,
    private readonly kind: "kv" | "vectors" | "catalog",
    private readonly pax: Record<string, string> = {},
  ) {}

  async add(value: unknown): Promise<void> {
    const line = Buffer.from(`${JSON.stringify(value)}\n`, "utf8");
    this.lines.push(line);
    this.size += line.length;
    if (this.size >= PART_BYTES) await this.flush();
  }

  async close(): Promise<void> {
    if (this.size > 0) await this.flush();
  }

  private async flush(): Promise<void> {
    const data = Buffer.concat(this.lines);
    this.lines = [];
    this.size = 0;
    this.n++;
    await this.archive.addBuffer(
      `${this.dir}/part-${String(this.n).padStart(6, "0")}.jsonl`,
      this.kind,
      data,
      this.pax,
    );
  }
}
