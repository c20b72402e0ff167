/**
 * `s3` listing: ListObjectsV2 pages under the store prefix, the continuation token carried in
 * Kura's opaque cursor.
 */
import { KuraError } from "../../../core/errors.js";
import type { BlobInfo, ListOptions, ListPage } from "../../../ports/blob-store.js";
import { DEFAULT_CONTENT_TYPE, decodeCursor, encodeCursor, listLimit } from "../common.js";
import { quoteEtag, type S3Bucket } from "./client.js";

/** One page of `prefix`; the store has checked the prefix and that it is open. */
export async function listS3Page(
  b: S3Bucket,
  scheme: string,
  prefix: string,
  options: ListOptions,
): Promise<ListPage> {
  const limit = listLimit(options);
  const state = decodeCursor(scheme, options.cursor);
  if (state !== undefined && (state.p !== prefix || typeof state.t !== "string")) {
    throw new KuraError("CURSOR_INVALID", "the cursor belongs to another listing", {
      operation: "blob.list",
      context: { prefix },
    });
  }
  const out = await b.call("blob.list", undefined, () =>
    b.client.send(
      new b.sdk.s3.ListObjectsV2Command({
        Bucket: b.bucket,
        Prefix: b.objectKey(prefix),
        MaxKeys: limit,
        ...(state?.t ? { ContinuationToken: state.t } : {}),
      }),
      { abortSignal: options.signal },
    ),
  );
  // S3 lists in UTF-8 byte order already. A listing carries no content type or metadata
  // (that would take one HEAD per key): items have the defaults and `sha256` undefined.
  const items: BlobInfo[] = (out.Contents ?? [])
    .filter((o) => o.Key?.startsWith(b.prefix))
    .map((o) => ({
      key: o.Key!.slice(b.prefix.length),
      size: o.Size ?? 0,
      sha256: undefined,
      contentType: DEFAULT_CONTENT_TYPE,
      etag: quoteEtag(o.ETag),
      lastModified: o.LastModified ?? new Date(0),
      metadata: {},
    }));
  const next = out.IsTruncated ? out.NextContinuationToken : undefined;
  return { items, cursor: next ? encodeCursor(scheme, { p: prefix, t: next }) : undefined };
}
