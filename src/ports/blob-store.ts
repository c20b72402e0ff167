/**
 * The blob plane: immutable objects addressed by key (BLOB-1…9).
 *
 * Every adapter implements {@link BlobStore} and passes `test/conformance/blob-store.suite.ts`,
 * which tests the "Behavior" statements below, selected by {@link BlobCapabilities}.
 * Every method validates keys by BLOB-7 (`core/keys.ts`) before touching the backend and
 * throws {@link KuraError}s only: backend SDK errors are translated inside the adapter.
 */
import type { Readable } from "node:stream";
import { mapLimit } from "../core/concurrency.js";

/** What a store can do. Tests and the engine branch on these, never on the adapter's name. */
export interface BlobCapabilities {
  /** `get` with `range` reads only the requested bytes. */
  readonly rangeRead: boolean;
  /** `put` with `ifNoneMatch: "*"` is atomic on the backend (BLOB-4). */
  readonly conditionalCreate: boolean;
  /** Large bodies are uploaded in parts (BLOB-2); `multipartThresholdBytes` applies. */
  readonly multipart: boolean;
  /** `presign` returns URLs for GET and PUT (BLOB-5). */
  readonly presign: boolean;
  /**
   * Whoever serves presigned URLs checks their signature and expiry, so a tampered or expired
   * URL is refused. False for emulators that accept any signature.
   */
  readonly presignEnforced: boolean;
  /** `copy` is a server-side copy (otherwise it is read + write through Kura). */
  readonly serverSideCopy: boolean;
  /** The SHA-256 is kept in the object's own metadata, so reads verify without being told it. */
  readonly checksumInMetadata: boolean;
  /** Server-side encryption options (`sse-s3`, `sse-kms` or the backend's equivalent). */
  readonly serverSideEncryption: boolean;
  /** Bodies travel over a network: a local disk cache of hot bodies pays. */
  readonly remote: boolean;
  /**
   * Objects are files under the `base_path` option on this machine: Kura signs their presigned
   * URLs with a secret of its own (`presign_secret`, verified by `kura serve`), and session files
   * may live in a directory of their own (`sessions.dir`).
   */
  readonly localFiles: boolean;
  /** The scheme of this store's content URLs (MSG-6): `local`, `s3`, `gs`, `azure`, `memory`. */
  readonly urlScheme: string;
}

/** A body: bytes in memory, or a stream of unknown length. */
export type BlobBody = Uint8Array | Readable | AsyncIterable<Uint8Array>;

export interface PutOptions {
  /** MIME type stored with the object; defaults to `application/octet-stream`. */
  contentType?: string;
  /** `"*"`: create only if no object exists under the key, else `BLOB_ALREADY_EXISTS`. */
  ifNoneMatch?: "*";
  /** Small user metadata (ASCII keys `[a-z0-9-]`, string values). */
  metadata?: Record<string, string>;
  /**
   * The key was made for this put alone (a fresh UUIDv7) and nothing reads it before the put
   * resolves and a catalog row points at it. The adapter may then write in place, creating the
   * object exclusively (`BLOB_ALREADY_EXISTS` if it exists), without the steps that make a
   * replacement appear atomically (temp file + rename). A crash mid-write leaves a partial
   * object no row references: an orphan for GC, and checksums catch any read of it.
   */
  freshKey?: boolean;
  signal?: AbortSignal;
}

/** One body of a {@link BlobStore.putMany}: bytes in memory under a key made for this put alone. */
export interface PutManyItem {
  key: string;
  body: Uint8Array;
  contentType?: string;
  metadata?: Record<string, string>;
}

export interface BlobInfo {
  key: string;
  size: number;
  /** Hex SHA-256 of the whole body, when the store knows it (always for `put` results). */
  sha256: string | undefined;
  contentType: string;
  /** Backend entity tag, quoted as the backend gives it. */
  etag: string | undefined;
  lastModified: Date;
  metadata: Record<string, string>;
}

export interface PutResult {
  key: string;
  size: number;
  /** Hex SHA-256 of exactly the bytes stored. */
  sha256: string;
  etag: string | undefined;
}

export interface ByteRange {
  /** First byte, 0-based. */
  start: number;
  /** Last byte, inclusive; omitted = to the end. */
  end?: number;
}

export interface GetOptions {
  range?: ByteRange;
  /**
   * The SHA-256 the caller recorded at write time (the engine passes the catalog's). When given
   * it wins over the one in the object's metadata.
   */
  expectedSha256?: string;
  signal?: AbortSignal;
}

export interface GetResult {
  info: BlobInfo;
  /** The bytes; for a range, only the range. */
  body: Readable;
  /** The range served, when a range was asked for. */
  range: { start: number; end: number } | undefined;
}

