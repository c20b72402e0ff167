/**
 * The vector plane in the engine (VEC-1…5, MEM-1): the embedder, Kura's own indexes
 * (`memories`; `messages` when `vector.embed_messages` is on), the tenants' collection indexes,
 * the projector that embeds messages from the outbox, and the periodic save of the indexes.
 *
 * Message embeddings: the `vectors` projector receives every `message.*` event, reloads the
 * message's current state (as the search projector does) and upserts the embedding of its text
 * — or removes it when the message is deleted, expired or gone. An embedder failure leaves the
 * cursor where it was, so the batch is embedded again on the next pump (lag grows meanwhile).
 * The projector runs in a worker thread when `kura.ts` can start one (`src/projection-worker.ts`):
 * then, for a backend whose index lives in this process (usearch, exact), the worker owns the
 * `messages` index and this thread reaches it through `WorkerVectorIndex`; over a shared server
 * (pgvector) each thread has its own instance.
 *
 * Saving: the persistent indexes acknowledge writes only once durable, so a save is only about
 * reopening fast (the ANN graph written out, VEC-3). They are saved every `SAVE_INTERVAL_MS`
 * when written to, and on close.
 */
import type { KuraConfig } from "../config/index.js";
import { isKuraError, KuraError } from "../core/errors.js";
import { closedError } from "../core/lifecycle.js";
import type { Catalog, OutboxRecord } from "../ports/catalog.js";
import type { Embedder } from "../ports/embedder.js";
import type {
  VectorHit,
  VectorIndex,
  VectorIndexPlace,
  VectorItem,
  VectorMetric,
  VectorQuery,
  VectorScanPage,
} from "../ports/vector-index.js";
import type { MessageProjector } from "./outbox.js";
import {
  type LoadDocument,
  loadMessages,
  type MessageKey,
  messageKeys,
  rebuildFromCatalog,
} from "./projection.js";

export const VECTORS_PROJECTOR = "vectors";
export const SAVE_INTERVAL_MS = 300_000;
/** Characters of a message embedded (embedding models read a few thousand tokens at most). */
export const MAX_EMBED_CHARS = 8_000;

/** Opens one index (`VectorIndexes.open` of the configuration's vector adapter). */
export type IndexOpener = (place: VectorIndexPlace) => Promise<VectorIndex>;

export class MessageVectorProjector implements MessageProjector {
  constructor(
    private readonly index: VectorIndex,
    private readonly embedder: Embedder,
    private readonly load: LoadDocument,
    /** Its consumer: `vectors`, or `vectors@<node>` for an index of one node's own (`engine/nodes.ts`). */
    readonly name: string = VECTORS_PROJECTOR,
  ) {}

  async handle(events: readonly OutboxRecord[]): Promise<void> {
    await this.apply(messageKeys(events));
  }

  /** Bring the index in line with the current state of these messages. */
  async apply(messages: readonly MessageKey[]): Promise<void> {
    const { docs, gone } = await loadMessages(this.load, messages);
    const live = docs.filter((d) => d.text.trim() !== "");
    for (const d of docs) {
      if (d.text.trim() !== "") continue;
      const list = gone.get(d.tenantId) ?? [];
      list.push(d.id);
      gone.set(d.tenantId, list);
    }
    if (live.length > 0) {
      const vectors = await this.embedder.embed(live.map((d) => d.text.slice(0, MAX_EMBED_CHARS)));
      await this.index.upsert(
        live.map((d, i) => ({
          tenantId: d.tenantId,
          id: d.id,
          vector: vectors[i] as Float32Array,
          chatId: d.chatId,
        })),
      );
    }
    for (const [tenantId, ids] of gone) await this.index.remove(tenantId, ids);
  }
}

/** The methods of an index a worker thread answers for the thread that does not hold it. */
export const WORKER_INDEX_METHODS = [
  "upsert",
  "remove",
  "query",
  "count",
  "existing",
  "save",
  "drop",
] as const;
export type WorkerIndexMethod = (typeof WORKER_INDEX_METHODS)[number];

/**
 * An index held by a worker thread, used from this one: every call crosses by message passing
 * (vectors as `Float32Array`s, hits and errors as they are), with the results and errors of the
 * index itself. `close` does nothing: the index closes with its worker.
 */
export class WorkerVectorIndex implements VectorIndex {
  constructor(
    private readonly worker: { call(method: WorkerIndexMethod, args: unknown[]): Promise<unknown> },
    readonly backend: string,
    readonly dimensions: number,
    readonly metric: VectorMetric,
  ) {}

