/**
 * Migration 3 numbers the change-feed events already in an outbox per tenant, on a database
 * created by migrations 1–2 with events in it (SQLite, and PostgreSQL when one is available).
 */
import Database from "better-sqlite3";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { MIGRATIONS, renderMigration } from "../../src/adapters/catalog/migrations.js";
import { backendAvailable } from "../support/backends.js";
import { postgresForTests } from "../support/servers/postgres.js";

const EVENTS = ["a", "b", "a", "a", "c", "b"];
const EXPECTED = [
  ["a", 1],
  ["b", 1],
  ["a", 2],
  ["a", 3],
  ["c", 1],
  ["b", 2],
];
const FEEDS = [
  ["a", 3],
  ["b", 2],
  ["c", 1],
];

describe("migration 3: per-tenant feed positions", () => {
  it("backfills tenant_seq and feed_seq on SQLite", () => {
    const db = new Database(":memory:");
    for (const m of MIGRATIONS.slice(0, 2)) for (const sql of renderMigration(m, "sqlite")) db.exec(sql);
    db.prepare("INSERT INTO tenants (tenant_id, created_at) VALUES ('b', 5)").run();
    const insert = db.prepare(
      "INSERT INTO outbox (tenant_id, type, entity_id, payload, created_at) VALUES (?, 'x', 'e', '{}', 1)",
    );
    for (const t of EVENTS) insert.run(t);
    for (const sql of renderMigration(MIGRATIONS[2] as (typeof MIGRATIONS)[number], "sqlite")) db.exec(sql);
    expect(db.prepare("SELECT tenant_id, tenant_seq FROM outbox ORDER BY seq").raw().all()).toEqual(EXPECTED);
    expect(db.prepare("SELECT tenant_id, feed_seq FROM tenants ORDER BY tenant_id").raw().all()).toEqual(
      FEEDS,
    );
    db.close();
  });

  describe("on PostgreSQL", async () => {
    const target = await postgresForTests();
    const available = backendAvailable(
      "migration-postgres",
      "problem" in target ? target.problem : undefined,
    );
    afterAll(async () => {
      if ("url" in target) await target.destroy();
    });
    it.skipIf(!available)("backfills tenant_seq and feed_seq", async () => {
      if (!("url" in target)) return;
      const client = new pg.Client({ connectionString: target.url });
      client.on("error", () => undefined);
      await client.connect();
      try {
        for (const m of MIGRATIONS.slice(0, 2))
          for (const sql of renderMigration(m, "postgres")) await client.query(sql);
        await client.query("INSERT INTO tenants (tenant_id, created_at) VALUES ('b', 5)");
        for (const t of EVENTS) {
          await client.query(
            "INSERT INTO outbox (tenant_id, type, entity_id, payload, created_at) VALUES ($1, 'x', 'e', '{}', 1)",
            [t],
          );
        }
        for (const sql of renderMigration(MIGRATIONS[2] as (typeof MIGRATIONS)[number], "postgres"))
          await client.query(sql);
        const rows = await client.query({
          text: "SELECT tenant_id, tenant_seq::int FROM outbox ORDER BY seq",
          rowMode: "array",
        });
        expect(rows.rows).toEqual(EXPECTED);
        const feeds = await client.query({
          text: "SELECT tenant_id, feed_seq::int FROM tenants ORDER BY tenant_id",
          rowMode: "array",
        });
        expect(feeds.rows).toEqual(FEEDS);
      } finally {
        await client.end();
      }
    });
  });
});
