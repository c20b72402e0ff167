/**
 * `fsck` (CONS-3): checks that the planes agree, and with `repair` brings them back in line.
 *
 * - bodies: every blob ref's body is read whole and verified against the SHA-256 the catalog
 *   recorded (missing objects, checksum mismatches); a missing one is re-checked against the
 *   catalog first, since an erase may have dropped ref and body meanwhile;
 * - orphans: every body under `{tenant}/messages/`, `objects/` or `archive/` without a ref. A body
 *   of a write still under way in this process (the write protocol's record of in-flight keys)
 *   is no orphan, however young. Where that record is complete — a catalog one process owns,
 *   checked from that process (`kura serve`'s route, or the CLI beside no server) — every other
 *   unreferenced body is an orphan; on a shared catalog another node may be between body and
 *   commit, so only bodies older than the grace count. Repair deletes orphans older than the
 *   grace, after checking refs and in-flight keys again right before (as `gc-orphans` does);
 * - search drift: live messages missing from the full-text index and documents of messages that
 *   are gone or deleted; candidates are re-checked after the outbox is delivered again, so a
 *   write landing meanwhile is not drift. Repair re-projects those messages;
 * - usage drift: each tenant's recorded usage against what it stores, read in one snapshot
 *   (`Catalog.usageCheck`); repair commits the difference as a usage delta, which writes
 *   committing meanwhile cannot invalidate (each carries its own exact delta);
 * - outbox: every projector delivered up to the head after a pump, and every tenant's change
 *   feed gap-free from its horizon (reported; nothing to repair).
 *
 * Bodies that cannot be recovered (missing, corrupt) are marked on repair: a `jobs` record of
 * kind {@link DAMAGED_BODY} per body (the catalog's place for state that outlives a process,
 * and purged with its tenant), so later runs count them as known damage instead of problems.
 * Reads of such a message answer BODY_MISSING / BODY_CORRUPT whether marked or not (the read
 * verifies the body anyway); a marked body that reads back whole again (restored) loses its mark
 * on the next repair.
 *
 * The report is the wire shape of `kura fsck --json` and `POST /v1/admin/fsck` (snake_case),
 * built here once so both transports print the same document.
 */
import { mapLimit } from "../core/concurrency.js";
import { KuraError } from "../core/errors.js";
import type { BlobStore } from "../ports/blob-store.js";
import type { Catalog, CatalogOp, JobRecord, MessageKey, MessageRow } from "../ports/catalog.js";
import type { SearchIndex } from "../ports/search-index.js";
import type { VectorIndex, VectorScanPage } from "../ports/vector-index.js";
import type { MemoryIndex } from "./memory-index.js";
import { isLive } from "./message-rows.js";
import { ADMIN_AUDIT_STREAM } from "./tenant-deletion.js";

/** `jobs.kind` of the mark of a body found missing or corrupt. */
export const DAMAGED_BODY = "fsck.damaged-body";
/** Second key segment of bodies the catalog tracks (as orphan GC: archived bodies too). */
const CATALOGED = new Set(["messages", "objects", "archive"]);
const PAGE = 500;
const READ_CONCURRENCY = 8;
const SAMPLE_LIMIT = 50;
/** Default grace before an unreferenced body may be deleted: 1 h, as orphan GC. */
export const DEFAULT_FSCK_GRACE_MS = 3_600_000;

export type FsckPhase = "bodies" | "orphans" | "search" | "vectors" | "usage" | "outbox";

export interface FsckProgress {
  phase: FsckPhase;
  /** Items of the phase checked so far. */
  done: number;
}

export type FsckProblemType =
  | "missing_object"
  | "orphan_object"
  | "checksum_mismatch"
  | "index_drift"
  | "usage_drift"
  | "outbox";

/** One problem found, as the report samples it. */
export interface FsckSample {
  problem: FsckProblemType;
  tenant_id?: string;
  key?: string;
  kind?: string;
  message_id?: string;
  detail: string;
  repaired: boolean;
}

