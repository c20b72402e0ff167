/**
 * Online migration of a running Kura's bodies to another blob store (seed 004: wrapper → dual
 * write → switch reads → retire; `POST /v1/admin/migrations`, `kura migrate`). Its state of
 * record is a `jobs` row (under {@link MIGRATION_JOBS}), saved after every step, so a restart
 * — a clean one or a kill -9 — resumes where it stood. One at a time (`MIGRATION_RUNNING`).
 *
 * The states, in order:
 * 1. `dual_write`: the target is opened and attached to the {@link MirrorBlobStore}s (the
 *    primary store and the session-files store): from here every acknowledged write lands in
 *    both. At open, a migration not yet finished is attached again *before* Kura serves, so
 *    no write after a restart misses the target.
 * 2. `copying`: every object the source lists is copied to the target unless there already
 *    (`ifNoneMatch`; a dual write got there first), read verified against its SHA-256 and
 *    checked against the SHA-256 the target reports. The listing's cursor is saved per page.
 *    Bodies written meanwhile are dual-written; bodies deleted meanwhile vanish from the
 *    source before or after their copy (a copy that arrives after the delete leaves an orphan
 *    in the target, which the target's orphan GC removes: no row points at it).
 * 3. `verifying`: the two listings are merged (both are in UTF-8 byte order): every source
 *    object must be in the target with its size and, where both listings know it, its
 *    SHA-256. A difference is copied again once (the source may have changed under the
 *    listing); one that remains fails the migration.
 * 4. `switched`: reads go to the target; writes still go to both.
 * 5. `done`: the target holds everything; `config` is the configuration section to start
 *    servers with. The source is retired, not deleted: it stays as it is, and this process
 *    keeps writing to both until it stops (projection workers still read the source), so the
 *    source remains a complete fallback until servers restart on the target configuration.
 *
 * Before the switch, a target that fails a write detaches at once and the migration is
 * `failed` (the write itself succeeds on the source); a new migration copies what is missing
 * again. From the switch on the target is the store of record: a write it fails fails.
 *
 * Scope: the blob plane (`target.storage`) and the state plane (`target.kv`: every key copied
 * through `MirrorKvStore`, which copies each written key's source entry to the target, and
 * compared value by value in `verifying`). Catalog (`database`) targets are refused with
 * `MIGRATION_UNSUPPORTED`. With several servers on one shared catalog, only the
 * server that runs the migration dual-writes: migrate with one server running.
 */
import { randomUUID } from "node:crypto";
import { isDeepStrictEqual } from "node:util";
import { isKuraError, KuraError } from "../../core/errors.js";
import type { BlobInfo, BlobStore, ListPage } from "../../ports/blob-store.js";
import type { Catalog, JobRecord } from "../../ports/catalog.js";
import type { KvStore } from "../../ports/kv-store.js";
import type { MirrorKvStore } from "./mirror-kv.js";
import type { MirrorBlobStore } from "./mirror-store.js";

export const MIGRATION_JOBS = "~migration";
export const MIGRATION_KIND = "migration";

export const MIGRATION_STATES = ["dual_write", "copying", "verifying", "switched", "done", "failed"] as const;
export type MigrationState = (typeof MIGRATION_STATES)[number];

/** What a migration moves: configuration sections as in the config file. */
export interface MigrationTarget {
  storage?: Record<string, unknown>;
  database?: Record<string, unknown>;
  kv?: Record<string, unknown>;
}

export interface MigrationProgress {
  /** Objects the copy step listed in the source so far. */
  listed: number;
  /** Objects it copied. */
  copied: number;
  /** Objects the target had already (dual-written, or copied before a restart). */
  present: number;
  /** Objects deleted from the source between its listing and their copy. */
  vanished: number;
  /** Bytes copied. */
  bytes: number;
  /** Objects the verification compared, and those it had to copy again. */
  verified: number;
  recopied: number;
  /** KV keys copied (with `target.kv`). */
  keys: number;
}

