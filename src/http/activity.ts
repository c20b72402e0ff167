/**
 * Recent request activity for the dashboards (`GET /v1/admin/dashboard`, `GET /v1/dashboard`):
 * ingest and query rates over the last few minutes and latency percentiles over the same
 * window, for the whole server and per tenant. Fed by `HttpMetrics.observeRequest`, which every
 * response reaches; kept in fixed slots (default 30 of 10 s), so its memory is bounded by the
 * tenants it tracks (at most `maxTenants`, the least recently active dropped first).
 *
 * Prometheus histograms (`/metrics`) count since start; a dashboard wants "now", which this
 * keeps without scraping or parsing the exposition text.
 */

/** What a request did: wrote data, read or searched it, or neither (health, docs, admin). */
export type ActivityKind = "ingest" | "query" | "other";

/** Latency bucket bounds (seconds), as `kura_http_request_duration_seconds` has them. */
export const LATENCY_BOUNDS: readonly number[] = Object.freeze([
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
]);

/** POST routes that only read (searches, batch reads, vector queries). */
const READING_POST = /(:batchGet|:search|:query|\/search)$/;

/** Classifies a request by its method and documented route template. */
export function activityKind(method: string, route: string): ActivityKind {
  if (!route.startsWith("/v1/") || route.startsWith("/v1/admin/") || route.includes("dashboard"))
    return "other";
  if (method === "GET" || method === "HEAD") return "query";
  if (method === "POST" && READING_POST.test(route)) return "query";
  if (method === "POST" || method === "PUT" || method === "PATCH" || method === "DELETE") return "ingest";
  return "other";
}

interface Slot {
  /** Start of the slot (ms), a multiple of the slot length. */
  start: number;
  ingest: number;
  query: number;
  /** Requests per latency bucket (`LATENCY_BOUNDS`, then the rest). */
  latency: number[];
}

class Series {
  readonly slots: Slot[] = [];
  lastSeen = 0;

  add(start: number, kind: ActivityKind, seconds: number, keep: number): void {
    let slot = this.slots.at(-1);
    if (!slot || slot.start !== start) {
      slot = { start, ingest: 0, query: 0, latency: new Array(LATENCY_BOUNDS.length + 1).fill(0) };
      this.slots.push(slot);
      while (this.slots.length > keep) this.slots.shift();
    }
    if (kind === "ingest") slot.ingest++;
    else if (kind === "query") slot.query++;
    let i = LATENCY_BOUNDS.findIndex((b) => seconds <= b);
    if (i < 0) i = LATENCY_BOUNDS.length;
    slot.latency[i] = (slot.latency[i] as number) + 1;
    this.lastSeen = start;
  }
}

export interface ActivitySnapshot {
  /** Length of one point of `rates`, in seconds. */
  slot_seconds: number;
  /** Oldest first, one point per slot of the window (empty slots included): requests per second. */
  rates: { at: string; ingest_per_s: number; query_per_s: number }[];
  /** Over the whole window: upper bounds (ms) of the buckets holding each percentile; null with no request. */
  latency_ms: { p50: number | null; p90: number | null; p99: number | null; requests: number };
}

export interface ActivityOptions {
  slotMs?: number;
  slots?: number;
  maxTenants?: number;
  clock?: () => number;
}

export class Activity {
  private readonly slotMs: number;
  private readonly slotCount: number;
  private readonly maxTenants: number;
  private readonly clock: () => number;
  private readonly all = new Series();
  private readonly tenants = new Map<string, Series>();

  constructor(options: ActivityOptions = {}) {
    this.slotMs = options.slotMs ?? 10_000;
    this.slotCount = options.slots ?? 30;
    this.maxTenants = options.maxTenants ?? 1000;
    this.clock = options.clock ?? Date.now;
  }

  record(method: string, route: string, seconds: number, tenantId?: string): void {
    const kind = activityKind(method, route);
    if (kind === "other") return;
    const start = Math.floor(this.clock() / this.slotMs) * this.slotMs;
    this.all.add(start, kind, seconds, this.slotCount);
    if (tenantId === undefined) return;
    let series = this.tenants.get(tenantId);
    if (series) this.tenants.delete(tenantId);
    else {
      series = new Series();
      if (this.tenants.size >= this.maxTenants) {
        const oldest = this.tenants.keys().next().value;
        if (oldest !== undefined) this.tenants.delete(oldest);
      }
    }
    // Map order is insertion order: re-inserting keeps the least recently active first.
    this.tenants.set(tenantId, series);
    series.add(start, kind, seconds, this.slotCount);
  }

  /** The server's activity, or one tenant's (empty when it made no request in the window). */
  snapshot(tenantId?: string): ActivitySnapshot {
    const series = tenantId === undefined ? this.all : this.tenants.get(tenantId);
    const now = Math.floor(this.clock() / this.slotMs) * this.slotMs;
    const first = now - (this.slotCount - 1) * this.slotMs;
    const bySlot = new Map((series?.slots ?? []).map((s) => [s.start, s]));
    const rates: ActivitySnapshot["rates"] = [];
    const latency = new Array<number>(LATENCY_BOUNDS.length + 1).fill(0);
    const perSecond = (n: number) => Math.round((n / (this.slotMs / 1000)) * 1000) / 1000;
    for (let start = first; start <= now; start += this.slotMs) {
      const s = bySlot.get(start);
      rates.push({
        at: new Date(start).toISOString(),
        ingest_per_s: perSecond(s?.ingest ?? 0),
        query_per_s: perSecond(s?.query ?? 0),
      });
      s?.latency.forEach((n, i) => {
        latency[i] = (latency[i] as number) + n;
      });
    }
    const requests = latency.reduce((a, b) => a + b, 0);
    const percentile = (p: number): number | null => {
      if (requests === 0) return null;
      let seen = 0;
      for (let i = 0; i < latency.length; i++) {
        seen += latency[i] as number;
        if (seen >= p * requests) {
          const bound = LATENCY_BOUNDS[i] ?? (LATENCY_BOUNDS.at(-1) as number) * 2;
          return Math.round(bound * 1000 * 100) / 100;
        }
      }
      return null;
    };
    return {
      slot_seconds: this.slotMs / 1000,
      rates,
      latency_ms: { p50: percentile(0.5), p90: percentile(0.9), p99: percentile(0.99), requests },
    };
  }
}