export interface FsckReport {
  /** No problem was found. */
  ok: boolean;
  /** Repair was asked for. */
  repair: boolean;
  checked: {
    bodies: number;
    bytes: number;
    stored_objects: number;
    messages: number;
    search_documents: number;
    /** Items of the `memories` vector index. */
    memory_vectors: number;
    /** Items of the `messages` vector index (with `vector.embed_messages`). */
    message_vectors: number;
    tenants: number;
    outbox_events: number;
    /** Unreferenced bodies of writes still under way in this process (not orphans). */
    in_flight: number;
    /** Unreferenced bodies younger than the grace on a shared catalog (maybe another node's write). */
    recent_unreferenced: number;
    /** Bodies marked missing or corrupt by an earlier repair, still so. */
    known_missing: number;
    known_corrupt: number;
  };
  problems: {
    missing_objects: number;
    orphan_objects: number;
    checksum_mismatches: number;
    index_drift: number;
    usage_drift: number;
    outbox: number;
  };
  /** Problems repair did not fix (all of them without `repair`). */
  remaining: number;
  repairs: {
    marked_missing: number;
    marked_corrupt: number;
    marks_cleared: number;
    orphans_deleted: number;
    reindexed: number;
    usage_fixed: number;
  };
  /** Up to 50 problems, in the order found. */
  samples: FsckSample[];
  seconds: number;
}

export interface FsckOptions {
  repair?: boolean;
  /** Orphans younger than this are not deleted (and on a shared catalog not counted). */
  graceMs?: number;
  onProgress?: (progress: FsckProgress) => void;
  /** Who asked (SEC-3): the audit entries of a repair carry it; default `system`. */
  actor?: string;
}

/** What fsck works on: the planes, and what the running engine knows. */
export interface FsckDeps {
  catalog: Catalog;
  /** Every configured store by id. */
  stores: ReadonlyMap<string, BlobStore>;
  /** Whether this process is writing `key` right now (`WriteProtocol.writing`). */
  writing: (key: string) => boolean;
  /** The main thread's full-text index and the projector that re-projects messages into it. */
  search?: { index: SearchIndex; apply: (messages: readonly MessageKey[]) => Promise<void> } | undefined;
  /**
   * With `vector.embed_messages`: the `messages` vector index, a scan of its items of record
   * (`VectorIndexes.scan`), and the projector that re-embeds messages into it.
   */
  messageVectors?:
    | {
        index: VectorIndex;
        scan: (options: { after?: string; limit: number }) => Promise<VectorScanPage>;
        apply: (messages: readonly MessageKey[]) => Promise<void>;
      }
    | undefined;
  /** The `memories` vector index and the protocol that keeps it in line with the KV records. */
  memories?: { index: VectorIndex; sync: MemoryIndex } | undefined;
  /** Deliver every committed outbox event to the projectors. */
  pump: () => Promise<void>;
  /** Registered projectors, and how many events each has yet to get. */
  projectors: readonly string[];
  lag: (projector: string) => Promise<number>;
  /** Applies a batch through the write path's group commit. */
  commit: (ops: CatalogOp[]) => Promise<void>;
  clock: () => number;
}

type BodyState = "ok" | "missing" | "corrupt";

const markKey = (storeId: string, blobKey: string) => `${storeId}\u0000${blobKey}`;

/** Runs every check (and the repairs asked for) once. */
export async function runFsck(deps: FsckDeps, options: FsckOptions = {}): Promise<FsckReport> {
  return new Fsck(deps, options).run();
}

class Fsck {
  private readonly repair: boolean;
  private readonly graceMs: number;
  private readonly report: FsckReport;
  private readonly started = performance.now();
  private readonly now: number;
  private readonly actor: string;

  constructor(
    private readonly deps: FsckDeps,
    private readonly options: FsckOptions,
  ) {
    this.repair = options.repair === true;
    this.graceMs = options.graceMs ?? DEFAULT_FSCK_GRACE_MS;
    if (!Number.isSafeInteger(this.graceMs) || this.graceMs < 0)
      throw new KuraError("INVALID_ARGUMENT", "grace must be a whole number of milliseconds ≥ 0", {
        operation: "fsck",
      });
    this.now = deps.clock();
    this.actor = options.actor ?? "system";
    this.report = {
      ok: true,
      repair: this.repair,
      checked: {
        bodies: 0,
        bytes: 0,
        stored_objects: 0,
        messages: 0,
        search_documents: 0,
        memory_vectors: 0,
        message_vectors: 0,
        tenants: 0,
        outbox_events: 0,
        in_flight: 0,
        recent_unreferenced: 0,
        known_missing: 0,
        known_corrupt: 0,
      },
      problems: {
        missing_objects: 0,
        orphan_objects: 0,
        checksum_mismatches: 0,
        index_drift: 0,
        usage_drift: 0,
        outbox: 0,
      },
      remaining: 0,
      repairs: {
        marked_missing: 0,
        marked_corrupt: 0,
        marks_cleared: 0,
        orphans_deleted: 0,
        reindexed: 0,
        usage_fixed: 0,
      },
      samples: [],
      seconds: 0,
    };
  }

