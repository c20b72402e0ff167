/**
 * The projection worker: a worker thread that keeps the full-text index in step with the
 * outbox, so tokenizing and index writes never run on the event loop that serves requests
 * (`engine/worker-projector.ts` is the main thread's side). Like `kura.ts` it is a composition
 * root: it opens its own catalog connection (message rows), blob store (bodies, verified against
 * the row's checksum) and search index from the same configuration, and applies the messages
 * the main thread's outbox dispatcher hands it.
 */
import { parentPort, workerData } from "node:worker_threads";
import { catalogDefinition } from "./adapters/catalog/registry.js";
import { openSearchIndex } from "./adapters/search/registry.js";
import type { KuraConfig } from "./config/index.js";
import { openBlobStore } from "./engine/blob-stores.js";
import { type IndexableContent, messageDocumentLoader } from "./engine/message-documents.js";
import { SearchProjector } from "./engine/search.js";
import type { FromWorker, ToWorker } from "./engine/worker-projector.js";
import { serializeError } from "./engine/worker-projector.js";
import type { BlobStore } from "./ports/blob-store.js";
import type { Catalog } from "./ports/catalog.js";
import type { SearchIndex } from "./ports/search-index.js";

export interface ProjectionWorkerData {
  config: KuraConfig;
  /** `storage.options` as the main thread resolved them (the fs presign secret filled in). */
  storageOptions: unknown;
}

if (!parentPort) throw new Error("projection-worker runs in a worker thread");
const port = parentPort;
const data = workerData as ProjectionWorkerData;
const send = (m: FromWorker) => port.postMessage(m);

async function open(): Promise<{ catalog: Catalog; store: BlobStore; index: SearchIndex }> {
  const { config } = data;
  const db = config.database;
  const definition = await catalogDefinition(db.backend);
  const catalog = await definition.create(
    definition.parseOptions(
      // One connection is plenty: the worker reads rows one batch at a time.
      db.backend === "sqlite" ? { path: db.path } : { url: db.url, schema: db.schema, max_connections: 2 },
    ),
    { durability: config.durability },
  );
  let store: BlobStore | undefined;
  try {
    store = await openBlobStore({
      backend: config.storage.backend,
      // Only the main thread sweeps temp files on a timer.
      options:
        config.storage.backend === "fs"
          ? { ...(data.storageOptions as object), temp_sweep_interval_ms: 0 }
          : data.storageOptions,
      deps: { durability: config.durability },
      timeouts: {
        idleMs: config.storage.timeouts.idle_ms,
        operationMs: config.storage.timeouts.operation_ms,
      },
    });
    const index = await openSearchIndex(config);
    return { catalog, store, index };
  } catch (e) {
    await store?.close().catch(() => undefined);
    await catalog.close().catch(() => undefined);
    throw e;
  }
}

async function main(): Promise<void> {
  let planes: Awaited<ReturnType<typeof open>>;
  try {
    planes = await open();
  } catch (e) {
    send({ type: "failed", error: serializeError(e) });
    return;
  }
  const { catalog, store, index } = planes;
  // The body document is `{content, metadata, created_at}` (domains/messages.ts); only rows of
  // this configuration's store are written by it, and every read is checked against the row.
  const readContent = async (row: { blobKey: string; checksum: string }): Promise<IndexableContent> => {
    const { data: body } = await store.getBuffer(row.blobKey, { expectedSha256: row.checksum });
    return (JSON.parse(body.toString("utf8")) as { content: IndexableContent }).content;
  };
  const projector = new SearchProjector(index, messageDocumentLoader(catalog, readContent, Date.now));
  // Deliveries run one after another, in the order the dispatcher sent them.
  let chain: Promise<void> = Promise.resolve();
  port.on("message", (m: ToWorker) => {
    if (m.type === "apply") {
      chain = chain.then(async () => {
        try {
          await projector.apply(m.keys);
          send({ type: "done", id: m.id });
        } catch (e) {
          send({ type: "done", id: m.id, error: serializeError(e) });
        }
      });
    } else if (m.type === "close") {
      chain = chain.then(async () => {
        await index.close().catch(() => undefined);
        await store.close().catch(() => undefined);
        await catalog.close().catch(() => undefined);
        send({ type: "closed" });
        port.close();
      });
    }
  });
  send({ type: "ready" });
}

void main();
