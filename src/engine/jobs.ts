/**
 * The job runner: named jobs run by `runOnce(now)` (tests inject the time; `kura serve` calls it
 * on a timer). Each run holds the catalog lease `job:<name>` (DIST-1, ADR 0039): taken with a
 * fencing token, renewed every third of its 15 s lifetime while the job runs, released after. So
 * with several nodes a job runs on one of them at a time; a node that dies mid-job leaves a lease
 * that expires within 15 s, and the next node to run its jobs takes it over; and every catalog
 * batch the job commits carries the token (`engine/fence.ts`), so a node that stalled past its
 * lease and wakes up commits nothing more (LEASE_LOST).
 */
import { randomUUID } from "node:crypto";
import type { Catalog } from "../ports/catalog.js";
import { withFence } from "./fence.js";

export interface JobContext {
  now: number;
}

export interface Job {
  name: string;
  run(ctx: JobContext): Promise<Record<string, number>>;
}

export interface JobReport {
  name: string;
  ran: boolean;
  result?: Record<string, number>;
  error?: string;
  /** The fencing token of the run's lease: no two runs of a job on any node share one. */
  token?: number;
}

/** What `/metrics` reports of a job on this node. */
export interface JobStats {
  name: string;
  runs: number;
  failures: number;
  /** Duration of the last run here (ms), undefined before one. */
  lastDurationMs: number | undefined;
  /** When the last successful run here ended (ms), undefined before one. */
  lastSuccessAt: number | undefined;
}

export const JOB_LEASE_MS = 15_000;

export class JobRunner {
  private readonly jobs: Job[] = [];
  private readonly stats = new Map<string, JobStats>();
  /** Jobs running in this process: a run asked for meanwhile (a slow run, a timer) is skipped. */
  private readonly running = new Set<string>();
  readonly owner: string;

  constructor(
    private readonly catalog: Catalog,
    private readonly clock: () => number,
    options: { leaseMs?: number; owner?: string } = {},
  ) {
    this.leaseMs = options.leaseMs ?? JOB_LEASE_MS;
    this.owner = `${options.owner ?? "node"}:${randomUUID().slice(0, 8)}`;
  }

  private readonly leaseMs: number;

  register(job: Job): void {
    if (this.jobs.some((j) => j.name === job.name)) throw new Error(`job ${job.name} registered twice`);
    this.jobs.push(job);
    this.stats.set(job.name, {
      name: job.name,
      runs: 0,
      failures: 0,
      lastDurationMs: undefined,
      lastSuccessAt: undefined,
    });
  }

  /** Run every job once (those whose lease another node holds are skipped). */
  async runOnce(now: number = this.clock()): Promise<JobReport[]> {
    const reports: JobReport[] = [];
    for (const job of this.jobs) reports.push(await this.runJob(job, now));
    return reports;
  }

  private async runJob(job: Job, now: number): Promise<JobReport> {
    const name = `job:${job.name}`;
    // The lease is this runner's own, so it would let a second run of the job in: refuse it here.
    if (this.running.has(job.name)) return { name: job.name, ran: false };
    this.running.add(job.name);
    try {
      return await this.runHeld(job, name, now);
    } finally {
      this.running.delete(job.name);
    }
  }

  private async runHeld(job: Job, name: string, now: number): Promise<JobReport> {
    const held = await holdLease(
      this.catalog,
      { name, owner: this.owner, ttlMs: this.leaseMs, clock: this.clock },
      now,
    );
    if (!held) return { name: job.name, ran: false };
    const stats = this.stats.get(job.name) as JobStats;
    const started = Date.now();
    try {
      const result = await held.run(() => job.run({ now }));
      stats.lastSuccessAt = this.clock();
      return { name: job.name, ran: true, result, token: held.token };
    } catch (e) {
      stats.failures++;
      return {
        name: job.name,
        ran: true,
        error: e instanceof Error ? e.message : String(e),
        token: held.token,
      };
    } finally {
      stats.runs++;
      stats.lastDurationMs = Date.now() - started;
      await held.release();
    }
  }

  /** Runs, failures, last duration and last success of every job on this node. */
  jobStats(): JobStats[] {
    return [...this.stats.values()].map((s) => ({ ...s }));
  }

  /** Who holds each job's lease now (any node's runner), by job name. */
  async owners(now: number = this.clock()): Promise<Map<string, string | undefined>> {
    const out = new Map<string, string | undefined>();
    for (const job of this.jobs) out.set(job.name, await this.catalog.leaseOwner(`job:${job.name}`, now));
    return out;
  }
}

/** A lease held with its fencing token and renewed until released. */
export interface HeldLease {
  token: number;
  /** Run `work` with its commits fenced by this lease. */
  run<T>(work: () => Promise<T>): Promise<T>;
  release(): Promise<void>;
}

/**
 * Take `name` for `owner` with a fencing token, renewing it every third of `ttlMs` until
 * released; undefined if another owner holds it. A renewal that finds the lease gone stops
 * renewing: the fenced commits of the work then fail with LEASE_LOST.
 */
export async function holdLease(
  catalog: Catalog,
  lease: { name: string; owner: string; ttlMs: number; clock: () => number },
  /** The time the lease is taken at; default the clock's. */
  now: number = lease.clock(),
): Promise<HeldLease | undefined> {
  const token = await catalog.takeLease({ name: lease.name, owner: lease.owner, now, ttlMs: lease.ttlMs });
  if (token === undefined) return undefined;
  // The lease's time runs from the `now` it was taken at (a test's, or the clock's), so renewals
  // and the fenced commits' checks agree with it.
  const t0 = performance.now();
  const at = () => Math.floor(now + (performance.now() - t0));
  const timer = setInterval(
    () =>
      void catalog.takeLease({ name: lease.name, owner: lease.owner, now: at(), ttlMs: lease.ttlMs }).then(
        (t) => {
          if (t !== token) clearInterval(timer);
        },
        () => undefined,
      ),
    Math.max(1, Math.floor(lease.ttlMs / 3)),
  );
  timer.unref();
  return {
    token,
    run: (work) => withFence({ name: lease.name, owner: lease.owner, token, clock: at }, work),
    release: async () => {
      clearInterval(timer);
      await catalog.releaseLease({ name: lease.name, owner: lease.owner }).catch(() => undefined);
    },
  };
}
