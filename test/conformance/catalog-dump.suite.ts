/**
 * What backup and restore ask of the Catalog port — `openSnapshot`, `loadRows`, `holdsData`,
 * `leaseOwner` — one behaviour suite for every pair of catalog adapters (a snapshot of one
 * dialect loads into the other), on real databases.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type {
  Catalog,
  CatalogDumpRow,
  CatalogOp,
  CatalogSnapshot,
  MessageRow,
} from "../../src/ports/catalog.js";
import type { CatalogHarness } from "./catalog.suite.js";

const AT = 1_700_000_000_000;

function message(tenantId: string, n: number): MessageRow {
  const id = `${AT + n}-${randomUUID()}`;
  return {
    tenantId,
    id,
    chatId: "c1",
    role: n % 2 === 0 ? "user" : "assistant",
    contentType: "application/json",
    preview: `héllo ‘${n}’ 蔵`,
    sizeBytes: 10 + n,
    checksum: "ab".repeat(32),
    storeId: "primary",
    blobKey: `${tenantId}/messages/c1/${id}.json`,
    version: 1,
    createdAt: AT + n,
    updatedAt: AT + n,
    deletedAt: n === 3 ? AT + 100 : null,
    expiresAt: null,
    idempotencyKey: n === 1 ? "idem-1" : null,
    metadata: { n, nested: { list: [1, "two", null] } },
  };
}

/** A tenant with rows in most tables: messages (one edited), objects, refs, feed, audit, usage, registry, key, job. */
async function populate(c: Catalog, tenantId: string, count = 5): Promise<void> {
  const ops: CatalogOp[] = [
    { op: "ensureTenant", tenantId, at: AT },
    { op: "touchChat", tenantId, chatId: "c1", at: AT },
  ];
  for (let n = 0; n < count; n++) {
    const row = message(tenantId, n);
    ops.push({ op: "insertMessage", row });
    ops.push({
      op: "putBlobRef",
      row: {
        tenantId,
        storeId: "primary",
        blobKey: row.blobKey,
        sizeBytes: row.sizeBytes,
        checksum: row.checksum,
        kind: "message",
        createdAt: AT,
      },
    });
    ops.push({
      op: "appendOutbox",
      event: { tenantId, type: "message.appended", entityId: row.id, payload: { n }, createdAt: AT },
    });
    ops.push({
      op: "appendAudit",
      entry: { tenantId, actor: "u", action: "message.append", target: row.id, at: AT, details: {} },
    });
    ops.push({ op: "addUsage", delta: { tenantId, bytes: row.sizeBytes, objects: 1, messages: 1 } });
    if (n === 0)
      ops.push({
        op: "addMessageVersion",
        row: { ...row, messageId: row.id, version: 2, blobKey: `${row.blobKey}.v2` },
        expectVersion: 1,
        updatedAt: AT + 50,
      });
  }
  ops.push({
    op: "putObject",
    row: {
      tenantId,
      key: "docs/ä b.txt",
      storeId: "primary",
      blobKey: `${tenantId}/objects/docs/ä b.txt@x`,
      sizeBytes: 3,
      checksum: "cd".repeat(32),
      contentType: "text/plain",
      createdAt: AT,
      updatedAt: AT,
    },
  });
  const [outcome] = await c.commit([{ ops }]);
  expect(outcome?.ok).toBe(true);
  await c.foldUsage();
  await c.createTenant({
    tenantId,
    name: "Ünïcode 'name'",
    status: "active",
    tier: "free",
    limits: { max_objects: 10 },
    domains: [`${tenantId}.example.com`],
    jwt: null,
    createdAt: AT,
    updatedAt: AT,
  });
  await c.createApiKey({
    keyId: `kk${randomBytes(10).toString("hex")}`,
    tenantId,
    secretHash: "00".repeat(32),
    scopes: ["read"],
    createdAt: AT,
    expiresAt: null,
    revokedAt: null,
  });
  await c.saveJob({
    tenantId,
    jobId: "j1",
    kind: "test.kind",
    state: "pending",
    payload: { text: "ü" },
    runAt: 0,
    attempts: 0,
    createdAt: AT,
    updatedAt: AT,
  });
}

