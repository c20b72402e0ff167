/**
 * The monthly cost of what Kura stores, per provider and storage class, and what archiving cold
 * bodies and packing small ones would save (`kura stats --cost`; seed 004's "80 % cost cut",
 * made measurable). Pure functions over a `BodyProfile` (`domains/storage-stats.ts`) and
 * `Prices` (`domains/cost-prices.ts`).
 *
 * The model, per class: storage = billable bytes × the GB-month price, where each body bills at
 * least the class's minimum object size plus its per-object overhead (part of it at the hot
 * class's rate); requests = the bodies written in the last 30 days × the PUT price, as the
 * writes of a month. Reads are not recorded anywhere Kura can count them, so no GET or retrieval
 * cost is added: each estimate says so and gives the prices to add them with. Minimum storage
 * durations (early deletion), data transfer and discounts are not modelled either.
 */
import type { ClassPrice, Prices, ProviderPrices } from "./cost-prices.js";
import type { BodyProfile, SizeCells } from "./storage-stats.js";

/** The bytes of a billed GB. */
export const GB = 2 ** 30;

/** USD to the millionth: parts are rounded, and totals are sums of rounded parts. */
export const usd = (x: number): number => Math.round(x * 1e6) / 1e6;
const sum = (xs: readonly number[]): number => usd(xs.reduce((a, b) => a + b, 0));

/** Where a profile must split sizes for these prices: every minimum object size and the packing threshold. */
export function costSizeBounds(prices: Prices): number[] {
  const bounds = new Set<number>([prices.packing.small_under_bytes]);
  for (const p of Object.values(prices.providers))
    for (const c of Object.values(p.classes)) if (c.min_object_bytes > 0) bounds.add(c.min_object_bytes);
  return [...bounds].sort((a, b) => a - b);
}

const total = (c: SizeCells) => ({
  bodies: c.bodies.reduce((a, b) => a + b, 0),
  bytes: c.bytes.reduce((a, b) => a + b, 0),
});

const plus = (a: SizeCells, b: SizeCells): SizeCells => ({
  bodies: a.bodies.map((n, i) => n + (b.bodies[i] ?? 0)),
  bytes: a.bytes.map((n, i) => n + (b.bytes[i] ?? 0)),
});

function position(bounds: readonly number[], bytes: number): number {
  const i = bounds.indexOf(bytes);
  if (i < 0) throw new Error(`the profile is not split at ${bytes} bytes (costSizeBounds)`);
  return i;
}

/** The cells of bodies smaller than `under` (a bound of the profile) and the rest. */
export function splitBelow(
  cells: SizeCells,
  bounds: readonly number[],
  under: number,
): [SizeCells, SizeCells] {
  const n = position(bounds, under) + 1;
  const keep = (below: boolean) => ({
    bodies: cells.bodies.map((x, i) => (i < n === below ? x : 0)),
    bytes: cells.bytes.map((x, i) => (i < n === below ? x : 0)),
  });
  return [keep(true), keep(false)];
}

/** The bytes the cells bill with a minimum object size: a smaller body bills as `min`. */
export function billableBytes(cells: SizeCells, bounds: readonly number[], min: number): number {
  if (min <= 0) return total(cells).bytes;
  const [small, rest] = splitBelow(cells, bounds, min);
  return total(small).bodies * min + total(rest).bytes;
}

export interface StoragePart {
  class: string;
  /** `bodies`: the bodies' billable bytes; `overhead`: the per-object bytes billed at the hot class's rate. */
  what: "bodies" | "overhead";
  objects: number;
  bytes: number;
  billable_bytes: number;
  usd: number;
}

export interface RequestPart {
  class: string;
  /** `put`: writing new bodies; `transition`: moving bodies into the class as they turn cold. */
  kind: "put" | "transition";
  count: number;
  usd: number;
}

/** A month of storage and requests; `total_usd` = `storage_usd` + `requests_usd`, each the sum of its parts. */
export interface Placement {
  total_usd: number;
  storage_usd: number;
  requests_usd: number;
  storage: StoragePart[];
  requests: RequestPart[];
}

