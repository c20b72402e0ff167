/**
 * Encryption at rest of the full-text index (SEC-2): a `SearchIndex` in, a `SearchIndex` out.
 * A document's text is replaced, token by token (`core/tokenize.ts`, in index order), by blind
 * tokens — keyed hashes under the tenant's search key (`blindToken`) — so the index holds no
 * word of the tenant, and a query's terms are hashed the same way: equality search, phrases
 * (adjacent bigrams of 3+ character CJK words) and ranking (frequencies and lengths are kept)
 * work as before for English and Japanese. Snippets are made again from the message's
 * decrypted text (`load`). A shredded tenant's search answers no hit and its documents are not
 * indexed again.
 */
import { isKuraError } from "../core/errors.js";
import { blindToken } from "../core/sealed.js";
import { indexTokens, queryTerms, snippet } from "../core/tokenize.js";
import type { TenantKeys } from "../ports/key-provider.js";
import type {
  SearchDocument,
  SearchDocumentPage,
  SearchIndex,
  SearchPage,
  SearchQuery,
} from "../ports/search-index.js";

/** The plaintext of an indexed message, for snippets (the engine's document loader). */
export type LoadText = (tenantId: string, id: string) => Promise<string | undefined>;

const destroyed = (e: unknown) => isKuraError(e) && e.code === "TENANT_KEYS_DESTROYED";

export class EncryptingSearchIndex implements SearchIndex {
  readonly backend: string;

  constructor(
    private readonly inner: SearchIndex,
    private readonly keys: TenantKeys & { searchKeySync?(tenantId: string): Buffer | undefined },
    private readonly load: LoadText,
  ) {
    this.backend = inner.backend;
  }

  private async key(tenantId: string): Promise<Buffer> {
    return this.keys.searchKeySync?.(tenantId) ?? (await this.keys.searchKey(tenantId));
  }

  async upsert(docs: readonly SearchDocument[]): Promise<void> {
    const blind: SearchDocument[] = [];
    for (const d of docs) {
      let key: Buffer;
      try {
        key = await this.key(d.tenantId);
      } catch (e) {
        if (destroyed(e)) continue;
        throw e;
      }
      blind.push({
        ...d,
        text: indexTokens(d.text)
          .map((t) => blindToken(key, t))
          .join(" "),
      });
    }
    if (blind.length > 0) await this.inner.upsert(blind);
  }

  remove(tenantId: string, ids: readonly string[]): Promise<void> {
    return this.inner.remove(tenantId, ids);
  }

  async search(query: SearchQuery): Promise<SearchPage> {
    let key: Buffer;
    try {
      key = await this.key(query.tenantId);
    } catch (e) {
      if (destroyed(e)) return { hits: [] };
      throw e;
    }
    const terms = queryTerms(query.q);
    if (terms.length === 0) return { hits: [] };
    // One blind token per term, a quoted run of them per phrase: the adapter's own query parsing
    // turns this back into the same terms.
    const q = terms
      .map((t) =>
        t.length === 1 ? blindToken(key, t[0] as string) : `"${t.map((x) => blindToken(key, x)).join(" ")}"`,
      )
      .join(" ");
    const page = await this.inner.search({ ...query, q });
    const hits = await Promise.all(
      page.hits.map(async (h) => {
        const text = await this.load(query.tenantId, h.id).catch(() => undefined);
        const s = snippet(text ?? "", query.q);
        return { ...h, snippet: s.text, highlights: s.highlights };
      }),
    );
    return { ...page, hits };
  }

  count(tenantId?: string): Promise<number> {
    return this.inner.count(tenantId);
  }

  existing(tenantId: string, ids: readonly string[]): Promise<Set<string>> {
    return this.inner.existing(tenantId, ids);
  }

  listDocuments(options: { cursor?: string; limit: number }): Promise<SearchDocumentPage> {
    return this.inner.listDocuments(options);
  }

  clear(): Promise<void> {
    return this.inner.clear();
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
