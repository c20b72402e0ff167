/**
 * The dashboards behind the console's Dashboard page (UI-1, OBS-1): one JSON document each,
 * built from what Kura already computes — `kura stats` (storage per plane and tenant, message
 * sizes with seed 000's 4 KB / 128 KB lines, `domains/storage-stats.ts`), its cost estimate at
 * the built-in list prices (`domains/cost.ts`), the server's recent request activity
 * (`http/activity.ts`), outbox lag and body-cache counters (what `/metrics` reports), the last
 * lifecycle runs and consistency checks (the `~admin` audit stream, and the last check this
 * server ran). Never the `/metrics` text.
 *
 * `GET /v1/dashboard` is a tenant's own view (its storage, sizes, activity and cost; nothing
 * about other tenants or the server's internals). `GET /v1/admin/dashboard` is the admin's:
 * every tenant, or one with `?tenant=`, plus the server-wide parts.
 *
 * Storage figures read every body ref (a tool's read): they are computed at most once per
 * `STATS_TTL_MS` and shared by every dashboard request meanwhile.
 */
import { z } from "zod";
import { ADMIN_AUDIT_STREAM } from "../../domains/admin-audit.js";
import { costReport, costSizeBounds } from "../../domains/cost.js";
import { DEFAULT_PRICES } from "../../domains/cost-prices.js";
import type { BodyProfile, MessageSizes, StorageStats } from "../../domains/storage-stats.js";
import type { Kura } from "../../kura.js";
import type { AuditRecord } from "../../ports/catalog.js";
import type { RouteSpec } from "../route.js";
import { idSchema } from "../schemas.js";
import type { HttpDeps } from "./deps.js";

/** How long computed storage figures are reused (ms). */
export const STATS_TTL_MS = 60_000;
/** Seed 000's alert lines on message body size: the share above 4 KB, and the 128 KB limit. */
const ALERT_LINES = [
  { bytes: 4096, label: "4 KB: look at the share above it when it passes 10 %" },
  { bytes: 131_072, label: "128 KB: the message size limit" },
];
const HISTORY_DAYS = 30;
const DAY_MS = 86_400_000;

const count = z.number().int().nonnegative();
const planeSchema = z.object({ plane: z.string(), bodies: count, bytes: count });
const tenantStorageSchema = z.object({
  tenant_id: z.string(),
  bytes: count.describe("Exact usage (GET /v1/usage)"),
  objects: count,
  messages: count,
  planes: z.array(planeSchema).describe("Bodies and bytes per plane that keeps bodies"),
});
const activitySchema = z.object({
  slot_seconds: z.number().positive(),
  rates: z
    .array(z.object({ at: z.string(), ingest_per_s: z.number(), query_per_s: z.number() }))
    .describe("Oldest first: writes (ingest) and reads/searches (query) per second in each slot"),
  latency_ms: z
    .object({
      p50: z.number().nullable(),
      p90: z.number().nullable(),
      p99: z.number().nullable(),
      requests: count,
    })
    .describe("Over the window, the upper bound of the latency bucket holding each percentile"),
});
const sizesSchema = z.object({
  bounds: z.array(count).describe("Bucket i holds bodies below bounds[i] (and not below bounds[i-1])"),
  counts: z.array(count).describe("Live messages per bucket; one more than bounds (the rest)"),
  at_least_4kb: count,
  at_least_128kb: count,
  share_at_least_4kb: z.number().describe("0…1"),
  alert_lines: z.array(z.object({ bytes: count, label: z.string() })),
});
const costSchema = z.object({
  currency: z.string(),
  as_of: z.string().describe("Date of the built-in list prices"),
  estimates: z.array(
    z.object({ provider: z.string(), class: z.string(), monthly_usd: z.number().nonnegative() }),
  ),
  note: z.string(),
});

export const dashboardSchema = z.object({
  tenant_id: z.string().nullable().describe("The tenant shown; null: every tenant (admin)"),
  generated_at: z.string(),
  storage_as_of: z.string().describe("When the storage figures were computed (reused up to a minute)"),
  storage: z.object({
    planes: z.array(planeSchema),
    tenants: z.array(tenantStorageSchema),
  }),
  message_sizes: sizesSchema,
  activity: activitySchema,
  cost: costSchema,
  outbox: z
    .array(z.object({ projector: z.string(), lag_events: count }))
    .nullable()
    .describe("Admin only: events not yet delivered per projector"),
  cache: z
    .object({
      hits: count,
      misses: count,
      hit_ratio: z.number().nullable(),
      tiers: z.array(
        z.object({ tier: z.string(), hits: count, misses: count, hit_ratio: z.number().nullable() }),
      ),
    })
    .nullable()
    .describe("Admin only: body cache counters since start"),
  lifecycle_runs: z
    .array(z.object({ at: z.string(), actor: z.string(), counts: z.record(z.string(), z.unknown()) }))
    .nullable()
    .describe(`Admin only: the last runs that did something or were asked for (last ${HISTORY_DAYS} days)`),
  fsck: z
    .object({
      at: z.string(),
      ok: z.boolean(),
      source: z.enum(["server", "audit"]).describe("This server's last run, or the last audited repair"),
      problems: z.record(z.string(), z.number()),
    })
    .nullable()
    .describe("Admin only: the last consistency check known"),
});
type Dashboard = z.infer<typeof dashboardSchema>;

