/**
 * What tenant deletion asks of the catalog, once for both dialects: the chunked delete of a
 * tenant's rows from every table that has a tenant column (read from the schema definition, so
 * a table added later is covered), and the `jobs` table the deletion keeps its state in.
 */
import type { JobRecord } from "../../ports/catalog.js";
import type { TableDef } from "./dsl.js";
import { query } from "./queries.js";
import type { DbRow } from "./rows.js";
import { jsonText } from "./rows.js";
import { ALL_TABLES, TENANT_REGISTRY } from "./schema.js";

/** A table's row identity: its primary key, or the `seq` column that stands for one. */
function keyOf(t: TableDef): readonly string[] {
  return t.primaryKey ?? ["seq"];
}

/**
 * One delete per table: at most `{limit}` of the tenant's rows, picked by key (the same text on
 * both dialects: a row-value `IN` over a limited subquery), each row reported back to count it.
 */
export const PURGE_TENANT_ROWS = ALL_TABLES.filter(
  (t) => "tenant_id" in t.columns && t.name !== TENANT_REGISTRY.name,
).map((t) => {
  const key = keyOf(t).join(", ");
  return query(
    `DELETE FROM ${t.name} WHERE (${key}) IN ` +
      `(SELECT ${key} FROM ${t.name} WHERE tenant_id = {tenant} LIMIT {limit}) RETURNING tenant_id`,
  );
});

const JOB_COLUMNS = [
  "tenant_id",
  "job_id",
  "kind",
  "state",
  "payload",
  "run_at",
  "attempts",
  "created_at",
  "updated_at",
] as const;
const SELECT_JOB = `SELECT ${JOB_COLUMNS.join(", ")} FROM jobs`;

export const JOB_QUERIES = {
  save: query(
    `INSERT INTO jobs (${JOB_COLUMNS.join(", ")}) VALUES ({tenant}, {job}, {kind}, {state}, {payload}, ` +
      "{runAt}, {attempts}, {createdAt}, {updatedAt}) ON CONFLICT (tenant_id, job_id) DO UPDATE SET " +
      "kind = excluded.kind, state = excluded.state, payload = excluded.payload, run_at = excluded.run_at, " +
      "attempts = excluded.attempts, created_at = excluded.created_at, updated_at = excluded.updated_at",
  ),
  get: query(`${SELECT_JOB} WHERE tenant_id = {tenant} AND job_id = {job}`),
  list: query(
    `${SELECT_JOB} WHERE kind = {kind} AND (tenant_id > {tenant} OR (tenant_id = {tenant} AND job_id > {job})) ` +
      "ORDER BY tenant_id, job_id LIMIT {limit}",
  ),
  delete: query("DELETE FROM jobs WHERE tenant_id = {tenant} AND job_id = {job} RETURNING job_id"),
} as const;

export function jobParams(j: JobRecord): Record<string, unknown> {
  return {
    tenant: j.tenantId,
    job: j.jobId,
    kind: j.kind,
    state: j.state,
    payload: jsonText(j.payload, "job payload"),
    runAt: j.runAt,
    attempts: j.attempts,
    createdAt: j.createdAt,
    updatedAt: j.updatedAt,
  };
}

export function toJob(r: DbRow): JobRecord {
  return {
    tenantId: r.tenant_id as string,
    jobId: r.job_id as string,
    kind: r.kind as string,
    state: r.state as string,
    payload: JSON.parse(r.payload as string) as Record<string, unknown>,
    runAt: Number(r.run_at),
    attempts: Number(r.attempts),
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
  };
}
