/**
 * What the domains share: the planes, the write protocol (which also wakes the projectors after
 * each commit), caches, clock and limits.
 * Built once by `Kura.open` (src/kura.ts).
 */
import type { BlobStore } from "../ports/blob-store.js";
import type { Cache } from "../ports/cache.js";
import type { Catalog } from "../ports/catalog.js";
import type { ContentUrls } from "./content-url.js";
import type { HotMessages } from "./hot-messages.js";
import type { Tenancy } from "./tenancy.js";
import type { WriteProtocol } from "./write-protocol.js";

export interface EngineContext {
  /** The store new bodies are written to, and its id in the catalog and content URLs. */
  store: BlobStore;
  storeId: string;
  /** Every configured store by id (reads follow the row's store id). */
  stores: ReadonlyMap<string, BlobStore>;
  urls: ContentUrls;
  catalog: Catalog;
  protocol: WriteProtocol;
  /** Immutable bodies by `{tenant}\0{id}\0v{version}` (hot tier). */
  bodyCache: Cache;
  /**
   * Hot messages (row + parsed content) by `{tenant}\0{id}`, or undefined when another process
   * may change rows behind this one's back (a multi-process catalog: cross-node invalidation
   * comes with DIST-1). Every change made through this process invalidates its entry.
   */
  messageCache: HotMessages | undefined;
  clock: () => number;
  limits: { maxMessageBytes: number };
  /** Which tenants may act and their limits (the registry, cached; TEN-2/3). */
  tenancy: Tenancy;
  retention: { deletedMessagesDays: number };
  /** The secret of Kura-signed presigned URLs (fs stores), for the server that verifies them. */
  presignSecret: Buffer | undefined;
}

export function storeFor(ctx: EngineContext, storeId: string): BlobStore {
  return ctx.stores.get(storeId) ?? ctx.store;
}
