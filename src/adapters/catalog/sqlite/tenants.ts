/**
 * The tenant registry and API keys on SQLite (Catalog port, TEN-2/TEN-5). Each write is one
 * immediate transaction with its audit entry; the connection is the process's only writer, so
 * it never interleaves with a group commit.
 */
import type Database from "better-sqlite3";
import type { ApiKeyRecord, RegistryWrite, TenantChange, TenantRecord } from "../../../ports/catalog.js";
import { checkLimit } from "../common.js";
import { AUDIT_COLUMNS, auditValues, type DbRow, sqliteInsert } from "../rows.js";
import {
  API_KEY_COLUMNS,
  apiKeyValues,
  changed,
  domainTaken,
  issuerTaken,
  normalizeDomains,
  TENANT_COLUMNS,
  tenantExists,
  tenantValues,
  toApiKey,
  toTenantRecord,
} from "../tenant-rows.js";

type Db = Database.Database;
/** The catalog's read wrapper: refuses when closed, maps driver errors. */
type Read = <T>(operation: string, fn: () => T) => Promise<T>;

const SELECT_TENANT = `SELECT ${TENANT_COLUMNS.join(", ")} FROM tenant_registry`;
const SELECT_KEY = `SELECT ${API_KEY_COLUMNS.join(", ")} FROM api_keys`;
const INSERT_TENANT = sqliteInsert("tenant_registry", TENANT_COLUMNS);
const INSERT_KEY = sqliteInsert("api_keys", API_KEY_COLUMNS);
const INSERT_AUDIT = sqliteInsert("audit_log", AUDIT_COLUMNS);

export class SqliteTenantRegistry {
  constructor(
    private readonly db: Db,
    private readonly read: Read,
  ) {}

  /** `fn` in one immediate transaction, its audit entry with it. */
  private write<T>(operation: string, write: RegistryWrite | undefined, fn: () => T): Promise<T> {
    return this.read(operation, () =>
      this.db
        .transaction(() => {
          const result = fn();
          // Nothing changed (false/undefined): nothing to audit.
          if (write?.audit && result !== false && result !== undefined)
            this.db.prepare(INSERT_AUDIT).run(...auditValues(write.audit));
          return result;
        })
        .immediate(),
    );
  }

  /** Give `domains` to `tenantId`, failing if another tenant holds one. */
  private setDomains(tenantId: string, domains: readonly string[], operation: string): void {
    this.db.prepare("DELETE FROM tenant_domains WHERE tenant_id = ?").run(tenantId);
    const owner = this.db.prepare("SELECT tenant_id FROM tenant_domains WHERE domain = ?");
    const insert = this.db.prepare("INSERT INTO tenant_domains (domain, tenant_id) VALUES (?, ?)");
    for (const domain of normalizeDomains(domains)) {
      if (owner.get(domain) !== undefined) throw domainTaken(domain, operation);
      insert.run(domain, tenantId);
    }
  }

  /** Give `issuer` (none for null) to `tenantId`, failing if another tenant holds it. */
  private setIssuer(tenantId: string, issuer: string | undefined, operation: string): void {
    this.db.prepare("DELETE FROM tenant_issuers WHERE tenant_id = ?").run(tenantId);
    if (issuer === undefined) return;
    const info = this.db
      .prepare("INSERT INTO tenant_issuers (issuer, tenant_id) VALUES (?, ?) ON CONFLICT (issuer) DO NOTHING")
      .run(issuer, tenantId);
    if (info.changes === 0) throw issuerTaken(issuer, operation);
  }

  /** Every node drops its cached tenant records when this grows (engine/tenancy.ts). */
  private bumpVersion(): void {
    this.db.prepare("UPDATE registry_version SET version = version + 1 WHERE id = 1").run();
  }

  registryVersion(): Promise<number> {
    return this.read("catalog.registryVersion", () => {
      const r = this.db.prepare("SELECT version FROM registry_version WHERE id = 1").get() as
        | { version: number }
        | undefined;
      return r?.version ?? 0;
    });
  }

  tenantOfIssuer(issuer: string): Promise<string | undefined> {
    return this.read("catalog.tenantOfIssuer", () => {
      const r = this.db.prepare("SELECT tenant_id FROM tenant_issuers WHERE issuer = ?").get(issuer) as
        | { tenant_id: string }
        | undefined;
      return r?.tenant_id;
    });
  }

