/**
 * The `exact` vector index: brute force over every item of the tenant, in memory. It is the
 * reference every other adapter is measured against (recall@10 = 1 by construction) and the
 * `accurate` mode's definition. Nothing is persisted.
 */
import { z } from "zod";
import { withLifecycle } from "../../../core/lifecycle.js";
import { parseOptions } from "../../../core/options.js";
import { checkVector } from "../../../core/vectors.js";
import type {
  VectorCapabilities,
  VectorFilter,
  VectorHit,
  VectorIndex,
  VectorIndexDefinition,
  VectorIndexOptions,
  VectorItem,
  VectorQuery,
} from "../../../ports/vector-index.js";
import {
  checkPlace,
  checkQuery,
  checkScanLimit,
  distance,
  filterFields,
  matchesFilter,
  modeOption,
  OPTIONS_PATH,
  parseScanCursor,
} from "../common.js";

export const exactOptionsSchema = z.object({ mode: modeOption }).strict();
export type ExactOptions = z.infer<typeof exactOptionsSchema>;

const CAPABILITIES: VectorCapabilities = Object.freeze({
  shared: false,
  persistent: false,
  quantization: false,
  remote: false,
});

interface Stored extends VectorFilter {
  id: string;
  vector: Float32Array;
}

export function openExactVectorIndex(options: VectorIndexOptions): VectorIndex {
  const { dimensions, metric } = options;
  const tenants = new Map<string, Map<string, Stored>>();
  const index: VectorIndex = {
    backend: "exact",
    dimensions,
    metric,
    async upsert(items: readonly VectorItem[]) {
      const checked = items.map((item) => ({
        item,
        vector: Float32Array.from(checkVector(item.vector, dimensions, "vector.upsert")),
      }));
      for (const { item, vector } of checked) {
        let byId = tenants.get(item.tenantId);
        if (!byId) {
          byId = new Map();
          tenants.set(item.tenantId, byId);
        }
        byId.set(item.id, { id: item.id, vector, ...filterFields(item) });
      }
    },
    async remove(tenantId: string, ids: readonly string[]) {
      const byId = tenants.get(tenantId);
      if (byId) for (const id of ids) byId.delete(id);
    },
    async query(query: VectorQuery): Promise<VectorHit[]> {
      checkQuery(query, "vector.query");
      const q = checkVector(query.vector, dimensions, "vector.query");
      const hits: VectorHit[] = [];
      for (const item of tenants.get(query.tenantId)?.values() ?? []) {
        if (!matchesFilter(item, query.filter)) continue;
        hits.push({ id: item.id, distance: distance(metric, q, item.vector), ...filterFields(item) });
      }
      hits.sort((a, b) => a.distance - b.distance || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
      return hits.slice(0, query.k);
    },
    async count(tenantId?: string) {
      if (tenantId !== undefined) return tenants.get(tenantId)?.size ?? 0;
      let n = 0;
      for (const byId of tenants.values()) n += byId.size;
      return n;
    },
    async existing(tenantId: string, ids: readonly string[]) {
      const byId = tenants.get(tenantId);
      return new Set(byId ? ids.filter((id) => byId.has(id)) : []);
    },
    async save() {},
    async close() {},
    async drop() {
      tenants.clear();
    },
  };
  return withLifecycle(index, "the vector index", "vector");
}

/** Each `open` is a new, empty index: nothing is shared, nothing outlives it. */
export const exactVectorIndex: VectorIndexDefinition<ExactOptions> = {
  scheme: "exact",
  capabilities: CAPABILITIES,
  parseOptions: (raw) => parseOptions(exactOptionsSchema, raw, OPTIONS_PATH),
  create: async (options) => ({
    open: async (place) => {
      checkPlace(place, "vector.open");
      return openExactVectorIndex({ dimensions: place.dimensions, metric: place.metric, mode: options.mode });
    },
    // Not persistent: nothing of record outlives the instance that holds it.
    scan: async (_place, o) => {
      checkScanLimit(o.limit);
      // It returns no cursor, so none is its own.
      parseScanCursor(o.after, (_v): _v is [] => false);
      return { items: [] };
    },
    close: async () => {},
  }),
};
