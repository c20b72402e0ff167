/**
 * The prices `kura stats --cost` estimates with: the built-in defaults and the parser of a
 * prices file (`--prices FILE`, JSON or YAML, the same shape as `DEFAULT_PRICES`; a file replaces
 * the defaults whole, `kura stats --cost --print-prices` prints them to start from).
 *
 * The defaults are public list prices (pay as you go, the first volume tier, one region per
 * provider) as the providers published them around `as_of`. They are a starting point, not a
 * quote: prices change, differ per region and volume tier, and discounts are not in them. Every
 * figure is to be checked against the provider's pricing page before it is relied on; the
 * figures noted "check" below are the ones least certain.
 *
 * A GB is 2^30 bytes (what the providers bill as GB or GiB). Request prices are per 1,000.
 */
import { parse } from "yaml";
import { KuraError } from "../core/errors.js";

export interface ClassPrice {
  /** USD per GB-month stored. */
  storage_gb_month: number;
  /** USD per 1,000 writes (PUT, or the lifecycle transition / tier change into this class). */
  put_per_1000: number;
  /** USD per 1,000 reads (GET); reads are not measured, so this is reported, not added. */
  get_per_1000: number;
  /** USD per GB read back (retrieval fee); reported, not added. */
  retrieval_per_gb: number;
  /** Each object bills at least this many bytes (S3 Standard-IA and Glacier IR: 128 KiB). */
  min_object_bytes: number;
  /** Bytes billed per object at this class's rate on top of its size (S3 Glacier Flexible / Deep Archive: 32 KiB). */
  overhead_bytes: number;
  /** Bytes billed per object at the provider's `hot_class` rate (S3 Glacier Flexible / Deep Archive: 8 KiB). */
  overhead_hot_bytes: number;
  /** Deleted or moved earlier, the rest of these days is billed anyway; reported, not added. */
  min_storage_days: number;
}

export interface ProviderPrices {
  region: string;
  /** The class new bodies are written to, and the one archiving moves cold bodies from. */
  hot_class: string;
  classes: Record<string, ClassPrice>;
}

export interface Prices {
  /** When the figures were taken (YYYY-MM-DD). */
  as_of: string;
  currency: string;
  /** Packing: bodies smaller than `small_under_bytes` go into objects of `pack_bytes`. */
  packing: { small_under_bytes: number; pack_bytes: number };
  providers: Record<string, ProviderPrices>;
}

const KIB = 1024;

function cls(p: Partial<ClassPrice> & Pick<ClassPrice, "storage_gb_month" | "put_per_1000">): ClassPrice {
  return {
    get_per_1000: 0,
    retrieval_per_gb: 0,
    min_object_bytes: 0,
    overhead_bytes: 0,
    overhead_hot_bytes: 0,
    min_storage_days: 0,
    ...p,
  };
}

/** The built-in list prices. Check every figure before relying on it (see the module's comment). */
export const DEFAULT_PRICES: Prices = Object.freeze({
  as_of: "2025-01-01",
  currency: "USD",
  // 128 KiB: the largest minimum billable size below and seed 000's 128 KB line; 1 MiB packs.
  packing: { small_under_bytes: 128 * KIB, pack_bytes: 1024 * KIB },
  providers: {
    // Amazon S3, US East (N. Virginia), first 50 TB. Glacier Flexible and Deep Archive bill
    // 40 KB per object beyond its data: 32 KB at their rate, 8 KB at S3 Standard's.
    "aws-s3": {
      region: "us-east-1",
      hot_class: "standard",
      classes: {
        standard: cls({ storage_gb_month: 0.023, put_per_1000: 0.005, get_per_1000: 0.0004 }),
        "standard-ia": cls({
          storage_gb_month: 0.0125,
          put_per_1000: 0.01,
          get_per_1000: 0.001,
          retrieval_per_gb: 0.01,
          min_object_bytes: 128 * KIB,
          min_storage_days: 30,
        }),
        "glacier-instant-retrieval": cls({
          storage_gb_month: 0.004,
          put_per_1000: 0.02,
          get_per_1000: 0.01,
          retrieval_per_gb: 0.03,
          min_object_bytes: 128 * KIB,
          min_storage_days: 90,
        }),
        // Retrieval: the Standard tier's; the request price is per restore, not per GET.
        "glacier-flexible-retrieval": cls({
          storage_gb_month: 0.0036,
          put_per_1000: 0.03,
          get_per_1000: 0.05,
          retrieval_per_gb: 0.01,
          overhead_bytes: 32 * KIB,
          overhead_hot_bytes: 8 * KIB,
          min_storage_days: 90,
        }),
        "deep-archive": cls({
          storage_gb_month: 0.00099,
          put_per_1000: 0.05,
          get_per_1000: 0.1,
          retrieval_per_gb: 0.02,
          overhead_bytes: 32 * KIB,
          overhead_hot_bytes: 8 * KIB,
          min_storage_days: 180,
        }),
      },
    },
    // Google Cloud Storage, regional us-central1. Class A operations are the writes, class B
    // the reads. Check: the operation prices (changed since, in some locations).
    gcs: {
      region: "us-central1",
      hot_class: "standard",
      classes: {
        standard: cls({ storage_gb_month: 0.02, put_per_1000: 0.005, get_per_1000: 0.0004 }),
        nearline: cls({
          storage_gb_month: 0.01,
          put_per_1000: 0.01,
          get_per_1000: 0.001,
          retrieval_per_gb: 0.01,
          min_storage_days: 30,
        }),
        coldline: cls({
          storage_gb_month: 0.004,
          put_per_1000: 0.02,
          get_per_1000: 0.01,
          retrieval_per_gb: 0.02,
          min_storage_days: 90,
        }),
        archive: cls({
          storage_gb_month: 0.0012,
          put_per_1000: 0.05,
          get_per_1000: 0.05,
          retrieval_per_gb: 0.05,
          min_storage_days: 365,
        }),
      },
    },
    // Azure Blob Storage, East US, LRS, flat namespace (prices per 10,000 operations divided by
    // 10). Check: every Azure figure here, the Hot storage and all operation prices above all.
    "azure-blob": {
      region: "eastus (LRS)",
      hot_class: "hot",
      classes: {
        hot: cls({ storage_gb_month: 0.018, put_per_1000: 0.005, get_per_1000: 0.0004 }),
        cool: cls({
          storage_gb_month: 0.01,
          put_per_1000: 0.01,
          get_per_1000: 0.001,
          retrieval_per_gb: 0.01,
          min_storage_days: 30,
        }),
        cold: cls({
          storage_gb_month: 0.0036,
          put_per_1000: 0.018,
          get_per_1000: 0.01,
          retrieval_per_gb: 0.03,
          min_storage_days: 90,
        }),
        archive: cls({
          storage_gb_month: 0.00099,
          put_per_1000: 0.01,
          get_per_1000: 0.5,
          retrieval_per_gb: 0.02,
          min_storage_days: 180,
        }),
      },
    },
  },
}) as Prices;

