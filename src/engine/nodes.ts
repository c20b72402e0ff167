/**
 * The nodes sharing a catalog (DIST-1). Each node keeps a row of record in `jobs` (system owner
 * `~nodes`, kind `kura.node`, the node id as job id) naming its outbox consumers, and renews it
 * every 10 s. A node's embedded indexes consume the whole outbox under consumers named after it
 * (`search@<id>`), so the outbox keeps what every node still has to read; a node gone for good
 * is forgotten — by `kura nodes forget`, or by the `prune-outbox` job once its heartbeat is older
 * than `node.stale_after_hours` — and its cursors stop holding the outbox back.
 */
import type { Catalog, JobRecord } from "../ports/catalog.js";

export const NODE_JOBS = "~nodes";
export const NODE_KIND = "kura.node";
export const HEARTBEAT_MS = 10_000;
/** A node seen within this long is live (three missed heartbeats make it not). */
export const LIVE_MS = 3 * HEARTBEAT_MS;

/** A per-node consumer's name: the projector's, then `@` and the node id. */
export function nodeConsumer(projector: string, nodeId: string): string {
  return `${projector}@${nodeId}`;
}

export interface NodeInfo {
  id: string;
  host: string;
  pid: number;
  startedAt: number;
  /** Last heartbeat (ms). */
  seenAt: number;
  /** `running`, or `stopped` once it closed. */
  state: string;
  /** The outbox consumers that are this node's own. */
  consumers: string[];
  live: boolean;
}

export interface NodeRegistryDeps {
  catalog: Catalog;
  clock: () => number;
  nodeId: string;
  host: string;
  pid: number;
  /** This node's own consumers, as they are now. */
  consumers: () => readonly string[];
  warn: (message: string) => void;
}

export class NodeRegistry {
  private timer: NodeJS.Timeout | undefined;
  private startedAt = 0;
  /** Called when this live node's row was found removed (`kura nodes forget`); it is saved again. */
  onForgotten: (() => void) | undefined;

  constructor(private readonly deps: NodeRegistryDeps) {}

  get nodeId(): string {
    return this.deps.nodeId;
  }

  /** Save this node's row; true if the catalog knew the node already (its cursors are its own). */
  async register(): Promise<boolean> {
    const known = await this.deps.catalog.getJob(NODE_JOBS, this.deps.nodeId);
    this.startedAt = this.deps.clock();
    await this.save(known?.createdAt ?? this.startedAt);
    return known !== undefined;
  }

  /** Renew the row every 10 s until `stop`. */
  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.beat(), HEARTBEAT_MS);
    this.timer.unref();
  }

  private async beat(): Promise<void> {
    try {
      const row = await this.deps.catalog.getJob(NODE_JOBS, this.deps.nodeId);
      await this.save(row?.createdAt ?? this.deps.clock());
      if (!row) this.onForgotten?.();
    } catch (e) {
      this.deps.warn(`node heartbeat failed: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  private save(createdAt: number, state = "running"): Promise<void> {
    const now = this.deps.clock();
    return this.deps.catalog.saveJob({
      tenantId: NODE_JOBS,
      jobId: this.deps.nodeId,
      kind: NODE_KIND,
      state,
      payload: {
        host: this.deps.host,
        pid: this.deps.pid,
        started_at: this.startedAt || now,
        consumers: [...this.deps.consumers()],
      },
      runAt: 0,
      attempts: 0,
      createdAt,
      updatedAt: now,
    });
  }

  /**
   * Stop the heartbeat and mark the row stopped (no longer live); the row stays, and the node's
   * cursors with it, for its return.
   */
  async stop(): Promise<void> {
    const running = this.timer !== undefined;
    clearInterval(this.timer);
    this.timer = undefined;
    if (!running) return;
    const row = await this.deps.catalog.getJob(NODE_JOBS, this.deps.nodeId).catch(() => undefined);
    if (row) await this.save(row.createdAt, "stopped").catch(() => undefined);
  }

  /** Every registered node, live or not, by id. */
  async list(now: number = this.deps.clock()): Promise<NodeInfo[]> {
    return listNodes(this.deps.catalog, now);
  }

  /** Other nodes seen within `LIVE_MS`. */
  async livePeers(now: number = this.deps.clock()): Promise<NodeInfo[]> {
    return (await this.list(now)).filter((n) => n.live && n.id !== this.deps.nodeId);
  }

  /** Forget the nodes (not this one) not seen for `staleMs`; returns their ids. */
  async forgetStale(now: number, staleMs: number): Promise<string[]> {
    const gone: string[] = [];
    for (const node of await this.list(now)) {
      if (node.id === this.deps.nodeId || node.seenAt > now - staleMs) continue;
      await forgetNode(this.deps.catalog, node.id);
      gone.push(node.id);
    }
    return gone;
  }
}

/** Every registered node of a catalog (`kura nodes list`). */
export async function listNodes(catalog: Catalog, now: number): Promise<NodeInfo[]> {
  const out: NodeInfo[] = [];
  let after: { tenantId: string; jobId: string } | undefined;
  for (;;) {
    const page = await catalog.listJobs({ kind: NODE_KIND, limit: 500, ...(after ? { after } : {}) });
    for (const job of page) if (job.tenantId === NODE_JOBS) out.push(toNode(job, now));
    const last = page.at(-1);
    if (page.length < 500 || !last) return out;
    after = { tenantId: last.tenantId, jobId: last.jobId };
  }
}

/**
 * Remove a node's row and its outbox cursors (`kura nodes forget`): the outbox no longer waits
 * for it. If it runs again it registers anew and rebuilds its indexes from the catalog. Returns
 * false for a node the catalog does not know.
 */
export async function forgetNode(catalog: Catalog, nodeId: string): Promise<boolean> {
  const job = await catalog.getJob(NODE_JOBS, nodeId);
  if (!job) return false;
  for (const consumer of toNode(job, 0).consumers) await catalog.deleteConsumerCursor(consumer);
  await catalog.deleteJob(NODE_JOBS, nodeId);
  return true;
}

function toNode(job: JobRecord, now: number): NodeInfo {
  const p = job.payload;
  const consumers = Array.isArray(p.consumers)
    ? p.consumers.filter((c): c is string => typeof c === "string" && c.endsWith(`@${job.jobId}`))
    : [];
  return {
    id: job.jobId,
    host: typeof p.host === "string" ? p.host : "",
    pid: typeof p.pid === "number" ? p.pid : 0,
    startedAt: typeof p.started_at === "number" ? p.started_at : job.createdAt,
    seenAt: job.updatedAt,
    state: job.state,
    consumers,
    live: job.state === "running" && job.updatedAt > now - LIVE_MS,
  };
}
