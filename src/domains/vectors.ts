/**
 * Vector collections (VEC-1): a tenant's named indexes of `{dimensions, metric}`, each a
 * `VectorIndex` of its own (one per tenant and collection). The collection's definition lives in
 * the KV plane (`{tenant}:vcoll:{name}`); its index is opened on first use by the opener Kura
 * passes in (usearch under `<data_dir>/vectors/tenants/<tenant>/<collection>/` by default).
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
  created_at: string;
}

export type CollectionIndexOpener = (tenantId: string, collection: VectorCollection) => Promise<VectorIndex>;

export interface VectorsContext {
  kv: KvStore;
  open: CollectionIndexOpener;
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
    const existing = await this.kv.get<VectorCollection>(name);
    if (existing) {
      if (existing.dimensions === def.dimensions && existing.metric === def.metric)
        return { collection: existing, created: false };
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
      created_at: new Date(this.ctx.clock()).toISOString(),
    };
    try {
      await this.kv.set(name, collection, { ifVersion: 0 });
    } catch (e) {
      // Created concurrently: answer as if it had existed.
      if (e instanceof KuraError && e.code === "KV_VERSION_CONFLICT") return this.create(name, def);
      throw e;
    }
    return { collection, created: true };
  }

  async get(name: string): Promise<VectorCollection> {
    assertValidId(name, "collection", "vectors.get");
    const collection = await this.kv.get<VectorCollection>(name);
    if (!collection)
      throw new KuraError("VECTOR_COLLECTION_NOT_FOUND", `no vector collection ${name}`, {
        operation: "vectors.get",
        context: { collection: name },
      });
    return collection;
  }

  private async index(name: string): Promise<VectorIndex> {
    return this.ctx.open(this.tenantId, await this.get(name));
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
