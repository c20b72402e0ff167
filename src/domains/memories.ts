/**
 * Memories (MEM-1): short texts a user's assistant keeps — `{userId, memoryId, content,
 * category, createdAt, updatedAt}` — embedded automatically and searchable by similarity,
 * scoped per tenant and user.
 *
 * Storage: the record lives in the KV plane under `{tenant}:memory:{userId}:{memoryId}` with its
 * embedding — the record of truth; list is a KV prefix scan in id order — and is projected into
 * the `memories` vector index under id `{userId}/{memoryId}` with the `userId` and `category`
 * filter fields. Puts and deletes go through one write protocol across the two planes
 * (`engine/memory-index.ts`, ADR 0022): a crash or a failure between the record and the index
 * leaves an intent that a recovery pass completes, so a memory is searchable exactly when its
 * record exists, with the embedding of its current content. A put or delete that fails is undone
 * in the record when nothing wrote it since. Search also skips hits whose record is gone.
 *
 * The record keeps the snake_case names it has always been stored with (`user_id`, `memory_id`,
 * `created_at`, `updated_at`; ADR 0027): this module maps them to the library's camelCase, so
 * records written by any release read the same and nothing is migrated.
 */
import { KuraError } from "../core/errors.js";
import { newMessageId } from "../core/ids.js";
import { assertValidId } from "../core/keys.js";
import { assertStorableValue } from "../core/values.js";
import { encodeEmbedding, MEMORY_INTENT_PREFIX, MemoryIndex } from "../engine/memory-index.js";
import type { Embedder } from "../ports/embedder.js";
import type { KvStore } from "../ports/kv-store.js";
import type { VectorIndex, VectorMode } from "../ports/vector-index.js";
import { type KvNamespace, tenantKv } from "./kv.js";

export interface Memory {
  userId: string;
  memoryId: string;
  content: string;
  category: string | null;
  /** ISO 8601. */
  createdAt: string;
  updatedAt: string;
}

export interface MemoryInput {
  content: string;
  category?: string | null;
  /** Default: a new UUIDv7 (IDS-1). Putting an existing id replaces the memory. */
  memoryId?: string;
}

export interface MemorySearch {
  /** Text to embed; give this or `vector`. */
  query?: string;
  vector?: Float32Array | readonly number[];
  k?: number;
  category?: string;
  mode?: VectorMode;
}

export interface MemoryHit {
  memory: Memory;
  /** The vector index's distance (smaller is nearer). */
  distance: number;
}

/**
 * A record as stored in the KV plane: the memory under its stored (snake_case) names, and its
 * embedding (float32 bytes, see `engine/memory-index.ts`).
 */
interface StoredMemory {
  user_id: string;
  memory_id: string;
  content: string;
  category: string | null;
  created_at: string;
  updated_at: string;
  embedding?: Uint8Array;
}

/** The memory as the library returns it: camelCase, without what only the store keeps. */
function visible(stored: StoredMemory): Memory {
  return {
    userId: stored.user_id,
    memoryId: stored.memory_id,
    content: stored.content,
    category: stored.category,
    createdAt: stored.created_at,
    updatedAt: stored.updated_at,
  };
}

export interface MemoriesContext {
  kv: KvStore;
  index: VectorIndex;
  embedder: Embedder;
  clock: () => number;
}

