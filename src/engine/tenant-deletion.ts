/**
 * Tenant deletion (TEN-5, `DELETE /v1/admin/tenants/{id}`): a job that removes a tenant from
 * every plane, resumable after a restart because its state lives in the catalog — the
 * registry record (`status: "deleting"`, refusing every call of the tenant meanwhile) and a
 * row of the `jobs` table (its phase, its cursor and what it removed so far).
 *
 * The phases, in this order, each in chunks, each chunk recorded before the next:
 * 1. `search`: the ids of the tenant's messages (catalog rows, and the entity ids of its
 *    retained change feed, which names messages a projector may not have caught up with) are
 *    removed from the full-text index and the `messages` vector index, and from the caches;
 * 2. `collections`: each vector collection's index is dropped, then its definition;
 * 3. `kv`: every key under `{tenant}:` — sessions, state, KV namespaces, memories (whose
 *    `memories` index items go first) — is deleted, then forgotten with the versions deleted
 *    keys keep (`KvStore.forgetPrefix`);
 * 4. `catalog`: every row with the tenant's id (`Catalog.purgeTenantRows`), so no row points at
 *    a body any more (CONS-1) …
 * 5. `blob`: … and then every body under `{tenant}/` in every store (messages and all their
 *    versions, objects, session files), including orphans no row knew of.
 * Last, one more sweep of the KV store, the catalog and the blob stores (a write admitted just before the status
 * changed may have committed meanwhile), then the registry record goes (`removeTenant`) with an
 * audit entry in the admin stream, and the job row. The id may then be registered again, empty.
 *
 * The tenant's own audit log goes with its rows, so the admin's actions on it — the request and
 * the completion — are recorded in {@link ADMIN_AUDIT_STREAM}, which no tenant can own.
 */

import { randomUUID } from "node:crypto";
import { isKuraError } from "../core/errors.js";
import type { BlobStore } from "../ports/blob-store.js";
import type { Cache } from "../ports/cache.js";
import type { AuditEntry, Catalog, JobRecord, TenantRecord } from "../ports/catalog.js";
import type { KvStore } from "../ports/kv-store.js";
import type { SearchIndex } from "../ports/search-index.js";
import type { VectorIndex, VectorMetric } from "../ports/vector-index.js";
import { bodiesPinned } from "./backup-pin.js";
import type { HotMessages } from "./hot-messages.js";
import type { Job } from "./jobs.js";
import { bodyCachePrefix, hotMessageKey } from "./message-rows.js";
import type { Tenancy } from "./tenancy.js";

/** How long the body step waits while a backup pins the bodies, before asking again. */
const PINNED_WAIT_MS = 1000;

/**
 * The audit stream of admin actions that must outlive the tenant they concern (its deletion):
 * entries carry this as their tenant id and the tenant's id as `target` and `details.tenant_id`.
 * `~` starts no tenant id (IDS-1), so no tenant reads or owns it.
 */
export const ADMIN_AUDIT_STREAM = "~admin";
/** The `jobs` rows of tenant deletions: under this system id, one per tenant (`jobId`). */
export const DELETION_JOBS = "~tenant-deletion";
export const TENANT_DELETION_KIND = "tenant.delete";

export const DELETION_PHASES = ["search", "collections", "kv", "catalog", "blob"] as const;
export type DeletionPhase = (typeof DELETION_PHASES)[number];

/** What a deletion has removed so far, per plane, and where it stands. */
export interface DeletionProgress {
  phase: DeletionPhase | "finishing";
  /** Search documents and message embeddings (by message id). */
  search: number;
  /** Vector collections dropped, and `memories` items removed. */
  vectors: number;
  /** KV keys deleted (sessions, state, namespaces, memory records, collection definitions). */
  kv: number;
  /** Catalog rows deleted. */
  catalog: number;
  /** Bodies deleted from the blob stores. */
  blob: number;
  requestedAt: number;
  actor: string;
}

interface DeletionPayload extends DeletionProgress {
  /** The record's `createdAt`: a tenant registered again under the id is another tenant. */
  tenantCreatedAt: number;
  /** Where the `search` phase stands in the catalog's message keys, then in the feed. */
  messageCursor?: string;
  feedCursor?: number;
}

/** The vector plane as deletion needs it (`engine/vectors.ts`'s `VectorPlane`). */
export interface DeletionVectors {
  memories(): VectorIndex;
  readonly messages: { index: VectorIndex } | undefined;
  dropCollection(
    tenantId: string,
    c: { name: string; dimensions: number; metric: VectorMetric },
  ): Promise<void>;
}