  async run(): Promise<FsckReport> {
    // Projections first catch up, so what lags is not counted as drift.
    await this.deps.pump();
    await this.bodies();
    await this.orphans();
    await this.searchDrift();
    await this.messageVectorDrift();
    await this.memoryDrift();
    await this.usage();
    await this.outbox();
    const p = this.report.problems;
    this.report.ok = Object.values(p).every((n) => n === 0);
    this.report.seconds = (performance.now() - this.started) / 1000;
    // A repair that changed something is an admin action: one entry in the ~admin stream.
    if (this.repair && Object.values(this.report.repairs).some((n) => n > 0))
      await this.deps.commit([
        {
          op: "appendAudit",
          entry: {
            tenantId: ADMIN_AUDIT_STREAM,
            actor: this.actor,
            action: "fsck.repair",
            target: "fsck",
            at: this.now,
            details: {
              problems: { ...p },
              repairs: { ...this.report.repairs },
              remaining: this.report.remaining,
            },
          },
        },
      ]);
    return this.report;
  }

  private progress(phase: FsckPhase, done: number): void {
    this.options.onProgress?.({ phase, done });
  }

  private problem(sample: FsckSample): void {
    const p = this.report.problems;
    const field = {
      missing_object: "missing_objects",
      orphan_object: "orphan_objects",
      checksum_mismatch: "checksum_mismatches",
      index_drift: "index_drift",
      usage_drift: "usage_drift",
      outbox: "outbox",
    } as const satisfies Record<FsckProblemType, keyof FsckReport["problems"]>;
    p[field[sample.problem]]++;
    if (!sample.repaired) this.report.remaining++;
    if (this.report.samples.length < SAMPLE_LIMIT) this.report.samples.push(sample);
  }

  // --- bodies: missing and corrupt ----------------------------------------------------------

  private async marks(): Promise<Map<string, JobRecord>> {
    const marks = new Map<string, JobRecord>();
    let after: { tenantId: string; jobId: string } | undefined;
    for (;;) {
      const page = await this.deps.catalog.listJobs({
        kind: DAMAGED_BODY,
        limit: PAGE,
        ...(after ? { after } : {}),
      });
      for (const j of page) {
        const storeId = String(j.payload.store_id ?? "");
        const blobKey = String(j.payload.blob_key ?? "");
        marks.set(markKey(storeId, blobKey), j);
      }
      if (page.length < PAGE) return marks;
      const last = page.at(-1) as JobRecord;
      after = { tenantId: last.tenantId, jobId: last.jobId };
    }
  }

