import { expect } from "vitest";
import type { BlobRefRow, Catalog } from "../../src/ports/catalog.js";

/** Every ref of one store, page by page through `listBlobRefs`' cursors. */
export async function listAllBlobRefs(
  catalog: Pick<Catalog, "listBlobRefs">,
  storeId: string,
  limit = 1000,
): Promise<BlobRefRow[]> {
  const refs: BlobRefRow[] = [];
  let after: string | undefined;
  for (;;) {
    const page = await catalog.listBlobRefs({ storeId, limit, ...(after !== undefined ? { after } : {}) });
    expect(page.refs.length).toBeLessThanOrEqual(limit);
    refs.push(...page.refs);
    if (page.next === undefined) return refs;
    after = page.next;
  }
}
