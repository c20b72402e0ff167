/**
 * The Catalog port's reads across tenants for the admin and `kura stats` (SEC-3, CLI-1):
 * `auditEntries`, `bodyStats`, `bodyBuckets`, `messageSizeHistogram`. Each harness is a database of its own,
 * so these global reads see exactly what the suite wrote.
 */
import { randomBytes } from "node:crypto";
import { v7 as uuidv7 } from "uuid";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isKuraError } from "../../src/core/errors.js";
import type {
  AuditEntry,
  AuditRecord,
  BlobRefRow,
  Catalog,
  CatalogOp,
  MessageRow,
} from "../../src/ports/catalog.js";
import type { CatalogHarness } from "./catalog.suite.js";

const tenant = (tag: string) => `${tag}-${randomBytes(4).toString("hex")}`;

async function expectCode(p: Promise<unknown>, code: string): Promise<void> {
  try {
    await p;
  } catch (e) {
    if (!isKuraError(e)) throw e;
    expect(e.code).toBe(code);
    return;
  }
  throw new Error(`expected ${code}, but it succeeded`);
}

async function commitOk(c: Catalog, ops: CatalogOp[]): Promise<void> {
  const [outcome] = await c.commit([{ ops }]);
  if (!outcome?.ok) throw outcome?.error ?? new Error("no outcome");
}

function message(tenantId: string, sizeBytes: number, over: Partial<MessageRow> = {}): MessageRow {
  const id = uuidv7();
  return {
    tenantId,
    id,
    chatId: "c",
    role: "user",
    contentType: "text/plain",
    preview: "p",
    sizeBytes,
    checksum: "ab".repeat(32),
    storeId: "local",
    blobKey: `${tenantId}/messages/c/${id}.json`,
    version: 1,
    createdAt: 1_000,
    updatedAt: 1_000,
    deletedAt: null,
    expiresAt: null,
    idempotencyKey: null,
    metadata: {},
    ...over,
  };
}

function ref(tenantId: string, kind: string, sizeBytes: number): BlobRefRow {
  return {
    tenantId,
    storeId: "local",
    blobKey: `${tenantId}/${kind}/${uuidv7()}`,
    sizeBytes,
    checksum: "cd".repeat(32),
    kind,
    createdAt: 1_000,
  };
}

/** Strips `seq` (checked on its own) so records compare with the entries written. */
const entries = (records: AuditRecord[]): AuditEntry[] => records.map(({ seq: _seq, ...e }) => e);

