/**
 * The data planes of a configuration without the rest of Kura — the blob stores, the catalog,
 * the KV store, the vector indexes (tenant collections' items are data of record) — for `kura backup` and `kura restore`: no projector, job, worker thread or
 * cache starts, so a backup beside a running `kura serve` only reads (and holds its body pin),
 * and a restore writes into backends nothing else serves yet.
 */
import type { KuraConfig } from "../config/index.js";
import type { BackupPlanes } from "../engine/backup.js";
import { openStorage } from "./blob.js";
import { openCatalog } from "./catalog.js";
import { Cleanup } from "./cleanup.js";
import { openKvStore } from "./kv.js";
import { openVectorIndexes } from "./vectors.js";

export interface OpenPlanes extends BackupPlanes {
  close(): Promise<void>;
}

export async function openDataPlanes(
  config: KuraConfig,
  options: { clock?: () => number; warn?: (message: string) => void } = {},
): Promise<OpenPlanes> {
  const clock = options.clock ?? Date.now;
  const durability = config.durability;
  const cleanup = new Cleanup();
  try {
    const storage = await openStorage(config, {
      deps: { durability, now: clock, serverUrl: () => undefined },
      opened: (s) => cleanup.defer(() => s.close()),
    });
    const catalog = await openCatalog(config.database, { durability });
    cleanup.defer(() => catalog.close());
    const kv = await openKvStore(config, {
      durability,
      now: clock,
      warn: options.warn ?? ((message: string) => process.emitWarning(message, { code: "KURA_WARNING" })),
    });
    cleanup.defer(() => kv.close());
    const vectors = await openVectorIndexes(config, { maxConnections: 1 });
    cleanup.defer(() => vectors.close());
    let closed = false;
    return {
      catalog,
      stores: new Map([["primary", storage.store]]),
      sessionFiles: storage.sessionStore,
      kv,
      vectors,
      backends: { storage: config.storage.backend, kv: config.kv.backend },
      clock,
      close: async () => {
        if (closed) return;
        closed = true;
        await cleanup.unwind();
      },
    };
  } catch (e) {
    await cleanup.unwind();
    throw e;
  }
}