const CLASS_FIELDS = [
  "storage_gb_month",
  "put_per_1000",
  "get_per_1000",
  "retrieval_per_gb",
  "min_object_bytes",
  "overhead_bytes",
  "overhead_hot_bytes",
  "min_storage_days",
] as const;

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * A prices file's text (JSON or YAML) as `Prices`; INVALID_ARGUMENT naming every problem.
 * Class fields other than `storage_gb_month` and `put_per_1000` default to 0.
 */
export function parsePrices(text: string, source: string): Prices {
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (e) {
    throw new KuraError("INVALID_ARGUMENT", `${source}: not JSON or YAML: ${(e as Error).message}`, {
      operation: "stats.cost",
    });
  }
  const problems: string[] = [];
  const num = (v: unknown, where: string, required: boolean, integer = false): number => {
    if (v === undefined && !required) return 0;
    if (typeof v !== "number" || !Number.isFinite(v) || v < 0 || (integer && !Number.isSafeInteger(v))) {
      problems.push(`${where} must be a ${integer ? "whole " : ""}number >= 0`);
      return 0;
    }
    return v;
  };
  if (!isObject(doc)) problems.push("the document must be a mapping");
  const d = isObject(doc) ? doc : {};
  const asOf = d.as_of instanceof Date ? d.as_of.toISOString().slice(0, 10) : d.as_of;
  if (typeof asOf !== "string" || asOf === "") problems.push("as_of must be a date (YYYY-MM-DD)");
  const packing = isObject(d.packing) ? d.packing : {};
  const small = num(packing.small_under_bytes, "packing.small_under_bytes", true, true);
  const pack = num(packing.pack_bytes, "packing.pack_bytes", true, true);
  if (small === 0 || pack === 0)
    problems.push("packing.small_under_bytes and packing.pack_bytes must be > 0");
  const providers: Record<string, ProviderPrices> = {};
  if (!isObject(d.providers) || Object.keys(d.providers).length === 0)
    problems.push("providers must name at least one provider");
  for (const [name, p] of Object.entries(isObject(d.providers) ? d.providers : {})) {
    if (!isObject(p) || !isObject(p.classes)) {
      problems.push(`providers.${name} must have classes`);
      continue;
    }
    const classes: Record<string, ClassPrice> = {};
    for (const [c, v] of Object.entries(p.classes)) {
      const at = `providers.${name}.classes.${c}`;
      if (!isObject(v)) {
        problems.push(`${at} must be a mapping`);
        continue;
      }
      const price = {} as ClassPrice;
      for (const f of CLASS_FIELDS)
        price[f] = num(
          v[f],
          `${at}.${f}`,
          f === "storage_gb_month" || f === "put_per_1000",
          f.endsWith("_bytes") || f.endsWith("_days"),
        );
      classes[c] = price;
    }
    const hot = typeof p.hot_class === "string" ? p.hot_class : "";
    if (!(hot in classes)) problems.push(`providers.${name}.hot_class must name one of its classes`);
    providers[name] = { region: typeof p.region === "string" ? p.region : "", hot_class: hot, classes };
  }
  if (problems.length > 0)
    throw new KuraError("INVALID_ARGUMENT", `${source}: ${problems.join("; ")}`, { operation: "stats.cost" });
  return {
    as_of: asOf as string,
    currency: typeof d.currency === "string" ? d.currency : "USD",
    packing: { small_under_bytes: small, pack_bytes: pack },
    providers,
  };
}
