/**
 * What tenant deletion asks of the Catalog port — `purgeTenantRows` and the jobs it keeps its
 * state in — one behaviour suite for every catalog adapter, on a real database.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ALL_TABLES } from "../../src/adapters/catalog/schema.js";
import type { Catalog, CatalogOp, JobRecord, MessageRow } from "../../src/ports/catalog.js";
import type { CatalogHarness } from "./catalog.suite.js";

const id = (tag = "t") => `${tag}${randomBytes(4).toString("hex")}`;

function message(tenantId: string, n: number): MessageRow {
  const mid = `${Date.now()}-${n}-${randomUUID()}`;
  return {
    tenantId,
    id: mid,
    chatId: "c1",
    role: "user",
    contentType: "text/plain",
    preview: "hello",
    sizeBytes: 5,
    checksum: "ab".repeat(32),
    storeId: "primary",
    blobKey: `${tenantId}/messages/c1/${mid}.json`,
    version: 1,
    createdAt: 1_700_000_000_000 + n,
    updatedAt: 1_700_000_000_000 + n,
    deletedAt: null,
    expiresAt: null,
    idempotencyKey: `k${n}`,
    metadata: {},
  };
}

/** A tenant with rows in most tables: messages with versions, objects, refs, feed, audit, usage, registry, keys, a job. */
async function populate(c: Catalog, tenantId: string): Promise<void> {
  const at = 1_700_000_000_000;
  const ops: CatalogOp[] = [
    { op: "ensureTenant", tenantId, at },
    { op: "touchChat", tenantId, chatId: "c1", at },
  ];
  for (let n = 0; n < 6; n++) {
    const row = message(tenantId, n);
    ops.push({ op: "insertMessage", row });
    ops.push({
      op: "addMessageVersion",
      row: { ...row, messageId: row.id, version: 2, blobKey: `${row.blobKey}.v2` },
      expectVersion: 1,
      updatedAt: at,
    });
    ops.push({
      op: "putBlobRef",
      row: {
        tenantId,
        storeId: "primary",
        blobKey: row.blobKey,
        sizeBytes: 5,
        checksum: row.checksum,
        kind: "message",
        createdAt: at,
      },
    });
    ops.push({
      op: "appendOutbox",
      event: { tenantId, type: "message.appended", entityId: row.id, payload: {}, createdAt: at },
    });
    ops.push({
      op: "appendAudit",
      entry: { tenantId, actor: "u", action: "message.append", target: row.id, at, details: {} },
    });
    ops.push({ op: "addUsage", delta: { tenantId, bytes: 5, objects: 1, messages: 1 } });
  }
  ops.push({
    op: "putObject",
    row: {
      tenantId,
      key: "docs/a",
      storeId: "primary",
      blobKey: `${tenantId}/objects/docs/a`,
      sizeBytes: 1,
      checksum: "cd".repeat(32),
      contentType: "text/plain",
      createdAt: at,
      updatedAt: at,
    },
  });
  const [outcome] = await c.commit([{ ops }]);
  expect(outcome?.ok).toBe(true);
  // Folded totals and a pending delta both.
  await c.foldUsage();
  await c.commit([{ ops: [{ op: "addUsage", delta: { tenantId, bytes: 1, objects: 0, messages: 0 } }] }]);
  await c.createTenant({
    tenantId,
    name: null,
    status: "active",
    tier: "free",
    limits: {},
    domains: [`${tenantId}.example.com`],
    jwt: null,
    createdAt: at,
    updatedAt: at,
  });
  await c.createApiKey({
    keyId: `kk${randomBytes(10).toString("hex")}`,
    tenantId,
    secretHash: "00".repeat(32),
    scopes: ["read"],
    createdAt: at,
    expiresAt: null,
    revokedAt: null,
  });
  await c.saveJob(job(tenantId, "j1"));
}

function job(tenantId: string, jobId: string, over: Partial<JobRecord> = {}): JobRecord {
  return {
    tenantId,
    jobId,
    kind: "test.kind",
    state: "pending",
    payload: { n: 1, nested: { ok: true }, text: "Ünïcode 'quoted'" },
    runAt: 0,
    attempts: 0,
    createdAt: 1_700_000_000_000,
    updatedAt: 1_700_000_000_000,
    ...over,
  };
}