  createTenant(record: TenantRecord, write?: RegistryWrite): Promise<void> {
    const op = "catalog.createTenant";
    return this.write(op, write, () => {
      const info = this.db
        .prepare(`${INSERT_TENANT} ON CONFLICT (tenant_id) DO NOTHING`)
        .run(...tenantValues(record));
      if (info.changes === 0) throw tenantExists(record.tenantId, op);
      this.setDomains(record.tenantId, record.domains, op);
      if (record.jwt) this.setIssuer(record.tenantId, record.jwt.issuer, op);
      return true;
    }).then(() => undefined);
  }

  getTenant(tenantId: string): Promise<TenantRecord | undefined> {
    return this.read("catalog.getTenant", () => {
      const r = this.db.prepare(`${SELECT_TENANT} WHERE tenant_id = ?`).get(tenantId) as DbRow | undefined;
      return r ? toTenantRecord(r) : undefined;
    });
  }

  listTenants(options: { afterTenantId?: string; limit: number }): Promise<TenantRecord[]> {
    return this.read("catalog.listTenants", () => {
      const limit = checkLimit(options.limit, "catalog.listTenants");
      const rows = this.db
        .prepare(`${SELECT_TENANT} WHERE tenant_id > ? ORDER BY tenant_id LIMIT ?`)
        .all(options.afterTenantId ?? "", limit) as DbRow[];
      return rows.map(toTenantRecord);
    });
  }

  updateTenant(
    tenantId: string,
    change: TenantChange,
    options: RegistryWrite & { at: number },
  ): Promise<TenantRecord | undefined> {
    const op = "catalog.updateTenant";
    return this.write(op, options, () => {
      const r = this.db.prepare(`${SELECT_TENANT} WHERE tenant_id = ?`).get(tenantId) as DbRow | undefined;
      if (!r) return undefined;
      const next = changed(toTenantRecord(r), change, options.at);
      this.db
        .prepare(
          "UPDATE tenant_registry SET name = ?, status = ?, tier = ?, limits = ?, domains = ?, jwt = ?, " +
            "updated_at = ? WHERE tenant_id = ?",
        )
        .run(...tenantValues(next).slice(1, 7), next.updatedAt, tenantId);
      if (change.domains !== undefined) this.setDomains(tenantId, next.domains, op);
      if (change.jwt !== undefined) this.setIssuer(tenantId, next.jwt?.issuer, op);
      this.bumpVersion();
      return next;
    });
  }

  removeTenant(tenantId: string, write?: RegistryWrite): Promise<boolean> {
    return this.write("catalog.removeTenant", write, () => {
      this.db.prepare("DELETE FROM tenant_domains WHERE tenant_id = ?").run(tenantId);
      this.db.prepare("DELETE FROM api_keys WHERE tenant_id = ?").run(tenantId);
      this.db.prepare("DELETE FROM tenant_issuers WHERE tenant_id = ?").run(tenantId);
      const removed =
        this.db.prepare("DELETE FROM tenant_registry WHERE tenant_id = ?").run(tenantId).changes > 0;
      if (removed) this.bumpVersion();
      return removed;
    });
  }

  tenantOfDomain(domain: string): Promise<string | undefined> {
    return this.read("catalog.tenantOfDomain", () => {
      const r = this.db
        .prepare("SELECT tenant_id FROM tenant_domains WHERE domain = ?")
        .get(domain.toLowerCase()) as { tenant_id: string } | undefined;
      return r?.tenant_id;
    });
  }

  createApiKey(key: ApiKeyRecord, write?: RegistryWrite): Promise<void> {
    return this.write("catalog.createApiKey", write, () => {
      this.db.prepare(INSERT_KEY).run(...apiKeyValues(key));
      return true;
    }).then(() => undefined);
  }

  getApiKey(keyId: string): Promise<ApiKeyRecord | undefined> {
    return this.read("catalog.getApiKey", () => {
      const r = this.db.prepare(`${SELECT_KEY} WHERE key_id = ?`).get(keyId) as DbRow | undefined;
      return r ? toApiKey(r) : undefined;
    });
  }

  listApiKeys(tenantId: string): Promise<ApiKeyRecord[]> {
    return this.read("catalog.listApiKeys", () =>
      (this.db.prepare(`${SELECT_KEY} WHERE tenant_id = ? ORDER BY key_id`).all(tenantId) as DbRow[]).map(
        toApiKey,
      ),
    );
  }

  revokeApiKey(tenantId: string, keyId: string, options: RegistryWrite & { at: number }): Promise<boolean> {
    return this.write(
      "catalog.revokeApiKey",
      options,
      () =>
        this.db
          .prepare(
            "UPDATE api_keys SET revoked_at = ? WHERE key_id = ? AND tenant_id = ? AND revoked_at IS NULL",
          )
          .run(options.at, keyId, tenantId).changes > 0,
    );
  }
}
