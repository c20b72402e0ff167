/**
 * Prometheus metrics of `kura serve` (API-5, OBS-1): request latency by route, message sizes,
 * error counts by code, outbox lag per projector, plus the process defaults. Each server has
 * its own registry, so several servers in one process (tests) do not collide.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type { OperationEvent } from "../layers/port-metrics.js";
import type { BlobStore } from "../ports/blob-store.js";
import type { CacheStats } from "../ports/cache.js";
import { Activity } from "./activity.js";

export interface MetricsOptions {
  /** Outbox lag (events waiting) per projector name, read at scrape time. */
  outboxLag?: () => Promise<Record<string, number>>;
  /** Body cache counters (hot tier and, for remote stores, the disk tier), read at scrape time. */
  cacheStats?: () => CacheStats;
  /** Bytes of blob temp files (uploads in progress, unswept leftovers) per store, read at scrape time. */
  blobTempBytes?: () => Promise<Record<string, number>>;
  /** Maintenance jobs on this node, and who holds each job's lease now (any node), read at scrape time. */
  jobs?: () => Promise<JobMetrics[]>;
  /** Hot message cache counters of this node, read at scrape time. */
  hotMessages?: () => { hits: number; misses: number } | undefined;
  /** Include Node process metrics (CPU, memory, event loop); default true. */
  processMetrics?: boolean;
}

/** Temp bytes of the stores that stage uploads on local disk (fs), by name; others are left out. */
export async function blobTempBytesOf(stores: Record<string, BlobStore>): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  const seen = new Set<BlobStore>();
  for (const [name, store] of Object.entries(stores)) {
    if (seen.has(store) || !store.stats) continue;
    seen.add(store);
    out[name] = (await store.stats()).tempBytes;
  }
  return out;
}

/** A maintenance job as `/metrics` reports it. */
export interface JobMetrics {
  name: string;
  runs: number;
  failures: number;
  lastDurationMs: number | undefined;
  lastSuccessAt: number | undefined;
  /** The runner holding the job's lease now (`<node>:<suffix>`), undefined while none does. */
  owner: string | undefined;
}

export class HttpMetrics {
  readonly registry = new Registry();
  private readonly duration: Histogram<"method" | "route" | "status">;
  private readonly messageSize: Histogram<"operation">;
  private readonly errors: Counter<"code" | "status">;
  /** Recent ingest/query rates and latencies for the dashboards (`activity.ts`). */
  readonly activity = new Activity();
  /** The last consistency check this server ran (`POST /v1/admin/fsck`), for the admin dashboard. */
  lastFsck: { at: number; ok: boolean; problems: Record<string, number>; seconds: number } | undefined;

  constructor(options: MetricsOptions = {}) {
    if (options.processMetrics !== false) collectDefaultMetrics({ register: this.registry, prefix: "kura_" });
    this.duration = new Histogram({
      name: "kura_http_request_duration_seconds",
      help: "HTTP request latency by route template, method and status",
      labelNames: ["method", "route", "status"],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [this.registry],
    });
    this.messageSize = new Histogram({
      name: "kura_message_size_bytes",
      help: "Size of stored message bodies (seed 000: message size distribution)",
      labelNames: ["operation"],
      buckets: [256, 1024, 4096, 16_384, 32_768, 65_536, 131_072, 262_144],
      registers: [this.registry],
    });
    this.errors = new Counter({
      name: "kura_http_errors_total",
      help: "Error responses by error_code and status",
      labelNames: ["code", "status"],
      registers: [this.registry],
    });
    this.cacheGauges(options.cacheStats);
    const tempBytes = options.blobTempBytes;
    new Gauge({
      name: "kura_blob_temp_bytes",
      help: "Bytes in blob temp files (uploads in progress and leftovers not yet swept), per store",
      labelNames: ["store"],
      registers: [this.registry],
      async collect() {
        if (!tempBytes) return;
        this.reset();
        for (const [store, value] of Object.entries(await tempBytes().catch(() => ({})))) {
          this.set({ store }, value);
        }
      },
    });
    this.jobGauges(options.jobs);
    this.hotMessageGauges(options.hotMessages);
    const lag = options.outboxLag;
    new Gauge({
      name: "kura_outbox_lag_events",
      help: "Outbox events not yet delivered, per projector",
      labelNames: ["projector"],
      registers: [this.registry],
      async collect() {
        if (!lag) return;
        this.reset();
        for (const [projector, value] of Object.entries(await lag().catch(() => ({})))) {
          this.set({ projector }, value);
        }
      },
    });
  }

