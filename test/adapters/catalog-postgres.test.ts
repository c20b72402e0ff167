/**
 * What the PostgreSQL catalog does beyond the port's contract: the outbox against transactions in
 * flight, its schema, concurrent migration, lost connections and its options.
 */
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LATEST_VERSION } from "../../src/adapters/catalog/migrations.js";
import { openPostgresCatalog, postgresCatalog } from "../../src/adapters/catalog/postgres/index.js";
import { isKuraError } from "../../src/core/errors.js";
import type { Catalog, OutboxEvent } from "../../src/ports/catalog.js";
import { type CatalogHarness, eventsOf } from "../conformance/catalog.suite.js";
import { backendAvailable } from "../support/backends.js";
import { postgresCatalogHarness, rawClient as rawClientOf } from "../support/catalog-postgres.js";
import { postgresForTests } from "../support/servers/postgres.js";

const db = await postgresForTests();
const available = backendAvailable("catalog-postgres", "problem" in db ? db.problem : undefined);
const url = "url" in db ? db.url : "";
const harness = () => postgresCatalogHarness(url);
const rawClient = (schema: string) => rawClientOf(url, schema);

describe.skipIf(!available)(`catalog on PostgreSQL (${"kind" in db ? db.kind : "none"})`, () => {
  afterAll(async () => {
    if ("destroy" in db) await db.destroy();
  });

  describe("PostgreSQL specifics", () => {
    let h: CatalogHarness & { schema: string };
    let c: Catalog;
    beforeAll(async () => {
      h = await harness();
      c = await h.open();
    });
    afterAll(async () => {
      await c?.close();
      await h?.cleanup();
    });

    const event = (tenantId: string, entityId: string): OutboxEvent => ({
      tenantId,
      type: "test.event",
      entityId,
      payload: {},
      createdAt: 1,
    });

    it("holds back events of transactions still in flight, and of every later one, then delivers all", async () => {
      const t = `t-${randomBytes(4).toString("hex")}`;
      let cursor: string | undefined;
      for (;;) {
        const page = await c.readOutbox(cursor, 1000);
        if (page.length === 0) break;
        cursor = page[page.length - 1]?.cursor;
      }
      // T1 writes an event and stays open.
      const t1 = await rawClient(h.schema);
      try {
        await t1.query("BEGIN");
        await t1.query(
          "INSERT INTO outbox (tenant_id, type, entity_id, payload, created_at) VALUES ($1, 'test.event', 'from-T1', '{}', 1)",
          [t],
        );
        // T2 starts after T1 and commits first.
        const [outcome] = await c.commit([{ ops: [{ op: "appendOutbox", event: event(t, "from-T2") }] }]);
        expect(outcome).toEqual({ ok: true });

        // Neither arrives while T1 is open: T2's rows would otherwise pass a cursor T1's rows
        // land behind once T1 commits.
        await new Promise((r) => setTimeout(r, 100));
        expect((await c.readOutbox(cursor, 1000)).filter((e) => e.tenantId === t)).toEqual([]);
        expect(await c.outboxLag(cursor)).toBeGreaterThanOrEqual(1);

        await t1.query("COMMIT");
      } finally {
        await t1.end();
      }
      const after = await eventsOf(c, cursor, t, 2);
      expect(after.map((e) => e.entityId)).toEqual(["from-T1", "from-T2"]);
      // from-T1 has the smaller seq: a reader paging by seq alone would have passed from-T2
      // while from-T1 was invisible, and skipped it for good.
      expect(after[0]?.seq).toBeLessThan(after[1]?.seq ?? 0);
      expect(await c.outboxLag(after[1]?.cursor)).toBe(0);
      expect(await c.readOutbox(after[1]?.cursor, 100)).toEqual([]);
    });

    it("an aborted transaction's events never appear and hold nothing back once it ends", async () => {
      const t = `t-${randomBytes(4).toString("hex")}`;
      const start = await c.readOutbox(undefined, 100_000);
      const cursor = start[start.length - 1]?.cursor;
      const t1 = await rawClient(h.schema);
      try {
        await t1.query("BEGIN");
        await t1.query(
          "INSERT INTO outbox (tenant_id, type, entity_id, payload, created_at) VALUES ($1, 'x', 'aborted', '{}', 1)",
          [t],
        );
        await c.commit([{ ops: [{ op: "appendOutbox", event: event(t, "kept") }] }]);
        expect((await c.readOutbox(cursor, 1000)).filter((e) => e.tenantId === t)).toEqual([]);
        await t1.query("ROLLBACK");
      } finally {
        await t1.end();
      }
      expect((await eventsOf(c, cursor, t, 1)).map((e) => e.entityId)).toEqual(["kept"]);
    });

    it("orders by transaction id as a number, across digit boundaries", async () => {
      const fresh = await harness();
      const catalog = await fresh.open();
      try {
        // Old transaction ids (below any live horizon), written out of order.
        for (const txid of ["100", "9", "1000", "99", "10"]) {
          await fresh.query(
            `INSERT INTO outbox (txid, tenant_id, type, entity_id, payload, created_at) VALUES ('${txid}', 't', 'x', 'tx${txid}', '{}', 1)`,
          );
        }
        const seen: string[] = [];
        let cursor: string | undefined;
        for (;;) {
          const page = await catalog.readOutbox(cursor, 2);
          if (page.length === 0) break;
          seen.push(...page.map((e) => e.entityId));
          cursor = page[page.length - 1]?.cursor;
        }
        expect(seen).toEqual(["tx9", "tx10", "tx99", "tx100", "tx1000"]);
      } finally {
        await catalog.close();
        await fresh.cleanup();
      }
    });

    it("prune never removes an event of a transaction in flight, nor of any that began after it", async () => {
      const fresh = await harness();
      const catalog = await fresh.open();
      const t = `t-${randomBytes(4).toString("hex")}`;
      const inFlight = await rawClient(fresh.schema);
      try {
        await catalog.commit([{ ops: [{ op: "appendOutbox", event: event(t, "done") }] }]);
        await inFlight.query("BEGIN");
        await inFlight.query(
          "INSERT INTO outbox (tenant_id, type, entity_id, payload, created_at, tenant_seq) VALUES ('u', 'x', 'open', '{}', 1, 1)",
        );
        await catalog.commit([{ ops: [{ op: "appendOutbox", event: event(t, "later") }] }]);
        // No consumer and every event old: only "done" is behind the oldest running transaction.
        expect(await catalog.pruneOutbox({ before: 1e13 })).toEqual({ deleted: 1 });
        await inFlight.query("COMMIT");
        const left = await fresh.query("SELECT entity_id FROM outbox ORDER BY txid, seq");
        expect(left.map((r) => r.entity_id)).toEqual(["open", "later"]);
        for (let i = 0; i < 100 && (await fresh.query("SELECT 1 FROM outbox")).length > 0; i++) {
          await catalog.pruneOutbox({ before: 1e13 });
          await new Promise((r) => setTimeout(r, 50));
        }
        expect(await fresh.query("SELECT entity_id FROM outbox")).toEqual([]);
      } finally {
        await inFlight.end();
        await catalog.close();
        await fresh.cleanup();
      }
    });

    it("prune removes only a prefix of a tenant's feed when commit order and feed order differ", async () => {
      const fresh = await harness();
      const catalog = await fresh.open();
      try {
        // Two overlapping transactions of tenant t: the one with the smaller transaction id
        // took its feed position last. Old transaction ids: below any live horizon.
        await fresh.query(
          "INSERT INTO outbox (txid, tenant_id, type, entity_id, payload, created_at, tenant_seq) VALUES " +
            "('10', 't', 'x', 'second', '{}', 1, 2), ('11', 't', 'x', 'first', '{}', 1, 1), ('12', 'u', 'x', 'other', '{}', 1, 1)",
        );
        await fresh.query(
          "INSERT INTO tenants (tenant_id, created_at, feed_seq) VALUES ('t', 1, 2), ('u', 1, 1)",
        );
        const rows = await catalog.readOutbox(undefined, 10);
        expect(rows.map((e) => e.entityId)).toEqual(["second", "first", "other"]);
        // The consumer passed "second" (position 2) but not "first" (position 1): neither goes.
        await catalog.setConsumerCursor("c", rows[0]?.cursor as string);
        expect(await catalog.pruneOutbox({ before: 1e13 })).toEqual({ deleted: 0 });
        expect(await catalog.changesHorizon("t")).toBe(0);
        expect((await catalog.readChanges("t", { after: 0, limit: 10 })).map((e) => e.entityId)).toEqual([
          "first",
          "second",
        ]);
        await catalog.setConsumerCursor("c", rows[1]?.cursor as string);
        expect(await catalog.pruneOutbox({ before: 1e13 })).toEqual({ deleted: 2 });
        expect(await catalog.changesHorizon("t")).toBe(2);
        expect((await catalog.readOutbox(undefined, 10)).map((e) => e.entityId)).toEqual(["other"]);
      } finally {
        await catalog.close();
        await fresh.cleanup();
      }
    });

    it("keeps every table in the configured schema", async () => {
      const rows = await h.query(
        "SELECT table_schema, table_name FROM information_schema.tables WHERE table_name IN ('messages', 'outbox', 'schema_migrations') ORDER BY table_schema, table_name",
      );
      expect(rows.filter((r) => r.table_schema === h.schema).map((r) => r.table_name)).toEqual([
        "messages",
        "outbox",
        "schema_migrations",
      ]);
      expect(rows.filter((r) => r.table_schema === "public")).toEqual([]);
    });

    it("nodes starting at once migrate a fresh schema exactly once", async () => {
      const fresh = await harness();
      try {
        const nodes = await Promise.all(Array.from({ length: 4 }, () => fresh.open()));
        for (const n of nodes) expect(await n.schemaVersion()).toBe(LATEST_VERSION);
        const applied = await fresh.query("SELECT version FROM schema_migrations ORDER BY version");
        expect(applied.map((r) => Number(r.version))).toEqual(
          Array.from({ length: LATEST_VERSION }, (_, i) => i + 1),
        );
        await Promise.all(nodes.map((n) => n.close()));
      } finally {
        await fresh.cleanup();
      }
    });

    it("a terminated connection is CATALOG_UNAVAILABLE (retryable) and the pool recovers", async () => {
      await c.ping();
      await h.query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'kura' AND pid <> pg_backend_pid()",
      );
      // The pool may hand out a connection that just died: that call fails as unavailable.
      for (let i = 0; i < 3; i++) {
        try {
          await c.ping();
          break;
        } catch (e) {
          expect(isKuraError(e) && e.code === "CATALOG_UNAVAILABLE" && e.retryable).toBe(true);
        }
      }
      await c.ping();
      const [outcome] = await c.commit([{ ops: [{ op: "ensureTenant", tenantId: "after-kill", at: 1 }] }]);
      expect(outcome).toEqual({ ok: true });
    });

    it("a server that does not answer is CATALOG_UNAVAILABLE", async () => {
      const options = postgresCatalog.parseOptions({
        url: "postgres://nobody@127.0.0.1:1/none",
        schema: "x",
      });
      try {
        await openPostgresCatalog(options);
        expect.unreachable();
      } catch (e) {
        expect(isKuraError(e) && e.code).toBe("CATALOG_UNAVAILABLE");
        expect(isKuraError(e) && e.retryable).toBe(true);
      }
    });

    it("rejects options that are not a postgres URL or a plain schema name", () => {
      expect(() => postgresCatalog.parseOptions({ url: "mysql://x" })).toThrow(/database.url/);
      expect(() => postgresCatalog.parseOptions({ url, schema: "a; DROP" })).toThrow(/database.schema/);
      expect(() => postgresCatalog.parseOptions({ url, max_connection: 3 })).toThrow(/unknown key/);
      expect(postgresCatalog.parseOptions({ url, backend: "postgres" })).toMatchObject({
        schema: "public",
        max_connections: 10,
        statement_timeout_ms: 30_000,
      });
    });
  });
});
