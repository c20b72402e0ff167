/**
 * The catalog's store of tenants' data keys (`tenant_keys`, SEC-2), once for both dialects:
 * each statement is one text rendered per dialect, run by `CatalogReads` (`reads.ts`).
 */
import type { TenantKeyRow, TenantKeyState } from "../../ports/key-provider.js";
import { query } from "./queries.js";
import type { DbRow } from "./rows.js";

const COLUMNS = [
  "tenant_id",
  "version",
  "key_id",
  "state",
  "wrapped",
  "master_key_id",
  "created_at",
  "updated_at",
] as const;
const COLS = COLUMNS.join(", ");

export const TENANT_KEY_QUERIES = {
  ofTenant: query(`SELECT ${COLS} FROM tenant_keys WHERE tenant_id = {tenant} ORDER BY version`),
  list: query(
    `SELECT ${COLS} FROM tenant_keys WHERE (tenant_id, version) > ({after_tenant:text}, {after_version:bigint}) ` +
      "ORDER BY tenant_id, version LIMIT {limit}",
  ),
  // Never beside a destroyed row: a shredded tenant gets no key again (it would read its data).
  insert: query(
    `INSERT INTO tenant_keys (${COLS}) SELECT {tenant:text}, {version:bigint}, {keyId:text}, ` +
      "{state:text}, {wrapped:text}, {masterKeyId:text}, {createdAt:bigint}, {updatedAt:bigint} WHERE NOT EXISTS (SELECT 1 FROM tenant_keys " +
      "WHERE tenant_id = {tenant} AND (version = {version} OR state = 'destroyed')) " +
      "ON CONFLICT (tenant_id, version) DO NOTHING RETURNING version",
  ),
  setState: query(
    "UPDATE tenant_keys SET state = {state}, updated_at = {at} WHERE tenant_id = {tenant} " +
      "AND version = {version} AND state <> 'destroyed' RETURNING version",
  ),
  rewrap: query(
    "UPDATE tenant_keys SET state = {state}, wrapped = {wrapped}, master_key_id = {masterKeyId}, " +
      "updated_at = {at} WHERE tenant_id = {tenant} AND version = {version} AND state <> 'destroyed' " +
      "RETURNING version",
  ),
  destroy: query(
    "UPDATE tenant_keys SET state = 'destroyed', wrapped = NULL, updated_at = {at} " +
      "WHERE tenant_id = {tenant} RETURNING version",
  ),
  messageText: query(
    "SELECT id, 0 AS version, preview, metadata FROM messages WHERE tenant_id = {tenant} AND id > {after} " +
      "ORDER BY id LIMIT {limit}",
  ),
  versionText: query(
    "SELECT message_id AS id, version, preview FROM message_versions WHERE tenant_id = {tenant} " +
      "AND (message_id, version) > ({after:text}, {after_version:bigint}) ORDER BY message_id, version LIMIT {limit}",
  ),
  replaceMessageText: query(
    "UPDATE messages SET preview = {preview}, metadata = {metadata} WHERE tenant_id = {tenant} AND id = {id} " +
      "AND preview = {expect} RETURNING id",
  ),
  replaceVersionText: query(
    "UPDATE message_versions SET preview = {preview} WHERE tenant_id = {tenant} AND message_id = {id} " +
      "AND version = {version} AND preview = {expect} RETURNING message_id",
  ),
} as const;

export function tenantKeyParams(r: TenantKeyRow): Record<string, unknown> {
  return {
    tenant: r.tenantId,
    version: r.version,
    keyId: r.keyId,
    state: r.state,
    wrapped: r.wrapped,
    masterKeyId: r.masterKeyId,
    createdAt: r.createdAt,
    updatedAt: r.updatedAt,
  };
}

export function toTenantKey(r: DbRow): TenantKeyRow {
  return {
    tenantId: r.tenant_id as string,
    version: Number(r.version),
    keyId: r.key_id as string,
    state: r.state as TenantKeyState,
    wrapped: r.wrapped === null || r.wrapped === undefined ? null : String(r.wrapped),
    masterKeyId: r.master_key_id as string,
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
  };
}