  async upsert(items: readonly VectorItem[]): Promise<void> {
    await this.worker.call("upsert", [items]);
  }

  async remove(tenantId: string, ids: readonly string[]): Promise<void> {
    await this.worker.call("remove", [tenantId, ids]);
  }

  async query(query: VectorQuery): Promise<VectorHit[]> {
    return (await this.worker.call("query", [query])) as VectorHit[];
  }

  async count(tenantId?: string): Promise<number> {
    return (await this.worker.call("count", tenantId === undefined ? [] : [tenantId])) as number;
  }

  async existing(tenantId: string, ids: readonly string[]): Promise<Set<string>> {
    return (await this.worker.call("existing", [tenantId, ids])) as Set<string>;
  }

  async save(): Promise<void> {
    await this.worker.call("save", []);
  }

  async drop(): Promise<void> {
    await this.worker.call("drop", []);
  }

  async close(): Promise<void> {}
}

/**
 * Message embeddings projected in a worker thread: its projector, the worker's index when only
 * the worker may hold it (absent when this thread opens an instance of its own), and `close`,
 * which drains the worker and closes its planes.
 */
export interface MessageWorker {
  projector: MessageProjector;
  index?: VectorIndex;
  close(): Promise<void>;
}

/** Nearest messages of a tenant to a text or a vector (the `messages` index). */
export class MessageVectorSearch {
  constructor(
    readonly index: VectorIndex,
    readonly embedder: Embedder,
  ) {}

  async query(
    tenantId: string,
    input: { q?: string; vector?: Float32Array | readonly number[] },
    options: { k: number; chatId?: string },
  ): Promise<VectorHit[]> {
    let vector = input.vector;
    if (vector === undefined) {
      if (input.q === undefined)
        throw new KuraError("INVALID_ARGUMENT", "give q or vector", { operation: "search.vector" });
      [vector] = await this.embedder.embed([input.q.slice(0, MAX_EMBED_CHARS)]);
    }
    return this.index.query({
      tenantId,
      vector: vector as Float32Array,
      k: options.k,
      ...(options.chatId !== undefined ? { filter: { chatId: options.chatId } } : {}),
    });
  }
}

export class VectorPlane {
  private readonly collections = new Map<string, Promise<VectorIndex>>();
  private readonly timer: NodeJS.Timeout;
  private closed = false;

  private constructor(
    readonly embedder: Embedder,
    private readonly openIndex: IndexOpener,
    /** Kura's own `memories` index, or why it could not be opened. */
    private readonly memoriesIndex: VectorIndex | { error: unknown },
    /** Set when messages are embedded; `scan` lists the index's items of record (fsck). */
    readonly messages:
      | {
          index: VectorIndex;
          projector: MessageProjector;
          scan?: (options: { after?: string; limit: number }) => Promise<VectorScanPage>;
        }
      | undefined,
    private readonly release: () => Promise<void>,
    /** Set when the messages projector runs in a worker thread. */
    private readonly messageWorker: MessageWorker | undefined,
  ) {
    this.timer = setInterval(() => {
      void this.saveAll().catch(() => undefined);
    }, SAVE_INTERVAL_MS);
    this.timer.unref();
  }

  /**
   * Open the plane. The memories index failing to open does not stop Kura (memory calls then
   * fail with VECTOR_UNAVAILABLE); the messages index, asked for by configuration, does.
   */
  static async open(
    config: KuraConfig,
    deps: {
      embedder: Embedder;
      openIndex: IndexOpener;
      /** Reads an index's items of record (`VectorIndexes.scan`). */
      scanIndex?: (
        place: VectorIndexPlace,
        options: { after?: string; limit: number },
      ) => Promise<VectorScanPage>;
      load: LoadDocument;
      release?: () => Promise<void>;
      warn: (message: string) => void;
      /** The messages projector's worker thread, when it runs in one. */
      messageWorker?: MessageWorker;
      /** The messages projector's consumer name (default `vectors`). */
      messagesConsumer?: string;
    },
  ): Promise<VectorPlane> {
    const { dimensions, metric } = config.vector;
    if (deps.embedder.dimensions !== dimensions)
      throw new KuraError(
        "VECTOR_DIMENSIONS_MISMATCH",
        `the embedder gives ${deps.embedder.dimensions} dimensions, vector.dimensions is ${dimensions}`,
        { operation: "kura.open" },
      );
    let memories: VectorIndex | { error: unknown };
    try {
      memories = await deps.openIndex({ name: "memories", dimensions, metric });
    } catch (e) {
      memories = { error: e };
      deps.warn(
        `vector index unavailable, memories are disabled: ${e instanceof Error ? e.message : String(e)}`,
      );
    }
    let messages: VectorPlane["messages"];
    const worker = config.vector.embed_messages ? deps.messageWorker : undefined;
    if (config.vector.embed_messages) {
      const index = worker?.index ?? (await deps.openIndex({ name: "messages", dimensions, metric }));
      const scan = deps.scanIndex;
      messages = {
        index,
        projector:
          worker?.projector ??
          new MessageVectorProjector(index, deps.embedder, deps.load, deps.messagesConsumer),
        ...(scan
          ? {
              scan: (o: { after?: string; limit: number }) =>
                scan({ name: "messages", dimensions, metric }, o),
            }
          : {}),
      };
    }
    return new VectorPlane(
      deps.embedder,
      deps.openIndex,
      memories,
      messages,
      deps.release ?? (async () => {}),
      worker,
    );
  }