export function tenantDataConformance(name: string, makeHarness: () => Promise<CatalogHarness>): void {
  describe(`tenant data conformance: ${name}`, () => {
    let h: CatalogHarness;
    let c: Catalog;
    beforeAll(async () => {
      h = await makeHarness();
      c = await h.open();
    });
    afterAll(async () => {
      await c?.close();
      await h?.cleanup();
    });

    /** Rows carrying `tenantId`, per table that has a tenant column (every such table of the schema). */
    const rowsOf = async (tenantId: string) => {
      const out: Record<string, number> = {};
      for (const t of ALL_TABLES) {
        if (!("tenant_id" in t.columns)) continue;
        const [r] = await h.query(`SELECT COUNT(*) AS n FROM ${t.name} WHERE tenant_id = '${tenantId}'`);
        const n = Number(r?.n ?? 0);
        if (n > 0) out[t.name] = n;
      }
      return out;
    };

    it("purgeTenantRows deletes a tenant's rows a chunk at a time, all but its registry record, and no one else's", async () => {
      const gone = id("ab");
      // A prefix of the other's id: compared exactly, never as a prefix.
      const kept = `${gone}x`;
      await populate(c, gone);
      await populate(c, kept);
      const before = await rowsOf(kept);
      expect(Object.keys(before).length).toBeGreaterThanOrEqual(10);
      const first = await c.purgeTenantRows(gone, { limit: 7 });
      expect(first).toBe(7);
      let total = first;
      for (;;) {
        const n = await c.purgeTenantRows(gone, { limit: 7 });
        expect(n).toBeLessThanOrEqual(7);
        if (n === 0) break;
        total += n;
      }
      expect(total).toBeGreaterThan(40);
      expect(await rowsOf(gone)).toEqual({ tenant_registry: 1 });
      expect(await rowsOf(kept)).toEqual(before);
      expect(await c.usage(gone)).toEqual({ tenantId: gone, bytes: 0, objects: 0, messages: 0 });
      expect(await c.tenantOfDomain(`${gone}.example.com`)).toBeUndefined();
      expect(await c.listApiKeys(gone)).toEqual([]);
      expect((await c.listApiKeys(kept)).length).toBe(1);
      expect(await c.purgeTenantRows(gone, { limit: 7 })).toBe(0);
      // Written again, the tenant starts empty: its change feed at position 1.
      await c.commit([
        {
          ops: [
            { op: "ensureTenant", tenantId: gone, at: 1 },
            {
              op: "appendOutbox",
              event: { tenantId: gone, type: "x", entityId: "e", payload: {}, createdAt: 1 },
            },
          ],
        },
      ]);
      expect((await c.readChanges(gone, { limit: 10 })).map((e) => e.seq)).toEqual([1]);
      expect(await c.removeTenant(gone)).toBe(true);
      await c.purgeTenantRows(gone, { limit: 100 });
      expect(await rowsOf(gone)).toEqual({});
    });

    it("saves, reads, lists by kind and deletes jobs", async () => {
      const t = id("j");
      const a = job(t, "a");
      await c.saveJob(a);
      expect(await c.getJob(t, "a")).toEqual(a);
      const b = job(t, "b", {
        state: "running",
        payload: { phase: "kv" },
        attempts: 2,
        updatedAt: 1_700_000_000_500,
      });
      await c.saveJob(b);
      await c.saveJob(job(t, "other", { kind: "other.kind" }));
      const changed = {
        ...a,
        state: "running",
        payload: { phase: "blob", counts: [1, 2] },
        updatedAt: 1_700_000_001_000,
      };
      await c.saveJob(changed);
      expect(await c.getJob(t, "a")).toEqual(changed);
      const mine = (await c.listJobs({ kind: "test.kind", limit: 1000 })).filter((j) => j.tenantId === t);
      expect(mine).toEqual([changed, b]);
      const page = await c.listJobs({ kind: "test.kind", after: { tenantId: t, jobId: "a" }, limit: 1000 });
      expect(page.filter((j) => j.tenantId === t)).toEqual([b]);
      expect(await c.deleteJob(t, "a")).toBe(true);
      expect(await c.deleteJob(t, "a")).toBe(false);
      expect(await c.getJob(t, "a")).toBeUndefined();
      expect(await c.getJob(t, "missing")).toBeUndefined();
    });
  });
}
