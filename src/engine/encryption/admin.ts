/**
 * What an operator does with encryption at rest (SEC-2): rotate a tenant's data key (new writes
 * use the new version; a background job re-encrypts what the old versions sealed), shred a
 * tenant (destroy its data keys: every read then answers `TENANT_KEYS_DESTROYED`, its search
 * entries go, its cached plaintext is dropped), and re-wrap every data key under the current
 * master key after a master-key rotation.
 *
 * The re-encryption job (`reencrypt-keys`, under the job runner's lease, so one node runs it)
 * walks the blob stores and the KV namespace of each tenant that has retired versions, opening
 * what an old version sealed and sealing it again under the newest, in place (the plaintext —
 * and so the catalog's size and SHA-256 — is unchanged); catalog text is sealed again through
 * the catalog's own method. A version is marked retired when rotated; re-encryption leaves no
 * data under it, and the row stays so that a body rewritten by a racing writer still opens.
 * Tenants to re-encrypt are found in `tenant_keys` (an active version below the newest), so the
 * job resumes after a restart and on whichever node holds its lease.
 */
import { isKuraError } from "../../core/errors.js";
import { newHeader, parseHeader, seal, unseal } from "../../core/sealed.js";
import type { BlobStore } from "../../ports/blob-store.js";
import type { Cache } from "../../ports/cache.js";
import type { AuditEntry } from "../../ports/catalog.js";
import type { StoredTextKey, TenantKeyStore } from "../../ports/key-provider.js";
import type { KvStore } from "../../ports/kv-store.js";
import type { SearchIndex } from "../../ports/search-index.js";
import type { Job } from "../jobs.js";
import { ADMIN_AUDIT_STREAM } from "../tenant-deletion.js";
import type { KeyRing } from "./key-ring.js";

/** The mark of sealed catalog text (`layers/encrypting-catalog.ts` writes it). */
const SEALED_TEXT = "~kenc1:";

export interface EncryptionAdminDeps {
  ring: KeyRing;
  /** The stores below the encrypting layer (sealed bytes as stored). */
  rawStores: () => readonly BlobStore[];
  /** The KV store below the encrypting layer. */
  rawKv: KvStore;
  bodyCache: Cache;
  search: SearchIndex | undefined;
  /** The catalog's stored message text (below the encrypting layer); default the key ring's store. */
  catalogText?: Pick<TenantKeyStore, "storedMessageText" | "replaceMessageText">;
  clock: () => number;
  /** Records audit entries (SEC-3): each operation here in the `~admin` stream. */
  audit?: (entries: AuditEntry[]) => Promise<unknown>;
}

export interface RotationReport {
  tenantId: string;
  version: number;
}

export interface ReencryptReport {
  tenantId: string;
  bodies: number;
  kvValues: number;
  catalogRows: number;
}

export class EncryptionAdmin {
  constructor(private readonly deps: EncryptionAdminDeps) {}

  private async record(actor: string, action: string, target: string, details: Record<string, unknown>) {
    await this.deps.audit?.([
      { tenantId: ADMIN_AUDIT_STREAM, actor, action, target, at: this.deps.clock(), details },
    ]);
  }

  async rotate(tenantId: string, options: { actor?: string } = {}): Promise<RotationReport> {
    const { version } = await this.deps.ring.rotate(tenantId);
    await this.record(options.actor ?? "system", "tenant.keys.rotate", tenantId, { version });
    return { tenantId, version };
  }

  async shred(
    tenantId: string,
    options: { actor?: string } = {},
  ): Promise<{ tenantId: string; destroyedKeys: number }> {
    const destroyedKeys = await this.deps.ring.shred(tenantId);
    await this.record(options.actor ?? "system", "tenant.shred", tenantId, { destroyed_keys: destroyedKeys });
    // Plaintext this node holds in memory goes; the index's blind tokens open nothing now, and
    // its documents of the tenant go too (search answers nothing for a shredded tenant anyway).
    await this.deps.bodyCache.deletePrefix(`${tenantId}\u0000`);
    const search = this.deps.search;
    if (search) await dropSearchDocuments(search, tenantId).catch(() => undefined);
    return { tenantId, destroyedKeys };
  }

  async rewrap(options: { actor?: string } = {}): Promise<{ rewrapped: number }> {
    const r = await this.deps.ring.rewrapAll();
    await this.record(options.actor ?? "system", "keys.rewrap", "*", { rewrapped: r.rewrapped });
    return r;
  }

  /** Re-encrypt everything of `tenantId` sealed under a version older than its newest. */
  async reencrypt(tenantId: string): Promise<ReencryptReport> {
    const current = await this.deps.ring.current(tenantId);
    const report: ReencryptReport = { tenantId, bodies: 0, kvValues: 0, catalogRows: 0 };
    for (const store of this.deps.rawStores()) report.bodies += await this.reencryptBodies(store, tenantId);
    report.kvValues = await this.reencryptKv(tenantId);
    report.catalogRows = await this.reencryptCatalog(tenantId);
    for (const row of await this.deps.ring.rows(tenantId))
      if (row.version < current.version && row.state === "active")
        await this.deps.ring.retire(tenantId, row.version);
    return report;
  }

  private async reseal(tenantId: string, bytes: Buffer): Promise<Buffer | undefined> {
    const header = parseHeader(bytes);
    if (!header) return undefined;
    const current = await this.deps.ring.current(tenantId);
    if (header.version === current.version && header.keyId === current.keyId) return undefined;
    const old = await this.deps.ring.get(tenantId, { keyId: header.keyId, version: header.version });
    return seal(current.key, newHeader(current.keyId, current.version), unseal(old.key, header, bytes));
  }