function classOf(provider: ProviderPrices, name: string): ClassPrice {
  const c = provider.classes[name];
  if (!c) throw new Error(`no class ${name}`);
  return c;
}

/** Storage parts for `objects` objects of `bytes` whose billable bytes (before overhead) are `billable`. */
function storageParts(
  provider: ProviderPrices,
  name: string,
  o: { objects: number; bytes: number; billable: number },
): StoragePart[] {
  const c = classOf(provider, name);
  const billable = o.billable + o.objects * c.overhead_bytes;
  const parts: StoragePart[] = [
    {
      class: name,
      what: "bodies",
      objects: o.objects,
      bytes: o.bytes,
      billable_bytes: billable,
      usd: usd((billable / GB) * c.storage_gb_month),
    },
  ];
  if (c.overhead_hot_bytes > 0 && o.objects > 0) {
    const hot = classOf(provider, provider.hot_class);
    const extra = o.objects * c.overhead_hot_bytes;
    parts.push({
      class: provider.hot_class,
      what: "overhead",
      objects: o.objects,
      bytes: 0,
      billable_bytes: extra,
      usd: usd((extra / GB) * hot.storage_gb_month),
    });
  }
  return parts;
}

function cellParts(provider: ProviderPrices, name: string, cells: SizeCells, bounds: readonly number[]) {
  const t = total(cells);
  return storageParts(provider, name, {
    objects: t.bodies,
    bytes: t.bytes,
    billable: billableBytes(cells, bounds, classOf(provider, name).min_object_bytes),
  });
}

function request(
  provider: ProviderPrices,
  name: string,
  kind: RequestPart["kind"],
  count: number,
): RequestPart {
  return { class: name, kind, count, usd: usd((count / 1000) * classOf(provider, name).put_per_1000) };
}

function placement(storage: StoragePart[], requests: RequestPart[]): Placement {
  const storage_usd = sum(storage.map((p) => p.usd));
  const requests_usd = sum(requests.map((p) => p.usd));
  return { total_usd: usd(storage_usd + requests_usd), storage_usd, requests_usd, storage, requests };
}

/** Every body in one class, a month's new bodies written to it. */
export function classPlacement(profile: BodyProfile, provider: ProviderPrices, name: string): Placement {
  const all = plus(profile.hot, profile.cold);
  return placement(cellParts(provider, name, all, profile.sizeBounds), [
    request(provider, name, "put", total(profile.lastMonth).bodies),
  ]);
}

export interface ClassEstimate extends Placement {
  provider: string;
  region: string;
  class: string;
  /** Not added: reads are not measured. Each 1,000 reads adds `get_per_1000`, each GB read `retrieval_per_gb`. */
  reads: { measured: false; get_per_1000: number; retrieval_per_gb: number };
  min_storage_days: number;
}

export interface ArchiveSaving {
  provider: string;
  /** Cold bodies move from the provider's hot class to this one; new bodies stay in the hot class. */
  class: string;
  monthly_usd_before: number;
  monthly_usd_after: number;
  /** Before − after; negative when the move costs more (small bodies billed at a minimum size). */
  monthly_savings_usd: number;
  /** Moving the bodies cold today, once: a transition request each. */
  one_time_usd: number;
  after: Placement;
}

export interface PackingSaving {
  provider: string;
  class: string;
  /** Small bodies (all, and written in the last 30 days) and the packs they would make. */
  packs: number;
  packs_per_month: number;
  storage_usd_before: number;
  storage_usd_after: number;
  requests_usd_before: number;
  requests_usd_after: number;
  monthly_savings_usd: number;
}

export interface CostReport {
  as_of: string;
  currency: string;
  gb_bytes: number;
  estimates: ClassEstimate[];
  savings: {
    archive: { cold_bodies: number; cold_bytes: number; by_class: ArchiveSaving[] };
    packing: {
      small_under_bytes: number;
      pack_bytes: number;
      small_bodies: number;
      small_bytes: number;
      by_class: PackingSaving[];
    };
  };
}