  /** Per job: runs, failures, last duration and success on this node; the lease's owner now. */
  private jobGauges(jobs: (() => Promise<JobMetrics[]>) | undefined): void {
    // One read per scrape, shared by the gauges collected in that scrape.
    let pending: Promise<JobMetrics[]> | undefined;
    const read = () => {
      pending ??= (jobs ? jobs() : Promise.resolve([]))
        .catch(() => [])
        .finally(() => {
          setImmediate(() => {
            pending = undefined;
          });
        });
      return pending;
    };
    const gauge = (name: string, help: string, pick: (j: JobMetrics) => number | undefined) =>
      new Gauge({
        name,
        help,
        labelNames: ["job"],
        registers: [this.registry],
        async collect() {
          this.reset();
          for (const j of await read()) {
            const v = pick(j);
            if (v !== undefined) this.set({ job: j.name }, v);
          }
        },
      });
    gauge("kura_job_runs", "Runs of each maintenance job on this node since start", (j) => j.runs);
    gauge(
      "kura_job_failures",
      "Failed runs of each maintenance job on this node since start",
      (j) => j.failures,
    );
    gauge("kura_job_last_duration_seconds", "Duration of the last run on this node", (j) =>
      j.lastDurationMs === undefined ? undefined : j.lastDurationMs / 1000,
    );
    gauge(
      "kura_job_last_success_timestamp_seconds",
      "When the last successful run on this node ended",
      (j) => (j.lastSuccessAt === undefined ? undefined : j.lastSuccessAt / 1000),
    );
    new Gauge({
      name: "kura_job_lease_owner",
      help: "1 for the runner (node id and suffix) holding each job's lease now, on any node",
      labelNames: ["job", "owner"],
      registers: [this.registry],
      async collect() {
        this.reset();
        for (const j of await read()) if (j.owner !== undefined) this.set({ job: j.name, owner: j.owner }, 1);
      },
    });
  }

  private hotMessageGauges(stats: (() => { hits: number; misses: number } | undefined) | undefined): void {
    const gauge = (name: string, help: string, pick: (s: { hits: number; misses: number }) => number) =>
      new Gauge({
        name,
        help,
        registers: [this.registry],
        collect() {
          this.reset();
          const s = stats?.();
          if (s) this.set(pick(s));
        },
      });
    gauge(
      "kura_hot_message_cache_hits",
      "Message gets served from the hot message cache since start (with a shared catalog, after a version check)",
      (s) => s.hits,
    );
    gauge(
      "kura_hot_message_cache_misses",
      "Message gets the hot message cache could not serve",
      (s) => s.misses,
    );
  }

  private cacheGauges(stats: (() => CacheStats) | undefined): void {
    const tiersOf = (): Record<string, { hits: number; misses: number; bytes: number; entries: number }> => {
      if (!stats) return {};
      const s = stats();
      return s.tiers ? { ...s.tiers } : { hot: s };
    };
    const gauge = (
      name: string,
      help: string,
      pick: (t: { hits: number; misses: number; bytes: number; entries: number }) => number,
    ) =>
      new Gauge({
        name,
        help,
        labelNames: ["tier"],
        registers: [this.registry],
        collect() {
          this.reset();
          for (const [tier, t] of Object.entries(tiersOf())) this.set({ tier }, pick(t));
        },
      });
    gauge(
      "kura_cache_hits",
      "Body cache hits since start, per tier (hit ratio = hits / (hits + misses))",
      (t) => t.hits,
    );
    gauge("kura_cache_misses", "Body cache misses since start, per tier", (t) => t.misses);
    gauge("kura_cache_bytes", "Bytes held by the body cache, per tier", (t) => t.bytes);
  }

  /** Label sets already bound (route templates are few, so this stays small). */
  private readonly bound = new Map<string, { observe(value: number): void }>();

  private backendDuration: Histogram<"plane" | "backend" | "operation" | "outcome"> | undefined;

  /**
   * A backend operation reported by a plane's metrics layer: latency per plane, backend and
   * method, and its outcome (`ok` or the error code) — seed 000's latencies and error rates.
   */
  observeOperation(e: OperationEvent): void {
    this.backendDuration ??= new Histogram({
      name: "kura_backend_operation_duration_seconds",
      help: "Latency of operations on the planes (catalog, blob, kv, search, vector) by backend, method and outcome",
      labelNames: ["plane", "backend", "operation", "outcome"],
      buckets: [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5],
      registers: [this.registry],
    });
    this.backendDuration
      .labels({
        plane: e.plane,
        backend: e.backend,
        operation: e.operation,
        outcome: e.ok ? "ok" : (e.errorCode ?? "error"),
      })
      .observe(e.durationMs / 1000);
  }

  observeRequest(method: string, route: string, status: number, seconds: number, tenantId?: string): void {
    this.activity.record(method, route, seconds, tenantId);
    const key = `${method} ${status} ${route}`;
    let child = this.bound.get(key);
    if (!child) {
      child = this.duration.labels({ method, route, status: String(status) });
      if (this.bound.size < 10_000) this.bound.set(key, child);
    }
    child.observe(seconds);
  }

  observeMessage(operation: "append" | "edit" | "stream", bytes: number): void {
    let child = this.boundSizes.get(operation);
    if (!child) {
      child = this.messageSize.labels({ operation });
      this.boundSizes.set(operation, child);
    }
    child.observe(bytes);
  }

  private readonly boundSizes = new Map<string, { observe(value: number): void }>();

  countError(code: string, status: number): void {
    this.errors.inc({ code, status: String(status) });
  }

  render(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
