/**
 * The lifecycle's part of the Catalog port (LIFE-1), one behaviour suite for every catalog
 * adapter: legal holds (their rows and the `checkNotHeld` an erase carries), the archive scans
 * and `moveMessageBody`, on a real database.
 */
import { randomBytes } from "node:crypto";
import { v7 as uuidv7 } from "uuid";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isKuraError } from "../../src/core/errors.js";
import type { Catalog, CatalogOp, LegalHoldRow, MessageRow, ObjectRow } from "../../src/ports/catalog.js";
import type { CatalogHarness } from "./catalog.suite.js";

const tid = (tag = "t") => `${tag}-${randomBytes(5).toString("hex")}`;

function hold(tenantId: string, over: Partial<LegalHoldRow> = {}): LegalHoldRow {
  return {
    tenantId,
    id: uuidv7(),
    chatId: null,
    userId: null,
    messageId: null,
    reason: "Ünïcode 'reason'; DROP TABLE x; --",
    createdBy: "user-1",
    createdAt: 1_700_000_000_000,
    ...over,
  };
}

function message(tenantId: string, over: Partial<MessageRow> = {}): MessageRow {
  const id = uuidv7();
  return {
    tenantId,
    id,
    chatId: "c",
    role: "user",
    contentType: "text/plain",
    preview: "p",
    sizeBytes: 10,
    checksum: "ab".repeat(32),
    storeId: "primary",
    blobKey: `${tenantId}/messages/2026/01/01/c/${id}.json`,
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

function object(tenantId: string, key: string, updatedAt: number): ObjectRow {
  return {
    tenantId,
    key,
    storeId: "primary",
    blobKey: `${tenantId}/objects/${key}@${uuidv7()}`,
    sizeBytes: 3,
    checksum: "cd".repeat(32),
    contentType: "text/plain",
    createdAt: updatedAt,
    updatedAt,
  };
}

async function failsWith(p: Promise<unknown>, code: string): Promise<void> {
  try {
    await p;
  } catch (e) {
    if (!isKuraError(e)) throw e;
    expect(e.code).toBe(code);
    return;
  }
  throw new Error(`expected ${code}, but it succeeded`);
}

export function lifecycleCatalogConformance(name: string, makeHarness: () => Promise<CatalogHarness>): void {
  describe(`catalog lifecycle conformance: ${name}`, () => {
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

    /** Commits one batch and throws its error, as the write protocol sees it. */
    const commit = async (...ops: CatalogOp[]) => {
      const [outcome] = await c.commit([{ ops }]);
      if (outcome && !outcome.ok) throw outcome.error;
    };

    it("a hold reads back exactly as recorded, only for its tenant, and goes once", async () => {
      const t = tid();
      const other = tid();
      const h1 = hold(t, { chatId: "chat-1", reason: "会議の記録 / litigation #42" });
      await commit({ op: "insertLegalHold", ...h1 });
      expect(await c.getLegalHold(t, h1.id)).toEqual(h1);
      expect(await c.getLegalHold(other, h1.id)).toBeUndefined();
      expect(await c.listLegalHolds(other, { limit: 10 })).toEqual([]);
      await failsWith(commit({ op: "insertLegalHold", ...h1 }), "CATALOG_DUPLICATE");
      await failsWith(commit({ op: "deleteLegalHold", tenantId: other, id: h1.id }), "LEGAL_HOLD_NOT_FOUND");
      expect(await c.getLegalHold(t, h1.id)).toEqual(h1);
      await commit({ op: "deleteLegalHold", tenantId: t, id: h1.id });
      expect(await c.getLegalHold(t, h1.id)).toBeUndefined();
      await failsWith(commit({ op: "deleteLegalHold", tenantId: t, id: h1.id }), "LEGAL_HOLD_NOT_FOUND");
    });

    it("lists a tenant's holds in id order, a page at a time", async () => {
      const t = tid();
      const holds = [];
      for (let i = 0; i < 5; i++) {
        const x = hold(t, { messageId: uuidv7() });
        holds.push(x);
        await commit({ op: "insertLegalHold", ...x });
      }
      const first = await c.listLegalHolds(t, { limit: 2 });
      expect(first.map((x) => x.id)).toEqual(holds.slice(0, 2).map((x) => x.id));
      const rest = await c.listLegalHolds(t, { afterId: first[1]?.id as string, limit: 10 });
      expect(rest).toEqual(holds.slice(2));
    });

    it("checkNotHeld fails the batch, leaving no trace, when a hold names a message, chat or user", async () => {
      const t = tid();
      const m = message(t, { chatId: "held-chat" });
      await commit({ op: "insertMessage", row: m });
      const free = { tenantId: t, messageIds: [m.id], chatIds: ["other-chat"], userIds: [] };
      // No hold: the batch commits.
      await commit({ op: "checkNotHeld", ...free });
      for (const h1 of [
        hold(t, { messageId: m.id }),
        hold(t, { chatId: "held-chat" }),
        hold(t, { userId: "u-9" }),
      ]) {
        await commit({ op: "insertLegalHold", ...h1 });
        await failsWith(
          commit(
            { op: "checkNotHeld", tenantId: t, messageIds: [m.id], chatIds: ["held-chat"], userIds: ["u-9"] },
            { op: "deleteMessage", tenantId: t, id: m.id },
          ),
          "LEGAL_HOLD",
        );
        expect(await c.getMessage(t, m.id)).toBeDefined();
        // Another tenant's hold of the same ids holds nothing here.
        await commit({
          op: "checkNotHeld",
          tenantId: tid(),
          messageIds: [m.id],
          chatIds: ["held-chat"],
          userIds: ["u-9"],
        });
        await commit({ op: "deleteLegalHold", tenantId: t, id: h1.id });
      }
      await commit(
        { op: "checkNotHeld", tenantId: t, messageIds: [m.id], chatIds: ["held-chat"], userIds: ["u-9"] },
        { op: "deleteMessage", tenantId: t, id: m.id },
      );
      expect(await c.getMessage(t, m.id)).toBeUndefined();
    });

    it("finds messages and objects due for the archive, in key order, and not once moved", async () => {
      const t = tid("a");
      const old = [message(t, { createdAt: 500 }), message(t, { createdAt: 900 })];
      const recent = message(t, { createdAt: 5_000 });
      for (const m of [...old, recent]) await commit({ op: "insertMessage", row: m });
      const due = (await c.messagesToArchive({ before: 1_000, limit: 1000 })).filter((m) => m.tenantId === t);
      expect(due.map((m) => m.id)).toEqual(old.map((m) => m.id).sort());
      const page = await c.messagesToArchive({
        before: 1_000,
        after: { tenantId: t, id: due[0]?.id as string },
        limit: 1000,
      });
      expect(page.filter((m) => m.tenantId === t).map((m) => m.id)).toEqual([due[1]?.id]);

      // Moved under {tenant}/archive/: no longer due, and the row reads the new key.
      const m = old[0] as MessageRow;
      const archived = `${t}/archive/messages/2026/01/01/c/${m.id}.v1.a1.json`;
      const move = {
        op: "moveMessageBody" as const,
        tenantId: t,
        id: m.id,
        version: 1,
        expectVersion: 1,
        fromBlobKey: m.blobKey,
        storeId: "primary",
        blobKey: archived,
        sizeBytes: m.sizeBytes,
        checksum: m.checksum,
      };
      await commit(move);
      expect((await c.getMessage(t, m.id))?.blobKey).toBe(archived);
      expect((await c.listMessageVersions(t, m.id)).map((v) => v.blobKey)).toEqual([archived]);
      const again = (await c.messagesToArchive({ before: 1_000, limit: 1000 })).filter(
        (x) => x.tenantId === t,
      );
      expect(again.map((x) => x.id)).toEqual([old[1]?.id]);
      // The body is no longer where the move says it was, or the message is at another version.
      await failsWith(commit(move), "CATALOG_STALE_VERSION");
      await failsWith(commit({ ...move, fromBlobKey: archived, expectVersion: 2 }), "CATALOG_STALE_VERSION");
      await failsWith(commit({ ...move, id: uuidv7() }), "CATALOG_NOT_FOUND");

      const o1 = object(t, "b/old.txt", 100);
      const o2 = object(t, "a/old.txt", 200);
      const o3 = object(t, "c/new.txt", 9_000);
      for (const o of [o1, o2, o3]) await commit({ op: "putObject", row: o });
      const objects = (await c.objectsToArchive({ before: 1_000, limit: 1000 })).filter(
        (o) => o.tenantId === t,
      );
      expect(objects.map((o) => o.key)).toEqual(["a/old.txt", "b/old.txt"]);
      await commit({
        op: "putObject",
        row: { ...o2, blobKey: `${t}/archive/objects/a/old.txt@${uuidv7()}` },
        expectBlobKey: o2.blobKey,
      });
      const left = (await c.objectsToArchive({ before: 1_000, limit: 1000 })).filter((o) => o.tenantId === t);
      expect(left.map((o) => o.key)).toEqual(["b/old.txt"]);
    });

    it("moves an edited message's versions one by one; the current one moves the message row too", async () => {
      const t = tid("e");
      const m = message(t);
      await commit({ op: "insertMessage", row: m });
      const v2 = {
        tenantId: t,
        messageId: m.id,
        version: 2,
        storeId: "primary",
        blobKey: `${t}/messages/2026/01/01/c/${m.id}.v2.x.json`,
        sizeBytes: 12,
        checksum: "ef".repeat(32),
        preview: "p2",
        createdAt: 2_000,
      };
      await commit({ op: "addMessageVersion", row: v2, expectVersion: 1, updatedAt: 2_000 });
      const base = {
        op: "moveMessageBody" as const,
        tenantId: t,
        id: m.id,
        expectVersion: 2,
        storeId: "primary",
      };
      await commit(
        {
          ...base,
          version: 1,
          fromBlobKey: m.blobKey,
          blobKey: `${t}/archive/v1`,
          sizeBytes: 10,
          checksum: m.checksum,
        },
        {
          ...base,
          version: 2,
          fromBlobKey: v2.blobKey,
          blobKey: `${t}/archive/v2`,
          sizeBytes: 12,
          checksum: v2.checksum,
        },
      );
      const row = await c.getMessage(t, m.id);
      expect(row).toMatchObject({ version: 2, blobKey: `${t}/archive/v2`, sizeBytes: 12, preview: "p2" });
      expect((await c.listMessageVersions(t, m.id)).map((v) => v.blobKey)).toEqual([
        `${t}/archive/v1`,
        `${t}/archive/v2`,
      ]);
    });

    it("tenant deletion removes a tenant's holds, and no other tenant's", async () => {
      const t = tid();
      const other = tid();
      const mine = hold(t, { chatId: "x" });
      const theirs = hold(other, { chatId: "x" });
      await commit({ op: "insertLegalHold", ...mine });
      await commit({ op: "insertLegalHold", ...theirs });
      while ((await c.purgeTenantRows(t, { limit: 100 })) > 0);
      expect(await c.listLegalHolds(t, { limit: 10 })).toEqual([]);
      expect(await c.getLegalHold(other, theirs.id)).toEqual(theirs);
    });
  });
}
