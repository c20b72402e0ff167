/**
 * A minimal job runner: named jobs run by `runOnce(now)` (tests inject the time; `kura serve`
 * calls it on a timer). Each job holds a catalog lease while it runs, so with several nodes a
 * job runs on one of them at a time (DIST-1 builds on this).
 */
import { randomUUID } from "node:crypto";
import type { Catalog } from "../ports/catalog.js";

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
}

export class JobRunner {
  private readonly jobs: Job[] = [];
  private readonly owner = `node-${randomUUID()}`;

  constructor(
    private readonly catalog: Catalog,
    private readonly clock: () => number,
    private readonly leaseMs = 10 * 60_000,
  ) {}

  register(job: Job): void {
    if (this.jobs.some((j) => j.name === job.name)) throw new Error(`job ${job.name} registered twice`);
    this.jobs.push(job);
  }

  /** Run every job once (those whose lease another node holds are skipped). */
  async runOnce(now: number = this.clock()): Promise<JobReport[]> {
    const reports: JobReport[] = [];
    for (const job of this.jobs) {
      if (
        !(await this.catalog.tryLease({
          name: `job:${job.name}`,
          owner: this.owner,
          now,
          ttlMs: this.leaseMs,
        }))
      ) {
        reports.push({ name: job.name, ran: false });
        continue;
      }
      try {
        reports.push({ name: job.name, ran: true, result: await job.run({ now }) });
      } catch (e) {
        reports.push({ name: job.name, ran: true, error: e instanceof Error ? e.message : String(e) });
      } finally {
        await this.catalog
          .releaseLease({ name: `job:${job.name}`, owner: this.owner })
          .catch(() => undefined);
      }
    }
    return reports;
  }
}