  /** The `memories` index, or VECTOR_UNAVAILABLE with the reason it did not open. */
  memories(): VectorIndex {
    if ("error" in this.memoriesIndex) {
      const cause = this.memoriesIndex.error;
      throw new KuraError("VECTOR_UNAVAILABLE", "the memories vector index is not available", {
        operation: "memories",
        ...(cause === undefined ? {} : { cause }),
      });
    }
    return this.memoriesIndex;
  }

  /** Vector and hybrid search over messages, when messages are embedded. */
  messageSearch(): MessageVectorSearch | undefined {
    return this.messages ? new MessageVectorSearch(this.messages.index, this.embedder) : undefined;
  }

  /** A tenant collection's index, opened once and kept open. */
  collection(
    tenantId: string,
    c: { name: string; dimensions: number; metric: VectorMetric },
  ): Promise<VectorIndex> {
    if (this.closed) return Promise.reject(closedError("Kura", "vectors"));
    const key = `${tenantId}\u0000${c.name}`;
    let index = this.collections.get(key);
    if (!index) {
      index = this.openIndex({ name: c.name, tenantId, dimensions: c.dimensions, metric: c.metric });
      index.catch(() => this.collections.delete(key));
      this.collections.set(key, index);
    }
    return index;
  }

  /** Delete a collection's index (open or not) and everything it persisted. */
  async dropCollection(
    tenantId: string,
    c: { name: string; dimensions: number; metric: VectorMetric },
  ): Promise<void> {
    const index = await this.collection(tenantId, c);
    this.collections.delete(`${tenantId}\u0000${c.name}`);
    await index.drop();
  }

  /**
   * Embed again every message of the catalog (after a change of embedder or model; the outbox
   * is pruned, so it is not replayed): each is upserted with a fresh embedding, or removed if it
   * is no longer live. Returns the number of messages re-applied.
   */
  async rebuildMessages(catalog: Catalog): Promise<number> {
    if (!this.messages)
      throw new KuraError("VECTOR_SEARCH_DISABLED", "messages are not embedded (vector.embed_messages)", {
        operation: "vectors.rebuild",
      });
    const { index, projector } = this.messages;
    // Soft-deleted messages too: the index is not cleared, so their embeddings must go. With a
    // worker, the batches are embedded there, in turn with the outbox's deliveries.
    return rebuildFromCatalog(catalog, projector.name, (batch) => projector.apply(batch), {
      includeDeleted: true,
    }).finally(() => index.save());
  }

  /** The indexes this thread holds (a worker saves and closes its own). */
  private async indexes(): Promise<VectorIndex[]> {
    const out: VectorIndex[] = [];
    if (!("error" in this.memoriesIndex)) out.push(this.memoriesIndex);
    if (this.messages && this.messages.index !== this.messageWorker?.index) out.push(this.messages.index);
    for (const p of this.collections.values()) {
      const index = await p.catch(() => undefined);
      if (index) out.push(index);
    }
    return out;
  }

  /** Write every index's derived structures (ANN graphs) so reopening needs no rebuild. */
  async saveAll(): Promise<void> {
    if (this.closed) return;
    for (const index of await this.indexes())
      await index.save().catch((e: unknown) => {
        if (!isKuraError(e)) throw e;
      });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    clearInterval(this.timer);
    const all = await this.indexes();
    this.closed = true;
    await this.messageWorker?.close();
    for (const index of all) await index.close();
    this.collections.clear();
    await this.release();
  }
}