  private async bodies(): Promise<void> {
    const { catalog } = this.deps;
    const marks = await this.marks();
    for (const [storeId, store] of this.deps.stores) {
      let after: string | undefined;
      for (;;) {
        const page = await catalog.listBlobRefs({
          storeId,
          limit: PAGE,
          ...(after !== undefined ? { after } : {}),
        });
        const refs = page.refs;
        after = page.next;
        const states = await mapLimit(refs, READ_CONCURRENCY, (r) => readState(store, r.blobKey, r.checksum));
        // A body gone with its ref (an erase that committed meanwhile) is not missing.
        const gone = refs.filter((_, i) => states[i] === "missing").map((r) => r.blobKey);
        const still = gone.length > 0 ? await catalog.existingBlobRefs(storeId, gone) : new Set<string>();
        for (let i = 0; i < refs.length; i++) {
          const ref = refs[i] as (typeof refs)[number];
          let state = states[i] as BodyState;
          if (state === "missing" && !still.has(ref.blobKey)) continue;
          this.report.checked.bodies++;
          this.report.checked.bytes += ref.sizeBytes;
          const mark = marks.get(markKey(storeId, ref.blobKey));
          marks.delete(markKey(storeId, ref.blobKey));
          if (state === "ok") {
            if (mark && this.repair) {
              await catalog.deleteJob(mark.tenantId, mark.jobId);
              this.report.repairs.marks_cleared++;
            }
            continue;
          }
          if (mark?.state === state) {
            this.report.checked[state === "missing" ? "known_missing" : "known_corrupt"]++;
            continue;
          }
          if (this.repair) await this.mark(ref.tenantId, storeId, ref.blobKey, ref.kind, state);
          state = state as "missing" | "corrupt";
          this.problem({
            problem: state === "missing" ? "missing_object" : "checksum_mismatch",
            tenant_id: ref.tenantId,
            key: ref.blobKey,
            kind: ref.kind,
            ...messageIdOf(ref.blobKey, ref.kind),
            detail:
              state === "missing"
                ? "the catalog references a body the blob store does not hold"
                : "the body's bytes do not match the SHA-256 the catalog recorded",
            repaired: this.repair,
          });
        }
        this.progress("bodies", this.report.checked.bodies);
        if (after === undefined) break;
      }
    }
    // Marks of bodies no ref names any more (the message was erased or purged since): nothing
    // left to mark. Re-checked, since a ref listed before the scan began may have come since.
    if (this.repair)
      for (const mark of marks.values()) {
        const storeId = String(mark.payload.store_id ?? "");
        const blobKey = String(mark.payload.blob_key ?? "");
        if ((await catalog.existingBlobRefs(storeId, [blobKey])).has(blobKey)) continue;
        await catalog.deleteJob(mark.tenantId, mark.jobId);
        this.report.repairs.marks_cleared++;
      }
  }

  private async mark(
    tenantId: string,
    storeId: string,
    blobKey: string,
    kind: string,
    state: "missing" | "corrupt",
  ): Promise<void> {
    await this.deps.catalog.saveJob({
      tenantId,
      jobId: `${storeId}:${blobKey}`,
      kind: DAMAGED_BODY,
      state,
      payload: { store_id: storeId, blob_key: blobKey, body_kind: kind },
      runAt: 0,
      attempts: 0,
      createdAt: this.now,
      updatedAt: this.now,
    });
    this.report.repairs[state === "missing" ? "marked_missing" : "marked_corrupt"]++;
  }

  // --- orphans ------------------------------------------------------------------------------

  private async orphans(): Promise<void> {
    const { catalog, writing } = this.deps;
    // Only a catalog one process owns lets this process know every write under way.
    const exact = !catalog.capabilities.multiProcess;
    for (const [storeId, store] of this.deps.stores) {
      let cursor: string | undefined;
      do {
        const page = await store.list("", { limit: 1000, ...(cursor ? { cursor } : {}) });
        cursor = page.cursor;
        const bodies = page.items.filter((o) => CATALOGED.has(o.key.split("/")[1] ?? ""));
        this.report.checked.stored_objects += bodies.length;
        if (bodies.length === 0) continue;
        const referenced = await catalog.existingBlobRefs(
          storeId,
          bodies.map((o) => o.key),
        );
        // Unreferenced at the first look and not being written after it: a write whose commit
        // settled in between has its ref by now, so a second look confirms the orphans.
        const candidates: { key: string; old: boolean }[] = [];
        for (const o of bodies) {
          if (referenced.has(o.key)) continue;
          if (writing(o.key)) {
            this.report.checked.in_flight++;
            continue;
          }
          const old = o.lastModified.getTime() <= this.now - this.graceMs;
          if (!exact && !old) {
            this.report.checked.recent_unreferenced++;
            continue;
          }
          candidates.push({ key: o.key, old });
        }
        if (candidates.length === 0) continue;
        const again = await catalog.existingBlobRefs(
          storeId,
          candidates.map((c) => c.key),
        );
        const orphans = candidates.filter((c) => !again.has(c.key));
        // Deleted only past the grace, after a last look at the refs and the writes under way.
        const due = this.repair ? orphans.filter((c) => c.old).map((c) => c.key) : [];
        const last = due.length > 0 ? await catalog.existingBlobRefs(storeId, due) : new Set<string>();
        const confirmed = new Set(due.filter((k) => !last.has(k) && !writing(k)));
        if (confirmed.size > 0) await store.delete([...confirmed]);
        this.report.repairs.orphans_deleted += confirmed.size;
        for (const c of orphans) {
          if (last.has(c.key)) continue;
          const deleted = confirmed.has(c.key);
          this.problem({
            problem: "orphan_object",
            tenant_id: c.key.split("/")[0] as string,
            key: c.key,
            detail: deleted
              ? "a body no catalog ref points at (deleted)"
              : c.old
                ? "a body no catalog ref points at"
                : "a body no catalog ref points at, younger than the grace (kept)",
            repaired: deleted,
          });
        }
        this.progress("orphans", this.report.checked.stored_objects);
      } while (cursor);
    }
  }

