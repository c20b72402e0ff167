/**
 * `Kura.open(config?)`: the composition root of the library. It resolves the config (no config
 * = embedded defaults under `./data`: SQLite + fs), opens the planes, wires the engine (write
 * protocol, group commit, caches, outbox, jobs) and hands out tenant-scoped domains.
 */
import { catalogDefinition } from "./adapters/catalog/registry.js";
import { type KuraConfig, resolveConfig } from "./config/index.js";
import { KuraError } from "./core/errors.js";
import { assertValidId } from "./core/keys.js";
import { Messages } from "./domains/messages.js";
import { Objects } from "./domains/objects.js";
import { openBlobStore } from "./engine/blob-stores.js";
import { ContentUrls } from "./engine/content-url.js";
import type { EngineContext } from "./engine/context.js";
import { GroupCommitter } from "./engine/group-commit.js";
import { HotMessages } from "./engine/hot-messages.js";
import { type JobReport, JobRunner } from "./engine/jobs.js";
import { LruCache } from "./engine/lru-cache.js";
import { foldUsageJob, orphanGcJob, purgeJob } from "./engine/maintenance.js";
import { OutboxDispatcher, type Projector } from "./engine/outbox.js";
import { type Probe, WriteProtocol } from "./engine/write-protocol.js";
import type { BlobStore, BlobStoreDeps } from "./ports/blob-store.js";
import type { Cache } from "./ports/cache.js";
import type { Catalog, Usage } from "./ports/catalog.js";

export interface KuraOpenOptions {
  /** Environment for `env:VAR` references in the config (the library never reads process.env). */
  env?: Readonly<Record<string, string | undefined>>;
  /** Base for relative paths; default the working directory. */
  cwd?: string;
  /** Injectable clock (ms since epoch). */
  clock?: () => number;
  /** Observation / fault points of the write protocol and the planes (tests). */
  probe?: Probe;
  /** Wrap the blob store after it is opened (fault injection in tests). */
  wrapStore?: (store: BlobStore) => BlobStore;
  /** Body cache; default an in-memory LRU of 64 MiB. */
  cache?: Cache;
  /** Grace period before an unreferenced body counts as an orphan; default 1 h. */
  orphanGraceMs?: number;
}

export class Kura {
  private closed = false;

  private constructor(
    readonly config: KuraConfig,
    private readonly ctx: EngineContext,
    private readonly committer: GroupCommitter,
    private readonly outbox: OutboxDispatcher,
    readonly jobs: JobRunner,
  ) {}

  static async open(config?: unknown, options: KuraOpenOptions = {}): Promise<Kura> {
    const resolved = await resolveConfig(config, {
      ...(options.env ? { env: options.env } : {}),
      ...(options.cwd ? { cwd: options.cwd } : {}),
    });
    const clock = options.clock ?? Date.now;
    const durability = resolved.durability;
    const blobDeps: BlobStoreDeps = {
      durability,
      now: clock,
      ...(options.probe ? { probe: options.probe } : {}),
    };
    let store = await openBlobStore({
      backend: resolved.storage.backend,
      options: resolved.storage.options,
      deps: blobDeps,
    });
    if (options.wrapStore) store = options.wrapStore(store);
    const db = resolved.database;
    const definition = await catalogDefinition(db.backend);
    const catalogOptions =
      db.backend === "sqlite"
        ? { path: db.path }
        : { url: db.url, schema: db.schema, max_connections: db.max_connections };
    let catalog: Catalog;
    try {
      catalog = await definition.create(definition.parseOptions(catalogOptions), {
        durability,
        ...(options.probe ? { probe: options.probe } : {}),
      });
    } catch (e) {
      await store.close();
      throw e;
    }
    const committer = new GroupCommitter(catalog);
    const outbox = new OutboxDispatcher(catalog);
    const storeId = "primary";
    const ctx: EngineContext = {
      store,
      storeId,
      stores: new Map([[storeId, store]]),
      urls: new ContentUrls({ [storeId]: store }),
      catalog,
      protocol: new WriteProtocol(store, committer, options.probe),
      bodyCache: options.cache ?? new LruCache(64 * 1024 * 1024, 1024 * 1024),
      messageCache: catalog.capabilities.multiProcess || options.cache ? undefined : new HotMessages(50_000),
      clock,
      limits: { maxMessageBytes: resolved.limits.max_message_bytes },
      retention: { deletedMessagesDays: resolved.retention.deleted_messages_days },
      onOutbox: () => outbox.notify(),
    };
    const jobs = new JobRunner(catalog, clock);
    jobs.register(orphanGcJob(ctx, options.orphanGraceMs));
    jobs.register(purgeJob(ctx));
    jobs.register(foldUsageJob(ctx));
    return new Kura(resolved, ctx, committer, outbox, jobs);
  }

  /** Everything a tenant can do; the tenant is created on first write (IDS-1). */
  tenant(tenantId: string): TenantScope {
    this.assertOpen();
    assertValidId(tenantId, "tenant id", "kura.tenant");
    return new TenantScope(this.ctx, tenantId);
  }

  /** Register an outbox projector (search, vectors, change feed, …); it is caught up right away. */
  registerProjector(projector: Projector): void {
    this.outbox.register(projector);
    this.outbox.notify();
  }

  /** Deliver all pending outbox events to every projector now. */
  async pumpOutbox(): Promise<void> {
    await this.outbox.pump();
  }

  async outboxLag(projector: string): Promise<number> {
    return this.outbox.lag(projector);
  }

  /** Run maintenance jobs once (orphan GC, purge, usage folding). */
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

  get cacheStats() {
    return this.ctx.bodyCache.stats();
  }

  /** Finish in-flight writes and projector deliveries, then close the planes. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.committer.close();
    await this.outbox.close();
    await this.ctx.catalog.close();
    await this.ctx.store.close();
  }

  private assertOpen(): void {
    if (this.closed) throw new KuraError("INVALID_ARGUMENT", "Kura is closed", { operation: "kura" });
  }
}

export class TenantScope {
  readonly messages: Messages;
  readonly objects: Objects;

  constructor(
    private readonly ctx: EngineContext,
    readonly id: string,
  ) {
    this.messages = new Messages(ctx, id);
    this.objects = new Objects(ctx, id);
  }

  /** Bytes, objects and messages stored by this tenant (TEN-4). */
  usage(): Promise<Usage> {
    return this.ctx.catalog.usage(this.id);
  }

  /** Read a content URL (`local://…`, `s3://…`) — only this tenant's keys (MSG-6). */
  readUrl(url: string): Promise<Buffer> {
    return this.ctx.urls.read(url, this.id);
  }
}