export interface TenantDeletionDeps {
  catalog: Catalog;
  kv: KvStore;
  /** Every store bodies may live in: the configured stores and the session-files store. */
  stores: () => readonly BlobStore[];
  search: SearchIndex | undefined;
  vectors: DeletionVectors;
  bodyCache: Cache;
  messageCache: HotMessages | undefined;
  tenancy: Tenancy;
  clock: () => number;
  warn: (message: string) => void;
  /** Rows, keys or bodies per chunk (default 500). */
  chunk?: number;
  /** How long a node holds a deletion before another may take it over (default 60 s). */
  leaseMs?: number;
}

const RECORD_KEY = /^[^:]+:memory:([^:]+):([^:]+)$/;

function jobProgress(p: DeletionPayload): DeletionProgress {
  return {
    phase: p.phase,
    search: p.search,
    vectors: p.vectors,
    kv: p.kv,
    catalog: p.catalog,
    blob: p.blob,
    requestedAt: p.requestedAt,
    actor: p.actor,
  };
}

export class TenantDeletions {
  private readonly owner = `node-${randomUUID()}`;
  private readonly running = new Map<string, Promise<boolean>>();
  private stopping = false;
  private readonly chunk: number;
  private readonly leaseMs: number;

  constructor(private readonly deps: TenantDeletionDeps) {
    this.chunk = deps.chunk ?? 500;
    this.leaseMs = deps.leaseMs ?? 60_000;
  }

  /**
   * Mark a registered tenant for deletion and start the job: its record says `deleting` from
   * now on (every call of the tenant is refused), and the request is audited in the admin
   * stream. Deleting a tenant already being deleted changes nothing. Resolves to the record;
   * undefined when no tenant of this id is registered.
   */
  async start(tenantId: string, actor: string): Promise<TenantRecord | undefined> {
    const { catalog, clock } = this.deps;
    const record = await catalog.getTenant(tenantId);
    if (!record) return undefined;
    if (record.status === "deleting") {
      this.kick(tenantId);
      return record;
    }
    const at = clock();
    const payload: DeletionPayload = {
      phase: "search",
      search: 0,
      vectors: 0,
      kv: 0,
      catalog: 0,
      blob: 0,
      requestedAt: at,
      actor,
      tenantCreatedAt: record.createdAt,
    };
    // The job first: a crash before the status changes leaves a job that sets it when it runs.
    await this.save(tenantId, payload, "pending", at);
    const updated = await catalog.updateTenant(
      tenantId,
      { status: "deleting" },
      { at, audit: adminAudit(tenantId, "tenant.delete", actor, at, { status: "deleting" }) },
    );
    this.deps.tenancy.forget(tenantId);
    if (!updated) {
      // Removed meanwhile by another node's deletion: nothing left to do.
      await catalog.deleteJob(DELETION_JOBS, tenantId);
      return undefined;
    }
    this.kick(tenantId);
    return updated;
  }

  /** Where the deletion of `tenantId` stands, undefined when none is under way. */
  async progress(tenantId: string): Promise<DeletionProgress | undefined> {
    const job = await this.deps.catalog.getJob(DELETION_JOBS, tenantId);
    return job ? jobProgress(job.payload as unknown as DeletionPayload) : undefined;
  }

  /** Run every deletion under way that no other node holds (after a restart; `kura gc`). */
  async resumeAll(): Promise<{ resumed: number; finished: number }> {
    let after: { tenantId: string; jobId: string } | undefined;
    let resumed = 0;
    let finished = 0;
    for (;;) {
      const jobs = await this.deps.catalog.listJobs({
        kind: TENANT_DELETION_KIND,
        limit: 100,
        ...(after ? { after } : {}),
      });
      for (const job of jobs) {
        if (this.stopping) return { resumed, finished };
        resumed++;
        if (await this.run(job.jobId)) finished++;
      }
      const last = jobs.at(-1);
      if (jobs.length < 100 || !last) return { resumed, finished };
      after = { tenantId: last.tenantId, jobId: last.jobId };
    }
  }

  /** The job for the job runner: resumes deletions a dead node left unfinished. */
  job(): Job {
    return {
      name: "tenant-deletion",
      run: async () => this.resumeAll(),
    };
  }

  /** Start (or join) the deletion of `tenantId` in the background. */
  kick(tenantId: string): void {
    void this.run(tenantId).catch(() => false);
  }

  /** Resolves once the deletions this process runs have stopped (finished, failed or halted). */
  async settle(): Promise<void> {
    while (this.running.size > 0) await Promise.allSettled([...this.running.values()]);
  }

  /** Stop after the chunk in hand (the job resumes on the next start) and wait for it. */
  async close(): Promise<void> {
    this.stopping = true;
    await this.settle();
  }