  // --- search drift -------------------------------------------------------------------------

  private async searchDrift(): Promise<void> {
    const search = this.deps.search;
    if (!search) return;
    await this.projectionDrift({
      what: "the full-text index",
      holds: "holds",
      existing: (tenantId, ids) => search.index.existing(tenantId, ids),
      list: async (cursor) => {
        const page = await search.index.listDocuments({ limit: PAGE, ...(cursor ? { cursor } : {}) });
        return { keys: page.keys, cursor: page.cursor };
      },
      apply: search.apply,
      wanted: (row) => isLive(row, this.now),
      counted: (n) => {
        this.report.checked.search_documents += n;
      },
      countsMessages: true,
    });
  }

  /**
   * The `messages` vector index (`vector.embed_messages`) against the catalog, as the full-text
   * index: a live message with text has an embedding, a deleted or gone one has none. Whether a
   * message has text is read from its preview (the start of the same text).
   */
  private async messageVectorDrift(): Promise<void> {
    const vectors = this.deps.messageVectors;
    if (!vectors) return;
    await this.projectionDrift({
      what: "the message embeddings",
      holds: "hold",
      existing: (tenantId, ids) => vectors.index.existing(tenantId, ids),
      list: async (cursor) => {
        const page = await vectors.scan({ limit: PAGE, ...(cursor ? { after: cursor } : {}) });
        return { keys: page.items.map((i) => ({ tenantId: i.tenantId, id: i.id })), cursor: page.next };
      },
      apply: vectors.apply,
      wanted: (row) => isLive(row, this.now) && row.preview.trim() !== "",
      counted: (n) => {
        this.report.checked.message_vectors += n;
      },
      countsMessages: false,
    });
  }

