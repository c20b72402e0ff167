/**
 * The projection worker: a worker thread that keeps one message projection in step with the
 * outbox — the full-text index (`search`) or the message embeddings (`vectors`) — so tokenizing,
 * embedding and index writes never run on the event loop that serves requests
 * (`engine/worker-projector.ts` is the main thread's side). Like `kura.ts` it is a composition
 * root: it opens its own catalog connection (message rows), blob store (bodies, verified against
 * the row's checksum) and index from the same configuration (and, for `vectors`, the embedder of
 * `config.embedder`), and applies the messages the main thread's outbox dispatcher hands it.
 *
 * The `vectors` worker also answers calls of its index (`WorkerVectorIndex` in
 * `engine/vectors.ts`): when the index lives in this process (usearch, exact) the worker is its
 * only holder, so the main thread's queries, counts and saves come here; it saves the index
 * every `SAVE_INTERVAL_MS`, and on close.
 */
import { parentPort, workerData } from "node:worker_threads";
import { blobStoreDefinition } from "./adapters/blob/registry.js";
import type { KuraConfig } from "./config/index.js";
import { KuraError } from "./core/errors.js";
import { mailDocumentLoader } from "./engine/mail-documents.js";
import { type IndexableContent, messageDocumentLoader } from "./engine/message-documents.js";
import type { MessageProjector } from "./engine/outbox.js";
import { type MailProjector, SEARCH_PROJECTOR, SearchProjector } from "./engine/search.js";
import {
  MessageVectorProjector,
  SAVE_INTERVAL_MS,
  type VECTORS_PROJECTOR,
  WORKER_INDEX_METHODS,
  type WorkerIndexMethod,
} from "./engine/vectors.js";
import type { FromWorker, ToWorker } from "./engine/worker-projector.js";
import { serializeError } from "./engine/worker-projector.js";
import { openBlobStore } from "./open/blob.js";
import { openCatalog } from "./open/catalog.js";
import { openSearchIndex } from "./open/search.js";
import { createEmbedder, openVectorIndexes } from "./open/vectors.js";
import type { BlobStore } from "./ports/blob-store.js";
import type { Catalog } from "./ports/catalog.js";
import type { VectorIndex } from "./ports/vector-index.js";

export interface ProjectionWorkerData {
  config: KuraConfig;
  /** `storage.options` as the main thread resolved them (the fs presign secret filled in). */
  storageOptions: unknown;
  /** The projection this worker keeps. */
  projector: typeof SEARCH_PROJECTOR | typeof VECTORS_PROJECTOR;
}

if (!parentPort) throw new Error("projection-worker runs in a worker thread");
const port = parentPort;
const data = workerData as ProjectionWorkerData;
const send = (m: FromWorker) => port.postMessage(m);

/** What the worker applies messages with, the index it answers calls of, and how it closes. */
interface Projection {
  projector: MessageProjector;
  index?: VectorIndex;
  close(): Promise<void>;
}

async function openPlanes(): Promise<{ catalog: Catalog; store: BlobStore }> {
  const { config } = data;
  // One connection is plenty: the worker reads rows one batch at a time.
  const catalog = await openCatalog(
    config.database,
    { durability: config.durability },
    { maxConnections: 2 },
  );
  try {
    const store = await openBlobStore({
      backend: config.storage.backend,
      // Only the main thread sweeps a local store's temp files on a timer.
      options: (await blobStoreDefinition(config.storage.backend)).capabilities.localFiles
        ? { ...(data.storageOptions as object), temp_sweep_interval_ms: 0 }
        : data.storageOptions,
      deps: { durability: config.durability },
      timeouts: {
        idleMs: config.storage.timeouts.idle_ms,
        operationMs: config.storage.timeouts.operation_ms,
      },
    });
    return { catalog, store };
  } catch (e) {
    await catalog.close().catch(() => undefined);
    throw e;
  }
}

