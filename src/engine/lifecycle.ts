/**
 * The lifecycle engine (LIFE-1): one pass over every retention policy, run as the `lifecycle`
 * job (under its catalog lease, so once across nodes) or on demand (`kura lifecycle run`,
 * `POST /v1/admin/lifecycle:run`, under the same lease), in this order:
 *
 * 1. TTL expiry: messages whose `expiresAt` passed are removed for good (`message.expired`).
 * 2. Purge: messages soft-deleted more than `retention.deleted_messages_days` ago
 *    (`message.purged`; 0 days = at the next run).
 * 3. Archive, with `retention.archive_after_days` set: message bodies (every version) and object
 *    bodies stored longer ago move under `{tenant}/archive/…` (seed 001's prefix, where a bucket
 *    lifecycle rule can move them to a colder class) through the write protocol — the copy is
 *    written first, then one batch points the row at it (the row is the body's ref), then the old
 *    body goes — so a row never points at a missing body and a crash leaves only an orphan.
 * 4. KV expiry (sessions' metadata, state with TTL) on stores without native TTL, and session
 *    files written more than `retention.session_files_days` ago.
 *
 * Legal holds keep what they cover from expiry and purge (`legal-holds.ts`). Each action is
 * audited: removals and moves by the write protocol (one entry per message or object), expired
 * session files per tenant, and the run itself in the admin stream (the job's runs when they did
 * something, on-demand runs always). A dry run reads what each
 * step would act on and counts it, changing nothing.
 */
import { createHash, randomBytes, randomUUID } from "node:crypto";
import { isKuraError, KuraError } from "../core/errors.js";
import { newMessageId } from "../core/ids.js";
import { MAX_KEY_BYTES } from "../core/keys.js";
import { messageArchiveKey as archiveKeyOf } from "../core/message-keys.js";
import type { BlobStore } from "../ports/blob-store.js";
import type { AuditEntry, LegalHoldRow, MessageRow, ObjectRow } from "../ports/catalog.js";
import type { KvStore } from "../ports/kv-store.js";
import { type EngineContext, storeFor } from "./context.js";
import { eraseMessages } from "./erase.js";
import { holdLease, JOB_LEASE_MS, type Job } from "./jobs.js";
import { splitHeld } from "./legal-holds.js";
import { hotMessageKey, isLive } from "./message-rows.js";
import { ADMIN_AUDIT_STREAM } from "./tenant-deletion.js";
import type { MoveMessageBody } from "./write-protocol.js";

const DAY = 86_400_000;
/** Messages removed per batch. */
const BATCH = 200;
/** Rows a dry run reads per step at most (it cannot page by removing what it read). */
const DRY_RUN_MAX = 100_000;
/** The job's name, and with `job:` its catalog lease. */
export const LIFECYCLE_JOB = "lifecycle";

/** What a run did, or with `dryRun` would do, by action. */
export interface LifecycleCounts {
  /** Messages whose TTL ran out, removed. */
  messagesExpired: number;
  /** Soft-deleted messages past retention, removed. */
  messagesPurged: number;
  /** Messages whose bodies moved under `{tenant}/archive/`. */
  messagesArchived: number;
  /** Objects whose bodies moved under `{tenant}/archive/`. */
  objectsArchived: number;
  /** Expired KV entries swept; null in a dry run (the stores cannot count them without sweeping). */
  kvExpired: number | null;
  /** Session files past `retention.session_files_days`, deleted. */
  sessionFilesExpired: number;
  /** Messages due for expiry or purge that a legal hold kept. */
  held: number;
  /** Bodies the archive could not move (missing or damaged: `kura fsck` reports them). */
  failed: number;
}

export interface LifecycleReport {
  dryRun: boolean;
  /** The time the run judged against (ms). */
  at: number;
  counts: LifecycleCounts;
}

export interface LifecycleDeps {
  ctx: EngineContext;
  kv: KvStore;
  /** Where session files live (the blob store, or `sessions.dir`). */
  sessionFiles: BlobStore;
  sessionFilesDays: number;
  /** Days after which bodies move to the archive; undefined = never. */
  archiveAfterDays: number | undefined;
  /** Appends audit entries outside any described write (session files, the run itself). */
  audit: (entries: AuditEntry[]) => Promise<void>;
}

export class Lifecycle {
  constructor(private readonly deps: LifecycleDeps) {}

