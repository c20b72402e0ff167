/**
 * The store of record of the in-process ANN indexes (usearch, faiss): an LMDB environment under
 * `<dir>/items/` holding every item (key → tenant, id, filter fields), its full `f32` vector, and
 * a `state` record (configuration, next key, whether the derived index file — usearch's graph,
 * faiss's trained index — is current). A write resolves once its LMDB transaction committed.
 */
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import type { Database, RootDatabase } from "lmdb";
import { KuraError } from "../../core/errors.js";
import type {
  VectorFilter,
  VectorIndexPlace,
  VectorMetric,
  VectorScanPage,
} from "../../ports/vector-index.js";
import { commitFailure, guardCommitError, LMDB_ENV_OPTIONS } from "../lmdb.js";
import { checkScanLimit, filterFields, parseScanCursor } from "./common.js";

export type Quantization = "f32" | "f16" | "i8";

/** An item as LMDB keeps it. */
export interface StoredItem {
  t: string;
  i: string;
  f?: VectorFilter;
}

export interface State {
  version: 2;
  dimensions: number;
  metric: VectorMetric;
  quantization: Quantization;
  nextKey: number;
  /** `saved`: the index file (`index.usearch`, `index.faiss`) holds exactly the items; `dirty`: written since. */
  graph: "saved" | "dirty";
}

/** What the index is built for; a store built for another refuses to open. */
export interface ItemStoreConfig {
  dimensions: number;
  metric: VectorMetric;
  quantization: Quantization;
}

const ITEMS_DIR = "items";
const STATE = "state";

export function corrupt(message: string, dir: string | undefined, cause?: unknown): KuraError {
  return new KuraError("VECTOR_INDEX_CORRUPT", message, {
    operation: "vector.open",
    context: { dir },
    ...(cause === undefined ? {} : { cause }),
  });
}

export function toBytes(v: Float32Array): Buffer {
  return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
}

/** A copy as an aligned `Float32Array` (LMDB buffers need not be 4-byte aligned). */
export function fromBytes(b: Buffer): Float32Array {
  const out = new Float32Array(b.byteLength / 4);
  new Uint8Array(out.buffer).set(b);
  return out;
}

/** A failed LMDB commit: STORAGE_FULL when the disk is full, else VECTOR_UNAVAILABLE. */
async function storeError(e: unknown, path: string): Promise<KuraError> {
  guardCommitError(e);
  if (e instanceof KuraError) return e;
  const { cause, full } = await commitFailure(e, path);
  const message = (cause ?? e) instanceof Error ? ((cause ?? e) as Error).message : String(cause ?? e);
  return full
    ? new KuraError("STORAGE_FULL", `the vector index's item store: the disk is full (${message})`, {
        operation: "vector.write",
        cause: cause ?? e,
      })
    : new KuraError("VECTOR_UNAVAILABLE", `the vector index's item store failed to commit: ${message}`, {
        operation: "vector.write",
        cause: cause ?? e,
      });
}

export class ItemStore {
  private constructor(
    private readonly path: string,
    private readonly env: RootDatabase,
    private readonly items: Database<StoredItem, number>,
    private readonly vectors: Database<Buffer, number>,
    private readonly meta: Database<State, string>,
  ) {}

  /**
   * Opens (creating) the store under `dir`; refuses a store built for another configuration
   * (`VECTOR_INDEX_CONFIG_CHANGED`) and answers `VECTOR_INDEX_CORRUPT` when LMDB cannot open it.
   */
  static async open(
    dir: string,
    durability: "os" | "fsync" | undefined,
    config: ItemStoreConfig,
  ): Promise<ItemStore> {
    const { open } = await import("lmdb");
    const path = join(dir, ITEMS_DIR);
    let store: ItemStore;
    try {
      mkdirSync(path, { recursive: true });
      const env = open({ path, noSync: durability !== "fsync", maxDbs: 4, ...LMDB_ENV_OPTIONS });
      store = new ItemStore(
        path,
        env,
        env.openDB<StoredItem, number>("items", { encoding: "msgpack", keyEncoding: "uint32" }),
        env.openDB<Buffer, number>("vectors", { encoding: "binary", keyEncoding: "uint32" }),
        env.openDB<State, string>("meta", { encoding: "msgpack" }),
      );
    } catch (cause) {
      throw corrupt("the vector index's item store cannot be opened", dir, cause);
    }
    const saved = store.state();
    if (
      saved &&
      (saved.dimensions !== config.dimensions ||
        saved.metric !== config.metric ||
        saved.quantization !== config.quantization)
    ) {
      await store.close();
      throw new KuraError(
        "VECTOR_INDEX_CONFIG_CHANGED",
        `the vector index was built with ${saved.dimensions} dimensions, metric ${saved.metric}, ` +
          `quantization ${saved.quantization}; the configuration asks for ${config.dimensions}, ${config.metric}, ${config.quantization}`,
        { operation: "vector.open", context: { dir } },
      );
    }
    return store;
  }