export interface MigrationView {
  id: string;
  state: MigrationState;
  progress: MigrationProgress;
  /** The configuration sections to start servers with once `done`. */
  target: MigrationTarget;
  error?: string;
  createdAt: number;
  updatedAt: number;
}

interface Payload {
  target: MigrationTarget;
  progress: MigrationProgress;
  /** Copy position: the store pair (0 primary, 1 session files) and its listing cursor. */
  pair: number;
  cursor?: string;
  /** The KV copy's scan cursor, and whether it has finished. */
  kvCursor?: string;
  kvCopied?: boolean;
  error?: string;
}

/** A target opened for the running process: its primary and session-files stores. */
export interface OpenedTarget {
  /** With `target.storage`. */
  store?: BlobStore;
  sessionStore?: BlobStore;
  /** With `target.kv`. */
  kv?: KvStore;
  close(): Promise<void>;
}

export interface OnlineMigrationDeps {
  catalog: Catalog;
  /** The running process's stores, wrapped so a target can be attached. */
  store: MirrorBlobStore;
  sessionStore: MirrorBlobStore;
  kv: MirrorKvStore;
  /** Opens the stores of `target.storage` (validated as the config file's `storage` would be). */
  openTarget(target: MigrationTarget): Promise<OpenedTarget>;
  clock: () => number;
  warn: (message: string) => void;
  /** Objects copied at once (default 16). */
  concurrency?: number;
}

const ACTIVE: readonly MigrationState[] = ["dual_write", "copying", "verifying", "switched"];

function emptyProgress(): MigrationProgress {
  return { listed: 0, copied: 0, present: 0, vanished: 0, bytes: 0, verified: 0, recopied: 0, keys: 0 };
}

export class OnlineMigrations {
  private opened: OpenedTarget | undefined;
  private running: Promise<void> | undefined;
  private closed = false;

  constructor(private readonly deps: OnlineMigrationDeps) {}

  /** Start a migration: attaches the target (dual write) before it resolves, then copies in the background. */
  async start(target: MigrationTarget): Promise<MigrationView> {
    checkTarget(target);
    const active = await this.active();
    if (active)
      throw new KuraError(
        "MIGRATION_RUNNING",
        `migration ${active.jobId} is ${active.state}: one at a time`,
        {
          operation: "migration.start",
          context: { id: active.jobId },
        },
      );
    const now = this.deps.clock();
    const job: JobRecord = {
      tenantId: MIGRATION_JOBS,
      jobId: randomUUID(),
      kind: MIGRATION_KIND,
      state: "dual_write",
      payload: { target, progress: emptyProgress(), pair: 0 } satisfies Payload,
      runAt: 0,
      attempts: 0,
      createdAt: now,
      updatedAt: now,
    };
    // Opened first: a target that cannot be opened is refused before any row exists.
    const opened = await this.deps.openTarget(target);
    if (this.isSource(opened)) {
      await opened.close().catch(() => undefined);
      throw new KuraError("INVALID_ARGUMENT", "the target storage is the store this Kura already uses", {
        operation: "migration.start",
      });
    }
    await this.deps.catalog.saveJob(job);
    this.attach(job, opened);
    const started = view(job);
    this.running = this.run(job);
    return started;
  }

  async get(id: string): Promise<MigrationView> {
    const job = await this.deps.catalog.getJob(MIGRATION_JOBS, id);
    if (!job || job.kind !== MIGRATION_KIND)
      throw new KuraError("MIGRATION_NOT_FOUND", `no migration ${id}`, {
        operation: "migration.get",
        context: { id },
      });
    return view(job);
  }

  /**
   * At open: a migration a stop interrupted is attached again (awaited: before any write) and
   * resumed in the background. A target that cannot be opened fails it.
   */
  async resume(): Promise<void> {
    const job = await this.active();
    if (!job) return;
    let opened: OpenedTarget;
    try {
      opened = await this.deps.openTarget((job.payload as unknown as Payload).target);
    } catch (e) {
      await this.fail(job, e);
      return;
    }
    if (this.isSource(opened)) {
      // Opened on the target's configuration before the migration finished: nothing to mirror.
      await opened.close().catch(() => undefined);
      await this.fail(
        job,
        new Error("a server was started on the target storage before the migration was done"),
      );
      return;
    }
    this.attach(job, opened);
    this.running = this.run(job);
  }

