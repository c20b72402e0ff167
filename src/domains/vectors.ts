/**
 * Vector collections (VEC-1): a tenant's named indexes of `{dimensions, metric}`, each a
 * `VectorIndex` of its own (one per tenant and collection). The collection's definition lives in
 * the KV plane (`{tenant}:vcoll:{name}`); its index is opened on first use by the vector plane
 * (usearch under `<data_dir>/vectors/tenants/<tenant>/<collection>/` by default). Dropping a
 * collection deletes its index first, then its definition: a crash in between leaves a
 * definition whose index reopens empty, and dropping again finishes the job.
 *
 * The definition is stored as it always was, `{name, dimensions, metric, created_at}`; this
 * module maps `created_at` to the library's `createdAt` (ADR 0027), so nothing is migrated.
 */
import { KuraError } from "../core/errors.js";
import { assertValidId } from "../core/keys.js";
import type { KvStore } from "../ports/kv-store.js";
import type {
  VectorFilter,
  VectorHit,
  VectorIndex,
  VectorMetric,
  VectorMode,
} from "../ports/vector-index.js";
import { type KvNamespace, tenantKv } from "./kv.js";

export interface VectorCollection {
  name: string;
  dimensions: number;
  metric: VectorMetric;
  /** ISO 8601. */
  createdAt: string;
}

/** A collection's definition as stored in the KV plane (the stored name of its time). */
interface StoredCollection {
  name: string;
  dimensions: number;
  metric: VectorMetric;
  created_at: string;
}

const stored = (c: VectorCollection): StoredCollection => ({
  name: c.name,
  dimensions: c.dimensions,
  metric: c.metric,
  created_at: c.createdAt,
});

const visible = (s: StoredCollection): VectorCollection => ({
  name: s.name,
  dimensions: s.dimensions,
  metric: s.metric,
  createdAt: s.created_at,
});

/** Where collections' indexes are opened and dropped (the engine's `VectorPlane`). */
export interface CollectionIndexes {
  collection(tenantId: string, collection: VectorCollection): Promise<VectorIndex>;
  dropCollection(tenantId: string, collection: VectorCollection): Promise<void>;
}

export interface VectorsContext {
  kv: KvStore;
  plane: CollectionIndexes;
  clock: () => number;
}

export class VectorCollections {
  private readonly kv: KvNamespace;

  constructor(
    private readonly ctx: VectorsContext,
    readonly tenantId: string,
  ) {
    this.kv = tenantKv(ctx.kv, tenantId).sub("vcoll:");
  }

  /** Create a collection; repeating the same definition is a no-op (`created: false`). */
  async create(
    name: string,
    def: { dimensions: number; metric: VectorMetric },
  ): Promise<{ collection: VectorCollection; created: boolean }> {
    const operation = "vectors.create";
    assertValidId(name, "collection", operation);
    if (!Number.isInteger(def.dimensions) || def.dimensions < 1 || def.dimensions > 65_536)
      throw new KuraError("INVALID_ARGUMENT", "dimensions must be an integer in [1, 65536]", { operation });
    const existing = await this.kv.get<StoredCollection>(name);
    if (existing) {
      if (existing.dimensions === def.dimensions && existing.metric === def.metric)
        return { collection: visible(existing), created: false };
      throw new KuraError(
        "VECTOR_COLLECTION_CONFLICT",
        `collection ${name} exists with ${existing.dimensions} dimensions and metric ${existing.metric}`,
        { operation, context: { collection: name } },
      );
    }
    const collection: VectorCollection = {
      name,
      dimensions: def.dimensions,
      metric: def.metric,
      createdAt: new Date(this.ctx.clock()).toISOString(),
    };
    try {
      await this.kv.set(name, stored(collection), { ifVersion: 0 });
    } catch (e) {
      // Created concurrently: answer as if it had existed.
      if (e instanceof KuraError && e.code === "KV_VERSION_CONFLICT") return this.create(name, def);
      throw e;
    }
    return { collection, created: true };
  }

  async get(name: string): Promise<VectorCollection> {
    assertValidId(name, "collection", "vectors.get");
    const collection = await this.kv.get<StoredCollection>(name);
    if (!collection)
      throw new KuraError("VECTOR_COLLECTION_NOT_FOUND", `no vector collection ${name}`, {
        operation: "vectors.get",
        context: { collection: name },
      });
    return visible(collection);
  }

  /** The tenant's collections in name order, a page at a time. */
  async list(options: { cursor?: string; limit?: number } = {}): Promise<{
    items: VectorCollection[];
    cursor?: string;
  }> {
    const page = await this.kv.scan<StoredCollection>("", {
      limit: options.limit ?? 100,
      ...(options.cursor ? { cursor: options.cursor } : {}),
    });
    return {
      items: page.items.map((e) => visible(e.value as StoredCollection)),
      ...(page.cursor ? { cursor: page.cursor } : {}),
    };
  }

  /** Delete a collection and every vector in it; false when there was none. */
  async drop(name: string): Promise<boolean> {
    assertValidId(name, "collection", "vectors.drop");
    const collection = await this.kv.get<StoredCollection>(name);
    if (!collection) return false;
    await this.ctx.plane.dropCollection(this.tenantId, visible(collection));
    await this.kv.delete(name);
    return true;
  }

  /** How many vectors a collection holds. */
  async count(name: string): Promise<number> {
    return (await this.index(name)).count(this.tenantId);
  }

  private async index(name: string): Promise<VectorIndex> {
    return this.ctx.plane.collection(this.tenantId, await this.get(name));
  }

  async put(name: string, id: string, vector: readonly number[] | Float32Array, fields: VectorFilter = {}) {
    assertValidId(id, "vector id", "vectors.put");
    await (await this.index(name)).upsert([{ tenantId: this.tenantId, id, vector, ...fields }]);
  }

  async delete(name: string, id: string): Promise<void> {
    assertValidId(id, "vector id", "vectors.delete");
    await (await this.index(name)).remove(this.tenantId, [id]);
  }

  async query(
    name: string,
    q: { vector: readonly number[] | Float32Array; k?: number; filter?: VectorFilter; mode?: VectorMode },
  ): Promise<VectorHit[]> {
    return (await this.index(name)).query({
      tenantId: this.tenantId,
      vector: q.vector,
      k: q.k ?? 10,
      ...(q.filter ? { filter: q.filter } : {}),
      ...(q.mode ? { mode: q.mode } : {}),
    });
  }
}
