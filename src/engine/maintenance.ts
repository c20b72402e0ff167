/**
 * Maintenance jobs of the message store: orphan GC (CONS-1's safety net) and folding usage
 * deltas (TEN-4). Purge of soft-deleted messages (MSG-5), TTL expiry and the archive are the
 * lifecycle engine's (`lifecycle.ts`).
 */
import { isMailBodyKey } from "../core/mail-keys.js";
import { bodiesPinned } from "./backup-pin.js";
import type { EngineContext } from "./context.js";
import type { Job } from "./jobs.js";

/**
 * Second key segment of bodies the catalog tracks (`archive`: bodies the lifecycle moved);
 * anything else (session files) is not ours to collect.
 */
const CATALOGED = new Set(["messages", "objects", "archive"]);

/**
 * Objects under `{tenant}/messages/` or `{tenant}/objects/` (or mail bodies, by their key's shape:
 * `core/mail-keys.ts`) older than `graceMs` that no catalog
 * ref points to are orphans of writes that crashed between body and commit: delete them —
 * none while a backup pins the bodies (`backup-pin.ts`): the job then reports `pinned: 1`.
 */
export function orphanGcJob(ctx: EngineContext, graceMs = 3_600_000): Job {
  return {
    name: "gc-orphans",
    async run({ now }): Promise<Record<string, number>> {
      let scanned = 0;
      let deleted = 0;
      let cursor: string | undefined;
      if (await bodiesPinned(ctx.catalog, ctx.clock())) return { scanned, deleted, pinned: 1 };
      do {
        const page = await ctx.store.list("", { limit: 1000, ...(cursor ? { cursor } : {}) });
        cursor = page.cursor;
        scanned += page.items.length;
        const candidates = page.items
          .filter(
            (o) =>
              (CATALOGED.has(o.key.split("/")[1] ?? "") || isMailBodyKey(o.key)) &&
              o.lastModified.getTime() < now - graceMs,
          )
          .map((o) => o.key);
        if (candidates.length === 0) continue;
        const referenced = await ctx.catalog.existingBlobRefs(ctx.storeId, candidates);
        const orphans = candidates.filter((k) => !referenced.has(k));
        if (orphans.length > 0) {
          // Re-check right before deleting: a commit may have landed since the first look.
          const again = await ctx.catalog.existingBlobRefs(ctx.storeId, orphans);
          const confirmed = orphans.filter((k) => !again.has(k));
          // Bodies a write dropped while a backup ran are unreferenced now but in its snapshot.
          if (await bodiesPinned(ctx.catalog, ctx.clock())) return { scanned, deleted, pinned: 1 };
          await ctx.store.delete(confirmed);
          deleted += confirmed.length;
        }
      } while (cursor);
      return { scanned, deleted };
    },
  };
}

export function foldUsageJob(ctx: EngineContext): Job {
  return {
    name: "fold-usage",
    async run() {
      return { folded: await ctx.catalog.foldUsage() };
    },
  };
}