  /** Sealed catalog text (`~kenc1:` + base64url, as the catalog layer writes it) under the newest key. */
  private async resealText(tenantId: string, text: string): Promise<string | undefined> {
    if (!text.startsWith(SEALED_TEXT)) return undefined;
    const bytes = await this.reseal(tenantId, Buffer.from(text.slice(SEALED_TEXT.length), "base64url"));
    return bytes && SEALED_TEXT + bytes.toString("base64url");
  }

  private async reencryptCatalog(tenantId: string): Promise<number> {
    const store = this.deps.catalogText ?? this.deps.ring.store;
    let moved = 0;
    let after: StoredTextKey | undefined;
    for (;;) {
      const rows = await store.storedMessageText(tenantId, { ...(after ? { after } : {}), limit: 500 });
      for (const row of rows) {
        const preview = await this.resealText(tenantId, row.preview);
        let metadata: string | undefined;
        if (row.metadata !== undefined) {
          const doc = JSON.parse(row.metadata) as Record<string, unknown>;
          const sealed = doc[SEALED_TEXT.slice(0, -1)];
          const again = typeof sealed === "string" ? await this.resealText(tenantId, sealed) : undefined;
          if (again) metadata = JSON.stringify({ [SEALED_TEXT.slice(0, -1)]: again });
        }
        if (!preview && !metadata) continue;
        // Only over the text read: a row a writer changed meanwhile keeps its own.
        if (
          await store.replaceMessageText(
            {
              ...row,
              preview: preview ?? row.preview,
              ...(row.metadata !== undefined ? { metadata: metadata ?? row.metadata } : {}),
            },
            row.preview,
          )
        )
          moved++;
      }
      const last = rows.at(-1);
      if (!last) break;
      after = { table: last.table, id: last.id, version: last.version };
    }
    return moved;
  }

  private async reencryptBodies(store: BlobStore, tenantId: string): Promise<number> {
    let moved = 0;
    let cursor: string | undefined;
    const seen = new Set<string>();
    do {
      const page = await store.list(`${tenantId}/`, { limit: 500, ...(cursor ? { cursor } : {}) });
      for (const item of page.items) {
        if (seen.has(item.key)) continue;
        seen.add(item.key);
        try {
          const { info, data } = await store.getBuffer(item.key);
          const body = await this.reseal(tenantId, data);
          const sealedMeta = info.metadata["kura-sealed"];
          const meta =
            sealedMeta === undefined
              ? undefined
              : await this.reseal(tenantId, Buffer.from(sealedMeta, "base64url"));
          if (!body && !meta) continue;
          await store.put(item.key, body ?? data, {
            contentType: info.contentType,
            metadata: meta ? { ...info.metadata, "kura-sealed": meta.toString("base64url") } : info.metadata,
          });
          moved++;
        } catch (e) {
          // A body deleted meanwhile needs nothing; anything else stops the run (the job retries).
          if (isKuraError(e) && e.code === "BLOB_NOT_FOUND") continue;
          throw e;
        }
      }
      cursor = page.cursor;
    } while (cursor);
    return moved;
  }

  private async reencryptKv(tenantId: string): Promise<number> {
    const kv = this.deps.rawKv;
    let moved = 0;
    let cursor: string | undefined;
    do {
      const page = await kv.scan(`${tenantId}:`, { limit: 500, ...(cursor ? { cursor } : {}) });
      for (const entry of page.items) {
        if (!(entry.value instanceof Uint8Array)) continue;
        const value = await this.reseal(tenantId, Buffer.from(entry.value));
        if (!value) continue;
        const ttlMs = entry.expiresAt === undefined ? undefined : entry.expiresAt - this.deps.clock();
        if (ttlMs !== undefined && ttlMs < 1) continue;
        // Only over the value read: a write racing the job keeps its own (newer) value.
        await kv
          .set(entry.key, value, { ifVersion: entry.version, ...(ttlMs === undefined ? {} : { ttlMs }) })
          .then(() => moved++)
          .catch((e: unknown) => {
            if (!(isKuraError(e) && e.code === "KV_VERSION_CONFLICT")) throw e;
          });
      }
      cursor = page.cursor;
    } while (cursor);
    return moved;
  }

  /** `reencrypt` for every tenant with an active version older than its newest. */
  async reencryptAll(): Promise<ReencryptReport[]> {
    const out: ReencryptReport[] = [];
    for (const tenantId of await this.deps.ring.tenantsToReencrypt())
      out.push(await this.reencrypt(tenantId));
    return out;
  }

  /** The `reencrypt-keys` maintenance job: every tenant with an active version older than its newest. */
  job(): Job {
    return {
      name: "reencrypt-keys",
      run: async () => {
        let tenants = 0;
        let bodies = 0;
        let kvValues = 0;
        for (const tenantId of await this.deps.ring.tenantsToReencrypt()) {
          const r = await this.reencrypt(tenantId);
          tenants++;
          bodies += r.bodies;
          kvValues += r.kvValues;
        }
        return { tenants, bodies, kv_values: kvValues };
      },
    };
  }
}

async function dropSearchDocuments(search: SearchIndex, tenantId: string): Promise<void> {
  let cursor: string | undefined;
  do {
    const page = await search.listDocuments({ limit: 1000, ...(cursor ? { cursor } : {}) });
    const ids = page.keys.filter((k) => k.tenantId === tenantId).map((k) => k.id);
    if (ids.length > 0) await search.remove(tenantId, ids);
    cursor = page.cursor;
  } while (cursor);
}