const MAX_CONTENT = 32_768;
const CATEGORY = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export class Memories {
  private readonly kv: KvNamespace;
  private readonly index: MemoryIndex;

  constructor(
    private readonly ctx: MemoriesContext,
    readonly tenantId: string,
  ) {
    this.kv = tenantKv(ctx.kv, tenantId).sub("memory:");
    this.index = MemoryIndex.for(ctx);
    if (ctx.embedder.dimensions !== ctx.index.dimensions)
      throw new KuraError(
        "VECTOR_DIMENSIONS_MISMATCH",
        `the embedder gives ${ctx.embedder.dimensions} dimensions, the memories index has ${ctx.index.dimensions}`,
        { operation: "memories" },
      );
  }

  async put(userId: string, input: MemoryInput): Promise<Memory> {
    const operation = "memories.put";
    assertValidId(userId, "user id", operation);
    // The input's earlier name: ignoring it would store a new memory instead of replacing one.
    if (typeof input === "object" && input !== null && "memory_id" in input)
      throw new KuraError("INVALID_ARGUMENT", "memory_id is now memoryId", { operation });
    const memoryId = input.memoryId ?? newMessageId(this.ctx.clock());
    assertValidId(memoryId, "memory id", operation);
    if (
      typeof input.content !== "string" ||
      input.content.trim() === "" ||
      input.content.length > MAX_CONTENT
    )
      throw new KuraError("INVALID_ARGUMENT", `memory content must be 1…${MAX_CONTENT} characters of text`, {
        operation,
      });
    assertStorableValue(input.content, "memory content", operation);
    const category = input.category ?? null;
    if (category !== null && !CATEGORY.test(category))
      throw new KuraError("INVALID_ARGUMENT", "memory category must match [A-Za-z0-9][A-Za-z0-9._-]{0,63}", {
        operation,
      });
    const [vector] = await this.ctx.embedder.embed([input.content]);
    const now = new Date(this.ctx.clock()).toISOString();
    await this.index.ready(this.tenantId, this.kv.prefix);
    const { current } = await this.index
      .change<StoredMemory>(`${this.kv.prefix}${userId}:${memoryId}`, (previous) => ({
        user_id: userId,
        memory_id: memoryId,
        content: input.content,
        category,
        created_at: previous?.created_at ?? now,
        updated_at: now,
        embedding: encodeEmbedding(vector as Float32Array),
      }))
      .catch((e: unknown) => this.hideKeys(e));
    return visible(current as StoredMemory);
  }

  async get(userId: string, memoryId: string): Promise<Memory | undefined> {
    assertValidId(userId, "user id", "memories.get");
    assertValidId(memoryId, "memory id", "memories.get");
    const stored = await this.kv.get<StoredMemory>(`${userId}:${memoryId}`);
    return stored && visible(stored);
  }

  /** A user's memories in id order (creation order for generated ids). */
  async list(
    userId: string,
    options: { cursor?: string; limit?: number } = {},
  ): Promise<{ items: Memory[]; cursor?: string }> {
    assertValidId(userId, "user id", "memories.list");
    const page = await this.kv.scan<StoredMemory>(`${userId}:`, {
      limit: options.limit ?? 100,
      ...(options.cursor ? { cursor: options.cursor } : {}),
    });
    return {
      items: page.items.map((e) => visible(e.value as StoredMemory)),
      ...(page.cursor ? { cursor: page.cursor } : {}),
    };
  }

  /** True when a memory was deleted. */
  async delete(userId: string, memoryId: string): Promise<boolean> {
    assertValidId(userId, "user id", "memories.delete");
    assertValidId(memoryId, "memory id", "memories.delete");
    await this.index.ready(this.tenantId, this.kv.prefix);
    const { previous } = await this.index
      .change<StoredMemory>(`${this.kv.prefix}${userId}:${memoryId}`, () => undefined)
      .catch((e: unknown) => this.hideKeys(e));
    return previous !== undefined;
  }

  /** The user's memories nearest to a text (embedded with the configured embedder) or a vector. */
  async search(userId: string, search: MemorySearch): Promise<MemoryHit[]> {
    const operation = "memories.search";
    assertValidId(userId, "user id", operation);
    if ((search.query === undefined) === (search.vector === undefined))
      throw new KuraError("INVALID_ARGUMENT", "give exactly one of query and vector", { operation });
    let vector = search.vector;
    if (search.query !== undefined) {
      if (typeof search.query !== "string" || search.query.trim() === "")
        throw new KuraError("INVALID_ARGUMENT", "query must be non-empty text", { operation });
      [vector] = await this.ctx.embedder.embed([search.query]);
    }
    await this.index.ready(this.tenantId, this.kv.prefix);
    const hits = await this.ctx.index.query({
      tenantId: this.tenantId,
      vector: vector as Float32Array,
      k: search.k ?? 10,
      filter: { userId, ...(search.category ? { category: search.category } : {}) },
      ...(search.mode ? { mode: search.mode } : {}),
    });
    const memories = await this.kv.getMany<StoredMemory>(
      hits.map((h) => `${userId}:${h.id.slice(userId.length + 1)}`),
    );
    const out: MemoryHit[] = [];
    for (const [i, hit] of hits.entries()) {
      const memory = memories[i];
      if (memory) out.push({ memory: visible(memory), distance: hit.distance });
    }
    return out;
  }

  /**
   * The tenant's memories nearest to a text, every user's (or one user's): the `scope=memories`
   * of `GET /v1/search`. Similarity only: memory text is not in the full-text index.
   */
  async searchText(query: string, options: { userId?: string; k?: number } = {}): Promise<MemoryHit[]> {
    const operation = "memories.search";
    if (options.userId !== undefined)
      return this.search(options.userId, { query, ...(options.k ? { k: options.k } : {}) });
    if (typeof query !== "string" || query.trim() === "")
      throw new KuraError("INVALID_ARGUMENT", "query must be non-empty text", { operation });
    const [vector] = await this.ctx.embedder.embed([query]);
    await this.index.ready(this.tenantId, this.kv.prefix);
    const hits = await this.ctx.index.query({
      tenantId: this.tenantId,
      vector: vector as Float32Array,
      k: options.k ?? 10,
    });
    // Index ids are `{userId}/{memoryId}`; a user id has no `/`.
    const keys = hits.map((h) => {
      const at = h.id.indexOf("/");
      return `${h.id.slice(0, at)}:${h.id.slice(at + 1)}`;
    });
    const memories = await this.kv.getMany<StoredMemory>(keys);
    const out: MemoryHit[] = [];
    for (const [i, hit] of hits.entries()) {
      const memory = memories[i];
      if (memory) out.push({ memory: visible(memory), distance: hit.distance });
    }
    return out;
  }

  /** Errors name the caller's ids, never Kura's stored keys (the tenant's prefix, intents). */
  private hideKeys(e: unknown): never {
    if (!(e instanceof KuraError)) throw e;
    const hide = (v: unknown) =>
      typeof v === "string" ? v.split(this.kv.prefix).join("").split(MEMORY_INTENT_PREFIX).join("") : v;
    throw new KuraError(e.code, hide(e.message) as string, {
      kind: e.kind,
      retryable: e.retryable,
      cause: e.cause,
      ...(e.operation === undefined ? {} : { operation: e.operation }),
      context: Object.fromEntries(Object.entries(e.context).map(([k, v]) => [k, hide(v)])),
    });
  }
}
