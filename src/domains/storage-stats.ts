/**
 * What every tenant stores, for the operator (CLI-1, `kura stats`; `kura.tenants.stats`): per
 * tenant its exact usage (the same numbers as `GET /v1/usage`), the bodies and bytes of each
 * plane that keeps bodies (messages with their versions, objects), and how its live messages
 * spread over body sizes — with seed 000's lines at 4 KB (the share above it is worth a look
 * at 10 %) and 128 KB (the message size limit). Its bodies split hot/cold: written within the
 * last `coldAfterDays` or before. Reads every blob ref and message row: a tool's read, not a
 * request's.
 */
import { KuraError } from "../core/errors.js";
import type { Catalog, TenantStatus, Usage } from "../ports/catalog.js";

/** Where the message-size buckets split (bytes): 1, 4, 16, 64 and 128 KiB. */
export const MESSAGE_SIZE_BOUNDS: readonly number[] = Object.freeze([1024, 4096, 16_384, 65_536, 131_072]);
const KB4 = 4096;
const KB128 = 131_072;

/** The planes that keep bodies, by the kinds of blob refs they write. */
const PLANE_OF_KIND: Readonly<Record<string, string>> = {
  message: "messages",
  "message-version": "messages",
  object: "objects",
};

export interface PlaneStats {
  bodies: number;
  bytes: number;
}

export interface MessageSizes {
  /** `counts[i]`: live messages whose body is below `bounds[i]` (and not below `bounds[i - 1]`); the last, the rest. */
  bounds: readonly number[];
  counts: number[];
  /** Live messages whose body is 4 KB or more (seed 000: look at it when they pass 10 %). */
  atLeast4Kb: number;
  /** Live messages whose body is 128 KB or more (seed 000: the size limit). */
  atLeast128Kb: number;
}

/** Bodies per size bucket (`bounds` as in `MessageSizes`): how many and their bytes. */
export interface SizeCells {
  bodies: number[];
  bytes: number[];
}

/**
 * Bodies by age and size, the input of the cost estimate (`domains/cost.ts`): `hot` written at
 * or after the cold cutoff, `cold` before it (together every body), `lastMonth` written within
 * the last 30 days (a part of them, whichever side of the cutoff).
 */
export interface BodyProfile {
  sizeBounds: readonly number[];
  hot: SizeCells;
  cold: SizeCells;
  lastMonth: SizeCells;
}

export interface StatsOptions {
  /** Now (ms): the ages count back from it. */
  now: number;
  /** Bodies written this many days ago or earlier are cold (default 30). */
  coldAfterDays?: number;
  /** Where `BodyProfile` splits sizes (bytes, increasing; default none). */
  sizeBounds?: readonly number[];
}

export const DEFAULT_COLD_AFTER_DAYS = 30;
const DAY_MS = 86_400_000;

export interface TenantStats {
  tenantId: string;
  /** Registry status and tier; null for a tenant that has data but is not registered. */
  status: TenantStatus | null;
  tier: string | null;
  /** Exact and current (TEN-4): bytes and bodies of every plane, and messages. */
  usage: Usage;
  /** Bodies and bytes per plane (`messages`, `objects`), from the catalog's blob refs. */
  planes: Record<string, PlaneStats>;
  messageSizes: MessageSizes;
  /** Bodies and bytes written within the last `coldAfterDays` (`hot`) and before (`cold`). */
  age: { hot: PlaneStats; cold: PlaneStats };
  profile: BodyProfile;
}

export interface StorageStats {
  /** The cutoff: bodies written before `now - coldAfterDays` are cold. */
  coldAfterDays: number;
  now: number;
  tenants: TenantStats[];
  totals: {
    usage: Omit<Usage, "tenantId">;
    planes: Record<string, PlaneStats>;
    messageSizes: MessageSizes;
    age: { hot: PlaneStats; cold: PlaneStats };
    profile: BodyProfile;
  };
}

const cells = (n: number): SizeCells => ({ bodies: new Array(n).fill(0), bytes: new Array(n).fill(0) });
const emptyProfile = (sizeBounds: readonly number[]): BodyProfile => ({
  sizeBounds,
  hot: cells(sizeBounds.length + 1),
  cold: cells(sizeBounds.length + 1),
  lastMonth: cells(sizeBounds.length + 1),
});

function addCell(c: SizeCells, i: number, bodies: number, bytes: number): void {
  c.bodies[i] = (c.bodies[i] as number) + bodies;
  c.bytes[i] = (c.bytes[i] as number) + bytes;
}

function addProfile(into: BodyProfile, more: BodyProfile): void {
  for (const side of ["hot", "cold", "lastMonth"] as const)
    more[side].bodies.forEach((n, i) => {
      addCell(into[side], i, n, more[side].bytes[i] as number);
    });
}

const sumCells = (c: SizeCells): PlaneStats => ({
  bodies: c.bodies.reduce((a, b) => a + b, 0),
  bytes: c.bytes.reduce((a, b) => a + b, 0),
});

