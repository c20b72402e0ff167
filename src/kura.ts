/**
 * `Kura.open(config?)`: the composition root of the library. It resolves the config (no config
 * = embedded defaults under `./data`: SQLite + fs), opens the planes, wires the engine (write
 * protocol, group commit, caches, outbox, jobs) and hands out tenant-scoped domains.
 * Over 450 lines on purpose: the order planes open in, how they are wired and how the instance
 * closes them are read together; each plane's opening itself lives in `src/open/`.
 */

import { hostname } from "node:os";
import { extname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { searchIndexDefinition } from "./adapters/search/registry.js";
import { vectorIndexDefinition } from "./adapters/vector/registry.js";
import { configuredServerUrl, type KuraConfig } from "./config/index.js";
import { KuraError } from "./core/errors.js";
import { assertValidId } from "./core/keys.js";
import { closedError } from "./core/lifecycle.js";
import { configInvalid } from "./core/options.js";
import type { MemoriesContext } from "./domains/memories.js";
import { readMessageContent } from "./domains/messages.js";
import { PresignedUrls } from "./domains/presigned.js";
import { type StateContext, StateEvents } from "./domains/state.js";
import { TenantScope } from "./domains/tenant.js";
import { Tenants } from "./domains/tenants.js";
import { bodiesPinned } from "./engine/backup-pin.js";
import { ContentUrls } from "./engine/content-url.js";
import type { EngineContext } from "./engine/context.js";
import { EncryptionAdmin } from "./engine/encryption/admin.js";
import { type FsckDeps, type FsckOptions, type FsckReport, runFsck } from "./engine/fsck.js";
import { GroupCommitter } from "./engine/group-commit.js";
import {
  type Health,
  observeBlobWrites,
  observeCatalogWrites,
  observeKvWrites,
  PLANES,
  type PlaneStatus,
  probePlane,
  WriteHealth,
} from "./engine/health.js";
import { HotMessages } from "./engine/hot-messages.js";
import { type JobReport, JobRunner, type JobStats } from "./engine/jobs.js";
import { Lifecycle, type LifecycleReport } from "./engine/lifecycle.js";
import { LruCache } from "./engine/lru-cache.js";
import { mailDocumentLoader } from "./engine/mail-documents.js";
import { foldUsageJob, orphanGcJob } from "./engine/maintenance.js";
import { MemoryIndex } from "./engine/memory-index.js";
import { messageDocumentLoader } from "./engine/message-documents.js";
import { MirrorKvStore } from "./engine/migration/mirror-kv.js";
import { MirrorBlobStore } from "./engine/migration/mirror-store.js";
import {
  type MigrationTarget,
  OnlineMigrations,
  type OpenedTarget,
} from "./engine/migration/online-migration.js";
import { expireMultipartJob } from "./engine/multipart-expiry.js";
import { forgetNode, type NodeInfo, NodeRegistry, nodeConsumer } from "./engine/nodes.js";
import { type MessageProjector, OutboxDispatcher, type Projector } from "./engine/outbox.js";
import { outboxPruneJob } from "./engine/outbox-retention.js";
import { announceServer, claimExclusive, type Presence } from "./engine/presence.js";
import { rebuildFromCatalog } from "./engine/projection.js";
import { type LoadDocument, SEARCH_PROJECTOR, SearchProjector, SearchService } from "./engine/search.js";
import { Tenancy } from "./engine/tenancy.js";
import { TenantDeletions } from "./engine/tenant-deletion.js";
import { TieredCache } from "./engine/tiered-cache.js";
import { UploadStore } from "./engine/uploads.js";
import { type MessageWorker, VECTORS_PROJECTOR, VectorPlane, WorkerVectorIndex } from "./engine/vectors.js";
import { WorkerProjector } from "./engine/worker-projector.js";
import { type Probe, WriteProtocol } from "./engine/write-protocol.js";
import { EncryptingBlobStore } from "./layers/encrypting-blob.js";
import { withEncryptedCatalog } from "./layers/encrypting-catalog.js";
import { EncryptingKvStore } from "./layers/encrypting-kv.js";
import { EncryptingSearchIndex } from "./layers/encrypting-search.js";
import { type OperationEvent, OperationSink, withPortMetrics } from "./layers/port-metrics.js";
import { openStorage } from "./open/blob.js";
import { openCatalog } from "./open/catalog.js";
import { Cleanup } from "./open/cleanup.js";
import { resolveConfig } from "./open/config.js";
import { openKeyRing } from "./open/encryption.js";
import { openKvStore } from "./open/kv.js";
import { resolveNodeId } from "./open/node.js";
import { catalogInMemory, openSearchIndex } from "./open/search.js";
import { createEmbedder, openVectorIndexes } from "./open/vectors.js";
import type { BlobStore, BlobStoreDeps } from "./ports/blob-store.js";
import type { Cache } from "./ports/cache.js";
import type { Catalog } from "./ports/catalog.js";
import type { Embedder } from "./ports/embedder.js";
import type { KvStore, KvStoreDeps } from "./ports/kv-store.js";
import type { SearchIndex } from "./ports/search-index.js";
import type { ProjectionWorkerData } from "./projection-worker.js";

/** Keys no one writes: reading them proves a plane answers (`health`). */
const READY_BLOB_KEY = "~kura-readyz/probe";
const READY_KV_KEY = "~kura-readyz";
const READY_TENANT = "~kura-readyz";

export interface KuraOpenOptions {
  /**
   * Embeds memories and messages (VEC-5); default the embedder of `config.embedder`. An object
   * given here cannot reach a worker thread: messages are then embedded on this thread.
   */
  embedder?: Embedder;
  /** Environment for `env:VAR` references in the config (the library never reads process.env). */
  env?: Readonly<Record<string, string | undefined>>;
  /** Base for relative paths; default the working directory. */
  cwd?: string;
  /** Injectable clock (ms since epoch). */
  clock?: () => number;
  /** Observation / fault points of the write protocol and the planes (tests). */
  probe?: Probe;
  /** Wrap the blob store (and the session-files store, when separate) after it is opened (fault injection in tests). */
  wrapStore?: (store: BlobStore) => BlobStore;
  /** Wrap the catalog after it is opened (fault injection in tests, `layers/port-faults.ts`). */
  wrapCatalog?: (catalog: Catalog) => Catalog;
  /** Wrap the KV store after it is opened (fault injection in tests). */
  wrapKv?: (kv: KvStore) => KvStore;
  /** Body cache; default an in-memory LRU of 64 MiB. */
  cache?: Cache;
  /** Grace period before an unreferenced body counts as an orphan; default 1 h. */
  orphanGraceMs?: number;
  /**
   * Problems that do not stop Kura (e.g. Redis `maxmemory-policy` is not `noeviction`, a config
   * subscriber threw). Default: `process.emitWarning`.
   */
  onWarning?: (message: string, context?: Readonly<Record<string, unknown>>) => void;
  /**
   * Where the message projectors (full-text; embeddings with `vector.embed_messages`) run:
   * `worker` (default) — a worker thread each, with its own connections, when the catalog and
   * index are files or PostgreSQL and no `wrap*` option is given (and, for embeddings, no
   * `embedder` object) — or `inline`, on this thread.
   */
  projectors?: "worker" | "inline";
  /**
   * Over a catalog several nodes share: `join` (default) — this process is a node: it registers,
   * feeds the indexes of its own and renews its row (`engine/nodes.ts`); `visit` — an operator
   * command: it does not register and feeds no index of a node's own.
   */
  node?: "join" | "visit";
}

export { TenantScope };

export class Kura {
  private closed = false;
  private readonly projectorNames: string[] = [];
  /** The full-text projector's worker thread, when it runs in one. */
  private searchWorker: WorkerProjector | undefined;
  /** The message-embedding projector's worker thread, when it runs in one. */
  private vectorsWorker: WorkerProjector | undefined;
  /** Work started by `open` that `close` waits for (re-embedding a lost messages index). */
  private background: Promise<void> = Promise.resolve();
  /** Where the server is reachable: from the settings, then as the server says (`setServerUrl`). */
  private server: { url?: string | undefined } = {};
  /** This node's row among the nodes sharing the catalog (a shared catalog only). */
  private node: NodeRegistry | undefined;
  /** An operator command over a shared catalog: this process's full-text index is not fed. */
  private unfedSearch = false;

  private constructor(
    readonly config: KuraConfig,
    private readonly ctx: EngineContext,
    private readonly committer: GroupCommitter,
    private readonly outbox: OutboxDispatcher,
    readonly jobs: JobRunner,
    private readonly state: StateContext,
    private readonly searchService: SearchService,
    private readonly searchIndex: SearchIndex | undefined,
    /** Memories, message embeddings and collections (VEC-1…5, MEM-1). */
    readonly vectors: VectorPlane,
    /** Where the planes' metrics layers report. */
    private readonly operations: OperationSink,
    /** Write failures (disk full) that make a plane not ready until a write succeeds. */
    private readonly writeHealth: WriteHealth,
    /** Tenant deletion jobs (TEN-5): resumed at open, run by `jobs` too. */
    private readonly deletions: TenantDeletions,
  ) {}

  static async open(config?: unknown, options: KuraOpenOptions = {}): Promise<Kura> {
    const resolved = await resolveConfig(config, {
      ...(options.env ? { env: options.env } : {}),
      ...(options.cwd ? { cwd: options.cwd } : {}),
    });
    // What is open so far closes again if a later step fails.
    const cleanup = new Cleanup();
    try {
      return await Kura.assemble(resolved, options, cleanup);
    } catch (e) {
      await cleanup.unwind();
      throw e;
    }
  }

  /** Opens the planes one by one, each handed to `cleanup` as soon as it is open, and wires them. */
  private static async assemble(
    resolved: KuraConfig,
    options: KuraOpenOptions,
    cleanup: Cleanup,
  ): Promise<Kura> {
    const clock = options.clock ?? Date.now;
    const durability = resolved.durability;
    // Kura-signed presigned URLs point at the server: configured, or told by it once it listens.
    const server: { url?: string | undefined } = { url: configuredServerUrl(resolved.server) };
    const blobDeps: BlobStoreDeps = {
      durability,
      now: clock,
      serverUrl: () => server.url,
      ...(options.probe ? { probe: options.probe } : {}),
    };
    const operations = new OperationSink();
    const storage = await openStorage(resolved, {
      deps: blobDeps,
      onOperation: (e) => {
        if (operations.active)
          operations.emit({
            plane: "blob",
            backend: e.scheme,
            operation: e.operation,
            durationMs: e.durationMs,
            ok: e.ok,
            errorCode: e.errorCode,
          });
      },
      ...(options.wrapStore ? { wrap: options.wrapStore } : {}),
      opened: (s) => cleanup.defer(() => s.close()),
    });
    const { presignSecret, storageOptions } = storage;
    // Online migration attaches a target to these (dual write, then reads): `engine/migration/`.
    const mirror = new MirrorBlobStore(storage.store);
    const sessionMirror =
      storage.sessionStore === storage.store ? mirror : new MirrorBlobStore(storage.sessionStore);
    let catalog = await openCatalog(resolved.database, {
      durability,
      ...(options.probe ? { probe: options.probe } : {}),
    });
    cleanup.defer(() => catalog.close());
    if (options.wrapCatalog) catalog = options.wrapCatalog(catalog);
    // SEC-2: the tenants' data keys live in the catalog; above the mirrors every plane is encrypted.
    const ring = openKeyRing(resolved, catalog, clock);
    const store = ring ? new EncryptingBlobStore(mirror, ring) : mirror;
    const sessionStore =
      sessionMirror === mirror ? store : ring ? new EncryptingBlobStore(sessionMirror, ring) : sessionMirror;
    if (ring) catalog = withEncryptedCatalog(catalog, ring);
    const warn =
      options.onWarning ?? ((message: string) => process.emitWarning(message, { code: "KURA_WARNING" }));
    let kv = await openKvStore(resolved, { durability, now: clock, warn });
    cleanup.defer(() => kv.close());
    // Online migration of the state plane attaches a target to it (`engine/migration/`).
    const kvMirror = new MirrorKvStore(kv, clock);
    kv = kvMirror;
    if (options.wrapKv) kv = options.wrapKv(kv);
    const rawKv = kv;
    if (ring) kv = new EncryptingKvStore(kv, ring);
    const bodyCache =
      options.cache ??
      (storage.remote && !ring
        ? await TieredCache.open({
            hotBytes: 64 * 1024 * 1024,
            hotMaxEntryBytes: 1024 * 1024,
            warm: { dir: join(resolved.data_dir, "cache", "bodies"), maxBytes: 1024 * 1024 * 1024 },
          })
        : new LruCache(64 * 1024 * 1024, 1024 * 1024));
    // Readiness learns of full disks from the planes' writes (engine/health.ts).
    const writeHealth = new WriteHealth();
    observeCatalogWrites(catalog, writeHealth);
    observeBlobWrites(store, writeHealth);
    observeKvWrites(kv, writeHealth);
    // Every plane's operations are timed for `/metrics` while someone listens (`observeOperations`).
    catalog = withPortMetrics(catalog, "catalog", catalog.dialect, operations);
    kv = withPortMetrics(kv, "kv", kv.scheme, operations);
    const committer = new GroupCommitter(catalog);
    cleanup.defer(() => committer.close());
    const outbox = new OutboxDispatcher(catalog);
    cleanup.defer(() => outbox.close());
    // DIST-1: over a catalog several nodes share, indexes that live in this node consume the
    // whole outbox under consumers of their own (`engine/nodes.ts`).
    const node = await joinNodes(resolved, catalog, clock, warn, options.node === "visit");
    if (node) cleanup.defer(() => node.registry.stop());
    const storeId = "primary";
    const stores = new Map([[storeId, store]]);
    const ctx: EngineContext = {
      store,
      storeId,
      stores,
      urls: new ContentUrls({ [storeId]: store }),
      catalog,
      protocol: new WriteProtocol({
        store,
        storeId,
        stores,
        committer,
        wake: () => outbox.notify(),
        // Checked again inside the commit, so racing writes cannot together pass a limit.
        quotas: (tenantId) => ctx.tenancy.storageQuota(tenantId),
        pinned: () => bodiesPinned(catalog, clock()),
        probe: options.probe,
      }),
      bodyCache,
      // Over a shared catalog every hit is checked against the row's version (`domains/messages.ts`).
      messageCache:
        options.cache || ring
          ? undefined
          : new HotMessages(50_000, { validate: catalog.capabilities.multiProcess }),
      clock,
      limits: { maxMessageBytes: resolved.limits.max_message_bytes },
      tenancy: new Tenancy({
        catalog,
        clock,
        tiers: resolved.tiers,
        autoCreate: resolved.auth.auto_create_tenants,
        refreshMs: resolved.auth.tenant_refresh_ms,
        buckets: kv,
      }),
      retention: { deletedMessagesDays: resolved.retention.deleted_messages_days },
      presignSecret: presignSecret === undefined ? undefined : Buffer.from(presignSecret, "utf8"),
    };
    const jobs = new JobRunner(catalog, clock, { owner: node?.registry.nodeId ?? hostname() });
    jobs.register(orphanGcJob(ctx, options.orphanGraceMs));
    jobs.register(foldUsageJob(ctx));
    // API-6: resumable uploads' state in the KV store, parts in the primary store; expired ones
    // are removed by the `expire-uploads` job.
    const uploads = new UploadStore({
      kv,
      store: ctx.store,
      clock,
      expiryMs: resolved.retention.upload_expiry_hours * 3_600_000,
      maxBytes: resolved.limits.max_upload_bytes,
      catalog,
    });
    jobs.register(uploads.job());
    // API-7: S3 multipart uploads past their expiry lose their parts and state.
    jobs.register(expireMultipartJob({ kv, store: ctx.store }));
    const state: StateContext = {
      kv,
      uploads,
      // Seed 002: with local files, session files live in SESSIONS_DIR (`sessions.dir`), signed
      // with the primary store's presign secret, so `kura serve` verifies both alike.
      store: sessionStore,
      clock,
      sessionTtlSeconds: resolved.sessions.ttl_seconds,
      sessionFilesDays: resolved.retention.session_files_days,
      events: new StateEvents((e) =>
        warn(`a config subscriber threw: ${e instanceof Error ? e.message : String(e)}`),
      ),
    };
    // LIFE-1: expiry, purge, archive, KV and session-file expiry, as one job under one lease.
    const lifecycle = new Lifecycle({
      ctx,
      kv,
      sessionFiles: state.store,
      sessionFilesDays: resolved.retention.session_files_days,
      archiveAfterDays: resolved.retention.archive_after_days ?? undefined,
      audit: (entries) => committer.commit({ ops: entries.map((entry) => ({ op: "appendAudit", entry })) }),
    });
    jobs.register(lifecycle.job());
    // Full-text search (SRCH-1…4): an index fed by the outbox; if it cannot be opened, search
    // runs degraded on a catalog scan (SRCH-3).
    let searchIndex: SearchIndex | undefined;
    let searchOpenError: unknown;
    try {
      const index = await openSearchIndex(resolved);
      cleanup.defer(() => index.close());
      searchIndex = withPortMetrics(index, "search", index.backend, operations);
      // Blind tokens per tenant; snippets from the decrypted messages (`load`, defined below).
      if (ring)
        searchIndex = new EncryptingSearchIndex(
          searchIndex,
          ring,
          async (t, id) => (await load(t, id))?.text,
        );
    } catch (e) {
      searchOpenError = e;
      warn(`search index unavailable, search is degraded: ${e instanceof Error ? e.message : String(e)}`);
    }
    const load: LoadDocument = messageDocumentLoader(catalog, (row) => readMessageContent(ctx, row), clock);
    // The message projectors run in worker threads when their planes can be opened there too
    // (files or PostgreSQL, not in-memory or wrapped ones): tokenizing, embedding and index
    // writes then stay off the event loop that serves requests.
    const workers =
      options.projectors !== "inline" &&
      !options.wrapCatalog &&
      !options.wrapStore &&
      !catalogInMemory(resolved) &&
      // The projectors decrypt with this process's key ring.
      !ring;
    const workerEntry = new URL(
      `./projection-worker${extname(fileURLToPath(import.meta.url))}`,
      import.meta.url,
    );
    const projector: MessageProjector | undefined = !searchIndex
      ? undefined
      : workers
        ? new WorkerProjector(node?.searchConsumer ?? SEARCH_PROJECTOR, workerEntry, {
            config: resolved,
            storageOptions,
            projector: SEARCH_PROJECTOR,
          } satisfies ProjectionWorkerData)
        : new SearchProjector(searchIndex, load, node?.searchConsumer, mailDocumentLoader(catalog));
    if (projector instanceof WorkerProjector) cleanup.defer(() => projector.close());
    // Message embeddings too, with the embedder of `config.embedder` (an object given to `open`
    // stays on this thread). An index that lives in this process (usearch, exact) is then the
    // worker's alone, and this thread queries it through the worker; over a shared server
    // (pgvector) this thread opens its own instance for queries.
    let kura: Kura | undefined;
    const vectorBackend = await vectorIndexDefinition(resolved.vector.backend);
    const vectorsWorker =
      workers && resolved.vector.embed_messages && !options.embedder
        ? new WorkerProjector(
            node?.vectorsConsumer ?? VECTORS_PROJECTOR,
            workerEntry,
            { config: resolved, storageOptions, projector: VECTORS_PROJECTOR } satisfies ProjectionWorkerData,
            {
              unavailable: "VECTOR_UNAVAILABLE",
              // A replacement worker of an index that does not persist starts it empty.
              ...(vectorBackend.capabilities.persistent
                ? {}
                : { onRestart: () => kura?.onVectorsWorkerRestart() }),
            },
          )
        : undefined;
    if (vectorsWorker) cleanup.defer(() => vectorsWorker.close());
    const messageWorker: MessageWorker | undefined = vectorsWorker && {
      projector: vectorsWorker,
      close: () => vectorsWorker.close(),
      ...(vectorBackend.capabilities.shared
        ? {}
        : {
            index: new WorkerVectorIndex(
              vectorsWorker,
              vectorBackend.scheme,
              resolved.vector.dimensions,
              resolved.vector.metric,
            ),
          }),
    };
    // Vectors (VEC-1…5, MEM-1): the embedder, the memories index, message embeddings when
    // configured, tenant collections; pgvector indexes share one pool, opened on first use.
    const indexes = await openVectorIndexes(resolved);
    cleanup.defer(() => indexes.close());
    const vectors = await VectorPlane.open(resolved, {
      embedder: options.embedder ?? (await createEmbedder(resolved)),
      load,
      warn,
      openIndex: async (place) => {
        const index = await indexes.open(place);
        return withPortMetrics(index, "vector", index.backend, operations);
      },
      scanIndex: (place, o) => indexes.scan(place, o),
      release: () => indexes.close(),
      ...(messageWorker ? { messageWorker } : {}),
      ...(node?.vectorsConsumer ? { messagesConsumer: node.vectorsConsumer } : {}),
    });
    const searchService = new SearchService(
      catalog,
      searchIndex,
      projector,
      clock,
      degradedSearchWarning(warn, clock),
      searchOpenError,
      vectors.messageSearch(),
      (timeoutMs) => outbox.settle(timeoutMs),
    );
    const deletions = new TenantDeletions({
      catalog,
      kv,
      stores: () => [...stores.values(), state.store],
      search: searchIndex,
      vectors,
      bodyCache,
      messageCache: ctx.messageCache,
      tenancy: ctx.tenancy,
      clock,
      warn,
    });
    jobs.register(deletions.job());
    kura = new Kura(
      resolved,
      ctx,
      committer,
      outbox,
      jobs,
      state,
      searchService,
      searchIndex,
      vectors,
      operations,
      writeHealth,
      deletions,
    );
    kura.lifecycleEngine = lifecycle;
    if (ring) {
      const admin = new EncryptionAdmin({
        ring,
        rawStores: () => (sessionMirror === mirror ? [mirror] : [mirror, sessionMirror]),
        rawKv,
        bodyCache,
        search: searchIndex,
        clock,
        audit: (entries) => committer.commit({ ops: entries.map((entry) => ({ op: "appendAudit", entry })) }),
      });
      kura.encryptionAdmin = admin;
      jobs.register(admin.job());
    }
    const migrations = new OnlineMigrations({
      catalog,
      store: mirror,
      sessionStore: sessionMirror,
      kv: kvMirror,
      openTarget: (target) =>
        openMigrationTarget(resolved, target, blobDeps, { durability, now: clock, warn }),
      clock,
      warn,
    });
    kura.onlineMigrations = migrations;
    // A migration a stop interrupted dual-writes again before the first write of this process.
    await migrations.resume();
    const opened = kura;
    // From here the instance closes what it holds, workers and background work included.
    cleanup.handOver(() => opened.close());
    if (projector instanceof WorkerProjector) kura.searchWorker = projector;
    kura.searchProjector = projector;
    kura.vectorsWorker = vectorsWorker;
    kura.server = server;
    kura.node = node?.registry;
    kura.unfedSearch = node?.visiting === true && node.searchConsumer !== undefined;
    // A node new to the catalog (or forgotten) reads the outbox from its head and takes what
    // came before from a catalog scan: the outbox may have been pruned of it.
    const rebuild: (() => Promise<unknown>)[] = [];
    if (projector && node?.searchConsumer && (await node.fresh(node.searchConsumer))) {
      const index = searchIndex as SearchIndex;
      rebuild.push(async () => {
        await index.clear();
        await rebuildFromCatalog(catalog, projector.name, (batch) => projector.apply(batch));
      });
    }
    if (projector && !(node?.visiting && node.searchConsumer)) kura.registerProjector(projector);
    // SPEC OUT-1: consumed events go, except the change feed's tail; a registered projector
    // that has saved no cursor yet holds everything back.
    jobs.register(
      outboxPruneJob(catalog, {
        retentionHours: resolved.outbox.retention_hours,
        consumers: () => kura.projectors,
        ...(node
          ? {
              forgetStaleNodes: (now: number) =>
                node.registry.forgetStale(now, resolved.node.stale_after_hours * 3_600_000),
            }
          : {}),
      }),
    );
    kura.warn = warn;
    const messagesConsumer = vectors.messages?.projector.name;
    if (messagesConsumer && node?.vectorsConsumer && (await node.fresh(messagesConsumer)))
      rebuild.push(() => vectors.rebuildMessages(catalog));
    if (vectors.messages && !(node?.visiting && node.vectorsConsumer)) {
      kura.registerProjector(vectors.messages.projector);
      // A lost messages index behind an advanced cursor, or a newly enabled one over messages
      // whose events may be pruned: embed every message of the catalog, in the background;
      // `close` waits for it.
      if (await kura.messagesIndexLost()) kura.embedAllMessages();
    }
    for (const step of rebuild) kura.inBackground(step);
    if (node && !node.visiting) {
      node.registry.start();
      node.registry.onForgotten = () => {
        warn(`node ${node.registry.nodeId} was forgotten while running: its indexes are rebuilt`);
        void kura?.rebuildNodeIndexes();
      };
    }
    // Deletions a stop interrupted go on where they were (their state is in the catalog).
    void deletions
      .resumeAll()
      .catch((e: unknown) =>
        warn(`resuming tenant deletions failed: ${e instanceof Error ? e.message : String(e)}`),
      );
    return kura;
  }

  private warn: (message: string) => void = () => undefined;

  /**
   * Every backend operation — plane, backend, method, duration, outcome — while subscribed (the
   * HTTP server's `/metrics` histogram); returns the function that unsubscribes.
   */
  observeOperations(listener: (event: OperationEvent) => void): () => void {
    return this.operations.subscribe(listener);
  }

  /** Whether the messages index is empty while the catalog has messages it should hold. */
  private async messagesIndexLost(): Promise<boolean> {
    const index = this.vectors.messages?.index;
    const catalog = this.ctx.catalog;
    return (
      index !== undefined &&
      (await index.count()) === 0 &&
      ((await catalog.getConsumerCursor(this.vectors.messages?.projector.name ?? VECTORS_PROJECTOR)) !==
        undefined ||
        (await catalog.listMessageKeys({ limit: 1 })).length > 0)
    );
  }

  /**
   * Embed every message of the catalog in the background, after the work already there; `close`
   * waits for it (so the planes stay open while it runs).
   */
  private embedAllMessages(): void {
    this.inBackground(() => this.vectors.rebuildMessages(this.ctx.catalog));
  }

  /** A replacement worker of an index that does not persist holds nothing: embed it all again. */
  private onVectorsWorkerRestart(): void {
    if (this.closed) return;
    this.inBackground(async () => {
      if ((await this.messagesIndexLost()) && !this.closed)
        await this.vectors.rebuildMessages(this.ctx.catalog);
    });
  }

  private inBackground(work: () => Promise<unknown>): void {
    this.background = this.background.then(work).then(
      () => undefined,
      (e: unknown) =>
        this.warn(
          `rebuilding an index in the background failed: ${e instanceof Error ? e.message : String(e)}`,
        ),
    );
  }

  /** After this node was forgotten: its own indexes resume at the outbox head over a catalog scan. */
  private async rebuildNodeIndexes(): Promise<void> {
    if (this.closed || !this.node) return;
    const catalog = this.ctx.catalog;
    const own = this.projectorNames.filter((n) => n.endsWith(`@${this.node?.nodeId}`));
    const head = await catalog.outboxHead();
    if (head !== undefined) for (const name of own) await catalog.setConsumerCursor(name, head);
    if (this.searchProjector && own.includes(this.searchProjector.name))
      this.inBackground(() => this.rebuildSearch());
    if (this.vectors.messages && own.includes(this.vectors.messages.projector.name))
      this.inBackground(() => this.reembedMessages());
  }

  /** This node's id, when the catalog is shared by several nodes (DIST-1); undefined otherwise. */
  get nodeId(): string | undefined {
    return this.node?.nodeId;
  }

  /** The nodes registered on this catalog (`kura nodes list`), live or not. */
  async nodes(): Promise<NodeInfo[]> {
    this.assertOpen();
    return this.node ? this.node.list() : [];
  }

  /**
   * Forget a node gone for good (`kura nodes forget`): its outbox cursors no longer hold the
   * outbox back; if it runs again it rebuilds its indexes. False for an unknown node.
   */
  async forgetNode(nodeId: string): Promise<boolean> {
    this.assertOpen();
    return forgetNode(this.ctx.catalog, nodeId);
  }

  /** Everything a tenant can do; the tenant is created on first write (IDS-1). */
  tenant(tenantId: string, options: { actor?: string } = {}): TenantScope {
    this.assertOpen();
    assertValidId(tenantId, "tenant id", "kura.tenant");
    const actor = options.actor ?? "system";
    if (typeof actor !== "string" || !/^[\x21-\x7e]{1,200}$/.test(actor)) {
      throw new KuraError("INVALID_ARGUMENT", "actor must be 1–200 printable ASCII characters", {
        operation: "kura.tenant",
      });
    }
    const plane = this.vectors;
    const kv = this.state.kv;
    const clock = this.state.clock;
    return new TenantScope(
      this.ctx,
      tenantId,
      this.state,
      actor,
      this.searchService,
      { kv, clock, plane },
      (): MemoriesContext => ({ kv, clock, index: plane.memories(), embedder: plane.embedder }),
    );
  }

  /** The tenant registry (TEN-2…5): admin operations, and who may act within what limits. */
  get tenants(): Tenants {
    this.assertOpen();
    this.tenantRegistry ??= new Tenants({
      catalog: this.ctx.catalog,
      tenancy: this.ctx.tenancy,
      clock: this.ctx.clock,
      deletions: this.deletions,
      keySecret: () => this.apiKeySecret ?? this.config.auth.jwt_secret ?? undefined,
    });
    return this.tenantRegistry;
  }

  /** What API key secrets are derived from when `auth.jwt_secret` is not set (`useApiKeySecret`). */
  private apiKeySecret: string | undefined;

  /**
   * The server's secret (the JWT secret `kura serve` generated) that new API keys' secrets are
   * derived from, so the S3 endpoint can check their SigV4 signatures (ADR 0035); by default
   * `auth.jwt_secret`.
   */
  useApiKeySecret(secret: string): void {
    this.apiKeySecret = secret;
  }

  private tenantRegistry: Tenants | undefined;

  /** The search service (full-text with its degraded fallback, SRCH-1…4). */
  get search(): SearchService {
    return this.searchService;
  }

  /** Drop the search index and re-project every live message of the catalog (SRCH-4). */
  async rebuildSearch(): Promise<number> {
    this.assertOpen();
    return this.searchService.rebuild();
  }

  /**
   * Embed every message again into the `messages` vector index (after a change of embedder or
   * model); VECTOR_SEARCH_DISABLED unless `vector.embed_messages` is on.
   */
  async reembedMessages(): Promise<number> {
    this.assertOpen();
    return this.vectors.rebuildMessages(this.ctx.catalog);
  }

  /** Register an outbox projector (search, vectors, change feed, …); it is caught up right away. */
  registerProjector(projector: Projector): void {
    this.outbox.register(projector);
    this.projectorNames.push(projector.name);
    this.outbox.notify();
  }

  /** Where the full-text projector runs (`worker`: its own thread; `inline`: this one; none without an index). */
  get searchProjection(): "worker" | "inline" | "none" {
    return this.searchWorker ? "worker" : this.searchIndex ? "inline" : "none";
  }

  /**
   * Where the message-embedding projector runs (`worker`: its own thread; `inline`: this one;
   * none without `vector.embed_messages`).
   */
  get vectorProjection(): "worker" | "inline" | "none" {
    return this.vectorsWorker ? "worker" : this.vectors.messages ? "inline" : "none";
  }

  /** Names of the registered projectors (what the outbox-lag metric reports on). */
  get projectors(): readonly string[] {
    return this.projectorNames;
  }

  /** Deliver all pending outbox events to every projector now. */
  async pumpOutbox(): Promise<void> {
    await this.outbox.pump();
  }

  async outboxLag(projector: string): Promise<number> {
    return this.outbox.lag(projector);
  }

  /** The full-text projector (this thread's or the worker's), for fsck's re-projection. */
  private searchProjector: MessageProjector | undefined;

  /**
   * Check that the planes agree — bodies present and intact, no orphans, the full-text index in
   * line with the messages, usage exact, the outbox delivered — and with `repair` fix what can
   * be fixed (CONS-3, `engine/fsck.ts`). On a catalog one process owns, run it in that process.
   */
  async fsck(options: FsckOptions = {}): Promise<FsckReport> {
    this.assertOpen();
    const index = this.searchIndex;
    const projector = this.searchProjector;
    return runFsck(
      {
        catalog: this.ctx.catalog,
        stores: this.ctx.stores,
        writing: (key) => this.ctx.protocol.writing(key),
        // A visitor's copy of an index of a node's own is not fed: there is nothing to check.
        search:
          index && projector && !this.unfedSearch
            ? { index, apply: (keys) => projector.apply(keys) }
            : undefined,
        messageVectors: this.messageVectorsForFsck(),
        memories: {
          index: this.vectors.memories(),
          sync: MemoryIndex.for({
            kv: this.state.kv,
            index: this.vectors.memories(),
            embedder: this.vectors.embedder,
            clock: this.state.clock,
          }),
        },
        pump: () => this.outbox.pump(),
        projectors: this.projectorNames,
        lag: (name) => this.outbox.lag(name),
        commit: (ops) => this.committer.commit({ ops }),
        clock: this.ctx.clock,
      },
      options,
    );
  }

  /** The message embeddings as fsck checks them, when messages are embedded. */
  private messageVectorsForFsck(): FsckDeps["messageVectors"] {
    const messages = this.vectors.messages;
    const scan = messages?.scan;
    if (!messages || !scan) return undefined;
    return { index: messages.index, scan, apply: (keys) => messages.projector.apply(keys) };
  }

  private lifecycleEngine: Lifecycle | undefined;
  private encryptionAdmin: EncryptionAdmin | undefined;

  /**
   * Encryption at rest (SEC-2, `encryption` section): rotate a tenant's data key, shred a tenant,
   * re-wrap the data keys under the current master key. ENCRYPTION_DISABLED without the section.
   */
  get encryption(): EncryptionAdmin {
    this.assertOpen();
    if (!this.encryptionAdmin)
      throw new KuraError("ENCRYPTION_DISABLED", "encryption at rest is off (no encryption section)", {
        operation: "kura.encryption",
      });
    return this.encryptionAdmin;
  }
  private onlineMigrations: OnlineMigrations | undefined;

  /** Online migration of the blob and KV planes (`POST /v1/admin/migrations`, `kura migrate`). */
  get migrations(): OnlineMigrations {
    this.assertOpen();
    return this.onlineMigrations as OnlineMigrations;
  }

  /**
   * Run the lifecycle engine now (LIFE-1: expiry, purge, archive, KV and session-file expiry;
   * `engine/lifecycle.ts`) and report what it did — or, with `dryRun`, what it would do, changing
   * nothing. A real run holds the `lifecycle` job's lease (LIFECYCLE_RUNNING while another holds
   * it), so it never overlaps the job on any node.
   */
  async runLifecycle(options: { dryRun?: boolean; actor?: string } = {}): Promise<LifecycleReport> {
    this.assertOpen();
    return (this.lifecycleEngine as Lifecycle).run(options);
  }

  /**
   * Each maintenance job's runs, failures, last duration and success on this node, and the
   * runner holding its lease now on any node (`/metrics`).
   */
  async jobMetrics(): Promise<(JobStats & { owner: string | undefined })[]> {
    const owners = await this.jobs.owners();
    return this.jobs.jobStats().map((s) => ({ ...s, owner: owners.get(s.name) }));
  }

  /** Hits and misses of the hot message cache (undefined when it is off). */
  get hotMessageStats(): { hits: number; misses: number } | undefined {
    const c = this.ctx.messageCache;
    return c && { hits: c.hits, misses: c.misses };
  }

  /** Run maintenance jobs once (orphan GC, lifecycle, usage folding, outbox pruning, …). */
  runJobs(now?: number): Promise<JobReport[]> {
    return this.jobs.runOnce(now);
  }

  /** The catalog, for engine-level tools (fsck, backup) and tests. */
  get catalog(): Catalog {
    return this.ctx.catalog;
  }

  get store(): BlobStore {
    return this.ctx.store;
  }

  /** The secret of Kura-signed presigned URLs (fs backend), or undefined when the backend signs. */
  get presignSecret(): Buffer | undefined {
    return this.ctx.presignSecret;
  }

  /** Kura-signed presigned URLs: verified, and what they let their holder read or write. */
  get presigned(): PresignedUrls {
    this.presignedUrls ??= new PresignedUrls({
      secret: this.ctx.presignSecret,
      clock: this.ctx.clock,
      store: this.ctx.store,
      sessionFiles: this.state.store,
      tenant: (tenantId) => this.tenant(tenantId),
    });
    return this.presignedUrls;
  }

  private presignedUrls: PresignedUrls | undefined;

  /**
   * Where the server is reachable, the base of Kura-signed presigned URLs unless
   * `storage.options.public_url` names another: `server.public_url`, else where the server
   * listens — by the settings until a server says otherwise (`setServerUrl`); undefined with
   * port 0 until one does.
   */
  get serverUrl(): string | undefined {
    return this.server.url;
  }

  /** Say where the server serving this instance is reachable (`buildServer` does once it listens). */
  setServerUrl(url: string): void {
    this.server.url = url;
  }

  /** Where session files live: the blob store, or an fs store at `sessions.dir` with the fs backend. */
  get sessionFiles(): BlobStore {
    return this.state.store;
  }

  get cacheStats() {
    return this.ctx.bodyCache.stats();
  }

  /**
   * Readiness of every plane (blob, catalog, KV, search, vectors): a cheap read of each, all at
   * once, each bounded by `timeoutMs` (default 2000) so a frozen backend makes the answer "not
   * ready" instead of hanging it; a plane whose last write failed for want of space (STORAGE_FULL)
   * is not ready until a write of it succeeds. A search index that could not be opened is
   * reported ok with `detail: "degraded"` (search then scans the catalog, SRCH-3).
   */
  async health(options: { timeoutMs?: number } = {}): Promise<Health> {
    const timeoutMs = options.timeoutMs ?? 2000;
    const index = this.searchIndex;
    const [blob, catalog, kv, search, vectors] = await Promise.all([
      probePlane("blob", () => this.ctx.store.exists(READY_BLOB_KEY), timeoutMs),
      probePlane("catalog", () => this.ctx.catalog.ping(), timeoutMs),
      probePlane("kv", () => this.state.kv.get(READY_KV_KEY), timeoutMs),
      index
        ? probePlane("search", () => index.count(READY_TENANT), timeoutMs)
        : Promise.resolve<PlaneStatus>({ ok: true, detail: "degraded" }),
      probePlane("vectors", async () => this.vectors.memories().count(READY_TENANT), timeoutMs),
    ]);
    const planes: Health["planes"] = { blob, catalog, kv, search, vectors };
    for (const plane of PLANES) {
      const failure = this.writeHealth.failure(plane);
      if (failure && planes[plane].ok)
        planes[plane] = { ok: false, code: failure.code, reason: failure.message };
    }
    const tempBytes = await this.tempBytes(timeoutMs);
    return {
      ready: PLANES.every((p) => planes[p].ok),
      planes,
      ...(tempBytes === undefined ? {} : { tempBytes }),
    };
  }

  /** Temp-file bytes of the blob stores that keep temp files, or undefined (none does, or too slow). */
  private async tempBytes(timeoutMs: number): Promise<number | undefined> {
    const stores =
      this.state.store === this.ctx.store ? [this.ctx.store] : [this.ctx.store, this.state.store];
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), timeoutMs);
    });
    try {
      const stats = await Promise.race([
        // `Promise.resolve().then`: a store that throws synchronously reports nothing.
        Promise.all(
          stores.map((s) =>
            Promise.resolve()
              .then(() => s.stats?.())
              .catch(() => undefined),
          ),
        ),
        deadline,
      ]);
      const known = (stats ?? []).filter((x) => x !== undefined);
      return known.length === 0 ? undefined : known.reduce((sum, x) => sum + x.tempBytes, 0);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Announce a running server on the catalog (see `engine/presence.ts`) until `stop()`. */
  announceServer(owner: string): Presence {
    return announceServer(this.ctx.catalog, owner, { clock: this.ctx.clock });
  }

  /** Hold the catalog alone for a command (`kura reindex`), or SERVER_RUNNING while a server runs. */
  claimExclusive(owner: string, what: string): Promise<Presence> {
    return claimExclusive(this.ctx.catalog, owner, what, this.ctx.clock);
  }

  /** Finish in-flight writes and projector deliveries, then close the planes. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.deletions.close();
    await this.background;
    await this.committer.close();
    await this.outbox.close();
    await this.onlineMigrations?.close();
    await this.searchWorker?.close();
    await this.searchIndex?.close();
    await this.vectors.close();
    await this.node?.stop();
    await this.ctx.catalog.close();
    await this.state.kv.close();
    if (this.state.store !== this.ctx.store) await this.state.store.close();
    await this.ctx.store.close();
  }

  private assertOpen(): void {
    if (this.closed) throw closedError("Kura", "kura");
  }
}

/** This node among those sharing the catalog, when the catalog is shared (`joinNodes`). */
interface JoinedNode {
  registry: NodeRegistry;
  /** An operator command: not registered, and the indexes of a node's own are not fed. */
  visiting: boolean;
  /** The full-text consumer of this node's own index (unset: the index is shared, `search`). */
  searchConsumer: string | undefined;
  /** The message-embedding consumer of this node's own index (unset: shared, `vectors`). */
  vectorsConsumer: string | undefined;
  /**
   * Make `consumer` start at the outbox head when the node is new to the catalog or the
   * consumer has no cursor; true if a catalog scan must then bring in what came before.
   */
  fresh(consumer: string): Promise<boolean>;
}

/**
 * Over a catalog several processes may share (PostgreSQL): register this node, name the
 * consumers of its own indexes after it, and refuse to start beside a live node when memories
 * and collections would live in this node's vector index alone (unless
 * `node.allow_local_vectors`). Undefined over a catalog one process owns.
 */
async function joinNodes(
  resolved: KuraConfig,
  catalog: Catalog,
  clock: () => number,
  warn: (message: string) => void,
  visiting: boolean,
): Promise<JoinedNode | undefined> {
  if (!catalog.capabilities.multiProcess) return undefined;
  const nodeId = await resolveNodeId(resolved);
  const search = await searchIndexDefinition(resolved.search.backend);
  const vector = await vectorIndexDefinition(resolved.vector.backend);
  const searchConsumer = search.capabilities.multiProcess
    ? undefined
    : nodeConsumer(SEARCH_PROJECTOR, nodeId);
  const vectorsConsumer =
    vector.capabilities.shared || !resolved.vector.embed_messages
      ? undefined
      : nodeConsumer(VECTORS_PROJECTOR, nodeId);
  const consumers = [searchConsumer, vectorsConsumer].filter((c): c is string => c !== undefined);
  const registry = new NodeRegistry({
    catalog,
    clock,
    nodeId,
    host: hostname(),
    pid: process.pid,
    consumers: () => consumers,
    warn,
  });
  if (visiting) return { registry, visiting, searchConsumer, vectorsConsumer, fresh: async () => false };
  if (!vector.capabilities.shared && !resolved.node.allow_local_vectors) {
    const peers = await registry.livePeers();
    if (peers.length > 0)
      throw configInvalid(
        [
          {
            path: "vector.backend",
            message:
              `node ${peers[0]?.id} (${peers[0]?.host}) shares this catalog, and ${resolved.vector.backend} ` +
              "keeps memories and collections in each node: use pgvector, or set node.allow_local_vectors",
          },
        ],
        "kura.open",
      );
  }
  const known = await registry.register();
  return {
    registry,
    visiting,
    searchConsumer,
    vectorsConsumer,
    fresh: async (consumer) => {
      // The consumer of the same index before it was this node's own holds the outbox back.
      await catalog.deleteConsumerCursor(consumer.slice(0, consumer.indexOf("@")));
      if (known && (await catalog.getConsumerCursor(consumer)) !== undefined) return false;
      const head = await catalog.outboxHead();
      if (head !== undefined) await catalog.setConsumerCursor(consumer, head);
      return (await catalog.listMessageKeys({ limit: 1, includeDeleted: true })).length > 0;
    },
  };
}

/**
 * The stores of a migration's `target.storage`, checked as the config file's `storage` section
 * would be (the adapter's own schema), with this configuration's data directory and sessions.
 */
async function openMigrationTarget(
  resolved: KuraConfig,
  target: MigrationTarget,
  deps: BlobStoreDeps,
  kvDeps: KvStoreDeps,
): Promise<OpenedTarget> {
  const config = await resolveConfig(
    {
      data_dir: resolved.data_dir,
      durability: resolved.durability,
      retention: { kv_tombstone_days: resolved.retention.kv_tombstone_days },
      ...(target.storage ? { storage: target.storage } : {}),
      ...(target.kv ? { kv: target.kv } : {}),
    },
    { env: {} },
  );
  const opened: { close(): Promise<void> }[] = [];
  const close = async () => {
    for (const s of opened.reverse()) await s.close();
  };
  try {
    const storage = target.storage
      ? await openStorage(config, { deps, opened: (s) => opened.push(s) })
      : undefined;
    const kv = target.kv ? await openKvStore(config, kvDeps) : undefined;
    if (kv) opened.push(kv);
    return {
      ...(storage ? { store: storage.store, sessionStore: storage.sessionStore } : {}),
      ...(kv ? { kv } : {}),
      close,
    };
  } catch (e) {
    await close();
    throw e;
  }
}

/**
 * Reports searches answered by the catalog scan because the index failed (SRCH-3): the first at
 * once, then at most one a minute, so a lasting outage is visible without flooding the log.
 */
function degradedSearchWarning(
  warn: (message: string) => void,
  clock: () => number,
): (reason: unknown) => void {
  let last = Number.NEGATIVE_INFINITY;
  return (reason) => {
    const now = clock();
    if (now - last < 60_000) return;
    last = now;
    warn(`search is degraded (catalog scan): ${reason instanceof Error ? reason.message : String(reason)}`);
  };
}
