/**
 * The tenant registry and API keys on PostgreSQL (Catalog port, TEN-2/TEN-5). Each write is one
 * transaction on a pooled connection, with its audit entry; unique keys (the tenant id, a
 * domain, a key id) settle races between nodes.
 */
import type pg from "pg";
import type { ApiKeyRecord, RegistryWrite, TenantChange, TenantRecord } from "../../../ports/catalog.js";
import { isBrokenClient } from "../../pg.js";
import { checkLimit } from "../common.js";
import { AUDIT_COLUMNS, auditValues, type DbRow } from "../rows.js";
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
import { isConnectionError, isUniqueViolation, pgConstraint, pgError } from "./errors.js";

/** The catalog's read wrapper: refuses when closed, maps driver errors. */
type Read = <T>(operation: string, fn: () => Promise<T>) => Promise<T>;
type Client = pg.PoolClient;

const SELECT_TENANT = `SELECT ${TENANT_COLUMNS.join(", ")} FROM tenant_registry`;
const SELECT_KEY = `SELECT ${API_KEY_COLUMNS.join(", ")} FROM api_keys`;
const params = (n: number, from = 1) => Array.from({ length: n }, (_, i) => `$${i + from}`).join(", ");
const INSERT_TENANT = `INSERT INTO tenant_registry (${TENANT_COLUMNS.join(", ")}) VALUES (${params(TENANT_COLUMNS.length)})`;
const INSERT_KEY = `INSERT INTO api_keys (${API_KEY_COLUMNS.join(", ")}) VALUES (${params(API_KEY_COLUMNS.length)})`;
const INSERT_AUDIT = `INSERT INTO audit_log (${AUDIT_COLUMNS.join(", ")}) VALUES (${params(AUDIT_COLUMNS.length)})`;

export class PostgresTenantRegistry {
  constructor(
    private readonly pool: pg.Pool,
    private readonly read: Read,
  ) {}

  /** `fn` in one transaction, its audit entry with it (unless it changed nothing). */
  private async write<T>(operation: string, write: RegistryWrite | undefined, fn: (c: Client) => Promise<T>) {
    return this.read(operation, async () => {
      const client = await this.pool.connect();
      let broken: Error | undefined;
      try {
        await client.query("BEGIN");
        const result = await fn(client);
        if (write?.audit && result !== false && result !== undefined)
          await client.query(INSERT_AUDIT, auditValues(write.audit));
        await client.query("COMMIT");
        return result;
      } catch (e) {
        if (isConnectionError(e)) broken = e as Error;
        else await client.query("ROLLBACK").catch((r: Error) => (broken = r));
        throw pgError(e, operation);
      } finally {
        client.release(broken ?? (isBrokenClient(client) ? new Error("connection failed") : undefined));
      }
    });
  }

  /** Give `domains` to `tenantId`; a domain another tenant holds (or takes meanwhile) fails. */
  private async setDomains(c: Client, tenantId: string, domains: readonly string[], op: string) {
    await c.query("DELETE FROM tenant_domains WHERE tenant_id = $1", [tenantId]);
    for (const domain of normalizeDomains(domains)) {
      try {
        await c.query("INSERT INTO tenant_domains (domain, tenant_id) VALUES ($1, $2)", [domain, tenantId]);
      } catch (e) {
        if (isUniqueViolation(e) && pgConstraint(e) === "tenant_domains_pkey") throw domainTaken(domain, op);
        throw e;
      }
    }
  }

  /** Give `issuer` (none for undefined) to `tenantId`; one another tenant holds (or takes meanwhile) fails. */
  private async setIssuer(c: Client, tenantId: string, issuer: string | undefined, op: string) {
    await c.query("DELETE FROM tenant_issuers WHERE tenant_id = $1", [tenantId]);
    if (issuer === undefined) return;
    try {
      await c.query("INSERT INTO tenant_issuers (issuer, tenant_id) VALUES ($1, $2)", [issuer, tenantId]);
    } catch (e) {
      if (isUniqueViolation(e) && pgConstraint(e) === "tenant_issuers_pkey") throw issuerTaken(issuer, op);
      throw e;
    }
  }

  /**
   * Every node drops its cached tenant records when this grows (engine/tenancy.ts). The row lock
   * orders the bumps as their transactions commit, so a reader never sees a later value first.
   */
  private async bumpVersion(c: Client) {
    await c.query("UPDATE registry_version SET version = version + 1 WHERE id = 1");
  }

  registryVersion(): Promise<number> {
    return this.read("catalog.registryVersion", async () => {
      const r = await this.pool.query<{ version: string }>(
        "SELECT version FROM registry_version WHERE id = 1",
      );
      return r.rows[0] ? Number(r.rows[0].version) : 0;
    });
  }

  tenantOfIssuer(issuer: string): Promise<string | undefined> {
    return this.read("catalog.tenantOfIssuer", async () => {
      const r = await this.pool.query<{ tenant_id: string }>(
        "SELECT tenant_id FROM tenant_issuers WHERE issuer = $1",
        [issuer],
      );
      return r.rows[0]?.tenant_id;
    });
  }

