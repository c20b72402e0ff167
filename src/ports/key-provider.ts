/**
 * Encryption at rest (SEC-2): the master key behind a port, the catalog's store of tenants' data
 * keys, and what the encrypting layers (`src/layers/encrypting-*.ts`) ask for a tenant's keys.
 *
 * - {@link KeyProvider} wraps and unwraps data keys with a master key it never hands out. The
 *   local provider (`adapters/keys/local.ts`) holds the master key in memory; a KMS provider
 *   would do the same calls on the KMS.
 * - {@link TenantKeyStore} is the catalog's `tenant_keys` table: one row per key version.
 * - {@link TenantKeys} is the engine's key ring (`engine/encryption/key-ring.ts`): the data key a
 *   tenant writes with, and any version it reads with, unwrapped and cached.
 */
import type { PortCalls } from "./calls.js";

/** A data key's identity in every encrypted object's header: the tenant's key lineage and version. */
export interface DataKeyRef {
  /** 16 hex characters, random per tenant (a tenant deleted and created again gets another). */
  keyId: string;
  /** 1, 2, 3, … one per rotation. */
  version: number;
}

/** An unwrapped data key (AES-256-GCM, 32 bytes). */
export interface DataKey extends DataKeyRef {
  key: Buffer;
}

export interface KeyProvider {
  /** `local`, … */
  readonly scheme: string;
  /** Id of the master key `wrap` uses (the current one). */
  readonly currentKeyId: string;
  /**
   * Behavior: wraps `dataKey` under the current master key, bound to `context` (unwrap with
   * another context fails); returns text safe to store and the id of the master key used.
   */
  wrap(dataKey: Buffer, context: string): Promise<{ wrapped: string; masterKeyId: string }>;
  /**
   * Behavior: the data key `wrap` wrapped with the same `context`, by the master key
   * `masterKeyId` (current or previous); `MASTER_KEY_UNKNOWN` when the provider does not hold it,
   * `BODY_CORRUPT` when the wrapped text is damaged.
   */
  unwrap(wrapped: string, masterKeyId: string, context: string): Promise<Buffer>;
}

export type TenantKeyState = "active" | "retired" | "destroyed";

export interface TenantKeyRow {
  tenantId: string;
  version: number;
  keyId: string;
  state: TenantKeyState;
  /** The data key wrapped by the master key; null once destroyed. */
  wrapped: string | null;
  masterKeyId: string;
  createdAt: number;
  updatedAt: number;
}

/** The catalog's `tenant_keys` table (every catalog adapter implements it). */
export interface TenantKeyStore {
  /** Behavior: the tenant's key rows, by version; [] for a tenant without keys. */
  tenantKeys(tenantId: string): Promise<TenantKeyRow[]>;
  /** Behavior: every tenant's rows after (`tenantId`, `version`), in that order, at most `limit`. */
  listTenantKeys(options: {
    after?: { tenantId: string; version: number };
    limit: number;
  }): Promise<TenantKeyRow[]>;
  /**
   * Behavior: inserts the row unless the tenant has a row of that version or a destroyed one;
   * returns whether it did (two nodes creating a tenant's first key: one wins, the other reads it).
   */
  insertTenantKey(row: TenantKeyRow): Promise<boolean>;
  /**
   * Behavior: sets the state (`active` or `retired`) and, when given, the wrapped key and its
   * master key id of one version; a destroyed row is left as it is. Returns whether a row changed.
   */
  updateTenantKey(update: {
    tenantId: string;
    version: number;
    state: "active" | "retired";
    wrapped?: { wrapped: string; masterKeyId: string };
    at: number;
  }): Promise<boolean>;
  /** Behavior: every row of the tenant becomes `destroyed` with its wrapped key removed; returns how many. */
  destroyTenantKeys(tenantId: string, at: number): Promise<number>;
  /**
   * Behavior: a page of the tenant's message and version rows as stored (previews and metadata
   * as the catalog holds them, sealed or not), after `after`, in (table, id, version) order.
   */
  storedMessageText(
    tenantId: string,
    options: { after?: StoredTextKey; limit: number },
  ): Promise<StoredMessageText[]>;
  /**
   * Behavior: replaces a row's stored preview (and, for a message row, metadata text) only if
   * the preview is still `expectPreview`; returns whether it did (re-encryption).
   */
  replaceMessageText(row: StoredMessageText, expectPreview: string): Promise<boolean>;
}

/** Where a page of `storedMessageText` ends: messages first (version 0), then version rows. */
export interface StoredTextKey {
  table: "messages" | "message_versions";
  id: string;
  version: number;
}

export interface StoredMessageText extends StoredTextKey {
  tenantId: string;
  preview: string;
  /** The metadata column's text (message rows only). */
  metadata?: string;
}

export const TENANT_KEY_CALLS: PortCalls<TenantKeyStore> = Object.freeze({
  tenantKeys: "read",
  listTenantKeys: "read",
  // A repeat finds the row and answers false: the caller reads the rows again anyway.
  insertTenantKey: "once",
  updateTenantKey: "idempotent",
  destroyTenantKeys: "idempotent",
  storedMessageText: "read",
  replaceMessageText: "idempotent",
});

/**
 * The keys an encrypting layer needs for one tenant (the engine's key ring implements it).
 * Errors: `TENANT_KEYS_DESTROYED` once the tenant is shredded; `BODY_CORRUPT` for a key the
 * tenant never had (a forged or foreign header).
 */
export interface TenantKeys {
  /** The key new data of the tenant is encrypted with (created on first use). */
  current(tenantId: string): Promise<DataKey>;
  /** `current` when it is cached and fresh, without waiting; undefined otherwise. */
  currentSync(tenantId: string): DataKey | undefined;
  /** The key of `ref`, reading the catalog again for a version this node has not seen. */
  get(tenantId: string, ref: DataKeyRef): Promise<DataKey>;
  /** `get` when it is cached and fresh, without waiting; undefined otherwise. */
  getSync(tenantId: string, ref: DataKeyRef): DataKey | undefined;
  /**
   * The tenant's key for blind search tokens (HMAC-SHA-256), derived from its first data key so
   * it survives rotations (the index needs no re-encryption); gone with a shred.
   */
  searchKey(tenantId: string): Promise<Buffer>;
  /** Whether the tenant's keys are destroyed (the catalog is asked when the cache is stale). */
  destroyed(tenantId: string): Promise<boolean>;
}
