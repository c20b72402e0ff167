/**
 * A tenant's buckets as the S3 endpoint shows them (API-7). A bucket is the first segment of the
 * tenant's object keys (`s3://photos/a/b.jpg` is the object `photos/a/b.jpg`), so a bucket with
 * objects needs no record; an empty one created by CreateBucket is remembered by a marker in the
 * tenant's KV space (`{tenant}:s3:bucket:{name}`, ADR 0035), which goes with the tenant. A bucket
 * exists while it has a marker or an object; DeleteBucket removes the marker of an empty one.
 */
import { KuraError } from "../core/errors.js";
import type { KvStore } from "../ports/kv-store.js";
import { KvNamespace, tenantKvPrefix } from "./kv.js";
import type { MultipartUploads } from "./multipart.js";
import type { Objects } from "./objects.js";

/** S3's bucket naming rules, lowercase only (no `..`, not an IP address). */
const BUCKET_NAME = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

export interface BucketInfo {
  name: string;
  /** When CreateBucket made it; for a bucket known only by its objects, undefined. */
  createdAt: number | undefined;
}

export function bucketNameProblem(name: string): string | undefined {
  if (!BUCKET_NAME.test(name)) return "must be 3-63 lowercase letters, digits, dots and hyphens";
  if (name.includes("..")) return "must not contain '..'";
  if (/^\d+\.\d+\.\d+\.\d+$/.test(name)) return "must not look like an IP address";
  return undefined;
}

export class Buckets {
  private readonly markers: KvNamespace;

  constructor(
    kv: KvStore,
    tenantId: string,
    private readonly objects: Objects,
    private readonly uploads: MultipartUploads,
    private readonly clock: () => number,
  ) {
    this.markers = new KvNamespace(kv, `${tenantKvPrefix(tenantId)}s3:bucket:`);
  }

  /** S3_BUCKET_NAME_INVALID unless `name` is a valid bucket name. */
  checkName(name: string, operation: string): void {
    const problem = bucketNameProblem(name);
    if (problem !== undefined)
      throw new KuraError("S3_BUCKET_NAME_INVALID", `invalid bucket name: ${problem}`, {
        operation,
        context: { bucket: name.slice(0, 100) },
      });
  }

  /** Every bucket of the tenant, by name: markers and the first segments of its keys. */
  async list(): Promise<BucketInfo[]> {
    const found = new Map<string, BucketInfo>();
    for (const e of await this.markers.scanAll<{ createdAt: number }>()) {
      found.set(e.key, { name: e.key, createdAt: e.value?.createdAt });
    }
    let cursor: string | undefined;
    do {
      const page = await this.objects.list({ delimiter: "/", limit: 1000, ...(cursor ? { cursor } : {}) });
      for (const p of page.prefixes) {
        const name = p.slice(0, -1);
        if (!found.has(name) && bucketNameProblem(name) === undefined)
          found.set(name, { name, createdAt: undefined });
      }
      cursor = page.nextCursor;
    } while (cursor);
    return [...found.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** Whether the tenant has the bucket (a marker, or an object under it). */
  async exists(name: string): Promise<boolean> {
    if (bucketNameProblem(name) !== undefined) return false;
    if ((await this.markers.get(name)) !== undefined) return true;
    return this.hasObjects(name);
  }

  /** S3_BUCKET_NOT_FOUND unless the tenant has the bucket. */
  async assertExists(name: string, operation: string): Promise<void> {
    if (!(await this.exists(name))) throw notFound(name, operation);
  }

  /** CreateBucket: S3_BUCKET_EXISTS when the tenant has it already. */
  async create(name: string): Promise<void> {
    const op = "buckets.create";
    this.checkName(name, op);
    if (await this.exists(name))
      throw new KuraError("S3_BUCKET_EXISTS", `bucket ${name} exists`, {
        operation: op,
        context: { bucket: name },
      });
    await this.markers.set(name, { createdAt: this.clock() });
  }

  /** DeleteBucket: only an empty one (S3_BUCKET_NOT_EMPTY), S3_BUCKET_NOT_FOUND when there is none. */
  async delete(name: string): Promise<void> {
    const op = "buckets.delete";
    this.checkName(name, op);
    const marked = (await this.markers.get(name)) !== undefined;
    const hasObjects = await this.hasObjects(name);
    if (!marked && !hasObjects) throw notFound(name, op);
    if (hasObjects || (await this.uploads.list({ prefix: `${name}/`, limit: 1 })).uploads.length > 0)
      throw new KuraError("S3_BUCKET_NOT_EMPTY", `bucket ${name} is not empty`, {
        operation: op,
        context: { bucket: name },
      });
    await this.markers.delete(name);
  }

  private async hasObjects(name: string): Promise<boolean> {
    const page = await this.objects.list({ prefix: `${name}/`, limit: 1 });
    return page.items.length > 0 || page.prefixes.length > 0;
  }
}

function notFound(name: string, operation: string): KuraError {
  return new KuraError("S3_BUCKET_NOT_FOUND", `no bucket ${name}`, { operation, context: { bucket: name } });
}