  /** The state record, absent in a new store. */
  state(): State | undefined {
    return this.meta.get(STATE);
  }

  /** Every item, by key. */
  allItems(): Iterable<{ key: number; value: StoredItem }> {
    return this.items.getRange();
  }

  /** Up to `limit` items with their f32 vectors, by key, after `afterKey`. */
  itemsAfter(
    afterKey: number,
    limit: number,
  ): Array<{ key: number; item: StoredItem; vector: Float32Array }> {
    const out: Array<{ key: number; item: StoredItem; vector: Float32Array }> = [];
    for (const { key, value } of this.items.getRange({ start: afterKey + 1, limit })) {
      const vector = this.vector(key);
      if (vector) out.push({ key, item: value, vector });
    }
    return out;
  }

  /** Every stored vector's bytes, by key. */
  allVectors(): Iterable<{ key: number; value: Buffer }> {
    return this.vectors.getRange();
  }

  /** The f32 vector of `key`, copied. */
  vector(key: number): Float32Array | undefined {
    const bytes = this.vectors.getBinary(key);
    return bytes ? fromBytes(bytes) : undefined;
  }

  /**
   * The bytes of `key`'s vector as a window on lmdb-js's shared buffer, valid until the next
   * read: its `length` is the value's.
   */
  vectorWindow(key: number): Buffer | undefined {
    return this.vectors.getBinaryFast(key);
  }

  putItem(key: number, item: StoredItem, vector: Float32Array): void {
    this.items.put(key, item);
    this.vectors.put(key, toBytes(vector));
  }

  removeItem(key: number): void {
    this.items.remove(key);
    this.vectors.remove(key);
  }

  /** Writes a new store's first state record. */
  async initState(state: State): Promise<void> {
    await this.meta.put(STATE, state);
  }

  /** Writes the state record after a save. */
  async putState(state: State): Promise<void> {
    await this.meta.put(STATE, state).then(undefined, async (e: unknown) => {
      throw await storeError(e, this.path);
    });
  }

  /**
   * Runs `write` (puts and removes) in one transaction, writing `state` with it when given;
   * resolves once committed, or fails with STORAGE_FULL / VECTOR_UNAVAILABLE.
   */
  async commit(write: () => void, state: State | undefined): Promise<void> {
    try {
      await this.env.transaction(() => {
        write();
        if (state) this.meta.put(STATE, state);
      });
    } catch (e) {
      throw await storeError(e, this.path);
    }
  }

  /** Resolves once every write so far is on the disk. */
  get flushed(): Promise<boolean> {
    return this.env.flushed;
  }

  async close(): Promise<void> {
    await this.env.close();
  }
}

/**
 * The directory of the index at `place` under `root`: Kura's own under `<root>/<name>/`, a
 * tenant's collection under `<root>/tenants/<tenant>/<collection>/`; none without a root.
 */
export function placeDir(root: string | undefined, place: VectorIndexPlace): string | undefined {
  if (root === undefined) return undefined;
  return place.tenantId === undefined
    ? join(root, place.name)
    : join(root, "tenants", place.tenantId, place.name);
}

/**
 * `VectorIndexes.scan` over the store of record in `dir` (none: in memory only, nothing of
 * record): opened for the page and closed, beside any live instance; an index never written has
 * no items. Cursors are `[key]`.
 */
export async function scanItemStore(
  dir: string | undefined,
  durability: "os" | "fsync" | undefined,
  config: ItemStoreConfig,
  o: { after?: string; limit: number },
): Promise<VectorScanPage> {
  const limit = checkScanLimit(o.limit);
  const after = parseScanCursor(o.after, (v): v is [number] => v.length === 1 && Number.isInteger(v[0]));
  if (dir === undefined || !existsSync(join(dir, ITEMS_DIR))) return { items: [] };
  const store = await ItemStore.open(dir, durability, config);
  try {
    const page = store.itemsAfter(after?.[0] ?? 0, limit);
    const items = page.map(({ item, vector }) => ({
      tenantId: item.t,
      id: item.i,
      vector,
      ...filterFields(item.f ?? {}),
    }));
    const last = page.at(-1);
    return page.length < limit || last === undefined
      ? { items }
      : { items, next: JSON.stringify([last.key]) };
  } finally {
    await store.close();
  }
}