/** Every table of a snapshot, each table's rows as sorted JSON texts. */
async function dumpAll(snapshot: CatalogSnapshot, pageSize = 3): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  for (const t of snapshot.tables) {
    const rows: string[] = [];
    for await (const page of snapshot.rows(t.name, { pageSize })) {
      expect(page.length).toBeLessThanOrEqual(pageSize);
      for (const r of page)
        rows.push(JSON.stringify(Object.fromEntries(t.columns.map((c) => [c, r[c] ?? null]))));
    }
    out[t.name] = rows.sort();
  }
  return out;
}

async function dumpOf(c: Catalog): Promise<Record<string, string[]>> {
  const s = await c.openSnapshot();
  try {
    return await dumpAll(s);
  } finally {
    await s.close();
  }
}

export function catalogDumpConformance(
  name: string,
  makeSource: () => Promise<CatalogHarness>,
  makeTarget: () => Promise<CatalogHarness>,
): void {
  describe(`catalog dump conformance: ${name}`, () => {
    let source: CatalogHarness;
    let target: CatalogHarness;
    let src: Catalog;
    let dst: Catalog;
    const tenant = `t${randomBytes(4).toString("hex")}`;

    beforeAll(async () => {
      source = await makeSource();
      target = await makeTarget();
      src = await source.open();
      dst = await target.open();
    });
    afterAll(async () => {
      await src?.close();
      await dst?.close();
      await source?.cleanup();
      await target?.cleanup();
    });

    it("a freshly migrated catalog holds no data; one with a row does", async () => {
      expect(await dst.holdsData()).toBe(false);
      expect(await src.holdsData()).toBe(false);
      await populate(src, tenant);
      expect(await src.holdsData()).toBe(true);
    });

    it("a snapshot sees every row once as of its opening, not the commits after it", async () => {
      const before = await dumpOf(src);
      const snapshot = await src.openSnapshot();
      try {
        await populate(src, `${tenant}x`, 2);
        const seen = await dumpAll(snapshot, 2);
        expect(seen).toEqual(before);
        expect(seen.messages).toHaveLength(5);
      } finally {
        await snapshot.close();
      }
      expect((await dumpOf(src)).messages).toHaveLength(7);
    });

    it("a snapshot leaves out the database's own tables and rejects unknown ones", async () => {
      const s = await src.openSnapshot();
      try {
        const names = s.tables.map((t) => t.name);
        expect(names).toContain("messages");
        expect(names).not.toContain("leases");
        expect(names).not.toContain("schema_migrations");
        expect(s.schemaVersion).toBe(await src.schemaVersion());
        for (const t of s.tables) expect(t.columns).not.toContain("txid");
        await expect(async () => {
          for await (const _ of s.rows("leases", { pageSize: 10 })) break;
        }).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
      } finally {
        await s.close();
      }
      await expect(dst.loadRows("nope", [{ a: 1 }])).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
    });

    it("every table loads into an empty catalog and reads back equal; a repeated load adds nothing", async () => {
      const snapshot = await src.openSnapshot();
      const expected: Record<string, string[]> = {};
      try {
        for (const t of snapshot.tables) {
          let loaded = 0;
          for await (const page of snapshot.rows(t.name, { pageSize: 4 }))
            loaded += await dst.loadRows(t.name, page);
          expected[t.name] = [];
          for await (const page of snapshot.rows(t.name, { pageSize: 100 }))
            for (const r of page)
              expected[t.name]?.push(
                JSON.stringify(Object.fromEntries(t.columns.map((c) => [c, r[c] ?? null]))),
              );
          expected[t.name]?.sort();
          expect(loaded).toBe(expected[t.name]?.length);
          // Again: nothing new.
          for await (const page of snapshot.rows(t.name, { pageSize: 100 }))
            expect(await dst.loadRows(t.name, page)).toBe(0);
        }
      } finally {
        await snapshot.close();
      }
      expect(await dumpOf(dst)).toEqual(expected);
      expect(await dst.holdsData()).toBe(true);
    });

    it("the loaded catalog answers the port's reads as the source does, and new writes continue above", async () => {
      const [m] = await src.history(tenant, "c1", { limit: 1, includeDeleted: true, order: "asc" });
      expect(m).toBeDefined();
      const id = (m as MessageRow).id;
      expect(await dst.getMessage(tenant, id)).toEqual(await src.getMessage(tenant, id));
      expect(await dst.listMessageVersions(tenant, id)).toEqual(await src.listMessageVersions(tenant, id));
      expect(await dst.history(tenant, "c1", { limit: 100, includeDeleted: true, order: "asc" })).toEqual(
        await src.history(tenant, "c1", { limit: 100, includeDeleted: true, order: "asc" }),
      );
      expect(await dst.getObject(tenant, "docs/ä b.txt")).toEqual(
        await src.getObject(tenant, "docs/ä b.txt"),
      );
      expect(await dst.usage(tenant)).toEqual(await src.usage(tenant));
      expect(await dst.getTenant(tenant)).toEqual(await src.getTenant(tenant));
      expect(await dst.listApiKeys(tenant)).toEqual(await src.listApiKeys(tenant));
      expect(await dst.getJob(tenant, "j1")).toEqual(await src.getJob(tenant, "j1"));
      const changes = (await dst.readChanges(tenant, { limit: 100 })).map((e) => [e.seq, e.type, e.entityId]);
      expect(changes).toEqual(
        (await src.readChanges(tenant, { limit: 100 })).map((e) => [e.seq, e.type, e.entityId]),
      );
      const audit = await dst.auditEntries({ limit: 1000 });
      const lastSeq = Math.max(...audit.map((a) => a.seq));
      const outbox = await dst.readOutbox(undefined, 1000);
      const lastOutbox = Math.max(...outbox.map((e) => e.seq));

      await populate(dst, `${tenant}y`, 1);
      const audit2 = await dst.auditEntries({ limit: 1000 });
      expect(
        Math.min(...audit2.filter((a) => a.tenantId === `${tenant}y`).map((a) => a.seq)),
      ).toBeGreaterThan(lastSeq);
      const outbox2 = await dst.readOutbox(undefined, 1000);
      expect(
        Math.min(...outbox2.filter((e) => e.tenantId === `${tenant}y`).map((e) => e.seq)),
      ).toBeGreaterThan(lastOutbox);
      // The tenant's change feed continues without a gap.
      await dst.commit([
        {
          ops: [
            {
              op: "appendOutbox",
              event: { tenantId: tenant, type: "x", entityId: "e", payload: {}, createdAt: AT },
            },
          ],
        },
      ]);
      const feed = await dst.readChanges(tenant, { limit: 100 });
      expect(feed.map((e) => e.seq)).toEqual(feed.map((_, i) => i + 1));
    });

    it("leaseOwner names the holder of an unexpired lease only", async () => {
      const name = `pin-${randomUUID()}`;
      expect(await src.leaseOwner(name, AT)).toBeUndefined();
      expect(await src.tryLease({ name, owner: "a", now: AT, ttlMs: 1000 })).toBe(true);
      expect(await src.leaseOwner(name, AT + 500)).toBe("a");
      expect(await src.leaseOwner(name, AT + 1000)).toBeUndefined();
      await src.releaseLease({ name, owner: "a" });
      expect(await src.leaseOwner(name, AT)).toBeUndefined();
    });
  });
}

export type { CatalogDumpRow };