/** Storage figures shared by every dashboard request within `STATS_TTL_MS`. */
class StatsCache {
  private value: { at: number; stats: Promise<StorageStats> } | undefined;
  constructor(
    private readonly kura: Kura,
    private readonly clock: () => number,
  ) {}

  get(): Promise<{ at: number; stats: StorageStats }> {
    const now = this.clock();
    if (!this.value || now - this.value.at >= STATS_TTL_MS) {
      const stats = this.kura.tenants.stats({ sizeBounds: costSizeBounds(DEFAULT_PRICES) });
      const value = { at: now, stats };
      this.value = value;
      // A failed read is not kept: the next request tries again.
      stats.catch(() => {
        if (this.value === value) this.value = undefined;
      });
    }
    const { at, stats } = this.value;
    return stats.then((s) => ({ at, stats: s }));
  }
}

const planesOf = (planes: Record<string, { bodies: number; bytes: number }>) =>
  Object.entries(planes)
    .map(([plane, p]) => ({ plane, bodies: p.bodies, bytes: p.bytes }))
    .sort((a, b) => a.plane.localeCompare(b.plane));

function sizesJson(s: MessageSizes): Dashboard["message_sizes"] {
  const total = s.counts.reduce((a, b) => a + b, 0);
  return {
    bounds: [...s.bounds],
    counts: [...s.counts],
    at_least_4kb: s.atLeast4Kb,
    at_least_128kb: s.atLeast128Kb,
    share_at_least_4kb: total === 0 ? 0 : Math.round((s.atLeast4Kb / total) * 10_000) / 10_000,
    alert_lines: ALERT_LINES,
  };
}

function costJson(profile: BodyProfile): Dashboard["cost"] {
  const report = costReport(profile, DEFAULT_PRICES);
  return {
    currency: report.currency,
    as_of: report.as_of,
    estimates: report.estimates.map((e) => ({
      provider: e.provider,
      class: e.class,
      monthly_usd: e.total_usd,
    })),
    note: "Storage and PUT requests of the bodies stored, at list prices; reads are not measured (kura stats --cost)",
  };
}

const ratio = (hits: number, misses: number) =>
  hits + misses === 0 ? null : Math.round((hits / (hits + misses)) * 10_000) / 10_000;

/** The part every dashboard has: one tenant's, or all of them. */
async function storagePart(
  stats: StorageStats,
  tenantId: string | undefined,
): Promise<Pick<Dashboard, "storage" | "message_sizes" | "cost">> {
  const tenants =
    tenantId === undefined ? stats.tenants : stats.tenants.filter((t) => t.tenantId === tenantId);
  const one = tenants[0];
  const scope = tenantId === undefined ? stats.totals : one;
  return {
    storage: {
      planes: scope ? planesOf(scope.planes) : [],
      tenants: tenants.map((t) => ({
        tenant_id: t.tenantId,
        bytes: t.usage.bytes,
        objects: t.usage.objects,
        messages: t.usage.messages,
        planes: planesOf(t.planes),
      })),
    },
    message_sizes: sizesJson(
      scope?.messageSizes ?? {
        bounds: stats.totals.messageSizes.bounds,
        counts: stats.totals.messageSizes.counts.map(() => 0),
        atLeast4Kb: 0,
        atLeast128Kb: 0,
      },
    ),
    cost: costJson(scope?.profile ?? emptyProfile(stats.totals.profile)),
  };
}

function emptyProfile(like: BodyProfile): BodyProfile {
  const zero = () => ({ bodies: like.hot.bodies.map(() => 0), bytes: like.hot.bytes.map(() => 0) });
  return { sizeBounds: like.sizeBounds, hot: zero(), cold: zero(), lastMonth: zero() };
}

/** The last `n` entries of one action in the `~admin` audit stream since `since` (at most 20 pages read). */
async function lastEntries(kura: Kura, action: string, since: number, n: number): Promise<AuditRecord[]> {
  let kept: AuditRecord[] = [];
  let afterSeq: number | undefined;
  for (let page = 0; page < 20; page++) {
    const r = await kura.tenants.auditLog({
      tenantId: ADMIN_AUDIT_STREAM,
      action,
      since,
      limit: 1000,
      ...(afterSeq === undefined ? {} : { afterSeq }),
    });
    kept = [...kept, ...r.items].slice(-n);
    if (!r.more) break;
    afterSeq = r.items.at(-1)?.seq;
  }
  return kept;
}

