/**
 * The `expire-multipart` job: S3 multipart uploads (API-7, `domains/multipart.ts`) past their
 * expiry lose their parts (`{tenant}/multipart/{upload}/…`) and then their state
 * (`~s3upload:{tenant}:{upload}`), so an abandoned upload keeps no bytes for longer than its
 * expiry plus one job interval. Parts go first: a state without parts is harmless, parts
 * without a state would be found by nothing.
 */
import { MULTIPART_STATE_PREFIX, multipartPrefix } from "../core/keys.js";
import type { BlobStore } from "../ports/blob-store.js";
import type { KvStore } from "../ports/kv-store.js";
import type { Job } from "./jobs.js";

/** Deletes every blob under `prefix` (an upload's parts); how many. */
export async function removeParts(
  store: Pick<BlobStore, "list" | "delete">,
  prefix: string,
): Promise<number> {
  let removed = 0;
  for (;;) {
    const page = await store.list(prefix, { limit: 1000 });
    if (page.items.length === 0) return removed;
    await store.delete(page.items.map((i) => i.key));
    removed += page.items.length;
    if (!page.cursor) return removed;
  }
}

export function expireMultipartJob(deps: { kv: KvStore; store: BlobStore }): Job {
  return {
    name: "expire-multipart",
    async run({ now }): Promise<Record<string, number>> {
      let uploads = 0;
      let parts = 0;
      let cursor: string | undefined;
      do {
        const page = await deps.kv.scan<{ expiresAt?: unknown }>(MULTIPART_STATE_PREFIX, {
          limit: 1000,
          ...(cursor ? { cursor } : {}),
        });
        cursor = page.cursor;
        for (const entry of page.items) {
          const expiresAt = entry.value?.expiresAt;
          if (typeof expiresAt === "number" && expiresAt > now) continue;
          const rest = entry.key.slice(MULTIPART_STATE_PREFIX.length);
          const colon = rest.indexOf(":");
          if (colon <= 0) continue;
          parts += await removeParts(
            deps.store,
            multipartPrefix(rest.slice(0, colon), rest.slice(colon + 1)),
          );
          await deps.kv.delete(entry.key);
          uploads++;
        }
      } while (cursor);
      return { uploads, parts };
    },
  };
}
