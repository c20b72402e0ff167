/**
 * Outbox retention (OUT-1): the `prune-outbox` maintenance job deletes the events every
 * consumer has passed, keeping the change feed's tail of `outbox.retention_hours`. Projectors
 * need nothing older (rebuilds scan the catalog); a change-feed reader whose cursor falls before
 * the tail is told so (CHANGES_CURSOR_EXPIRED) instead of reading a feed with a hole in it.
 */
import type { Catalog } from "../ports/catalog.js";
import type { Job } from "./jobs.js";

const HOUR = 3_600_000;

export function outboxPruneJob(
  catalog: Catalog,
  options: {
    retentionHours: number;
    /** Consumers that must have passed an event (the registered projectors), cursor or not. */
    consumers: () => readonly string[];
    /**
     * With several nodes: forget those not seen for `node.stale_after_hours` first (their
     * cursors go, `engine/nodes.ts`), so a node gone for good stops holding the outbox back.
     */
    forgetStaleNodes?: (now: number) => Promise<readonly string[]>;
  },
): Job {
  return {
    name: "prune-outbox",
    async run({ now }) {
      const forget = options.forgetStaleNodes;
      const forgotten: Record<string, number> = forget ? { forgotten_nodes: (await forget(now)).length } : {};
      const { deleted } = await catalog.pruneOutbox({
        before: now - options.retentionHours * HOUR,
        consumers: options.consumers(),
      });
      return { deleted, ...forgotten };
    },
  };
}