export function dashboardRoutes({ kura, metrics, clock }: HttpDeps): RouteSpec[] {
  const cache = new StatsCache(kura, clock);

  const tenantDashboard: RouteSpec = {
    method: "GET",
    path: "/v1/dashboard",
    operationId: "dashboard",
    summary: "The calling tenant's dashboard: storage, message sizes, request activity and cost",
    description:
      "What the console's Dashboard page draws for a tenant: its bodies and bytes per plane, its " +
      "live messages by body size with the 4 KB and 128 KB alert lines, its ingest and query " +
      "rates and latency percentiles over the last few minutes on this server, and the monthly " +
      "cost of its bodies at list prices. Storage figures are reused for up to a minute.",
    tag: "tenant",
    responses: { 200: { description: "The dashboard", schema: dashboardSchema } },
    handler: async ({ tenant }) => {
      const [{ at, stats }, usage] = await Promise.all([cache.get(), tenant.usage()]);
      const part = await storagePart(stats, tenant.id);
      // Exact usage now, even when the stored figures are a minute old.
      const own = part.storage.tenants[0];
      part.storage.tenants = [
        {
          tenant_id: tenant.id,
          bytes: usage.bytes,
          objects: usage.objects,
          messages: usage.messages,
          planes: own?.planes ?? [],
        },
      ];
      const data: Dashboard = {
        tenant_id: tenant.id,
        generated_at: new Date(clock()).toISOString(),
        storage_as_of: new Date(at).toISOString(),
        ...part,
        activity: metrics.activity.snapshot(tenant.id),
        outbox: null,
        cache: null,
        lifecycle_runs: null,
        fsck: null,
      };
      return { data };
    },
  };

  const adminQuery = z
    .object({ tenant: idSchema.optional().describe("One tenant's figures instead of every tenant's") })
    .strict();
  const adminDashboard: RouteSpec<unknown, z.infer<typeof adminQuery>> = {
    method: "GET",
    path: "/v1/admin/dashboard",
    operationId: "adminDashboard",
    summary:
      "The server's dashboard: storage by plane and tenant, sizes, activity, lag, cache, lifecycle, fsck, cost",
    description:
      "What the console's Dashboard page draws for the admin. With tenant, the storage, size, " +
      "activity and cost parts are that tenant's (404 TENANT_NOT_FOUND for a tenant neither " +
      "registered nor storing anything); outbox lag, cache counters, lifecycle runs and the last " +
      "consistency check are the server's either way. Storage figures are reused for up to a minute.",
    tag: "admin",
    auth: "admin",
    query: adminQuery,
    responses: {
      200: { description: "The dashboard", schema: dashboardSchema },
      404: { description: "No such tenant (TENANT_NOT_FOUND)" },
    },
    handler: async ({ query }) => {
      const { at, stats } = await cache.get();
      const tenantId = query.tenant;
      if (tenantId !== undefined && !stats.tenants.some((t) => t.tenantId === tenantId)) {
        // Registered since the figures were computed? Then it stores nothing yet.
        await kura.tenants.get(tenantId);
      }
      const now = clock();
      const [lag, lifecycle, repairs] = await Promise.all([
        Promise.all(
          kura.projectors.map(async (projector) => ({
            projector,
            lag_events: await kura.outboxLag(projector),
          })),
        ),
        lastEntries(kura, "lifecycle.run", now - HISTORY_DAYS * DAY_MS, 20),
        lastEntries(kura, "fsck.repair", now - HISTORY_DAYS * DAY_MS, 1),
      ]);
      const c = kura.cacheStats;
      const tiers = c.tiers ? Object.entries(c.tiers) : [["hot", c] as const];
      const lastRepair = repairs.at(-1);
      const served = metrics.lastFsck;
      const fsck: Dashboard["fsck"] =
        served && (!lastRepair || served.at >= lastRepair.at)
          ? {
              at: new Date(served.at).toISOString(),
              ok: served.ok,
              source: "server",
              problems: served.problems,
            }
          : lastRepair
            ? {
                at: new Date(lastRepair.at).toISOString(),
                ok: lastRepair.details.remaining === 0,
                source: "audit",
                problems: (lastRepair.details.problems ?? {}) as Record<string, number>,
              }
            : null;
      const data: Dashboard = {
        tenant_id: tenantId ?? null,
        generated_at: new Date(now).toISOString(),
        storage_as_of: new Date(at).toISOString(),
        ...(await storagePart(stats, tenantId)),
        activity: metrics.activity.snapshot(tenantId),
        outbox: lag,
        cache: {
          hits: c.hits,
          misses: c.misses,
          hit_ratio: ratio(c.hits, c.misses),
          tiers: tiers.map(([tier, t]) => ({
            tier,
            hits: t.hits,
            misses: t.misses,
            hit_ratio: ratio(t.hits, t.misses),
          })),
        },
        lifecycle_runs: lifecycle
          .reverse()
          .map((e) => ({ at: new Date(e.at).toISOString(), actor: e.actor, counts: e.details })),
        fsck,
      };
      return { data };
    },
  };

  return [tenantDashboard, adminDashboard] as RouteSpec[];
}