async function open(): Promise<Projection> {
  const { config } = data;
  const { catalog, store } = await openPlanes();
  const closePlanes = async () => {
    await store.close().catch(() => undefined);
    await catalog.close().catch(() => undefined);
  };
  // The body document is `{content, metadata, created_at}` (domains/messages.ts); only rows of
  // this configuration's store are written by it, and every read is checked against the row.
  const readContent = async (row: { blobKey: string; checksum: string }): Promise<IndexableContent> => {
    const { data: body } = await store.getBuffer(row.blobKey, { expectedSha256: row.checksum });
    return (JSON.parse(body.toString("utf8")) as { content: IndexableContent }).content;
  };
  const load = messageDocumentLoader(catalog, readContent, Date.now);
  try {
    if (data.projector === SEARCH_PROJECTOR) {
      const index = await openSearchIndex(config);
      return {
        projector: new SearchProjector(index, load, SEARCH_PROJECTOR, mailDocumentLoader(catalog)),
        close: async () => {
          await index.close().catch(() => undefined);
          await closePlanes();
        },
      };
    }
    const { dimensions, metric } = config.vector;
    const embedder = await createEmbedder(config);
    // A pool of its own over a shared server; writes go one batch at a time.
    const indexes = await openVectorIndexes(config, {
      maxConnections: Math.min(2, config.vector.max_connections),
    });
    let index: VectorIndex;
    try {
      index = await indexes.open({ name: "messages", dimensions, metric });
    } catch (e) {
      await indexes.close();
      throw e;
    }
    // The persistent indexes acknowledge writes once durable; a save only spares a rebuild on
    // reopening (the ANN graph written out).
    const timer = setInterval(() => {
      void index.save().catch(() => undefined);
    }, SAVE_INTERVAL_MS);
    timer.unref();
    return {
      projector: new MessageVectorProjector(index, embedder, load),
      index,
      close: async () => {
        clearInterval(timer);
        await index.close().catch(() => undefined);
        await indexes.close();
        await closePlanes();
      },
    };
  } catch (e) {
    await closePlanes();
    throw e;
  }
}

/** Reads of the index answer at once; writes and saves wait for the deliveries before them. */
const READS: ReadonlySet<WorkerIndexMethod> = new Set(["query", "count", "existing"]);

async function callIndex(index: VectorIndex | undefined, method: string, args: unknown[]): Promise<unknown> {
  if (!index || !(WORKER_INDEX_METHODS as readonly string[]).includes(method))
    throw new KuraError("INVALID_ARGUMENT", `the projection worker has no index method ${method}`, {
      operation: "projection-worker",
    });
  const fn = index[method as WorkerIndexMethod] as (...a: unknown[]) => Promise<unknown>;
  return fn.apply(index, args);
}

async function main(): Promise<void> {
  let projection: Projection;
  try {
    projection = await open();
  } catch (e) {
    send({ type: "failed", error: serializeError(e) });
    return;
  }
  const { projector, index } = projection;
  // Deliveries (and index writes) run one after another, in the order the dispatcher sent them.
  let chain: Promise<void> = Promise.resolve();
  const answer = async (id: number, run: () => Promise<unknown>) => {
    try {
      const value = await run();
      send(value === undefined ? { type: "done", id } : { type: "done", id, value });
    } catch (e) {
      send({ type: "done", id, error: serializeError(e) });
    }
  };
  port.on("message", (m: ToWorker) => {
    if (m.type === "apply") {
      chain = chain.then(() =>
        answer(m.id, async () => {
          await projector.apply(m.keys);
          const mail = projector as MessageProjector & MailProjector;
          if (m.mail?.length && mail.applyMail) await mail.applyMail(m.mail);
        }),
      );
    } else if (m.type === "call") {
      const run = () => callIndex(index, m.method, m.args);
      if (READS.has(m.method as WorkerIndexMethod)) void answer(m.id, run);
      else chain = chain.then(() => answer(m.id, run));
    } else if (m.type === "close") {
      chain = chain.then(async () => {
        await projection.close();
        send({ type: "closed" });
        port.close();
      });
    }
  });
  send({ type: "ready" });
}

void main();