  /** Whether the target is the store this process already uses (same backend and location). */
  private isSource(opened: OpenedTarget): boolean {
    const source = this.deps.store.source;
    return opened.store?.scheme === source.scheme && opened.store.location === source.location;
  }

  /** Resolves when the running migration (if any) has ended or stopped. */
  async settled(): Promise<void> {
    await this.running;
  }

  /** Stops copying (the state stays as saved, so the next open resumes) and detaches. */
  async close(): Promise<void> {
    this.closed = true;
    await this.running?.catch(() => undefined);
    this.detachAll();
    await this.opened?.close().catch(() => undefined);
    this.opened = undefined;
  }

  private async active(): Promise<JobRecord | undefined> {
    const jobs = await this.deps.catalog.listJobs({ kind: MIGRATION_KIND, limit: 1000 });
    return jobs.find((j) => j.tenantId === MIGRATION_JOBS && ACTIVE.includes(j.state as MigrationState));
  }

  private attach(job: JobRecord, opened: OpenedTarget): void {
    this.opened = opened;
    this.failure = undefined;
    const onTargetFailure = (e: unknown) => {
      this.failure ??= e;
      this.deps.warn(`migration ${job.jobId}: the target failed a write, the migration fails: ${message(e)}`);
    };
    const onSourceFailure = (e: unknown) =>
      this.deps.warn(
        `migration ${job.jobId}: the retired source failed a write (the target has it): ${message(e)}`,
      );
    if (opened.store) this.deps.store.attach({ store: opened.store, onTargetFailure, onSourceFailure });
    if (opened.sessionStore && this.deps.sessionStore !== this.deps.store)
      this.deps.sessionStore.attach({ store: opened.sessionStore, onTargetFailure, onSourceFailure });
    if (opened.kv) this.deps.kv.attach({ store: opened.kv, onTargetFailure });
    if (job.state === "switched" || job.state === "done") this.switchReads();
  }

  /** The first write the target failed; the migration fails at its next step. */
  private failure: unknown;

  private switchReads(): void {
    this.deps.store.switchReads();
    this.deps.sessionStore.switchReads();
    this.deps.kv.switchReads();
  }

  private pairs(opened: OpenedTarget): [BlobStore, BlobStore][] {
    if (!opened.store) return [];
    const pairs: [BlobStore, BlobStore][] = [[this.deps.store.source, opened.store]];
    if (opened.sessionStore && this.deps.sessionStore !== this.deps.store)
      pairs.push([this.deps.sessionStore.source, opened.sessionStore]);
    return pairs;
  }

  private async run(job: JobRecord): Promise<void> {
    const opened = this.opened;
    if (!opened) return;
    const payload = job.payload as unknown as Payload;
    try {
      if (job.state === "dual_write") await this.save(job, "copying");
      if (job.state === "copying") {
        const pairs = this.pairs(opened);
        while (payload.pair < pairs.length) {
          const [source, target] = pairs[payload.pair] as [BlobStore, BlobStore];
          do {
            if (this.stopped(job)) return;
            const page = await source.list("", payload.cursor ? { cursor: payload.cursor } : {});
            await this.copyPage(page.items, source, target, payload.progress);
            payload.cursor = page.cursor;
            await this.save(job, "copying");
          } while (payload.cursor !== undefined);
          payload.pair++;
          await this.save(job, "copying");
        }
        if (opened.kv && !payload.kvCopied) {
          do {
            if (this.stopped(job)) return;
            const page = await this.deps.kv.source.scan("", {
              limit: 500,
              keysOnly: true,
              ...(payload.kvCursor ? { cursor: payload.kvCursor } : {}),
            });
            // Through the mirror's per-key queue, so a write racing the copy is not undone.
            await mapLimit(page.items, this.deps.concurrency ?? 16, (item) => this.deps.kv.copyKey(item.key));
            payload.progress.keys += page.items.length;
            payload.kvCursor = page.cursor;
            await this.save(job, "copying");
          } while (payload.kvCursor !== undefined);
          payload.kvCopied = true;
        }
        await this.save(job, "verifying");
      }
      if (job.state === "verifying") {
        payload.progress.verified = 0;
        payload.progress.recopied = 0;
        for (const [source, target] of this.pairs(opened)) {
          if (this.stopped(job)) return;
          await this.verify(source, target, payload.progress);
        }
        if (opened.kv) await this.verifyKv(opened.kv, payload.progress);
        if (this.stopped(job)) return;
        this.switchReads();
        await this.save(job, "switched");
      }
      if (job.state === "switched") await this.save(job, "done");
    } catch (e) {
      if (this.closed && !this.failure) return;
      await this.fail(job, this.failure ?? e);
    }
  }