  async createTenant(record: TenantRecord, write?: RegistryWrite): Promise<void> {
    const op = "catalog.createTenant";
    await this.write(op, write, async (c) => {
      const r = await c.query(`${INSERT_TENANT} ON CONFLICT (tenant_id) DO NOTHING`, tenantValues(record));
      if (r.rowCount === 0) throw tenantExists(record.tenantId, op);
      await this.setDomains(c, record.tenantId, record.domains, op);
      if (record.jwt) await this.setIssuer(c, record.tenantId, record.jwt.issuer, op);
      return true;
    });
  }

  getTenant(tenantId: string): Promise<TenantRecord | undefined> {
    return this.read("catalog.getTenant", async () => {
      const r = await this.pool.query<DbRow>(`${SELECT_TENANT} WHERE tenant_id = $1`, [tenantId]);
      return r.rows[0] ? toTenantRecord(r.rows[0]) : undefined;
    });
  }

  listTenants(options: { afterTenantId?: string; limit: number }): Promise<TenantRecord[]> {
    return this.read("catalog.listTenants", async () => {
      const limit = checkLimit(options.limit, "catalog.listTenants");
      const r = await this.pool.query<DbRow>(
        `${SELECT_TENANT} WHERE tenant_id > $1 ORDER BY tenant_id LIMIT $2`,
        [options.afterTenantId ?? "", limit],
      );
      return r.rows.map(toTenantRecord);
    });
  }

  updateTenant(
    tenantId: string,
    change: TenantChange,
    options: RegistryWrite & { at: number },
  ): Promise<TenantRecord | undefined> {
    const op = "catalog.updateTenant";
    return this.write(op, options, async (c) => {
      const r = await c.query<DbRow>(`${SELECT_TENANT} WHERE tenant_id = $1 FOR UPDATE`, [tenantId]);
      if (!r.rows[0]) return undefined;
      const next = changed(toTenantRecord(r.rows[0]), change, options.at);
      await c.query(
        "UPDATE tenant_registry SET name = $1, status = $2, tier = $3, limits = $4, domains = $5, jwt = $6, " +
          "updated_at = $7 WHERE tenant_id = $8",
        [...tenantValues(next).slice(1, 7), next.updatedAt, tenantId],
      );
      if (change.domains !== undefined) await this.setDomains(c, tenantId, next.domains, op);
      if (change.jwt !== undefined) await this.setIssuer(c, tenantId, next.jwt?.issuer, op);
      await this.bumpVersion(c);
      return next;
    });
  }

  async removeTenant(tenantId: string, write?: RegistryWrite): Promise<boolean> {
    return this.write("catalog.removeTenant", write, async (c) => {
      await c.query("DELETE FROM tenant_domains WHERE tenant_id = $1", [tenantId]);
      await c.query("DELETE FROM api_keys WHERE tenant_id = $1", [tenantId]);
      await c.query("DELETE FROM tenant_issuers WHERE tenant_id = $1", [tenantId]);
      const r = await c.query("DELETE FROM tenant_registry WHERE tenant_id = $1", [tenantId]);
      const removed = (r.rowCount ?? 0) > 0;
      if (removed) await this.bumpVersion(c);
      return removed;
    });
  }

  tenantOfDomain(domain: string): Promise<string | undefined> {
    return this.read("catalog.tenantOfDomain", async () => {
      const r = await this.pool.query<DbRow>("SELECT tenant_id FROM tenant_domains WHERE domain = $1", [
        domain.toLowerCase(),
      ]);
      return r.rows[0]?.tenant_id as string | undefined;
    });
  }

  async createApiKey(key: ApiKeyRecord, write?: RegistryWrite): Promise<void> {
    await this.write("catalog.createApiKey", write, async (c) => {
      await c.query(INSERT_KEY, apiKeyValues(key));
      return true;
    });
  }

  getApiKey(keyId: string): Promise<ApiKeyRecord | undefined> {
    return this.read("catalog.getApiKey", async () => {
      const r = await this.pool.query<DbRow>(`${SELECT_KEY} WHERE key_id = $1`, [keyId]);
      return r.rows[0] ? toApiKey(r.rows[0]) : undefined;
    });
  }

  listApiKeys(tenantId: string): Promise<ApiKeyRecord[]> {
    return this.read("catalog.listApiKeys", async () => {
      const r = await this.pool.query<DbRow>(`${SELECT_KEY} WHERE tenant_id = $1 ORDER BY key_id`, [
        tenantId,
      ]);
      return r.rows.map(toApiKey);
    });
  }

  revokeApiKey(tenantId: string, keyId: string, options: RegistryWrite & { at: number }): Promise<boolean> {
    return this.write("catalog.revokeApiKey", options, async (c) => {
      const r = await c.query(
        "UPDATE api_keys SET revoked_at = $1 WHERE key_id = $2 AND tenant_id = $3 AND revoked_at IS NULL",
        [options.at, keyId, tenantId],
      );
      return (r.rowCount ?? 0) > 0;
    });
  }
}