  /**
   * Run the deletion of `tenantId` to its end, or until stopped; true when it finished. Holds
   * the lease `tenant-deletion:{id}` meanwhile, so one node runs it at a time; false without it.
   */
  run(tenantId: string): Promise<boolean> {
    let running = this.running.get(tenantId);
    if (!running) {
      running = this.runLeased(tenantId)
        .catch((e: unknown) => {
          this.deps.warn(
            `deleting tenant ${tenantId} stopped (it resumes later): ${e instanceof Error ? e.message : String(e)}`,
          );
          return false;
        })
        .finally(() => this.running.delete(tenantId));
      this.running.set(tenantId, running);
    }
    return running;
  }

  private lease(tenantId: string): Promise<boolean> {
    return this.deps.catalog.tryLease({
      name: `tenant-deletion:${tenantId}`,
      owner: this.owner,
      now: this.deps.clock(),
      ttlMs: this.leaseMs,
    });
  }

  private async runLeased(tenantId: string): Promise<boolean> {
    if (this.stopping || !(await this.lease(tenantId))) return false;
    try {
      return await this.steps(tenantId);
    } finally {
      await this.deps.catalog
        .releaseLease({ name: `tenant-deletion:${tenantId}`, owner: this.owner })
        .catch(() => undefined);
    }
  }

  private async steps(tenantId: string): Promise<boolean> {
    const { catalog, clock } = this.deps;
    const job = await catalog.getJob(DELETION_JOBS, tenantId);
    if (!job) return true;
    const p = job.payload as unknown as DeletionPayload;
    const record = await catalog.getTenant(tenantId);
    if (!record || record.createdAt !== p.tenantCreatedAt) {
      // Finished before the job row went (or the id was registered again since): only the row is left.
      await catalog.deleteJob(DELETION_JOBS, tenantId);
      return true;
    }
    if (record.status !== "deleting") {
      await catalog.updateTenant(tenantId, { status: "deleting" }, { at: clock() });
      this.deps.tenancy.forget(tenantId);
    }
    const start = p.phase === "finishing" ? DELETION_PHASES.length : DELETION_PHASES.indexOf(p.phase);
    for (const phase of DELETION_PHASES.slice(start)) {
      if (p.phase !== phase) {
        p.phase = phase;
        await this.save(tenantId, p, "running", job.createdAt);
      }
      for (;;) {
        if (this.stopping) return false;
        const more = await this.step(tenantId, phase, p);
        await this.save(tenantId, p, "running", job.createdAt);
        if (!(await this.lease(tenantId))) return false;
        if (!more) break;
      }
    }
    p.phase = "finishing";
    await this.save(tenantId, p, "running", job.createdAt);
    // Whatever a write admitted before the status changed committed meanwhile goes too.
    while (
      (await this.step(tenantId, "kv", p)) ||
      (await this.step(tenantId, "catalog", p)) ||
      (await this.step(tenantId, "blob", p))
    ) {
      if (this.stopping) return false;
    }
    const at = clock();
    await catalog.removeTenant(tenantId, {
      audit: adminAudit(tenantId, "tenant.deleted", p.actor, at, {
        removed: { search: p.search, vectors: p.vectors, kv: p.kv, catalog: p.catalog, blob: p.blob },
        requested_at: p.requestedAt,
      }),
    });
    await catalog.deleteJob(DELETION_JOBS, tenantId);
    this.deps.tenancy.forget(tenantId);
    await this.deps.bodyCache.deletePrefix(`${tenantId}\u0000`);
    return true;
  }

  /** One chunk of `phase`; true while more may follow. */
  private async step(tenantId: string, phase: DeletionPhase, p: DeletionPayload): Promise<boolean> {
    switch (phase) {
      case "search":
        return this.unindexMessages(tenantId, p);
      case "collections":
        return this.dropCollections(tenantId, p);
      case "kv":
        return this.deleteKeys(tenantId, p);
      case "catalog": {
        const n = await this.deps.catalog.purgeTenantRows(tenantId, { limit: this.chunk });
        p.catalog += n;
        return n > 0;
      }
      case "blob":
        return this.deleteBodies(tenantId, p);
    }
  }

  /** The next chunk of message ids — catalog rows first, then the feed — out of the indexes and caches. */
  private async unindexMessages(tenantId: string, p: DeletionPayload): Promise<boolean> {
    const { catalog } = this.deps;
    let ids: string[];
    if (p.feedCursor === undefined) {
      const keys = await catalog.listMessageKeys({
        after: { tenantId, id: p.messageCursor ?? "" },
        limit: this.chunk,
        includeDeleted: true,
      });
      ids = keys.filter((k) => k.tenantId === tenantId).map((k) => k.id);
      const last = ids.at(-1);
      if (last !== undefined) p.messageCursor = last;
      if (ids.length < keys.length || keys.length < this.chunk) p.feedCursor = 0;
    } else {
      const events = await catalog
        .readChanges(tenantId, { after: p.feedCursor, limit: this.chunk })
        .catch((e) => {
          // Pruned below the cursor since it was read: what is left starts at the horizon.
          if (isKuraError(e) && e.code === "CHANGES_CURSOR_EXPIRED")
            return catalog.readChanges(tenantId, { limit: this.chunk });
          throw e;
        });
      ids = [...new Set(events.filter((e) => e.type.startsWith("message.")).map((e) => e.entityId))];
      const last = events.at(-1);
      if (last) p.feedCursor = last.seq;
      if (events.length < this.chunk) {
        await this.unindex(tenantId, ids);
        p.search += ids.length;
        return false;
      }
    }
    await this.unindex(tenantId, ids);
    p.search += ids.length;
    return true;
  }