  /** The `lifecycle` job: a run at the runner's time, under the runner's lease. */
  job(): Job {
    return {
      name: LIFECYCLE_JOB,
      run: async ({ now }) => flatten((await this.pass(now, false, "system")).counts),
    };
  }

  /**
   * Run the engine now. A real run takes the job's lease, so it never overlaps the job on any
   * node (`LIFECYCLE_RUNNING` while another run holds it); a dry run needs none.
   */
  async run(options: { dryRun?: boolean; actor?: string; now?: number } = {}): Promise<LifecycleReport> {
    const now = options.now ?? this.deps.ctx.clock();
    const actor = options.actor ?? "system";
    if (options.dryRun) return this.pass(now, true, actor);
    const catalog = this.deps.ctx.catalog;
    const lease = { name: `job:${LIFECYCLE_JOB}`, owner: `lifecycle-${randomUUID()}` };
    // The job's lease, renewed while the run lasts, its token on every batch (ADR 0039).
    const held = await holdLease(catalog, { ...lease, ttlMs: JOB_LEASE_MS, clock: this.deps.ctx.clock }, now);
    if (!held)
      throw new KuraError(
        "LIFECYCLE_RUNNING",
        "a lifecycle run is under way on this catalog; try again later",
        {
          operation: "lifecycle.run",
        },
      );
    try {
      return await held.run(() => this.pass(now, false, actor));
    } finally {
      await held.release();
    }
  }

  private async pass(now: number, dryRun: boolean, actor: string): Promise<LifecycleReport> {
    const { ctx } = this.deps;
    const counts: LifecycleCounts = {
      messagesExpired: 0,
      messagesPurged: 0,
      messagesArchived: 0,
      objectsArchived: 0,
      kvExpired: null,
      sessionFilesExpired: 0,
      held: 0,
      failed: 0,
    };
    const holds = new Map<string, LegalHoldRow[]>();
    const expired = await this.remove(
      (limit) => ctx.catalog.expiredMessages({ now, limit }),
      "message.expired",
      { dryRun, actor, holds },
    );
    counts.messagesExpired = expired.done;
    const purged = await this.remove(
      (limit) =>
        ctx.catalog.deletedMessagesBefore({ before: now - ctx.retention.deletedMessagesDays * DAY, limit }),
      "message.purged",
      { dryRun, actor, holds },
    );
    counts.messagesPurged = purged.done;
    counts.held = expired.held + purged.held;
    if (this.deps.archiveAfterDays !== undefined) {
      const before = now - this.deps.archiveAfterDays * DAY;
      const messages = await this.archiveMessages(before, now, dryRun, actor);
      const objects = await this.archiveObjects(before, now, dryRun, actor);
      counts.messagesArchived = messages.done;
      counts.objectsArchived = objects.done;
      counts.failed = messages.failed + objects.failed;
    }
    if (!dryRun) counts.kvExpired = await this.deps.kv.sweepExpired({ now });
    counts.sessionFilesExpired = await this.expireSessionFiles(now, dryRun, actor);
    // The job runs every few minutes: its runs are recorded when they did something; every run
    // asked for (the CLI, the admin API) is.
    const acted = Object.values(counts).some((v) => typeof v === "number" && v > 0);
    if (!dryRun && (acted || actor !== "system"))
      await this.deps.audit([
        {
          tenantId: ADMIN_AUDIT_STREAM,
          actor,
          action: "lifecycle.run",
          target: LIFECYCLE_JOB,
          at: now,
          details: { ...flatten(counts) },
        },
      ]);
    return { dryRun, at: now, counts };
  }

  /**
   * Removes (or counts) the messages `due` returns, oldest first, leaving held ones. Those left
   * stay due, so each read asks for as many more as it has left behind.
   */
  private async remove(
    due: (limit: number) => Promise<MessageRow[]>,
    eventType: "message.expired" | "message.purged",
    o: { dryRun: boolean; actor: string; holds: Map<string, LegalHoldRow[]> },
  ): Promise<{ done: number; held: number }> {
    const { catalog } = this.deps.ctx;
    if (o.dryRun) {
      const { free, held } = await splitHeld(catalog, await due(DRY_RUN_MAX), o.holds);
      return { done: free.length, held: held.length };
    }
    const left = new Set<string>();
    let done = 0;
    let held = 0;
    while (left.size + BATCH <= DRY_RUN_MAX) {
      const rows = (await due(left.size + BATCH)).filter((r) => !left.has(key(r)));
      if (rows.length === 0) break;
      const split = await splitHeld(catalog, rows, o.holds);
      held += split.held.length;
      for (const r of split.held) left.add(key(r));
      if (split.free.length === 0) continue;
      const removed = await eraseMessages(this.deps.ctx, split.free, eventType, o.actor);
      done += removed.length;
      // Those a race saved (undeleted, or a hold placed meanwhile) are left behind too.
      const gone = new Set(removed.map(key));
      for (const r of split.free) if (!gone.has(key(r))) left.add(key(r));
    }
    return { done, held };
  }