/** Hot bodies in the hot class, cold ones in `cold`; writes go to the hot class, and as many move each month. */
export function archiveSaving(
  profile: BodyProfile,
  providerName: string,
  provider: ProviderPrices,
  cold: string,
) {
  const before = classPlacement(profile, provider, provider.hot_class);
  const written = total(profile.lastMonth).bodies;
  const after = placement(
    [
      ...cellParts(provider, provider.hot_class, profile.hot, profile.sizeBounds),
      ...cellParts(provider, cold, profile.cold, profile.sizeBounds),
    ],
    [request(provider, provider.hot_class, "put", written), request(provider, cold, "transition", written)],
  );
  return {
    provider: providerName,
    class: cold,
    monthly_usd_before: before.total_usd,
    monthly_usd_after: after.total_usd,
    monthly_savings_usd: usd(before.total_usd - after.total_usd),
    one_time_usd: request(provider, cold, "transition", total(profile.cold).bodies).usd,
    after,
  } satisfies ArchiveSaving;
}

/** Every body in `name`, the small ones (below `small_under_bytes`) packed into `pack_bytes` objects. */
export function packingSaving(
  profile: BodyProfile,
  packing: Prices["packing"],
  providerName: string,
  provider: ProviderPrices,
  name: string,
): PackingSaving {
  const bounds = profile.sizeBounds;
  const all = plus(profile.hot, profile.cold);
  const before = classPlacement(profile, provider, name);
  const [small, large] = splitBelow(all, bounds, packing.small_under_bytes);
  const s = total(small);
  const packs = Math.ceil(s.bytes / packing.pack_bytes) || (s.bodies > 0 ? 1 : 0);
  const min = classOf(provider, name).min_object_bytes;
  const packedStorage = [
    ...cellParts(provider, name, large, bounds),
    ...storageParts(provider, name, {
      objects: packs,
      bytes: s.bytes,
      billable: Math.max(s.bytes, packs * min),
    }),
  ];
  const [smallMonth] = splitBelow(profile.lastMonth, bounds, packing.small_under_bytes);
  const m = total(smallMonth);
  const packsPerMonth = Math.ceil(m.bytes / packing.pack_bytes) || (m.bodies > 0 ? 1 : 0);
  const after = placement(packedStorage, [
    request(provider, name, "put", total(profile.lastMonth).bodies - m.bodies + packsPerMonth),
  ]);
  return {
    provider: providerName,
    class: name,
    packs,
    packs_per_month: packsPerMonth,
    storage_usd_before: before.storage_usd,
    storage_usd_after: after.storage_usd,
    requests_usd_before: before.requests_usd,
    requests_usd_after: after.requests_usd,
    monthly_savings_usd: usd(before.total_usd - after.total_usd),
  };
}

/** The whole report: an estimate per provider and class, and the savings of archiving and packing. */
export function costReport(profile: BodyProfile, prices: Prices): CostReport {
  const estimates: ClassEstimate[] = [];
  const archive: ArchiveSaving[] = [];
  const packing: PackingSaving[] = [];
  for (const [providerName, provider] of Object.entries(prices.providers))
    for (const [name, c] of Object.entries(provider.classes)) {
      estimates.push({
        provider: providerName,
        region: provider.region,
        class: name,
        ...classPlacement(profile, provider, name),
        reads: { measured: false, get_per_1000: c.get_per_1000, retrieval_per_gb: c.retrieval_per_gb },
        min_storage_days: c.min_storage_days,
      });
      if (name !== provider.hot_class) archive.push(archiveSaving(profile, providerName, provider, name));
      packing.push(packingSaving(profile, prices.packing, providerName, provider, name));
    }
  const cold = total(profile.cold);
  const [small] = splitBelow(
    plus(profile.hot, profile.cold),
    profile.sizeBounds,
    prices.packing.small_under_bytes,
  );
  const s = total(small);
  return {
    as_of: prices.as_of,
    currency: prices.currency,
    gb_bytes: GB,
    estimates,
    savings: {
      archive: { cold_bodies: cold.bodies, cold_bytes: cold.bytes, by_class: archive },
      packing: { ...prices.packing, small_bodies: s.bodies, small_bytes: s.bytes, by_class: packing },
    },
  };
}