  /** True when the migration must not go on: closing (resumed later) or the target failed. */
  private stopped(job: JobRecord): boolean {
    if (this.failure) throw this.failure;
    return this.closed || job.state === "failed";
  }

  private async copyPage(
    items: readonly BlobInfo[],
    source: BlobStore,
    target: BlobStore,
    progress: MigrationProgress,
  ): Promise<void> {
    progress.listed += items.length;
    await mapLimit(items, this.deps.concurrency ?? 16, async (item) => {
      const outcome = await copyOne(source, target, item.key, "ifAbsent");
      if (outcome === "vanished") progress.vanished++;
      else if (outcome === "present") progress.present++;
      else {
        progress.copied++;
        progress.bytes += outcome.size;
      }
    });
  }

  /** Merge the two listings; what differs is copied again once, and must then agree. */
  private async verify(source: BlobStore, target: BlobStore, progress: MigrationProgress): Promise<void> {
    const targets = pages(target);
    let t = await targets.next();
    for await (const s of pages(source)) {
      while (!t.done && compareKeys(t.value.key, s.key) < 0) t = await targets.next();
      const match = !t.done && t.value.key === s.key ? t.value : undefined;
      progress.verified++;
      if (match && agrees(s, match)) continue;
      // The source may have changed since it was listed: compare what both hold now.
      const outcome = await copyOne(source, target, s.key, "overwrite");
      if (outcome === "vanished") continue;
      progress.recopied++;
      const [a, b] = await Promise.all([source.head(s.key), target.head(s.key)]).catch(() => [
        undefined,
        undefined,
      ]);
      if (a && (!b || !agrees(a, b)))
        throw new KuraError(
          "MIGRATION_VERIFY_FAILED",
          `object ${s.key} differs in the target after a second copy`,
          {
            operation: "migration.verify",
            context: { key: s.key },
          },
        );
    }
  }

  /** Every source key must hold the same value in the target; a difference is copied again once. */
  private async verifyKv(target: KvStore, progress: MigrationProgress): Promise<void> {
    const source = this.deps.kv.source;
    let cursor: string | undefined;
    do {
      if (this.failure) throw this.failure;
      const page = await source.scan("", { limit: 500, ...(cursor ? { cursor } : {}) });
      await mapLimit(page.items, this.deps.concurrency ?? 16, async (entry) => {
        progress.verified++;
        if (sameValue(entry.value, (await target.getEntry(entry.key))?.value)) return;
        progress.recopied++;
        await this.deps.kv.copyKey(entry.key);
        const [a, b] = await Promise.all([source.getEntry(entry.key), target.getEntry(entry.key)]);
        if (a !== undefined && !sameValue(a.value, b?.value))
          throw new KuraError(
            "MIGRATION_VERIFY_FAILED",
            `KV key ${entry.key} differs in the target after a second copy`,
            {
              operation: "migration.verify",
              context: { key: entry.key },
            },
          );
      });
      cursor = page.cursor;
    } while (cursor !== undefined);
  }

  private async save(job: JobRecord, state: MigrationState): Promise<void> {
    job.state = state;
    job.updatedAt = this.deps.clock();
    await this.deps.catalog.saveJob(job);
  }