  private async archiveMessages(
    before: number,
    now: number,
    dryRun: boolean,
    actor: string,
  ): Promise<{ done: number; failed: number }> {
    const { catalog } = this.deps.ctx;
    let done = 0;
    let failed = 0;
    let after: { tenantId: string; id: string } | undefined;
    for (;;) {
      const rows = await catalog.messagesToArchive({ before, limit: 100, ...(after ? { after } : {}) });
      const last = rows.at(-1);
      if (last === undefined) break;
      after = { tenantId: last.tenantId, id: last.id };
      // Deleted and expired messages are on their way out: the purge takes them.
      for (const row of rows.filter((r) => isLive(r, now))) {
        if (dryRun) {
          done++;
          continue;
        }
        const outcome = await this.archiveMessage(row, now, actor);
        if (outcome === "moved") done++;
        else if (outcome === "failed") failed++;
      }
    }
    return { done, failed };
  }

  /** Every version's body of one message, copied under the archive and swapped in one batch. */
  private async archiveMessage(row: MessageRow, now: number, actor: string): Promise<Outcome> {
    const { ctx } = this.deps;
    const versions = await ctx.catalog.listMessageVersions(row.tenantId, row.id);
    const current = versions.reduce((v, x) => Math.max(v, x.version), 0);
    const changes: MoveMessageBody[] = [];
    for (const v of versions) {
      if (archived(v.blobKey, row.tenantId)) continue;
      let data: Buffer;
      try {
        ({ data } = await storeFor(ctx, v.storeId).getBuffer(v.blobKey, { expectedSha256: v.checksum }));
      } catch (e) {
        if (lostBody(e)) return "failed";
        throw e;
      }
      changes.push({
        kind: "message-body",
        row: {
          tenantId: row.tenantId,
          messageId: row.id,
          version: v.version,
          blobKey: messageArchiveKey(v.blobKey, row.tenantId),
        },
        fromBlobKey: v.blobKey,
        expectVersion: current,
        data,
        contentType: "application/json",
        drops: [{ storeId: v.storeId, blobKey: v.blobKey, sizeBytes: v.sizeBytes }],
        event: "message.archived",
        entityId: row.id,
        payload: { chatId: row.chatId, version: v.version },
        action: "message.archive",
        details: { version: v.version },
      });
    }
    if (changes.length === 0) return "skipped";
    try {
      await ctx.protocol.write({ at: now, actor, changes });
    } catch (e) {
      // An edit, erase or another move got there first: the next run looks again.
      if (raced(e)) return "skipped";
      throw e;
    }
    ctx.messageCache?.delete(hotMessageKey(row.tenantId, row.id));
    return "moved";
  }

  private async archiveObjects(
    before: number,
    now: number,
    dryRun: boolean,
    actor: string,
  ): Promise<{ done: number; failed: number }> {
    const { ctx } = this.deps;
    let done = 0;
    let failed = 0;
    let after: { tenantId: string; id: string } | undefined;
    for (;;) {
      const rows = await ctx.catalog.objectsToArchive({ before, limit: 100, ...(after ? { after } : {}) });
      const last = rows.at(-1);
      if (last === undefined) break;
      after = { tenantId: last.tenantId, id: last.key };
      for (const row of rows) {
        if (dryRun) {
          done++;
          continue;
        }
        const outcome = await this.archiveObject(row, now, actor);
        if (outcome === "moved") done++;
        else if (outcome === "failed") failed++;
      }
    }
    return { done, failed };
  }

