/**
 * `domains/cost.ts`: the cost model on small hand-computed profiles, with prices chosen so the
 * arithmetic can be followed (GB = 2^30 bytes).
 */
import { describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { isKuraError } from "../../src/core/errors.js";
import {
  archiveSaving,
  billableBytes,
  classPlacement,
  costReport,
  costSizeBounds,
  GB,
  packingSaving,
} from "../../src/domains/cost.js";
import { DEFAULT_PRICES, type Prices, parsePrices } from "../../src/domains/cost-prices.js";
import type { BodyProfile } from "../../src/domains/storage-stats.js";

const KIB = 1024;
const zero = { get_per_1000: 0, retrieval_per_gb: 0, min_storage_days: 0 };
const PRICES: Prices = {
  as_of: "2025-01-01",
  currency: "USD",
  packing: { small_under_bytes: 128 * KIB, pack_bytes: 1024 * KIB },
  providers: {
    p: {
      region: "r",
      hot_class: "std",
      classes: {
        std: {
          ...zero,
          storage_gb_month: 1,
          put_per_1000: 1,
          min_object_bytes: 0,
          overhead_bytes: 0,
          overhead_hot_bytes: 0,
        },
        ia: {
          ...zero,
          storage_gb_month: 0.5,
          put_per_1000: 2,
          min_object_bytes: 128 * KIB,
          overhead_bytes: 0,
          overhead_hot_bytes: 0,
        },
        deep: {
          ...zero,
          storage_gb_month: 0.1,
          put_per_1000: 5,
          min_object_bytes: 0,
          overhead_bytes: 32 * KIB,
          overhead_hot_bytes: 8 * KIB,
        },
      },
    },
  },
};
const provider = PRICES.providers.p as NonNullable<Prices["providers"][string]>;

/** 1,000 cold bodies of 10 KiB; `hot` 200 KiB bodies written in the last month. */
function profile(hot = 0): BodyProfile {
  return {
    sizeBounds: [128 * KIB],
    cold: { bodies: [1000, 0], bytes: [1000 * 10 * KIB, 0] },
    hot: { bodies: [0, hot], bytes: [0, hot * 200 * KIB] },
    lastMonth: { bodies: [0, hot], bytes: [0, hot * 200 * KIB] },
  };
}

describe("cost model", () => {
  it("splits profiles at every minimum object size and the packing threshold", () => {
    expect(costSizeBounds(PRICES)).toEqual([128 * KIB]);
    expect(costSizeBounds(DEFAULT_PRICES)).toEqual([128 * KIB]);
  });

  it("bills a body below the minimum object size as the minimum: 1,000 × 10 KiB in IA bill as 1,000 × 128 KiB", () => {
    const p = profile();
    expect(billableBytes(p.cold, p.sizeBounds, 128 * KIB)).toBe(1000 * 128 * KIB);
    expect(billableBytes(p.cold, p.sizeBounds, 0)).toBe(1000 * 10 * KIB);
    const ia = classPlacement(p, provider, "ia");
    expect(ia.storage).toEqual([
      {
        class: "ia",
        what: "bodies",
        objects: 1000,
        bytes: 10_240_000,
        billable_bytes: 131_072_000,
        usd: 0.061035,
      },
    ]);
    // (131,072,000 / 2^30) GB × 0.5 = 0.06103515625
    expect(ia.total_usd).toBe(0.061035);
    expect(() => billableBytes(p.cold, p.sizeBounds, 64 * KIB)).toThrow(/not split/);
  });

  it("adds the per-object overhead: 32 KiB at the class's rate, 8 KiB at the hot class's", () => {
    const deep = classPlacement(profile(), provider, "deep");
    // 10,240,000 + 1,000 × 32,768 = 43,008,000 bytes × 0.1 / GB; 8,192,000 bytes × 1 / GB.
    expect(deep.storage).toEqual([
      {
        class: "deep",
        what: "bodies",
        objects: 1000,
        bytes: 10_240_000,
        billable_bytes: 43_008_000,
        usd: 0.004005,
      },
      { class: "std", what: "overhead", objects: 1000, bytes: 0, billable_bytes: 8_192_000, usd: 0.007629 },
    ]);
    expect(deep.storage_usd).toBe(0.011634);
  });

  it("counts the bodies written in the last 30 days as a month's PUTs", () => {
    const std = classPlacement(profile(10), provider, "std");
    expect(std.requests).toEqual([{ class: "std", kind: "put", count: 10, usd: 0.01 }]);
    // 12,288,000 bytes / GB × 1 = 0.011444…
    expect(std.storage_usd).toBe(0.011444);
    expect(std.total_usd).toBe(0.021444);
  });

  it("archiving small cold bodies can cost more than it saves, and says so", () => {
    const p = profile(10);
    const ia = archiveSaving(p, "p", provider, "ia");
    // After: hot 2,048,000 bytes in std (0.001907), cold in IA at 128 KiB each (0.061035),
    // 10 PUTs (0.01) and 10 transitions at 2 per 1,000 (0.02).
    expect(ia.monthly_usd_before).toBe(0.021444);
    expect(ia.monthly_usd_after).toBe(0.092942);
    expect(ia.monthly_savings_usd).toBe(-0.071498);
    expect(ia.one_time_usd).toBe(2);
    const deep = archiveSaving(p, "p", provider, "deep");
    expect(deep.monthly_usd_after).toBe(0.073541);
    expect(deep.one_time_usd).toBe(5);
  });

  it("packing small bodies into 1 MiB objects removes the minimum-size billing", () => {
    const saving = packingSaving(profile(10), PRICES.packing, "p", provider, "ia");
    // 10,240,000 bytes of small bodies make 10 packs; the 200 KiB bodies stay as they are.
    expect(saving.packs).toBe(10);
    expect(saving.packs_per_month).toBe(0);
    expect(saving.storage_usd_before).toBe(0.061989);
    expect(saving.storage_usd_after).toBe(0.005722);
    expect(saving.requests_usd_before).toBe(0.02);
    expect(saving.requests_usd_after).toBe(0.02);
    expect(saving.monthly_savings_usd).toBe(0.056267);
  });

  it("packing saves PUTs: 100 small bodies written this month become one pack", () => {
    const p: BodyProfile = {
      sizeBounds: [128 * KIB],
      cold: { bodies: [0, 0], bytes: [0, 0] },
      hot: { bodies: [100, 0], bytes: [100 * KIB, 0] },
      lastMonth: { bodies: [100, 0], bytes: [100 * KIB, 0] },
    };
    const saving = packingSaving(p, PRICES.packing, "p", provider, "std");
    expect(saving.packs_per_month).toBe(1);
    expect(saving.requests_usd_before).toBe(0.1);
    expect(saving.requests_usd_after).toBe(0.001);
  });

  it("every estimate's total is the sum of its parts", () => {
    const report = costReport(profile(10), DEFAULT_PRICES);
    expect(report.gb_bytes).toBe(GB);
    expect(report.estimates).toHaveLength(13);
    for (const e of report.estimates) {
      const storage = e.storage.reduce((a, p) => a + p.usd, 0);
      const requests = e.requests.reduce((a, p) => a + p.usd, 0);
      expect(e.storage_usd).toBeCloseTo(storage, 9);
      expect(e.requests_usd).toBeCloseTo(requests, 9);
      expect(e.total_usd).toBeCloseTo(e.storage_usd + e.requests_usd, 9);
      expect(e.reads.measured).toBe(false);
    }
    expect(report.savings.archive.by_class.map((a) => `${a.provider}/${a.class}`)).toEqual([
      "aws-s3/standard-ia",
      "aws-s3/glacier-instant-retrieval",
      "aws-s3/glacier-flexible-retrieval",
      "aws-s3/deep-archive",
      "gcs/nearline",
      "gcs/coldline",
      "gcs/archive",
      "azure-blob/cool",
      "azure-blob/cold",
      "azure-blob/archive",
    ]);
    expect(report.savings.packing).toMatchObject({ small_bodies: 1000, small_bytes: 10_240_000 });
  });
});

describe("prices file", () => {
  it("reads the defaults back from YAML and JSON", () => {
    expect(parsePrices(stringify(DEFAULT_PRICES), "defaults.yaml")).toEqual(DEFAULT_PRICES);
    expect(parsePrices(JSON.stringify(DEFAULT_PRICES), "defaults.json")).toEqual(DEFAULT_PRICES);
  });

  it("defaults optional class fields to 0 and names every problem", () => {
    const ok = parsePrices(
      "as_of: 2025-02-03\npacking: {small_under_bytes: 1000, pack_bytes: 2000}\n" +
        "providers:\n  x:\n    region: r\n    hot_class: a\n    classes:\n      a: {storage_gb_month: 1, put_per_1000: 2}\n",
      "p.yaml",
    );
    expect(ok.as_of).toBe("2025-02-03");
    expect(ok.providers.x?.classes.a).toMatchObject({
      min_object_bytes: 0,
      overhead_bytes: 0,
      get_per_1000: 0,
    });
    try {
      parsePrices(
        "packing: {small_under_bytes: 0, pack_bytes: 2000}\nproviders:\n  x:\n    hot_class: b\n    classes:\n      a: {storage_gb_month: -1}\n",
        "bad.yaml",
      );
      throw new Error("accepted");
    } catch (e) {
      expect(isKuraError(e) && e.code).toBe("INVALID_ARGUMENT");
      const message = (e as Error).message;
      for (const part of ["as_of", "small_under_bytes", "storage_gb_month", "put_per_1000", "hot_class"])
        expect(message).toContain(part);
    }
  });
});