  private detachAll(): void {
    this.deps.store.detach();
    this.deps.sessionStore.detach();
    this.deps.kv.detach();
  }

  private async fail(job: JobRecord, e: unknown): Promise<void> {
    this.detachAll();
    (job.payload as unknown as Payload).error = message(e);
    this.deps.warn(`migration ${job.jobId} failed: ${message(e)}`);
    await this.save(job, "failed").catch((err: unknown) =>
      this.deps.warn(`migration ${job.jobId}: recording its failure failed: ${message(err)}`),
    );
  }
}

function checkTarget(target: MigrationTarget): void {
  if (target.database !== undefined)
    throw new KuraError(
      "MIGRATION_UNSUPPORTED",
      "online migration of the database (catalog) is not supported yet: only target.storage and target.kv",
      { operation: "migration.start" },
    );
  if (target.storage === undefined && target.kv === undefined)
    throw new KuraError("INVALID_ARGUMENT", "target.storage or target.kv is required", {
      operation: "migration.start",
    });
}

/** Two decoded KV values alike (byte arrays compared by their bytes). */
function sameValue(a: unknown, b: unknown): boolean {
  if (ArrayBuffer.isView(a) && ArrayBuffer.isView(b))
    return (
      Buffer.compare(
        Buffer.from(a.buffer, a.byteOffset, a.byteLength),
        Buffer.from(b.buffer, b.byteOffset, b.byteLength),
      ) === 0
    );
  return isDeepStrictEqual(a, b);
}

function view(job: JobRecord): MigrationView {
  const p = job.payload as unknown as Payload;
  return {
    id: job.jobId,
    state: job.state as MigrationState,
    progress: { ...emptyProgress(), ...p.progress },
    target: p.target,
    ...(p.error !== undefined ? { error: p.error } : {}),
    createdAt: job.createdAt,
    updatedAt: job.updatedAt,
  };
}

/**
 * Copy one object: `ifAbsent` leaves one the target has (a dual write got there first), by a
 * conditional put where the target offers one; `overwrite` replaces it. The bytes are checked
 * against the source's SHA-256.
 */
async function copyOne(
  source: BlobStore,
  target: BlobStore,
  key: string,
  mode: "ifAbsent" | "overwrite",
): Promise<"vanished" | "present" | { size: number }> {
  const conditional = mode === "ifAbsent" && target.capabilities.conditionalCreate;
  if (mode === "ifAbsent" && !conditional && (await target.exists(key))) return "present";
  let got: Awaited<ReturnType<BlobStore["get"]>>;
  try {
    got = await source.get(key);
  } catch (e) {
    if (isKuraError(e) && e.code === "BLOB_NOT_FOUND") return "vanished";
    throw e;
  }
  try {
    const result = await target.put(key, got.body, {
      contentType: got.info.contentType,
      metadata: got.info.metadata,
      ...(conditional ? { ifNoneMatch: "*" as const } : {}),
    });
    if (got.info.sha256 !== undefined && result.sha256 !== got.info.sha256)
      throw new KuraError("MIGRATION_VERIFY_FAILED", `object ${key} changed on its way to the target`, {
        operation: "migration.copy",
        context: { key },
      });
    return { size: result.size };
  } catch (e) {
    got.body.destroy();
    if (isKuraError(e) && e.code === "BLOB_ALREADY_EXISTS") return "present";
    throw e;
  }
}

function agrees(a: BlobInfo, b: BlobInfo): boolean {
  if (a.size !== b.size) return false;
  return a.sha256 === undefined || b.sha256 === undefined || a.sha256 === b.sha256;
}

async function* pages(store: BlobStore): AsyncGenerator<BlobInfo> {
  let cursor: string | undefined;
  do {
    const page: ListPage = await store.list("", cursor ? { cursor } : {});
    yield* page.items;
    cursor = page.cursor;
  } while (cursor !== undefined);
}

/** UTF-8 byte order, the order every store lists in. */
function compareKeys(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}

async function mapLimit<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++] as T;
      await fn(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