export interface ListOptions {
  /** Opaque cursor from a previous page. */
  cursor?: string;
  /** Page size, 1…1000, default 1000. */
  limit?: number;
  signal?: AbortSignal;
}

export interface ListPage {
  items: BlobInfo[];
  /** Present when more items may follow. */
  cursor: string | undefined;
}

export interface PresignOptions {
  method: "GET" | "PUT";
  /** Seconds until the URL stops working; 1…604800. */
  expiresIn: number;
  /** For PUT: the content type the uploader must send. */
  contentType?: string;
}

export interface PresignResult {
  url: string;
  method: "GET" | "PUT";
  expiresAt: Date;
  /** Headers the client must send with the request (e.g. `x-ms-blob-type` for Azure). */
  headers: Record<string, string>;
}

export interface BlobStore {
  /** Adapter scheme: `memory`, `fs`, `s3`, `azure`, `gcs`. */
  readonly scheme: string;
  /** The bucket / container / base path this store writes into (for content URLs). */
  readonly location: string;
  readonly capabilities: BlobCapabilities;

  /**
   * Store `body` under `key`, replacing any object there (unless `ifNoneMatch`).
   *
   * Behavior:
   * - returns the size and hex SHA-256 of exactly the bytes stored;
   * - the object becomes visible whole or not at all: a reader never sees part of it, and a
   *   failed or aborted put leaves no object (and no multipart leftovers) behind;
   * - a stream of unknown length is accepted; above the multipart threshold it goes in parts;
   * - `ifNoneMatch: "*"` on an existing key fails with `BLOB_ALREADY_EXISTS` and leaves it as it was;
   * - an invalid key fails with `KEY_INVALID` before anything is written.
   */
  put(key: string, body: BlobBody, options?: PutOptions): Promise<PutResult>;

  /**
   * Optional: store many fresh bodies at once (each as `put` with `freshKey`), for a write that
   * stores a batch (an append of many messages). A store that can create a batch of objects for
   * less than the sum of its puts (fs: one hand-off to a writer thread instead of three
   * thread-pool hops per file) offers it; callers use `put` per body otherwise.
   *
   * Behavior:
   * - every key is new: an existing one fails the call with `BLOB_ALREADY_EXISTS`;
   * - all or nothing: when the call fails, no object of it is left behind (the objects it
   *   created are removed before it rejects);
   * - resolves with one result per item, in order, each as `put` would give it;
   * - an invalid key fails with `KEY_INVALID` before anything is written.
   */
  putMany?(items: readonly PutManyItem[], options?: { signal?: AbortSignal }): Promise<PutResult[]>;

  /**
   * Read an object as a stream, or a byte range of it.
   *
   * Behavior:
   * - a missing key fails with `BLOB_NOT_FOUND` (before any byte is streamed);
   * - a whole read is verified against `expectedSha256` or the SHA-256 in metadata: on mismatch
   *   the stream errors with `BLOB_CHECKSUM_MISMATCH` before it ends;
   * - a range read returns exactly bytes `start…min(end, size-1)`; a start beyond the end fails
   *   with `RANGE_INVALID`. A partial range cannot be checked against a whole-object checksum,
   *   so only the backend's own transport checks apply to it.
   */
  get(key: string, options?: GetOptions): Promise<GetResult>;

  /**
   * Read a whole object into memory.
   *
   * Behavior: like `get`, but a checksum mismatch fails the promise with
   * `BLOB_CHECKSUM_MISMATCH` and no bytes are returned.
   */
  getBuffer(key: string, options?: Omit<GetOptions, "range">): Promise<{ info: BlobInfo; data: Buffer }>;

  /**
   * Optional: `getBuffer` on the calling thread, for objects small enough that a synchronous
   * read costs less than the round trip through the thread pool (and the layers' timers) it
   * saves — local files. Reads of message bodies try it first.
   *
   * Behavior:
   * - like `getBuffer` (verified; `BLOB_NOT_FOUND`, `BLOB_CHECKSUM_MISMATCH`), but errors are
   *   thrown, never returned as a rejected promise;
   * - returns undefined when the adapter declines (the object is too large, or synchronous I/O is
   *   off): the caller then uses `getBuffer`.
   *
   * Layers made with `wrapBlobStore` forward it only through a synchronous hook of their own;
   * one without (fault injection) leaves it out, so every read reaches it through `getBuffer`.
   */
  getBufferSync?(
    key: string,
    options?: Omit<GetOptions, "range" | "signal">,
  ): { info: BlobInfo; data: Buffer } | undefined;

  /** Behavior: metadata of an object; a missing key fails with `BLOB_NOT_FOUND`. */
  head(key: string, options?: { signal?: AbortSignal }): Promise<BlobInfo>;

  /** Behavior: `head` that answers `undefined` for a missing key instead of throwing. */
  exists(key: string): Promise<boolean>;