  /**
   * One projection of the messages against the catalog: live messages (`wanted`) it lacks, and
   * entries of messages that are deleted or gone. Both sets are checked again after the outbox
   * is delivered (writes committed during the scan), and with `repair` re-projected.
   */
  private async projectionDrift(p: {
    what: string;
    /** The verb for `what` ("holds", "hold"). */
    holds: string;
    existing: (tenantId: string, ids: string[]) => Promise<Set<string>>;
    list: (
      cursor: string | undefined,
    ) => Promise<{ keys: readonly MessageKey[]; cursor?: string | undefined }>;
    apply: (messages: readonly MessageKey[]) => Promise<void>;
    wanted: (row: MessageRow) => boolean;
    counted: (entries: number) => void;
    /** Whether this pass counts the catalog's messages (`checked.messages`, once per run). */
    countsMessages: boolean;
  }): Promise<void> {
    const { catalog } = this.deps;
    const missing = new Map<string, MessageKey>();
    const extra = new Map<string, MessageKey>();
    const id = (k: MessageKey) => `${k.tenantId}\u0000${k.id}`;
    // Live messages the projection does not hold.
    let after: MessageKey | undefined;
    for (;;) {
      const keys = await catalog.listMessageKeys({ limit: PAGE, ...(after ? { after } : {}) });
      if (keys.length === 0) break;
      after = keys.at(-1);
      if (p.countsMessages) this.report.checked.messages += keys.length;
      for (const [tenantId, ids] of byTenant(keys)) {
        const held = await p.existing(tenantId, ids);
        const absent = ids.filter((i) => !held.has(i));
        if (absent.length === 0) continue;
        for (const row of await catalog.getMessages(tenantId, absent))
          if (p.wanted(row)) missing.set(id(row), { tenantId, id: row.id });
      }
      this.progress("search", this.report.checked.messages);
      if (keys.length < PAGE) break;
    }
    // Entries of messages that are gone or deleted (expired ones leave with their erase).
    let cursor: string | undefined;
    do {
      const page = await p.list(cursor);
      cursor = page.cursor;
      p.counted(page.keys.length);
      for (const [tenantId, ids] of byTenant(page.keys)) {
        const rows = new Map((await catalog.getMessages(tenantId, ids)).map((r) => [r.id, r]));
        for (const i of ids)
          if (!indexable(rows.get(i))) extra.set(id({ tenantId, id: i }), { tenantId, id: i });
      }
    } while (cursor);
    if (missing.size === 0 && extra.size === 0) return;
    // Writes committed during the scan reach the projection now: what is still off is drift.
    await this.deps.pump();
    const drifted: Array<MessageKey & { how: "missing" | "extra" }> = [];
    for (const [how, set] of [
      ["missing", missing],
      ["extra", extra],
    ] as const) {
      for (const [tenantId, ids] of byTenant([...set.values()])) {
        const held = await p.existing(tenantId, ids);
        const rows = new Map((await catalog.getMessages(tenantId, ids)).map((r) => [r.id, r]));
        for (const i of ids) {
          const row = rows.get(i);
          const off =
            how === "missing"
              ? !held.has(i) && row !== undefined && p.wanted(row)
              : held.has(i) && !indexable(row);
          if (off) drifted.push({ tenantId, id: i, how });
        }
      }
    }
    if (this.repair && drifted.length > 0) {
      for (let i = 0; i < drifted.length; i += PAGE)
        await p.apply(drifted.slice(i, i + PAGE).map(({ tenantId, id }) => ({ tenantId, id })));
      this.report.repairs.reindexed += drifted.length;
    }
    for (const d of drifted)
      this.problem({
        problem: "index_drift",
        tenant_id: d.tenantId,
        message_id: d.id,
        detail:
          d.how === "missing"
            ? `a live message is missing from ${p.what}`
            : `${p.what} ${p.holds} a message that is deleted or gone`,
        repaired: this.repair,
      });
  }

  // --- vectors: memories --------------------------------------------------------------------

  /**
   * The `memories` index against the KV records, its store of record: per tenant, as many items
   * as records (the index keeps one item per record, keyed by user and memory id). Pending
   * intents are projected first, so a write under way or cut short is not drift. Counts find a
   * dropped or a stray item; repair projects every record of the tenant again, which brings back
   * what is missing (stray items of records that no longer exist cannot be found by count).
   */
  private async memoryDrift(): Promise<void> {
    const memories = this.deps.memories;
    if (!memories) return;
    await memories.sync.recover();
    const records = await memories.sync.recordCounts();
    this.report.checked.memory_vectors = await memories.index.count();
    let accounted = 0;
    for (const [tenantId, n] of records) {
      let held = await memories.index.count(tenantId);
      accounted += held;
      if (held === n) continue;
      // A memory written meanwhile: its intent is projected by the next pass.
      await memories.sync.recover();
      const again = (await memories.sync.recordCounts()).get(tenantId) ?? 0;
      held = await memories.index.count(tenantId);
      if (held === again) continue;
      let repaired = false;
      if (this.repair) {
        await memories.sync.reproject(tenantId);
        this.report.repairs.reindexed++;
        repaired = (await memories.index.count(tenantId)) === again;
      }
      this.problem({
        problem: "index_drift",
        tenant_id: tenantId,
        detail: `the memories vector index holds ${held} item(s) for ${again} memory record(s)`,
        repaired,
      });
    }
    this.progress("vectors", records.size);
    const strays = this.report.checked.memory_vectors - accounted;
    if (strays > 0)
      this.problem({
        problem: "index_drift",
        detail: `the memories vector index holds ${strays} item(s) of tenants without memory records (kura reindex cannot drop them yet)`,
        repaired: false,
      });
  }

  // --- usage --------------------------------------------------------------------------------