  private async unindex(tenantId: string, ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return;
    await this.deps.search?.remove(tenantId, ids);
    await this.deps.vectors.messages?.index.remove(tenantId, ids);
    for (const id of ids) {
      this.deps.messageCache?.delete(hotMessageKey(tenantId, id));
      await this.deps.bodyCache.deletePrefix(bodyCachePrefix(tenantId, id));
    }
  }

  /** The next collections' indexes, then their definitions (`domains/vectors.ts`: `{tenant}:vcoll:{name}`). */
  private async dropCollections(tenantId: string, p: DeletionPayload): Promise<boolean> {
    const { kv, vectors } = this.deps;
    const page = await kv.scan<{ name: string; dimensions: number; metric: VectorMetric }>(
      `${tenantId}:vcoll:`,
      { limit: Math.min(this.chunk, 100) },
    );
    for (const entry of page.items) {
      const def = entry.value;
      if (def && typeof def.name === "string") await vectors.dropCollection(tenantId, def);
      await kv.delete(entry.key);
      p.vectors++;
    }
    return page.items.length > 0;
  }

  /** The next keys under `{tenant}:`; a memory record's `memories` item before the record. */
  private async deleteKeys(tenantId: string, p: DeletionPayload): Promise<boolean> {
    const { kv } = this.deps;
    const page = await kv.scan(`${tenantId}:`, { limit: Math.min(this.chunk, 1000), keysOnly: true });
    const memoryIds: string[] = [];
    for (const { key } of page.items) {
      const m = RECORD_KEY.exec(key);
      if (m) memoryIds.push(`${m[1]}/${m[2]}`);
    }
    if (memoryIds.length > 0) {
      await this.memories()?.remove(tenantId, memoryIds);
      p.vectors += memoryIds.length;
    }
    for (const { key } of page.items) if (await kv.delete(key)) p.kv++;
    if (page.items.length > 0) return true;
    // No live key is left: the versions deleted keys keep (tombstones, ADR 0025) go too, so the
    // store holds no key name of the tenant's and a reused id starts at version 1.
    p.kv += await kv.forgetPrefix(`${tenantId}:`);
    return false;
  }

  private memories(): VectorIndex | undefined {
    try {
      return this.deps.vectors.memories();
    } catch (e) {
      // No memories index in this configuration (it failed to open): nothing of the tenant's is in it.
      if (isKuraError(e) && e.code === "VECTOR_UNAVAILABLE") return undefined;
      throw e;
    }
  }

  /**
   * The next bodies under `{tenant}/` in each store — none while a backup pins the bodies
   * (`backup-pin.ts`): its snapshot may hold the tenant's rows, so the step waits (true: more).
   */
  private async deleteBodies(tenantId: string, p: DeletionPayload): Promise<boolean> {
    if (await bodiesPinned(this.deps.catalog, this.deps.clock())) {
      await new Promise((resolve) => setTimeout(resolve, PINNED_WAIT_MS).unref());
      return true;
    }
    let more = false;
    for (const store of new Set(this.deps.stores())) {
      // From the start each time: what was listed is deleted, so the next page is what is left.
      const page = await store.list(`${tenantId}/`, { limit: this.chunk });
      if (page.items.length === 0) continue;
      await store.delete(page.items.map((o) => o.key));
      p.blob += page.items.length;
      more = true;
    }
    return more;
  }

  private save(tenantId: string, p: DeletionPayload, state: string, createdAt: number): Promise<void> {
    const job: JobRecord = {
      tenantId: DELETION_JOBS,
      jobId: tenantId,
      kind: TENANT_DELETION_KIND,
      state,
      payload: p as unknown as Record<string, unknown>,
      runAt: 0,
      attempts: 0,
      createdAt,
      updatedAt: this.deps.clock(),
    };
    return this.deps.catalog.saveJob(job);
  }
}

function adminAudit(
  tenantId: string,
  action: string,
  actor: string,
  at: number,
  details: Record<string, unknown>,
): AuditEntry {
  return {
    tenantId: ADMIN_AUDIT_STREAM,
    actor,
    action,
    target: tenantId,
    at,
    details: { tenant_id: tenantId, ...details },
  };
}