  /**
   * Delete objects.
   *
   * Behavior: deleting a missing key succeeds; all keys are validated before any is deleted;
   * many keys are deleted in batches where the backend supports it.
   */
  delete(keys: string | readonly string[], options?: { signal?: AbortSignal }): Promise<void>;

  /**
   * List objects whose key starts with `prefix`, in UTF-8 byte order, a page at a time.
   *
   * Behavior: a prefix with no objects gives an empty page and no cursor; following cursors
   * visits every object present for the whole listing exactly once; an unparseable cursor fails
   * with `CURSOR_INVALID`.
   */
  list(prefix: string, options?: ListOptions): Promise<ListPage>;

  /**
   * Copy an object to another key in the same store, keeping its content type and metadata.
   *
   * Behavior: a missing source fails with `BLOB_NOT_FOUND`; the result's SHA-256 equals the source's.
   */
  copy(sourceKey: string, targetKey: string, options?: { signal?: AbortSignal }): Promise<PutResult>;

  /**
   * A URL that lets a client without credentials GET or PUT one key until it expires.
   *
   * Behavior: without the `presign` capability fails with `UNSUPPORTED_OPERATION`.
   */
  presign(key: string, options: PresignOptions): Promise<PresignResult>;

  /**
   * What the store holds on local disk while writing (the fs adapter's temp files), for
   * capacity metrics. Adapters that stage nothing locally do not have it.
   */
  stats?(): Promise<BlobStoreStats>;

  /**
   * Release connections and handles.
   * Behavior: idempotent; afterwards every operation fails with `CLOSED` (not retryable).
   */
  close(): Promise<void>;
}

export interface BlobStoreStats {
  /** Temp files present now: uploads in progress plus leftovers not yet swept. */
  tempFiles: number;
  /** Their bytes on disk. */
  tempBytes: number;
}

/** Build-time description of an adapter (see STYLE.md): registers nothing on import. */
export interface BlobStoreDefinition<Options> {
  readonly scheme: string;
  /** Parses and validates `storage.options` for this adapter; throws `CONFIG_INVALID` with every problem. */
  parseOptions(raw: unknown): Options;
  readonly capabilities: BlobCapabilities;
  create(options: Options, deps?: BlobStoreDeps): Promise<BlobStore>;
}

export interface BlobStoreDeps {
  /** Durability of acknowledged writes (DUR-1). */
  durability?: "os" | "fsync";
  /** Clock for expiry computations (tests inject one). */
  now?: () => number;
  /**
   * Called by adapters at named points of their I/O (e.g. `fs.fsync.file`, `fs.rename`), so
   * tests can observe what really happened and fault injection can fail at an exact point.
   * A probe that throws makes the operation fail there.
   */
  probe?: (point: string, detail: Readonly<Record<string, unknown>>) => void | Promise<void>;
  /** Declare less than the adapter could (an emulator lacking a feature); never more. */
  capabilityOverrides?: Partial<BlobCapabilities>;
  /**
   * Where the server that serves Kura-signed presigned URLs is reachable, asked at each presign:
   * a server on a port the system chooses knows it only once it listens. A `public_url` in the
   * store's options wins; undefined while no server has said.
   */
  serverUrl?: () => string | undefined;
}

/** The options `put` takes for an item of a `putMany` (a fresh key). */
export function putOptionsOf(item: PutManyItem, signal?: AbortSignal): PutOptions {
  const options: PutOptions = { freshKey: true };
  if (item.contentType !== undefined) options.contentType = item.contentType;
  if (item.metadata !== undefined) options.metadata = item.metadata;
  if (signal !== undefined) options.signal = signal;
  return options;
}

/** Bodies in flight in {@link putEach}. */
const PUT_EACH_CONCURRENCY = 64;

/**
 * `putMany` by one `put` per item (at most 64 at once), for stores without a batch write and
 * batches theirs does not take: all or nothing, as `putMany` promises — when a put fails, the
 * others are awaited and the objects the batch created are deleted before it rejects.
 */
export async function putEach(
  store: Pick<BlobStore, "put" | "delete">,
  items: readonly PutManyItem[],
  signal?: AbortSignal,
): Promise<PutResult[]> {
  const written: string[] = [];
  try {
    return await mapLimit(items, PUT_EACH_CONCURRENCY, async (item) => {
      const result = await store.put(item.key, item.body, putOptionsOf(item, signal));
      written.push(item.key);
      return result;
    });
  } catch (failure) {
    // Every put has ended (mapLimit waits for those in flight; a failed one left nothing): remove
    // what this batch wrote, and only that (a key that already existed is somebody else's).
    if (written.length > 0) await store.delete(written).catch(() => undefined);
    throw failure;
  }
}