  /** One object's body, streamed into the archive; the row moves to it as a replacing put would. */
  private async archiveObject(row: ObjectRow, now: number, actor: string): Promise<Outcome> {
    const { ctx } = this.deps;
    let body: NodeJS.ReadableStream;
    try {
      ({ body } = await storeFor(ctx, row.storeId).get(row.blobKey, { expectedSha256: row.checksum }));
    } catch (e) {
      if (lostBody(e)) return "failed";
      throw e;
    }
    try {
      await ctx.protocol.write({
        at: now,
        actor,
        changes: [
          {
            kind: "object",
            row: {
              tenantId: row.tenantId,
              key: row.key,
              blobKey: objectArchiveKey(row, now),
              contentType: row.contentType,
              createdAt: row.createdAt,
              updatedAt: row.updatedAt,
            },
            expectBlobKey: row.blobKey,
            data: body as AsyncIterable<Uint8Array>,
            contentType: row.contentType,
            drops: [{ storeId: row.storeId, blobKey: row.blobKey, sizeBytes: row.sizeBytes }],
            event: "object.archived",
            entityId: row.key,
            payload: {},
            action: "object.archive",
            details: {},
          },
        ],
      });
    } catch (e) {
      if (raced(e)) return "skipped";
      if (lostBody(e)) return "failed";
      throw e;
    }
    return "moved";
  }

  /** Session files under `{tenant}/sessions/` written before the cutoff: deleted, audited per tenant. */
  private async expireSessionFiles(now: number, dryRun: boolean, actor: string): Promise<number> {
    const store = this.deps.sessionFiles;
    const cutoff = now - this.deps.sessionFilesDays * DAY;
    const perTenant = new Map<string, number>();
    let total = 0;
    let cursor: string | undefined;
    do {
      const page = await store.list("", { limit: 1000, ...(cursor ? { cursor } : {}) });
      cursor = page.cursor;
      const expired = page.items
        .filter((o) => o.key.split("/", 3)[1] === "sessions" && o.lastModified.getTime() <= cutoff)
        .map((o) => o.key);
      if (expired.length === 0) continue;
      if (!dryRun) await store.delete(expired);
      total += expired.length;
      for (const k of expired) {
        const tenant = k.slice(0, k.indexOf("/"));
        perTenant.set(tenant, (perTenant.get(tenant) ?? 0) + 1);
      }
    } while (cursor);
    if (!dryRun && perTenant.size > 0)
      await this.deps.audit(
        [...perTenant].map(([tenantId, files]) => ({
          tenantId,
          actor,
          action: "session.files_expired",
          target: "sessions",
          at: now,
          details: { files },
        })),
      );
    return total;
  }
}

type Outcome = "moved" | "skipped" | "failed";

function key(r: MessageRow): string {
  return `${r.tenantId}\u0000${r.id}`;
}

function archived(blobKey: string, tenantId: string): boolean {
  return blobKey.startsWith(`${tenantId}/archive/`);
}

function raced(e: unknown): boolean {
  return (
    isKuraError(e) &&
    (e.code === "CATALOG_STALE_VERSION" || e.code === "CATALOG_NOT_FOUND" || e.code === "BLOB_ALREADY_EXISTS")
  );
}

function lostBody(e: unknown): boolean {
  return (
    isKuraError(e) &&
    (e.code === "BLOB_NOT_FOUND" || e.code === "BLOB_CHECKSUM_MISMATCH" || e.code === "BLOB_METADATA_CORRUPT")
  );
}

/** The archive key of a message body (`core/message-keys.ts`), with a fresh suffix per attempt. */
export function messageArchiveKey(blobKey: string, tenantId: string): string {
  return archiveKeyOf(blobKey, tenantId, randomBytes(6).toString("hex"));
}

/**
 * `{tenant}/objects/{key}@{version}` → `{tenant}/archive/objects/{key}@{new version}`, or, when
 * that passes the 1,024 bytes every backend allows, under the key's SHA-256 (as long keys are).
 */
export function objectArchiveKey(row: ObjectRow, now: number): string {
  const version = newMessageId(now);
  const at = row.blobKey.lastIndexOf("@");
  const rest = row.blobKey.slice(row.tenantId.length + 1, at < 0 ? undefined : at);
  const plain = `${row.tenantId}/archive/${rest}@${version}`;
  if (Buffer.byteLength(plain) <= MAX_KEY_BYTES) return plain;
  const hash = createHash("sha256").update(row.key).digest("hex");
  return `${row.tenantId}/archive/objects/~long/${hash}@${version}`;
}

/** A report's counts as the job runner records them (a dry run's null KV count left out). */
export function flatten(counts: LifecycleCounts): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(counts)) if (typeof v === "number") out[k] = v;
  return out;
}