function sizes(counts: number[]): MessageSizes {
  let atLeast4Kb = 0;
  let atLeast128Kb = 0;
  counts.forEach((n, i) => {
    const lower = i === 0 ? 0 : (MESSAGE_SIZE_BOUNDS[i - 1] as number);
    if (lower >= KB4) atLeast4Kb += n;
    if (lower >= KB128) atLeast128Kb += n;
  });
  return { bounds: MESSAGE_SIZE_BOUNDS, counts, atLeast4Kb, atLeast128Kb };
}

function add(planes: Record<string, PlaneStats>, plane: string, more: PlaneStats): void {
  const p = planes[plane] ?? { bodies: 0, bytes: 0 };
  planes[plane] = { bodies: p.bodies + more.bodies, bytes: p.bytes + more.bytes };
}

const zeros = () => new Array<number>(MESSAGE_SIZE_BOUNDS.length + 1).fill(0);

/** Every tenant that is registered or has bodies, in id byte order. */
export async function readStorageStats(catalog: Catalog, options: StatsOptions): Promise<StorageStats> {
  const coldAfterDays = options.coldAfterDays ?? DEFAULT_COLD_AFTER_DAYS;
  if (!(Number.isFinite(coldAfterDays) && coldAfterDays >= 0))
    throw new KuraError(
      "INVALID_ARGUMENT",
      `cold-after must be a number of days >= 0, not ${coldAfterDays}`,
      {
        operation: "stats",
      },
    );
  const sizeBounds = options.sizeBounds ?? [];
  const coldCut = Math.round(options.now - coldAfterDays * DAY_MS);
  const monthCut = options.now - 30 * DAY_MS;
  // Bucket i of createdBounds starts at createdBounds[i - 1]: hot and last-month buckets are
  // those starting at or after their cutoff.
  const createdBounds = [...new Set([coldCut, monthCut])].sort((a, b) => a - b);
  const startOf = (i: number) => (i === 0 ? Number.NEGATIVE_INFINITY : (createdBounds[i - 1] as number));
  const registered = new Map<string, { status: TenantStatus; tier: string }>();
  for (let after: string | undefined; ; ) {
    const page = await catalog.listTenants({
      limit: 1000,
      ...(after === undefined ? {} : { afterTenantId: after }),
    });
    for (const t of page) registered.set(t.tenantId, { status: t.status, tier: t.tier });
    if (page.length < 1000) break;
    after = page.at(-1)?.tenantId;
  }
  const [bodies, histogram] = await Promise.all([
    catalog.bodyBuckets({ sizeBounds, createdBounds }),
    catalog.messageSizeHistogram({ bounds: MESSAGE_SIZE_BOUNDS }),
  ]);
  const ids = new Set<string>(registered.keys());
  const planesOf = new Map<string, Record<string, PlaneStats>>();
  const profileOf = new Map<string, BodyProfile>();
  for (const b of bodies) {
    ids.add(b.tenantId);
    const planes = planesOf.get(b.tenantId) ?? {};
    planesOf.set(b.tenantId, planes);
    add(planes, PLANE_OF_KIND[b.kind] ?? b.kind, b);
    const profile = profileOf.get(b.tenantId) ?? emptyProfile(sizeBounds);
    profileOf.set(b.tenantId, profile);
    const start = startOf(b.created);
    addCell(start >= coldCut ? profile.hot : profile.cold, b.size, b.bodies, b.bytes);
    if (start >= monthCut) addCell(profile.lastMonth, b.size, b.bodies, b.bytes);
  }
  const countsOf = new Map<string, number[]>();
  for (const h of histogram) {
    ids.add(h.tenantId);
    countsOf.set(h.tenantId, h.counts);
  }

  const totals: StorageStats["totals"] = {
    usage: { bytes: 0, objects: 0, messages: 0 },
    planes: {},
    messageSizes: sizes(zeros()),
    age: { hot: { bodies: 0, bytes: 0 }, cold: { bodies: 0, bytes: 0 } },
    profile: emptyProfile(sizeBounds),
  };
  const totalCounts = zeros();
  const tenants: TenantStats[] = [];
  const sorted = [...ids].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  for (const tenantId of sorted) {
    const usage = await catalog.usage(tenantId);
    const planes = planesOf.get(tenantId) ?? {};
    for (const [plane, p] of Object.entries(planes)) add(totals.planes, plane, p);
    const counts = countsOf.get(tenantId) ?? zeros();
    counts.forEach((n, i) => {
      totalCounts[i] = (totalCounts[i] as number) + n;
    });
    totals.usage.bytes += usage.bytes;
    totals.usage.objects += usage.objects;
    totals.usage.messages += usage.messages;
    const profile = profileOf.get(tenantId) ?? emptyProfile(sizeBounds);
    addProfile(totals.profile, profile);
    const reg = registered.get(tenantId);
    tenants.push({
      tenantId,
      status: reg?.status ?? null,
      tier: reg?.tier ?? null,
      usage,
      planes,
      messageSizes: sizes(counts),
      age: { hot: sumCells(profile.hot), cold: sumCells(profile.cold) },
      profile,
    });
  }
  totals.messageSizes = sizes(totalCounts);
  totals.age = { hot: sumCells(totals.profile.hot), cold: sumCells(totals.profile.cold) };
  return { coldAfterDays, now: options.now, tenants, totals };
}