  private async usage(): Promise<void> {
    const rows = await this.deps.catalog.usageCheck();
    this.report.checked.tenants = rows.length;
    this.progress("usage", rows.length);
    for (const r of rows) {
      const delta = {
        tenantId: r.tenantId,
        bytes: r.stored.bytes - r.recorded.bytes,
        objects: r.stored.objects - r.recorded.objects,
        messages: r.stored.messages - r.recorded.messages,
      };
      if (delta.bytes === 0 && delta.objects === 0 && delta.messages === 0) continue;
      if (this.repair) {
        await this.deps.commit([
          { op: "addUsage", delta },
          {
            op: "appendAudit",
            entry: {
              tenantId: r.tenantId,
              actor: this.actor,
              action: "fsck.usage-repair",
              target: r.tenantId,
              at: this.now,
              details: { recorded: r.recorded, stored: r.stored },
            },
          },
        ]);
        this.report.repairs.usage_fixed++;
      }
      this.problem({
        problem: "usage_drift",
        tenant_id: r.tenantId,
        detail:
          `recorded ${r.recorded.bytes} bytes, ${r.recorded.objects} bodies, ${r.recorded.messages} messages; ` +
          `stored ${r.stored.bytes} bytes, ${r.stored.objects} bodies, ${r.stored.messages} messages`,
        repaired: this.repair,
      });
    }
  }

  // --- outbox -------------------------------------------------------------------------------

  private async outbox(): Promise<void> {
    const { catalog } = this.deps;
    // Every projector must get past the head taken before a full delivery. Writes that go on
    // meanwhile (the server's route) add events after it, which are no problem: a projector is
    // behind only when it has more left than there are events after that head (its count is
    // read first, so a later event only makes the head's count larger).
    const head = await catalog.outboxHead();
    await this.deps.pump();
    for (const name of this.deps.projectors) {
      let behind = 0;
      for (let attempt = 0; attempt < 2; attempt++) {
        const lag = await this.deps.lag(name);
        behind = lag - (await catalog.outboxLag(head));
        if (behind <= 0) break;
        await this.deps.pump();
      }
      if (behind > 0)
        this.problem({
          problem: "outbox",
          detail: `projector ${name} has not got ${behind} event(s) committed before the check, after a full delivery`,
          repaired: false,
        });
    }
    for (const { tenantId } of await catalog.usageCheck()) {
      let position = await catalog.changesHorizon(tenantId);
      for (;;) {
        const page = await catalog.readChanges(tenantId, { after: position, limit: 1000 });
        for (const e of page) {
          if (e.seq !== position + 1) {
            this.problem({
              problem: "outbox",
              tenant_id: tenantId,
              detail: `the change feed jumps from position ${position} to ${e.seq}`,
              repaired: false,
            });
          }
          position = e.seq;
          this.report.checked.outbox_events++;
        }
        if (page.length < 1000) break;
      }
      this.progress("outbox", this.report.checked.outbox_events);
    }
  }
}

/** Reads a body whole, verified; BLOB_NOT_FOUND is missing, a failed check corrupt. */
async function readState(store: BlobStore, key: string, checksum: string): Promise<BodyState> {
  try {
    const { body } = await store.get(key, { expectedSha256: checksum });
    for await (const _ of body) {
      // Reading is the check: the stream errors before its end if the bytes are wrong.
    }
    return "ok";
  } catch (e) {
    if (e instanceof KuraError && e.code === "BLOB_NOT_FOUND") return "missing";
    if (e instanceof KuraError && (e.code === "BLOB_CHECKSUM_MISMATCH" || e.code === "BLOB_METADATA_CORRUPT"))
      return "corrupt";
    throw e;
  }
}

/** A message body key names its message: `…/{message_id}.json` or `…/{message_id}.v{n}….json`. */
function messageIdOf(key: string, kind: string): { message_id?: string } {
  if (kind !== "message" && kind !== "message-version") return {};
  const name = key.slice(key.lastIndexOf("/") + 1);
  const id = /^([0-9a-f-]{36})[.]/.exec(name)?.[1];
  return id ? { message_id: id } : {};
}

/** Whether a row belongs in the full-text index, or may be there (expired: left for its erase). */
function indexable(row: MessageRow | undefined): boolean {
  return row !== undefined && row.deletedAt === null;
}

function byTenant(keys: readonly MessageKey[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const k of keys) {
    const ids = out.get(k.tenantId);
    if (ids) ids.push(k.id);
    else out.set(k.tenantId, [k.id]);
  }
  return out;
}