export function catalogAdminReadsConformance(name: string, makeHarness: () => Promise<CatalogHarness>): void {
  describe(`catalog admin reads conformance: ${name}`, () => {
    let h: CatalogHarness;
    let c: Catalog;
    const a = tenant("a");
    const b = tenant("b");
    const k = tenant("k");
    const entry = (tenantId: string, action: string, at: number): AuditEntry => ({
      tenantId,
      actor: tenantId === a ? "admin:root" : "user-1",
      action,
      target: `${tenantId}:${at}`,
      at,
      details: { at, note: "ünïcode" },
    });
    // In the order they are committed: `at` is not the order of the log (k's entry is last, oldest).
    const written = [
      entry(a, "tenant.create", 100),
      entry(a, "message.append", 200),
      entry(b, "tenant.create", 150),
      entry(a, "message.append", 300),
      entry(b, "message.append", 250),
      entry(k, "key.create", 50),
    ];

    beforeAll(async () => {
      h = await makeHarness();
      c = await h.open();
      await commitOk(c, [
        { op: "appendAudit", entry: written[0] as AuditEntry },
        { op: "appendAudit", entry: written[1] as AuditEntry },
      ]);
      for (const e of written.slice(2)) await commitOk(c, [{ op: "appendAudit", entry: e }]);
    });
    afterAll(async () => {
      await c?.close();
      await h?.cleanup();
    });

    it("auditEntries without a filter returns every tenant's entries in the order recorded", async () => {
      const all = await c.auditEntries({ limit: 100 });
      expect(entries(all)).toEqual(written);
      const seqs = all.map((r) => r.seq);
      expect(seqs.every((s, i) => Number.isSafeInteger(s) && (i === 0 || s > (seqs[i - 1] as number)))).toBe(
        true,
      );
    });

    it("auditEntries filters by tenant, action, since (inclusive) and until (exclusive), together", async () => {
      expect(entries(await c.auditEntries({ tenantId: a, limit: 100 }))).toEqual(
        written.filter((e) => e.tenantId === a),
      );
      expect(entries(await c.auditEntries({ tenantId: tenant("none"), limit: 100 }))).toEqual([]);
      expect(entries(await c.auditEntries({ action: "tenant.create", limit: 100 }))).toEqual(
        written.filter((e) => e.action === "tenant.create"),
      );
      // Compared exactly: a prefix matches nothing.
      expect(await c.auditEntries({ action: "tenant", limit: 100 })).toEqual([]);
      expect(entries(await c.auditEntries({ since: 150, until: 300, limit: 100 }))).toEqual(
        written.filter((e) => e.at >= 150 && e.at < 300),
      );
      expect(
        entries(await c.auditEntries({ tenantId: a, action: "message.append", since: 250, limit: 100 })),
      ).toEqual([entry(a, "message.append", 300)]);
      expect(await c.auditEntries({ since: 400, limit: 100 })).toEqual([]);
    });

    it("auditEntries pages by afterSeq without repeating or skipping an entry", async () => {
      const all = await c.auditEntries({ limit: 100 });
      const paged: AuditRecord[] = [];
      let after: number | undefined;
      for (;;) {
        const page = await c.auditEntries({ limit: 2, ...(after === undefined ? {} : { afterSeq: after }) });
        expect(page.length).toBeLessThanOrEqual(2);
        if (page.length === 0) break;
        paged.push(...page);
        after = page.at(-1)?.seq;
      }
      expect(paged).toEqual(all);
      // With a filter, the same.
      const first = await c.auditEntries({ action: "message.append", limit: 1 });
      const rest = await c.auditEntries({
        action: "message.append",
        afterSeq: first[0]?.seq ?? 0,
        limit: 10,
      });
      expect(entries([...first, ...rest])).toEqual(written.filter((e) => e.action === "message.append"));
    });

    it("auditEntries refuses a limit out of range with INVALID_ARGUMENT", async () => {
      await expectCode(c.auditEntries({ limit: 0 }), "INVALID_ARGUMENT");
      await expectCode(c.auditEntries({ limit: 1.5 }), "INVALID_ARGUMENT");
    });

    describe("stats", () => {
      const s1 = tenant("s1");
      const s2 = tenant("s2");
      const sizes = [100, 4095, 4096, 131_071, 131_072, 200_000];

      beforeAll(async () => {
        const ops: CatalogOp[] = [];
        for (const size of sizes) {
          const row = message(s1, size);
          ops.push(
            { op: "insertMessage", row },
            { op: "putBlobRef", row: { ...ref(s1, "message", size), blobKey: row.blobKey } },
          );
        }
        // A deleted message is not counted in the histogram; its body still is in bodyStats.
        const gone = message(s1, 10, { deletedAt: 2_000 });
        ops.push(
          { op: "insertMessage", row: gone },
          { op: "putBlobRef", row: { ...ref(s1, "message", 10), blobKey: gone.blobKey } },
        );
        ops.push(
          { op: "putBlobRef", row: ref(s1, "object", 1_000) },
          { op: "putBlobRef", row: ref(s1, "object", 2_000) },
          { op: "putBlobRef", row: ref(s1, "message-version", 7) },
        );
        const other = message(s2, 5_000);
        ops.push(
          { op: "insertMessage", row: other },
          { op: "putBlobRef", row: { ...ref(s2, "message", 5_000), blobKey: other.blobKey } },
        );
        await commitOk(c, ops);
      });

      it("bodyStats counts every tenant's referenced bodies and bytes per kind", async () => {
        const stats = await c.bodyStats();
        const mine = stats.filter((s) => s.tenantId === s1 || s.tenantId === s2);
        expect(mine).toEqual(
          [
            { tenantId: s1, kind: "message", bodies: 7, bytes: sizes.reduce((x, y) => x + y, 10) },
            { tenantId: s1, kind: "message-version", bodies: 1, bytes: 7 },
            { tenantId: s1, kind: "object", bodies: 2, bytes: 3_000 },
            { tenantId: s2, kind: "message", bodies: 1, bytes: 5_000 },
          ].sort((x, y) => (x.tenantId + x.kind < y.tenantId + y.kind ? -1 : 1)),
        );
        // Tenants with audit entries only have no bodies, so no row.
        expect(stats.some((s) => s.tenantId === a)).toBe(false);
      });

      it("bodyBuckets splits each tenant's bodies by age and size, adding up to bodyStats", async () => {
        const s3 = tenant("s3");
        const at = (kind: string, sizeBytes: number, createdAt: number) => ({
          op: "putBlobRef" as const,
          row: { ...ref(s3, kind, sizeBytes), createdAt },
        });
        await commitOk(c, [
          at("message", 10, 5_000),
          at("message", 20, 9_999),
          at("message", 131_072, 10_000),
          at("message", 131_071, 20_000),
          at("object", 4_096, 10_001),
          at("object", 50, 30_000),
        ]);
        const rows = await c.bodyBuckets({ sizeBounds: [4096, 131_072], createdBounds: [10_000, 20_000] });
        expect(rows.filter((r) => r.tenantId === s3)).toEqual([
          { tenantId: s3, kind: "message", created: 0, size: 0, bodies: 2, bytes: 30 },
          { tenantId: s3, kind: "message", created: 1, size: 2, bodies: 1, bytes: 131_072 },
          { tenantId: s3, kind: "message", created: 2, size: 1, bodies: 1, bytes: 131_071 },
          { tenantId: s3, kind: "object", created: 1, size: 1, bodies: 1, bytes: 4_096 },
          { tenantId: s3, kind: "object", created: 2, size: 0, bodies: 1, bytes: 50 },
        ]);
        // Without bounds every body is in bucket 0: the rows are bodyStats'.
        const flat = await c.bodyBuckets({ sizeBounds: [], createdBounds: [] });
        const stats = await c.bodyStats();
        for (const id of [s1, s2, s3])
          expect(flat.filter((r) => r.tenantId === id).map(({ created: _c, size: _s, ...r }) => r)).toEqual(
            stats.filter((r) => r.tenantId === id),
          );
        expect(flat.every((r) => r.created === 0 && r.size === 0)).toBe(true);
        // Only an age split: the sizes are all in bucket 0.
        const ages = await c.bodyBuckets({ sizeBounds: [], createdBounds: [10_000] });
        expect(ages.filter((r) => r.tenantId === s3).map((r) => [r.kind, r.created, r.bodies])).toEqual([
          ["message", 0, 2],
          ["message", 1, 2],
          ["object", 1, 2],
        ]);
        await expectCode(c.bodyBuckets({ sizeBounds: [0], createdBounds: [] }), "INVALID_ARGUMENT");
        await expectCode(c.bodyBuckets({ sizeBounds: [], createdBounds: [5, 5] }), "INVALID_ARGUMENT");
      });

      it("messageSizeHistogram buckets live messages by body size at the bounds", async () => {
        const histogram = await c.messageSizeHistogram({ bounds: [4096, 131_072] });
        expect(histogram.filter((r) => r.tenantId === s1 || r.tenantId === s2)).toEqual([
          { tenantId: s1, counts: [2, 2, 2] },
          { tenantId: s2, counts: [0, 1, 0] },
        ]);
        const fine = await c.messageSizeHistogram({ bounds: [101, 4096, 4097, 131_072, 131_073] });
        expect(fine.find((r) => r.tenantId === s1)?.counts).toEqual([1, 1, 1, 1, 1, 1]);
        await expectCode(c.messageSizeHistogram({ bounds: [] }), "INVALID_ARGUMENT");
        await expectCode(c.messageSizeHistogram({ bounds: [10, 5] }), "INVALID_ARGUMENT");
      });

      it("usageCheck sets recorded usage beside the stored refs and message rows, per tenant", async () => {
        const s1Bytes = sizes.reduce((x, y) => x + y, 10) + 7 + 3_000;
        const u3 = tenant("u3");
        // Recorded usage with nothing stored (a counter gone wrong), folded and pending alike.
        await commitOk(c, [{ op: "addUsage", delta: { tenantId: u3, bytes: 5, objects: 1, messages: 1 } }]);
        await c.foldUsage();
        await commitOk(c, [{ op: "addUsage", delta: { tenantId: u3, bytes: 2, objects: 0, messages: 0 } }]);
        const checks = await c.usageCheck();
        const mine = checks.filter((r) => [s1, s2, u3].includes(r.tenantId));
        const zero = { bytes: 0, objects: 0, messages: 0 };
        expect(mine).toEqual(
          [
            { tenantId: s1, recorded: zero, stored: { bytes: s1Bytes, objects: 10, messages: 7 } },
            { tenantId: s2, recorded: zero, stored: { bytes: 5_000, objects: 1, messages: 1 } },
            { tenantId: u3, recorded: { bytes: 7, objects: 1, messages: 1 }, stored: zero },
          ].sort((x, y) => (x.tenantId < y.tenantId ? -1 : 1)),
        );
        // Rows come in tenant-id order.
        const ids = checks.map((r) => r.tenantId);
        expect(ids).toEqual([...ids].sort());
      });
    });
  });
}
