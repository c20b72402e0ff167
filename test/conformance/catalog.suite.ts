/**
 * The one behaviour suite for every Catalog adapter (CAT-1/2, CONS-1/2, TEN-1/4). A short test
 * file per adapter calls `catalogConformance` with a harness on a real database; tests share one
 * database and isolate themselves by tenant (the outbox and the scans, which are global, by
 * reading from the current end or by time ranges nobody else uses).
 */
import { randomBytes } from "node:crypto";
import { v7 as uuidv7 } from "uuid";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  LATEST_VERSION,
  MIGRATIONS,
  type Migration,
  renderMigration,
} from "../../src/adapters/catalog/migrations.js";
import { ALL_TABLES } from "../../src/adapters/catalog/schema.js";
import { isKuraError, KuraError } from "../../src/core/errors.js";
import { compareUtf8 } from "../../src/core/keys.js";
import { messageBodyKey } from "../../src/core/message-keys.js";
import type {
  BatchOutcome,
  BlobRefRow,
  Catalog,
  CatalogBatch,
  CatalogDeps,
  CatalogOp,
  MessageRow,
  MessageVersionRow,
  ObjectRow,
  OutboxEvent,
  OutboxRecord,
} from "../../src/ports/catalog.js";
import { listAllBlobRefs } from "../support/blob-refs.js";

export interface CatalogHarness {
  /**
   * A catalog on the database under test. Every call opens a new one (new connections) on the
   * same database; `migrations` replaces the built-in history (tests of the migrator).
   */
  open(deps?: CatalogDeps, migrations?: readonly Migration[]): Promise<Catalog>;
  /** Raw SQL on the same database and schema, behind the catalog's back. */
  query(sql: string): Promise<Record<string, unknown>[]>;
  /** Remove everything the harness created. */
  cleanup(): Promise<void>;
}

export interface CatalogConformanceOptions {
  timeoutMs?: number;
}

// --- helpers ----------------------------------------------------------------------------------

async function expectKuraError(p: Promise<unknown>, code: string): Promise<KuraError> {
  try {
    await p;
  } catch (e) {
    if (!isKuraError(e)) throw new Error(`expected KuraError ${code}, got ${String(e)}`, { cause: e });
    expect(e.code).toBe(code);
    return e;
  }
  throw new Error(`expected KuraError ${code}, but it succeeded`);
}

function expectFailed(outcome: BatchOutcome | undefined, code: string): KuraError {
  expect(outcome?.ok).toBe(false);
  if (!outcome || outcome.ok) throw new Error("expected a failed outcome");
  expect(outcome.error).toBeInstanceOf(KuraError);
  expect(outcome.error.code).toBe(code);
  return outcome.error;
}

function expectAllOk(outcomes: BatchOutcome[]): void {
  const failed = outcomes.flatMap((o, i) => (o.ok ? [] : [`#${i}: ${o.error.code} ${o.error.message}`]));
  expect(failed).toEqual([]);
}

const tenant = (tag = "t") => `${tag}-${randomBytes(5).toString("hex")}`;

let tick = 1_700_000_000_000;
const now = () => ++tick;

function message(tenantId: string, chatId: string, over: Partial<MessageRow> = {}): MessageRow {
  const id = over.id ?? uuidv7();
  const createdAt = over.createdAt ?? now();
  return {
    tenantId,
    id,
    chatId,
    role: "user",
    contentType: "text/plain",
    preview: `hello ${id}`,
    sizeBytes: 42,
    checksum: "ab".repeat(32),
    storeId: "local",
    blobKey: `${tenantId}/messages/${chatId}/${id}.json`,
    version: 1,
    createdAt,
    updatedAt: createdAt,
    deletedAt: null,
    expiresAt: null,
    idempotencyKey: null,
    metadata: { n: 1 },
    ...over,
  };
}

function blobRef(row: MessageRow): BlobRefRow {
  return {
    tenantId: row.tenantId,
    storeId: row.storeId,
    blobKey: row.blobKey,
    sizeBytes: row.sizeBytes,
    checksum: row.checksum,
    kind: "message",
    createdAt: row.createdAt,
  };
}

/** The operations of one append, as the engine's write protocol issues them (CONS-1). */
function appendOps(row: MessageRow): CatalogOp[] {
  return [
    { op: "insertMessage", row },
    { op: "touchChat", tenantId: row.tenantId, chatId: row.chatId, at: row.createdAt },
    { op: "putBlobRef", row: blobRef(row) },
    {
      op: "appendOutbox",
      event: {
        tenantId: row.tenantId,
        type: "message.appended",
        entityId: row.id,
        payload: { chatId: row.chatId },
        createdAt: row.createdAt,
      },
    },
    {
      op: "appendAudit",
      entry: {
        tenantId: row.tenantId,
        actor: "user-1",
        action: "message.append",
        target: row.id,
        at: row.createdAt,
        details: {},
      },
    },
    { op: "addUsage", delta: { tenantId: row.tenantId, bytes: row.sizeBytes, objects: 1, messages: 1 } },
  ];
}

function objectRow(tenantId: string, key: string, over: Partial<ObjectRow> = {}): ObjectRow {
  const at = now();
  return {
    tenantId,
    key,
    storeId: "local",
    blobKey: `${tenantId}/objects/${key}`,
    sizeBytes: 10,
    checksum: "cd".repeat(32),
    contentType: "application/octet-stream",
    createdAt: at,
    updatedAt: at,
    ...over,
  };
}

async function commitOne(c: Catalog, ops: CatalogOp[]): Promise<BatchOutcome> {
  const [outcome] = await c.commit([{ ops }]);
  if (!outcome) throw new Error("no outcome");
  return outcome;
}

async function commitOk(c: Catalog, ops: CatalogOp[]): Promise<void> {
  const outcome = await commitOne(c, ops);
  if (!outcome.ok) throw outcome.error;
}

/** The cursor at the current end of the outbox. */
async function outboxEnd(c: Catalog): Promise<string | undefined> {
  let cursor: string | undefined;
  for (;;) {
    const page = await c.readOutbox(cursor, 1000);
    if (page.length === 0) return cursor;
    cursor = page[page.length - 1]?.cursor;
  }
}

/**
 * A tenant's events after `cursor`, waiting until `count` have arrived: on PostgreSQL any
 * transaction in flight on the server (another database's too) holds delivery back a moment.
 */
export async function eventsOf(
  c: Catalog,
  cursor: string | undefined,
  tenantId: string,
  count: number,
  pageSize = 100,
): Promise<OutboxRecord[]> {
  const deadline = Date.now() + 10_000;
  const got: OutboxRecord[] = [];
  for (;;) {
    const page = await c.readOutbox(cursor, pageSize);
    if (page.length > 0) {
      got.push(...page.filter((e) => e.tenantId === tenantId));
      cursor = page[page.length - 1]?.cursor;
      continue;
    }
    if (got.length >= count || Date.now() > deadline) return got;
    await new Promise((r) => setTimeout(r, 50));
  }
}

const byHistory = (a: MessageRow, b: MessageRow) => a.createdAt - b.createdAt || compareUtf8(a.id, b.id);

/** Strings that break naive SQL building, LIKE patterns or encodings. */
export const NASTY = [
  "'; DROP TABLE messages; --",
  'Robert"); DROP TABLE chats;--',
  "100%",
  "a_b",
  "%",
  "_",
  "back\\slash\\",
  'it\'s "quoted"',
  "$1 ? :name @p",
  "東京の会議",
  "emoji 🧪 and e\u0301",
  "tab\tand\nnewline",
] as const;

// --- the suite --------------------------------------------------------------------------------

export function catalogConformance(
  name: string,
  harness: () => Promise<CatalogHarness>,
  opts: CatalogConformanceOptions = {},
): void {
  const timeout = opts.timeoutMs ?? 60_000;

  describe(`Catalog conformance: ${name}`, { timeout }, () => {
    let h: CatalogHarness;
    let c: Catalog;

    beforeAll(async () => {
      h = await harness();
      c = await h.open();
    });

    afterAll(async () => {
      await c?.close();
      await h?.cleanup();
    });

    // --- migrations ---------------------------------------------------------------------------

    describe("migrations", () => {
      it("opens at the latest version; migrate() and re-opening apply nothing", async () => {
        expect(await c.schemaVersion()).toBe(LATEST_VERSION);
        const before = await h.query("SELECT version, applied_at FROM schema_migrations ORDER BY version");
        expect(before.map((r) => Number(r.version))).toEqual(MIGRATIONS.map((m) => m.version));
        await c.migrate();
        const again = await h.open();
        try {
          expect(await again.schemaVersion()).toBe(LATEST_VERSION);
          await again.migrate();
        } finally {
          await again.close();
        }
        const after = await h.query("SELECT version, applied_at FROM schema_migrations ORDER BY version");
        expect(after.map((r) => [Number(r.version), Number(r.applied_at)])).toEqual(
          before.map((r) => [Number(r.version), Number(r.applied_at)]),
        );
      });

      it("creates every table of the schema definition, with tenant_id where rows belong to a tenant", async () => {
        const sql =
          c.dialect === "sqlite"
            ? "SELECT m.name AS table_name, p.name AS column_name FROM sqlite_master m, pragma_table_info(m.name) p WHERE m.type = 'table'"
            : "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = current_schema()";
        const rows = await h.query(sql);
        const columns = new Map<string, Set<string>>();
        for (const r of rows) {
          const table = String(r.table_name);
          columns.set(table, (columns.get(table) ?? new Set()).add(String(r.column_name)));
        }
        const global = new Set(["outbox_consumers", "leases", "schema_migrations", "registry_version"]);
        for (const def of ALL_TABLES) {
          expect(columns.has(def.name), def.name).toBe(true);
          if (!global.has(def.name)) expect(columns.get(def.name)?.has("tenant_id"), def.name).toBe(true);
        }
        expect(columns.get("messages")?.has("text_kid")).toBe(true);
      });

      it("applies a new migration on open and records it", async () => {
        const next: Migration = {
          version: LATEST_VERSION + 1,
          name: "probe table",
          steps: [
            {
              kind: "sql",
              sqlite: ["CREATE TABLE kura_probe (x INTEGER)"],
              postgres: ["CREATE TABLE kura_probe (x INTEGER)"],
            },
          ],
        };
        const newer = await h.open({}, [...MIGRATIONS, next]);
        try {
          expect(await newer.schemaVersion()).toBe(LATEST_VERSION + 1);
          const [probe] = await h.query("SELECT COUNT(*) AS n FROM kura_probe");
          expect(Number(probe?.n)).toBe(0);
          // The code in use now knows fewer migrations than the database has.
          await expectKuraError(h.open(), "CATALOG_SCHEMA_TOO_NEW");
        } finally {
          await newer.close();
          await h.query("DROP TABLE kura_probe");
          await h.query(`DELETE FROM schema_migrations WHERE version = ${LATEST_VERSION + 1}`);
        }
        expect(await c.schemaVersion()).toBe(LATEST_VERSION);
      });

      it("a failing migration leaves the catalog at the previous version, with nothing half-done", async () => {
        const broken: Migration = {
          version: LATEST_VERSION + 1,
          name: "broken",
          steps: [
            {
              kind: "sql",
              sqlite: ["CREATE TABLE kura_half (x INTEGER)", "CREATE TABLE messages (x INTEGER)"],
              postgres: ["CREATE TABLE kura_half (x INTEGER)", "CREATE TABLE messages (x INTEGER)"],
            },
          ],
        };
        const err = await expectKuraError(h.open({}, [...MIGRATIONS, broken]), "CATALOG_MIGRATION_FAILED");
        expect(err.context.version).toBe(LATEST_VERSION + 1);
        expect(await c.schemaVersion()).toBe(LATEST_VERSION);
        await expect(h.query("SELECT COUNT(*) AS n FROM kura_half")).rejects.toThrow();
      });

      it("a database newer than the code is refused", async () => {
        await h.query(
          `INSERT INTO schema_migrations (version, name, applied_at) VALUES (${LATEST_VERSION + 7}, 'from the future', 0)`,
        );
        try {
          const err = await expectKuraError(h.open(), "CATALOG_SCHEMA_TOO_NEW");
          expect(err.context.version).toBe(LATEST_VERSION + 7);
        } finally {
          await h.query(`DELETE FROM schema_migrations WHERE version = ${LATEST_VERSION + 7}`);
        }
      });
    });

    // --- messages -----------------------------------------------------------------------------

    describe("messages", () => {
      it("insertMessage stores the row verbatim; get, batch get and idempotency lookup find it", async () => {
        const t = tenant();
        const a = message(t, "chat-1", {
          idempotencyKey: "idem-1",
          expiresAt: tick + 86_400_000,
          metadata: { nested: { list: [1, "two", null, true] }, n: 1.5, empty: "" },
        });
        const b = message(t, "chat-1");
        await commitOk(c, [...appendOps(a), ...appendOps(b)]);

        expect(await c.getMessage(t, a.id)).toEqual(a);
        expect(await c.getMessage(t, uuidv7())).toBeUndefined();
        const got = await c.getMessages(t, [a.id, uuidv7(), b.id]);
        expect(got.sort((x, y) => compareUtf8(x.id, y.id))).toEqual(
          [a, b].sort((x, y) => compareUtf8(x.id, y.id)),
        );
        expect(await c.getMessages(t, [])).toEqual([]);
        expect(await c.findMessageByIdempotencyKey(t, "idem-1")).toEqual(a);
        expect(await c.findMessageByIdempotencyKey(t, "idem-2")).toBeUndefined();
        // The first version is recorded with the message.
        expect(await c.listMessageVersions(t, a.id)).toEqual([
          {
            tenantId: t,
            messageId: a.id,
            version: 1,
            storeId: a.storeId,
            blobKey: a.blobKey,
            sizeBytes: a.sizeBytes,
            checksum: a.checksum,
            preview: a.preview,
            createdAt: a.createdAt,
          },
        ]);
      });

      it("getMessages handles a thousand ids", async () => {
        const t = tenant();
        const rows = Array.from({ length: 1000 }, () => message(t, "big"));
        await commitOk(
          c,
          rows.map((row) => ({ op: "insertMessage", row }) as CatalogOp),
        );
        const ids = rows.map((r) => r.id);
        expect((await c.getMessages(t, ids)).length).toBe(1000);
      });

      it("touchChat creates the chat and only moves lastMessageAt forward; listChats pages by id", async () => {
        const t = tenant();
        await commitOk(c, [
          { op: "touchChat", tenantId: t, chatId: "b", at: 100 },
          { op: "touchChat", tenantId: t, chatId: "b", at: 300 },
          { op: "touchChat", tenantId: t, chatId: "b", at: 200 },
        ]);
        expect(await c.getChat(t, "b")).toEqual({
          tenantId: t,
          chatId: "b",
          createdAt: 100,
          lastMessageAt: 300,
        });
        await commitOk(c, [{ op: "touchChat", tenantId: t, chatId: "b", at: 250 }]);
        expect(await c.getChat(t, "b")).toEqual({
          tenantId: t,
          chatId: "b",
          createdAt: 100,
          lastMessageAt: 300,
        });
        await commitOk(c, [{ op: "touchChat", tenantId: t, chatId: "b", at: 400 }]);
        expect((await c.getChat(t, "b"))?.lastMessageAt).toBe(400);
        expect(await c.getChat(t, "nope")).toBeUndefined();

        const ids = ["a", "c", "B", "a.b", "a-b", "z", "ä"];
        await commitOk(
          c,
          ids.map((chatId) => ({ op: "touchChat", tenantId: t, chatId, at: 1 }) as CatalogOp),
        );
        const expected = [...ids, "b"].sort(compareUtf8);
        const seen: string[] = [];
        let after: string | undefined;
        for (;;) {
          const page = await c.listChats(t, {
            limit: 3,
            ...(after !== undefined ? { afterChatId: after } : {}),
          });
          if (page.length === 0) break;
          seen.push(...page.map((p) => p.chatId));
          after = page[page.length - 1]?.chatId;
        }
        expect(seen).toEqual(expected);
      });

      it("addMessageVersion makes the new version current and keeps every version", async () => {
        const t = tenant();
        const m = message(t, "chat");
        await commitOk(c, appendOps(m));
        const v2 = {
          tenantId: t,
          messageId: m.id,
          version: 2,
          storeId: "local",
          blobKey: `${m.blobKey}.v2`,
          sizeBytes: 50,
          checksum: "ef".repeat(32),
          preview: "edited",
          createdAt: m.createdAt + 10,
        };
        await commitOk(c, [
          { op: "addMessageVersion", row: v2, expectVersion: 1, updatedAt: m.createdAt + 10 },
          { op: "putBlobRef", row: { ...blobRef(m), blobKey: v2.blobKey, kind: "message-version" } },
        ]);
        const current = await c.getMessage(t, m.id);
        expect(current).toEqual({
          ...m,
          version: 2,
          blobKey: v2.blobKey,
          sizeBytes: 50,
          checksum: v2.checksum,
          preview: "edited",
          updatedAt: m.createdAt + 10,
        });
        const versions = await c.listMessageVersions(t, m.id);
        expect(versions.map((v) => [v.version, v.blobKey, v.preview])).toEqual([
          [1, m.blobKey, m.preview],
          [2, v2.blobKey, "edited"],
        ]);
        expect(versions[0]?.createdAt).toBe(m.createdAt);

        const v3 = { ...v2, version: 3, blobKey: `${m.blobKey}.v3`, preview: "again" };
        await commitOk(c, [
          { op: "addMessageVersion", row: v3, expectVersion: 2, updatedAt: m.createdAt + 20 },
        ]);
        expect((await c.listMessageVersions(t, m.id)).map((v) => v.version)).toEqual([1, 2, 3]);

        // A message never edited has its one version.
        const plain = message(t, "chat");
        await commitOk(c, appendOps(plain));
        expect((await c.listMessageVersions(t, plain.id)).map((v) => [v.version, v.blobKey])).toEqual([
          [1, plain.blobKey],
        ]);
        expect(await c.listMessageVersions(t, uuidv7())).toEqual([]);
      });

      it("an append writes no version row: version 1 is the message row until the first edit copies it", async () => {
        const t = tenant();
        const versionRows = async () =>
          Number(
            (await h.query(`SELECT COUNT(*) AS n FROM message_versions WHERE tenant_id = '${t}'`))[0]?.n,
          );
        const m = message(t, "chat");
        await commitOk(c, appendOps(m));
        expect(await versionRows()).toBe(0);
        const [v1] = await c.listMessageVersions(t, m.id);
        expect(v1).toEqual({
          tenantId: t,
          messageId: m.id,
          version: 1,
          storeId: m.storeId,
          blobKey: m.blobKey,
          sizeBytes: m.sizeBytes,
          checksum: m.checksum,
          preview: m.preview,
          createdAt: m.createdAt,
        });
        const v2 = { ...(v1 as MessageVersionRow), version: 2, blobKey: `${m.blobKey}.v2`, preview: "two" };
        await commitOk(c, [
          { op: "addMessageVersion", row: v2, expectVersion: 1, updatedAt: m.createdAt + 1 },
        ]);
        expect(await versionRows()).toBe(2);
        expect(await c.listMessageVersions(t, m.id)).toEqual([v1, v2]);

        // A version-1 row written beside the message (as catalogs of earlier releases did) is
        // listed once, and the first edit keeps it.
        const old = message(t, "chat");
        await commitOk(c, appendOps(old));
        const cols =
          "tenant_id, message_id, version, store_id, blob_key, size_bytes, checksum, preview, created_at";
        await h.query(
          `INSERT INTO message_versions (${cols}) SELECT tenant_id, id, version, store_id, blob_key, size_bytes, ` +
            `checksum, preview, created_at FROM messages WHERE tenant_id = '${t}' AND id = '${old.id}'`,
        );
        expect((await c.listMessageVersions(t, old.id)).map((v) => v.version)).toEqual([1]);
        await commitOk(c, [
          {
            op: "addMessageVersion",
            row: { ...v2, messageId: old.id, blobKey: `${old.blobKey}.v2` },
            expectVersion: 1,
            updatedAt: old.createdAt + 1,
          },
        ]);
        expect((await c.listMessageVersions(t, old.id)).map((v) => [v.version, v.blobKey])).toEqual([
          [1, old.blobKey],
          [2, `${old.blobKey}.v2`],
        ]);
      });

      it("an edit based on an old version fails with CATALOG_STALE_VERSION, of a missing message with CATALOG_NOT_FOUND", async () => {
        const t = tenant();
        const m = message(t, "chat");
        await commitOk(c, appendOps(m));
        const v2 = {
          tenantId: t,
          messageId: m.id,
          version: 2,
          storeId: "local",
          blobKey: "k2",
          sizeBytes: 1,
          checksum: "00",
          preview: "p2",
          createdAt: 5,
        };
        await commitOk(c, [{ op: "addMessageVersion", row: v2, expectVersion: 1, updatedAt: 5 }]);
        // A second editor that also read version 1.
        const stale = await commitOne(c, [
          { op: "addMessageVersion", row: { ...v2, blobKey: "k2b" }, expectVersion: 1, updatedAt: 6 },
        ]);
        const err = expectFailed(stale, "CATALOG_STALE_VERSION");
        expect(err.retryable).toBe(false);
        expect((await c.getMessage(t, m.id))?.blobKey).toBe("k2");
        expect((await c.listMessageVersions(t, m.id)).map((v) => v.blobKey)).toEqual([m.blobKey, "k2"]);

        expectFailed(
          await commitOne(c, [
            { op: "addMessageVersion", row: { ...v2, messageId: uuidv7() }, expectVersion: 1, updatedAt: 6 },
          ]),
          "CATALOG_NOT_FOUND",
        );
        expectFailed(
          await commitOne(c, [
            { op: "addMessageVersion", row: { ...v2, version: 5 }, expectVersion: 2, updatedAt: 6 },
          ]),
          "INVALID_ARGUMENT",
        );
      });

      it("setMessageDeleted soft-deletes and restores; a missing message is CATALOG_NOT_FOUND", async () => {
        const t = tenant();
        const m = message(t, "chat");
        await commitOk(c, appendOps(m));
        await commitOk(c, [
          { op: "setMessageDeleted", tenantId: t, id: m.id, deletedAt: 777, updatedAt: 778 },
        ]);
        expect(await c.getMessage(t, m.id)).toEqual({ ...m, deletedAt: 777, updatedAt: 778 });
        expect(await c.countMessages(t, "chat")).toBe(0);
        expect(await c.countMessages(t, "chat", { includeDeleted: true })).toBe(1);
        await commitOk(c, [
          { op: "setMessageDeleted", tenantId: t, id: m.id, deletedAt: null, updatedAt: 779 },
        ]);
        expect(await c.getMessage(t, m.id)).toEqual({ ...m, deletedAt: null, updatedAt: 779 });
        expectFailed(
          await commitOne(c, [
            { op: "setMessageDeleted", tenantId: t, id: uuidv7(), deletedAt: 1, updatedAt: 1 },
          ]),
          "CATALOG_NOT_FOUND",
        );
      });

      it("deleteMessage removes the row and its versions; deleting a missing one succeeds", async () => {
        const t = tenant();
        const m = message(t, "chat", { idempotencyKey: "k" });
        await commitOk(c, appendOps(m));
        await commitOk(c, [
          {
            op: "addMessageVersion",
            row: { ...blobRef(m), messageId: m.id, version: 2, preview: "v2", createdAt: 1 },
            expectVersion: 1,
            updatedAt: 2,
          },
        ]);
        await commitOk(c, [{ op: "deleteMessage", tenantId: t, id: m.id }]);
        expect(await c.getMessage(t, m.id)).toBeUndefined();
        expect(await c.listMessageVersions(t, m.id)).toEqual([]);
        const [row] = await h.query(`SELECT COUNT(*) AS n FROM message_versions WHERE tenant_id = '${t}'`);
        expect(Number(row?.n)).toBe(0);
        await commitOk(c, [{ op: "deleteMessage", tenantId: t, id: m.id }]);
        // The idempotency key is free again after a purge.
        await commitOk(c, appendOps(message(t, "chat", { idempotencyKey: "k" })));
      });

      it("history pages both ways with `after`, honours since/until and hides deleted rows unless asked", async () => {
        const t = tenant();
        const base = 1_600_000_000_000;
        const rows: MessageRow[] = [];
        for (let i = 0; i < 30; i++) {
          // Pairs share a createdAt: ties are ordered by id.
          rows.push(message(t, "hist", { createdAt: base + Math.floor(i / 2) * 1000 }));
        }
        const deleted = new Set([rows[3]?.id, rows[10]?.id, rows[11]?.id, rows[29]?.id]);
        const stored = rows.map((r) => (deleted.has(r.id) ? { ...r, deletedAt: base + 99 } : r));
        // Out of order, in two commits, plus noise in another chat and another tenant.
        await commitOk(c, [...stored].reverse().slice(0, 15).flatMap(appendOps));
        await commitOk(c, [...stored].reverse().slice(15).flatMap(appendOps));
        await commitOk(c, appendOps(message(t, "other", { createdAt: base + 5000 })));
        await commitOk(c, appendOps(message(tenant(), "hist", { createdAt: base + 5000 })));

        const visible = stored.filter((r) => r.deletedAt === null).sort(byHistory);
        const all = [...stored].sort(byHistory);

        const page = async (
          order: "asc" | "desc",
          extra: { since?: number; until?: number; includeDeleted?: boolean },
        ) => {
          const out: MessageRow[] = [];
          let after: { createdAt: number; id: string } | undefined;
          for (;;) {
            const p = await c.history(t, "hist", { order, limit: 7, ...extra, ...(after ? { after } : {}) });
            out.push(...p);
            if (p.length < 7) return out;
            const last = p[p.length - 1] as MessageRow;
            after = { createdAt: last.createdAt, id: last.id };
          }
        };
        expect(await page("asc", {})).toEqual(visible);
        expect(await page("desc", {})).toEqual([...visible].reverse());
        expect(await page("asc", { includeDeleted: true })).toEqual(all);
        expect(await page("desc", { includeDeleted: true })).toEqual([...all].reverse());

        const since = base + 3000;
        const until = base + 9000;
        const window = visible.filter((r) => r.createdAt >= since && r.createdAt < until);
        expect(window.length).toBeGreaterThan(0);
        expect(await page("asc", { since, until })).toEqual(window);
        expect(await page("desc", { since, until })).toEqual([...window].reverse());
        expect(await page("asc", { since: base + 100_000 })).toEqual([]);

        expect(await c.history(t, "hist", { order: "asc", limit: 1 })).toEqual(visible.slice(0, 1));
        expect(await c.history(t, "nope", { order: "asc", limit: 10 })).toEqual([]);
        await expectKuraError(c.history(t, "hist", { order: "asc", limit: 0 }), "INVALID_ARGUMENT");

        expect(await c.countMessages(t, "hist")).toBe(visible.length);
        expect(await c.countMessages(t, "hist", { includeDeleted: true })).toBe(30);
        expect(await c.countMessages(t, "nope")).toBe(0);
      });
    });

    // --- objects and blob refs ----------------------------------------------------------------

    describe("objects and blob refs", () => {
      it("putObject replaces, getObject reads, deleteObject removes (missing is fine)", async () => {
        const t = tenant();
        const first = objectRow(t, "docs/a.txt");
        await commitOk(c, [{ op: "putObject", row: first }]);
        expect(await c.getObject(t, "docs/a.txt")).toEqual(first);
        const second = objectRow(t, "docs/a.txt", {
          blobKey: "other",
          sizeBytes: 99,
          contentType: "text/plain",
        });
        await commitOk(c, [{ op: "putObject", row: second }]);
        expect(await c.getObject(t, "docs/a.txt")).toEqual(second);
        await commitOk(c, [{ op: "deleteObject", tenantId: t, key: "docs/a.txt" }]);
        expect(await c.getObject(t, "docs/a.txt")).toBeUndefined();
        await commitOk(c, [{ op: "deleteObject", tenantId: t, key: "docs/a.txt" }]);
      });

      it("putObject and deleteObject with expectBlobKey are compare-and-set", async () => {
        const t = tenant();
        const a = objectRow(t, "cas/x", { blobKey: "b1" });
        const b = { ...a, blobKey: "b2", sizeBytes: 20 };
        const put = (row: ObjectRow, expectBlobKey: string | null): CatalogOp => ({
          op: "putObject",
          row,
          expectBlobKey,
        });
        const del = (expectBlobKey: string): CatalogOp => ({
          op: "deleteObject",
          tenantId: t,
          key: "cas/x",
          expectBlobKey,
        });

        await commitOk(c, [put(a, null)]);
        expectFailed(await commitOne(c, [put(b, null)]), "CATALOG_STALE_VERSION");
        expectFailed(await commitOne(c, [put(b, "not-it")]), "CATALOG_STALE_VERSION");
        expect(await c.getObject(t, "cas/x")).toEqual(a);
        await commitOk(c, [put(b, "b1")]);
        expect(await c.getObject(t, "cas/x")).toEqual(b);

        expectFailed(await commitOne(c, [del("b1")]), "CATALOG_STALE_VERSION");
        expect(await c.getObject(t, "cas/x")).toEqual(b);
        await commitOk(c, [del("b2")]);
        expect(await c.getObject(t, "cas/x")).toBeUndefined();
        expectFailed(await commitOne(c, [del("b2")]), "CATALOG_STALE_VERSION");
        expectFailed(await commitOne(c, [put(a, "b2")]), "CATALOG_STALE_VERSION");
        expect(await c.getObject(t, "cas/x")).toBeUndefined();

        // A lost race fails its batch alone; the same key in another tenant is another object.
        const other = objectRow(tenant(), "cas/x", { blobKey: "b1" });
        const outcomes = await c.commit([
          { ops: [put(a, null)] },
          { ops: [put(b, null)] },
          { ops: [put(other, null)] },
        ]);
        expect(outcomes[0]).toEqual({ ok: true });
        expectFailed(outcomes[1], "CATALOG_STALE_VERSION");
        expect(outcomes[2]).toEqual({ ok: true });
        expect(await c.getObject(t, "cas/x")).toEqual(a);
      });

      it("listObjects lists a prefix in UTF-8 byte order, a page at a time, and nothing outside it", async () => {
        const t = tenant();
        const keys = [
          "p/a",
          "p/b",
          "p/B",
          "p/a/b",
          "p/a-b",
          "p/ä",
          "p/東京",
          "p/😀",
          "p/\uffff",
          "p/_x",
          "p/%y",
          "p",
          "p0",
          "q/a",
          "o/z",
        ];
        await commitOk(
          c,
          keys.map((k) => ({ op: "putObject", row: objectRow(t, k) }) as CatalogOp),
        );
        const list = async (prefix: string, limit: number) => {
          const out: string[] = [];
          let afterKey: string | undefined;
          for (;;) {
            const page = await c.listObjects(t, {
              prefix,
              limit,
              ...(afterKey !== undefined ? { afterKey } : {}),
            });
            out.push(...page.map((o) => o.key));
            if (page.length < limit) return out;
            afterKey = page[page.length - 1]?.key;
          }
        };
        const expectPrefix = (prefix: string) => keys.filter((k) => k.startsWith(prefix)).sort(compareUtf8);
        expect(await list("p/", 4)).toEqual(expectPrefix("p/"));
        expect(await list("p", 100)).toEqual(expectPrefix("p"));
        expect(await list("", 5)).toEqual([...keys].sort(compareUtf8));
        expect(await list("p/_", 10)).toEqual(["p/_x"]);
        expect(await list("p/%", 10)).toEqual(["p/%y"]);
        expect(await list("p/a", 10)).toEqual(expectPrefix("p/a"));
        expect(await list("x", 10)).toEqual([]);
        // `afterKey` before the prefix starts at the prefix.
        expect((await c.listObjects(t, { prefix: "p/", afterKey: "a", limit: 2 })).map((o) => o.key)).toEqual(
          expectPrefix("p/").slice(0, 2),
        );
      });

      it("blob refs: put, existence in one store, listing in key order, delete; a second ref to one blob is CATALOG_DUPLICATE", async () => {
        const t = tenant();
        const store = `store-${randomBytes(4).toString("hex")}`;
        const keys = ["b/2", "a/1", "c/3", "a/10", "é"];
        const refs = keys.map((k) => ({
          tenantId: t,
          storeId: store,
          blobKey: k,
          sizeBytes: 3,
          checksum: "aa",
          kind: "object",
          createdAt: 9,
        }));
        await commitOk(
          c,
          refs.map((row) => ({ op: "putBlobRef", row }) as CatalogOp),
        );
        expect(await c.existingBlobRefs(store, ["a/1", "zz", "é", "a/1"])).toEqual(new Set(["a/1", "é"]));
        expect(await c.existingBlobRefs(store, [])).toEqual(new Set());
        expect(await c.existingBlobRefs("other-store", ["a/1"])).toEqual(new Set());

        const listed = await listAllBlobRefs(c, store, 2);
        expect(listed.map((r) => r.blobKey).sort(compareUtf8)).toEqual([...keys].sort(compareUtf8));
        await expect(c.listBlobRefs({ storeId: store, limit: 2, after: "a/1" })).rejects.toMatchObject({
          code: "CURSOR_INVALID",
        });
        expect([...listed].sort((a, b) => compareUtf8(a.blobKey, b.blobKey))).toEqual(
          [...refs].sort((a, b) => compareUtf8(a.blobKey, b.blobKey)),
        );

        expectFailed(
          await commitOne(c, [{ op: "putBlobRef", row: { ...refs[0], kind: "x" } as BlobRefRow }]),
          "CATALOG_DUPLICATE",
        );
        await commitOk(c, [{ op: "deleteBlobRef", tenantId: t, storeId: store, blobKey: "a/1" }]);
        await commitOk(c, [{ op: "deleteBlobRef", tenantId: t, storeId: store, blobKey: "a/1" }]);
        expect(await c.existingBlobRefs(store, ["a/1", "b/2"])).toEqual(new Set(["b/2"]));
      });

      it("a message body's ref is its row: no ref row, found by key, listed once; migration 7 drops older releases' ref rows", async () => {
        const t = tenant();
        const store = `store-${randomBytes(4).toString("hex")}`;
        const keyOf = (id: string, version: number, attempt = "") =>
          messageBodyKey({ tenantId: t, chatId: "chat", id, createdAt: tick, version, attempt });
        const rowOf = (over: Partial<MessageRow> = {}) => {
          const m = message(t, "chat", { storeId: store, ...over });
          return { ...m, blobKey: keyOf(m.id, 1) };
        };
        const noRefRows = (m: MessageRow) => appendOps(m).filter((op) => op.op !== "putBlobRef");
        const a = rowOf();
        const b = rowOf({ sizeBytes: 7 });
        const d = rowOf({ sizeBytes: 9 });
        await commitOk(c, [...noRefRows(a), ...noRefRows(b), ...noRefRows(d)]);
        const v2 = {
          tenantId: t,
          messageId: a.id,
          version: 2,
          storeId: store,
          blobKey: keyOf(a.id, 2, "0a0a0a0a0a0a"),
          sizeBytes: 50,
          checksum: "ef".repeat(32),
          preview: "edited",
          createdAt: a.createdAt + 10,
        };
        await commitOk(c, [{ op: "addMessageVersion", row: v2, expectVersion: 1, updatedAt: v2.createdAt }]);
        // An earlier release recorded version 1 of an unedited message as a version row too.
        await h.query(
          "INSERT INTO message_versions (tenant_id, message_id, version, store_id, blob_key, size_bytes, checksum, preview, created_at) " +
            `SELECT tenant_id, id, version, store_id, blob_key, size_bytes, checksum, preview, created_at FROM messages WHERE tenant_id = '${t}' AND id = '${b.id}'`,
        );
        const refRows = async () =>
          Number((await h.query(`SELECT COUNT(*) AS n FROM blob_refs WHERE store_id = '${store}'`))[0]?.n);
        expect(await refRows()).toBe(0);

        const failed = keyOf(a.id, 2, "0b0b0b0b0b0b");
        const elsewhere = messageBodyKey({
          tenantId: tenant(),
          chatId: "chat",
          id: a.id,
          createdAt: tick,
          version: 1,
          attempt: "",
        });
        expect(
          await c.existingBlobRefs(store, [a.blobKey, v2.blobKey, failed, elsewhere, "x/1", b.blobKey]),
        ).toEqual(new Set([a.blobKey, v2.blobKey, b.blobKey]));
        expect(await c.existingBlobRefs("other-store", [a.blobKey, v2.blobKey])).toEqual(new Set());

        const expected = [
          blobRef(a),
          {
            ...blobRef(a),
            blobKey: v2.blobKey,
            sizeBytes: 50,
            checksum: v2.checksum,
            kind: "message-version",
            createdAt: v2.createdAt,
          },
          blobRef(b),
          blobRef(d),
        ].sort((x, y) => compareUtf8(x.blobKey, y.blobKey));
        const listAll = async () =>
          (await listAllBlobRefs(c, store, 1)).sort((x, y) => compareUtf8(x.blobKey, y.blobKey));
        expect(await listAll()).toEqual(expected);
        const statsOf = async () => (await c.bodyStats()).filter((s) => s.tenantId === t);
        const checkOf = async () => (await c.usageCheck()).find((u) => u.tenantId === t);
        const stats = await statsOf();
        expect(stats).toEqual([
          { tenantId: t, kind: "message", bodies: 3, bytes: 42 + 7 + 9 },
          { tenantId: t, kind: "message-version", bodies: 1, bytes: 50 },
        ]);
        const check = await checkOf();
        expect(check?.stored.objects).toBe(4);

        // An older database: the ref rows earlier releases wrote beside the rows count once.
        await commitOk(c, [
          { op: "putBlobRef", row: blobRef(d) },
          { op: "putBlobRef", row: expected[1] as BlobRefRow },
        ]);
        expect(await refRows()).toBe(2);
        expect(await listAll()).toEqual(expected);
        expect(await statsOf()).toEqual(stats);
        // Migration 7's statements, as an older database gets them on opening (later migrations
        // exist, so re-opening would not run it again).
        const seventh = MIGRATIONS.find((m) => m.version === 7);
        for (const sql of renderMigration(seventh as Migration, c.dialect)) await h.query(sql);
        expect(await refRows()).toBe(0);
        expect(await listAll()).toEqual(expected);
        expect(await statsOf()).toEqual(stats);
        expect(await checkOf()).toEqual(check);
      });

      it("ensureTenant is idempotent", async () => {
        const t = tenant();
        await commitOk(c, [
          { op: "ensureTenant", tenantId: t, at: 1 },
          { op: "ensureTenant", tenantId: t, at: 2 },
        ]);
        await commitOk(c, [{ op: "ensureTenant", tenantId: t, at: 3 }]);
        const rows = await h.query(`SELECT created_at FROM tenants WHERE tenant_id = '${t}'`);
        expect(rows.map((r) => Number(r.created_at))).toEqual([1]);
      });
    });

    // --- batches ------------------------------------------------------------------------------

    describe("batches and group commit", () => {
      it("a failing batch leaves nothing while its neighbours in the same commit succeed", async () => {
        const t = tenant();
        const start = await outboxEnd(c);
        const before = await c.usage(t);
        const a = message(t, "chat");
        const b = message(t, "chat");
        const d = message(t, "chat");
        const outcomes = await c.commit([
          { ops: appendOps(a) },
          {
            ops: [
              ...appendOps(b),
              { op: "setMessageDeleted", tenantId: t, id: uuidv7(), deletedAt: 1, updatedAt: 1 },
            ],
          },
          { ops: appendOps(d) },
        ]);
        expect(outcomes[0]).toEqual({ ok: true });
        expectFailed(outcomes[1], "CATALOG_NOT_FOUND");
        expect(outcomes[2]).toEqual({ ok: true });

        expect(await c.getMessage(t, a.id)).toEqual(a);
        expect(await c.getMessage(t, b.id)).toBeUndefined();
        expect(await c.getMessage(t, d.id)).toEqual(d);
        expect(await c.existingBlobRefs("local", [a.blobKey, b.blobKey, d.blobKey])).toEqual(
          new Set([a.blobKey, d.blobKey]),
        );
        const events = await eventsOf(c, start, t, 2);
        expect(events.map((e) => e.entityId)).toEqual([a.id, d.id]);
        expect((await c.auditLog(t, { limit: 10 })).map((e) => e.target)).toEqual([a.id, d.id]);
        const after = await c.usage(t);
        expect(after.messages - before.messages).toBe(2);
        expect(after.bytes - before.bytes).toBe(84);
      });

      it("a batch failing on its last operation leaves no trace", async () => {
        const t = tenant();
        const a = message(t, "chat");
        await commitOk(c, appendOps(a));
        const b = message(t, "chat");
        const outcome = await commitOne(c, [...appendOps(b), { op: "insertMessage", row: a }]);
        expectFailed(outcome, "CATALOG_DUPLICATE");
        expect(await c.getMessage(t, b.id)).toBeUndefined();
        expect(await c.countMessages(t, "chat")).toBe(1);
        expect((await c.usage(t)).messages).toBe(1);
        expect(await c.auditLog(t, { limit: 10 })).toHaveLength(1);
      });

      it("outcomes come back in input order, for many batches in one commit", async () => {
        const t = tenant();
        const rows = Array.from({ length: 50 }, () => message(t, "many"));
        const batches: CatalogBatch[] = rows.map((r) => ({ ops: appendOps(r) }));
        // Every 7th batch collides with the batch before it.
        for (let i = 7; i < batches.length; i += 7) {
          batches[i] = { ops: [{ op: "insertMessage", row: rows[i - 1] as MessageRow }] };
        }
        const outcomes = await c.commit(batches);
        outcomes.forEach((o, i) => {
          if (i >= 7 && i % 7 === 0) expectFailed(o, "CATALOG_DUPLICATE");
          else expect(o).toEqual({ ok: true });
        });
        const expected = rows.filter((_, i) => !(i >= 7 && i % 7 === 0)).length;
        expect(await c.countMessages(t, "many")).toBe(expected);
        expect((await c.usage(t)).messages).toBe(expected);
        expect(await c.commit([])).toEqual([]);
      });

      it("an unknown operation fails its batch only", async () => {
        const t = tenant();
        const a = message(t, "chat");
        const outcomes = await c.commit([
          { ops: [{ op: "dropEverything" } as unknown as CatalogOp] },
          { ops: appendOps(a) },
        ]);
        expectFailed(outcomes[0], "INVALID_ARGUMENT");
        expect(outcomes[1]).toEqual({ ok: true });
      });

      it("a probe that throws at catalog.commit fails every batch and stores nothing", async () => {
        const t = tenant();
        const points: string[] = [];
        const faulty = await h.open({
          probe: (point) => {
            points.push(point);
            if (point === "catalog.commit") throw new KuraError("FAULT_INJECTED", "injected");
          },
        });
        try {
          const a = message(t, "chat");
          const outcomes = await faulty.commit([
            { ops: appendOps(a) },
            { ops: appendOps(message(t, "chat")) },
          ]);
          expect(outcomes).toHaveLength(2);
          for (const o of outcomes) expectFailed(o, "FAULT_INJECTED");
          expect(points).toContain("catalog.commit");
          expect(await c.countMessages(t, "chat")).toBe(0);
        } finally {
          await faulty.close();
        }
      });

      it("durability fsync commits like os", async () => {
        const t = tenant();
        const strict = await h.open({ durability: "fsync" });
        try {
          const a = message(t, "chat");
          await commitOk(strict, appendOps(a));
          expect(await c.getMessage(t, a.id)).toEqual(a);
        } finally {
          await strict.close();
        }
      });
    });

    // --- idempotency --------------------------------------------------------------------------

    describe("idempotency", () => {
      it("a second append with the same key fails with IDEMPOTENCY_CONFLICT and the first stays", async () => {
        const t = tenant();
        const first = message(t, "chat", { idempotencyKey: "req-1" });
        await commitOk(c, appendOps(first));
        const retry = message(t, "chat", { idempotencyKey: "req-1" });
        const err = expectFailed(await commitOne(c, appendOps(retry)), "IDEMPOTENCY_CONFLICT");
        expect(err.kind).toBe("Conflict");
        expect(await c.findMessageByIdempotencyKey(t, "req-1")).toEqual(first);
        expect(await c.getMessage(t, retry.id)).toBeUndefined();
        expect((await c.usage(t)).messages).toBe(1);
      });

      it("the same id is CATALOG_DUPLICATE; the same id and key is IDEMPOTENCY_CONFLICT (a retried commit)", async () => {
        const t = tenant();
        const first = message(t, "chat", { idempotencyKey: "req-2" });
        await commitOk(c, appendOps(first));
        const sameId = message(t, "chat", { id: first.id });
        expectFailed(await commitOne(c, [{ op: "insertMessage", row: sameId }]), "CATALOG_DUPLICATE");
        expectFailed(await commitOne(c, appendOps(first)), "IDEMPOTENCY_CONFLICT");
      });

      it("keys are per tenant; messages without a key never conflict", async () => {
        const t1 = tenant();
        const t2 = tenant();
        await commitOk(c, appendOps(message(t1, "chat", { idempotencyKey: "shared" })));
        await commitOk(c, appendOps(message(t2, "chat", { idempotencyKey: "shared" })));
        await commitOk(c, [...appendOps(message(t1, "chat")), ...appendOps(message(t1, "chat"))]);
        expect(await c.countMessages(t1, "chat")).toBe(3);
      });

      it("one key twice in a batch fails the batch; across batches of one commit, the later one fails", async () => {
        const t = tenant();
        const a = message(t, "chat", { idempotencyKey: "dup" });
        const b = message(t, "chat", { idempotencyKey: "dup" });
        expectFailed(await commitOne(c, [...appendOps(a), ...appendOps(b)]), "IDEMPOTENCY_CONFLICT");
        expect(await c.countMessages(t, "chat")).toBe(0);

        const outcomes = await c.commit([{ ops: appendOps(a) }, { ops: appendOps(b) }]);
        expect(outcomes[0]).toEqual({ ok: true });
        expectFailed(outcomes[1], "IDEMPOTENCY_CONFLICT");
        expect(await c.findMessageByIdempotencyKey(t, "dup")).toEqual(a);
      });
    });

    // --- tenancy ------------------------------------------------------------------------------

    describe("tenant isolation", () => {
      it("the same ids under two tenants never leak into each other's reads or writes", async () => {
        const ta = tenant("a");
        const tb = tenant("b");
        const empty = tenant("c");
        const id = uuidv7();
        const store = `iso-${randomBytes(4).toString("hex")}`;
        for (const t of [ta, tb]) {
          const m = message(t, "same-chat", {
            id,
            idempotencyKey: "same-key",
            storeId: store,
            blobKey: `${t}/m`,
          });
          await commitOk(c, [
            ...appendOps(m),
            { op: "putObject", row: objectRow(t, "same/key") },
            {
              op: "addMessageVersion",
              row: { ...blobRef(m), messageId: id, version: 2, preview: `v2 of ${t}`, createdAt: 1 },
              expectVersion: 1,
              updatedAt: 2,
            },
          ]);
        }

        for (const t of [ta, tb]) {
          expect((await c.getMessage(t, id))?.tenantId).toBe(t);
          expect((await c.getMessages(t, [id])).map((m) => m.tenantId)).toEqual([t]);
          expect((await c.findMessageByIdempotencyKey(t, "same-key"))?.tenantId).toBe(t);
          const hist = await c.history(t, "same-chat", { order: "asc", limit: 10, includeDeleted: true });
          expect(hist.map((m) => m.tenantId)).toEqual([t]);
          expect(await c.countMessages(t, "same-chat")).toBe(1);
          expect((await c.listMessageVersions(t, id)).map((v) => [v.tenantId, v.preview])).toEqual([
            [t, `hello ${id}`],
            [t, `v2 of ${t}`],
          ]);
          expect((await c.listChats(t, { limit: 10 })).map((x) => x.tenantId)).toEqual([t]);
          expect((await c.getChat(t, "same-chat"))?.tenantId).toBe(t);
          expect((await c.getObject(t, "same/key"))?.tenantId).toBe(t);
          expect((await c.listObjects(t, { prefix: "", limit: 10 })).map((o) => o.tenantId)).toEqual([t]);
          expect((await c.auditLog(t, { limit: 10 })).map((e) => e.tenantId)).toEqual([t]);
          expect((await c.usage(t)).messages).toBe(1);
        }

        expect(await c.getMessage(empty, id)).toBeUndefined();
        expect(await c.getMessages(empty, [id])).toEqual([]);
        expect(await c.findMessageByIdempotencyKey(empty, "same-key")).toBeUndefined();
        expect(
          await c.history(empty, "same-chat", { order: "desc", limit: 10, includeDeleted: true }),
        ).toEqual([]);
        expect(await c.countMessages(empty, "same-chat", { includeDeleted: true })).toBe(0);
        expect(await c.listMessageVersions(empty, id)).toEqual([]);
        expect(await c.getChat(empty, "same-chat")).toBeUndefined();
        expect(await c.listChats(empty, { limit: 10 })).toEqual([]);
        expect(await c.getObject(empty, "same/key")).toBeUndefined();
        expect(await c.listObjects(empty, { prefix: "", limit: 10 })).toEqual([]);
        expect(await c.auditLog(empty, { limit: 10 })).toEqual([]);
        expect(await c.usage(empty)).toEqual({ tenantId: empty, bytes: 0, objects: 0, messages: 0 });

        // Writes with tenant B (or an empty tenant) never touch A's rows.
        expectFailed(
          await commitOne(c, [{ op: "setMessageDeleted", tenantId: empty, id, deletedAt: 1, updatedAt: 1 }]),
          "CATALOG_NOT_FOUND",
        );
        await commitOk(c, [
          { op: "setMessageDeleted", tenantId: tb, id, deletedAt: 5_000_000, updatedAt: 5_000_000 },
          { op: "deleteObject", tenantId: tb, key: "same/key" },
          { op: "deleteBlobRef", tenantId: tb, storeId: store, blobKey: `${ta}/m` },
        ]);
        await commitOk(c, [{ op: "deleteMessage", tenantId: empty, id }]);
        expect((await c.getMessage(ta, id))?.deletedAt).toBeNull();
        expect((await c.getMessage(tb, id))?.deletedAt).toBe(5_000_000);
        expect(await c.getObject(ta, "same/key")).toBeDefined();
        expect(await c.getObject(tb, "same/key")).toBeUndefined();
        expect(await c.existingBlobRefs(store, [`${ta}/m`])).toEqual(new Set([`${ta}/m`]));
      });
    });

    // --- maintenance scans --------------------------------------------------------------------

    describe("maintenance scans", () => {
      it("deletedMessagesBefore and expiredMessages find due rows across tenants, oldest first", async () => {
        // Times far in the past, used by no other test.
        const t1 = tenant();
        const t2 = tenant();
        const d1 = message(t1, "c", { deletedAt: 30 });
        const d2 = message(t2, "c", { deletedAt: 10 });
        const d3 = message(t1, "c", { deletedAt: 500 });
        const e1 = message(t2, "c", { expiresAt: 20 });
        const e2 = message(t1, "c", { expiresAt: 40 });
        const e3 = message(t1, "c", { expiresAt: 900 });
        await commitOk(c, [d1, d2, d3, e1, e2, e3].flatMap(appendOps));
        expect((await c.deletedMessagesBefore({ before: 100, limit: 10 })).map((m) => m.id)).toEqual([
          d2.id,
          d1.id,
        ]);
        expect((await c.deletedMessagesBefore({ before: 100, limit: 1 })).map((m) => m.id)).toEqual([d2.id]);
        expect((await c.expiredMessages({ now: 100, limit: 10 })).map((m) => m.id)).toEqual([e1.id, e2.id]);
        expect(await c.expiredMessages({ now: 20, limit: 10 })).toEqual([]);
      });

      it("listMessageKeys pages through every tenant's messages in (tenant, id) order, deleted ones on request", async () => {
        const prefix = tenant("keys");
        const [t1, t2] = [`${prefix}-a`, `${prefix}-b`];
        const rows = [
          message(t2, "c"),
          message(t1, "c"),
          message(t1, "d"),
          message(t2, "c", { deletedAt: 5 }),
        ];
        await commitOk(c, rows.flatMap(appendOps));
        const scan = async (includeDeleted: boolean) => {
          const keys: string[] = [];
          let after = { tenantId: prefix, id: "" };
          for (;;) {
            const page = await c.listMessageKeys({ after, limit: 2, includeDeleted });
            const ours = page.filter((k) => k.tenantId.startsWith(`${prefix}-`));
            keys.push(...ours.map((k) => `${k.tenantId}/${k.id}`));
            if (ours.length < page.length || page.length < 2) return keys;
            after = page[page.length - 1] as { tenantId: string; id: string };
          }
        };
        const expected = (list: MessageRow[]) =>
          list.map((r) => `${r.tenantId}/${r.id}`).sort((a, b) => compareUtf8(a, b));
        expect(await scan(false)).toEqual(expected(rows.slice(0, 3)));
        expect(await scan(true)).toEqual(expected(rows));
        expect((await c.listMessageKeys({ limit: 1 })).length).toBe(1);
        await expectKuraError(c.listMessageKeys({ limit: 0 }), "INVALID_ARGUMENT");
      });
    });

    // --- outbox -------------------------------------------------------------------------------

    describe("outbox", () => {
      it("events come back in commit order, page by page, resumable from any cursor", async () => {
        const t = tenant();
        const start = await outboxEnd(c);
        const event = (n: number): OutboxEvent => ({
          tenantId: t,
          type: "test.event",
          entityId: `e${n}`,
          payload: { n },
          createdAt: n,
        });
        let n = 0;
        await commitOk(c, [
          { op: "appendOutbox", event: event(n++) },
          { op: "appendOutbox", event: event(n++) },
        ]);
        await c.commit([
          { ops: [{ op: "appendOutbox", event: event(n++) }] },
          {
            ops: [
              { op: "appendOutbox", event: event(99) },
              { op: "deleteMessage", tenantId: t, id: "x" },
              { op: "setMessageDeleted", tenantId: t, id: "x", deletedAt: 1, updatedAt: 1 },
            ],
          },
          {
            ops: [
              { op: "appendOutbox", event: event(n++) },
              { op: "appendOutbox", event: event(n++) },
            ],
          },
        ]);
        await commitOk(c, [{ op: "appendOutbox", event: event(n++) }]);

        const all = await eventsOf(c, start, t, 6, 2);
        expect(all.map((e) => e.entityId)).toEqual(["e0", "e1", "e2", "e3", "e4", "e5"]);
        expect(all[0]).toMatchObject({ ...event(0) });
        for (let i = 1; i < all.length; i++) {
          expect((all[i] as OutboxRecord).seq).toBeGreaterThan((all[i - 1] as OutboxRecord).seq);
        }
        // Resume from the middle.
        const middle = all[2]?.cursor;
        expect((await eventsOf(c, middle, t, 3)).map((e) => e.entityId)).toEqual(["e3", "e4", "e5"]);
        expect(await c.outboxLag(start)).toBeGreaterThanOrEqual(6);
        expect(await c.outboxLag(middle)).toBe(3);
        const end = all[all.length - 1]?.cursor;
        expect(await c.outboxLag(end)).toBe(0);
        expect(await c.readOutbox(end, 10)).toEqual([]);
        expect(await c.outboxLag(undefined)).toBeGreaterThanOrEqual(6);
        // From the start (undefined) reaches these events too.
        expect((await eventsOf(c, undefined, t, 6, 1000)).map((e) => e.entityId)).toEqual(
          all.map((e) => e.entityId),
        );
      });

      it("each tenant's change feed is numbered 1, 2, 3, … by its own events only, in commit order", async () => {
        const a = tenant();
        const b = tenant();
        const event = (t: string, n: number): OutboxEvent => ({
          tenantId: t,
          type: "test.event",
          entityId: `e${n}`,
          payload: { n },
          createdAt: n,
        });
        await commitOk(c, [
          { op: "appendOutbox", event: event(a, 1) },
          { op: "appendOutbox", event: event(b, 1) },
          { op: "appendOutbox", event: event(a, 2) },
        ]);
        // Many of b's events, from concurrent commits (group commit, savepoints, failures).
        await Promise.all(
          Array.from({ length: 12 }, (_, i) =>
            c.commit([
              { ops: [{ op: "appendOutbox", event: event(b, 100 + i) }] },
              {
                ops: [
                  { op: "appendOutbox", event: event(b, 200 + i) },
                  { op: "setMessageDeleted", tenantId: b, id: "missing", deletedAt: 1, updatedAt: 1 },
                ],
              },
            ]),
          ),
        );
        await commitOk(c, [{ op: "appendOutbox", event: event(a, 3) }]);
        const feedA = await c.readChanges(a, { limit: 100 });
        expect(feedA.map((e) => [e.seq, e.entityId])).toEqual([
          [1, "e1"],
          [2, "e2"],
          [3, "e3"],
        ]);
        expect(feedA[0]).toMatchObject({ ...event(a, 1), seq: 1 });
        const feedB = await c.readChanges(b, { limit: 1000 });
        // The failed batches' events were rolled back with them: no gaps, no duplicates.
        expect(feedB.map((e) => e.seq)).toEqual(Array.from({ length: 13 }, (_, i) => i + 1));
        expect(new Set(feedB.map((e) => e.entityId)).size).toBe(13);
        expect(feedB.some((e) => e.entityId.startsWith("e2"))).toBe(false);
        // Paging from a position.
        expect((await c.readChanges(b, { after: 10, limit: 2 })).map((e) => e.seq)).toEqual([11, 12]);
        expect(await c.readChanges(b, { after: 13, limit: 10 })).toEqual([]);
        expect(await c.readChanges(tenant(), { limit: 10 })).toEqual([]);
        await expectKuraError(c.readChanges(a, { after: -1, limit: 1 }), "INVALID_ARGUMENT");
        await expectKuraError(c.readChanges(a, { after: 1.5, limit: 1 }), "INVALID_ARGUMENT");
      });

      it("consumer cursors are saved and overwritten; malformed cursors are CURSOR_INVALID", async () => {
        const consumer = `search-${randomBytes(4).toString("hex")}`;
        expect(await c.getConsumerCursor(consumer)).toBeUndefined();
        await commitOk(c, [
          {
            op: "appendOutbox",
            event: { tenantId: tenant(), type: "x", entityId: "1", payload: {}, createdAt: 1 },
          },
        ]);
        const [first] = await c.readOutbox(undefined, 1);
        const end = await outboxEnd(c);
        if (!first || !end) throw new Error("outbox is empty");
        await c.setConsumerCursor(consumer, first.cursor);
        expect(await c.getConsumerCursor(consumer)).toBe(first.cursor);
        await c.setConsumerCursor(consumer, end);
        expect(await c.getConsumerCursor(consumer)).toBe(end);
        // A second catalog (a restarted projector) sees the saved cursor.
        const again = await h.open();
        try {
          expect(await again.getConsumerCursor(consumer)).toBe(end);
          expect(await again.readOutbox(end, 10)).toEqual([]);
        } finally {
          await again.close();
        }
        for (const bad of ["", "abc", "-1", "1..5", " 1", "9".repeat(40), "'; DROP TABLE outbox; --"]) {
          await expectKuraError(c.readOutbox(bad, 1), "CURSOR_INVALID");
          await expectKuraError(c.setConsumerCursor(consumer, bad), "CURSOR_INVALID");
          await expectKuraError(c.outboxLag(bad), "CURSOR_INVALID");
        }
        expect(await c.getConsumerCursor(consumer)).toBe(end);
        // A retired consumer's cursor is removed (twice is fine) and no longer read back.
        await c.deleteConsumerCursor(consumer);
        await c.deleteConsumerCursor(consumer);
        expect(await c.getConsumerCursor(consumer)).toBeUndefined();
      });
    });

    // --- outbox pruning (global: each test on a database of its own) ---------------------------

    describe("outbox pruning", () => {
      const event = (t: string, n: number, createdAt: number): OutboxEvent => ({
        tenantId: t,
        type: "test.event",
        entityId: `e${n}`,
        payload: { n },
        createdAt,
      });
      /** Every event of the outbox, once the `count` expected have become readable. */
      const everything = async (cat: Catalog, count: number): Promise<OutboxRecord[]> => {
        const deadline = Date.now() + 10_000;
        for (;;) {
          const all: OutboxRecord[] = [];
          let cursor: string | undefined;
          for (;;) {
            const page = await cat.readOutbox(cursor, 1000);
            if (page.length === 0) break;
            all.push(...page);
            cursor = page[page.length - 1]?.cursor;
          }
          if (all.length >= count || Date.now() > deadline) return all;
          await new Promise((r) => setTimeout(r, 50));
        }
      };
      const names = (records: readonly { tenantId: string; entityId: string }[], a: string) =>
        records.map((e) => `${e.tenantId === a ? "a" : "b"}:${e.entityId}`);

      it("deletes only what every consumer has passed, keeps the tail, and the feed refuses positions it lost", async () => {
        const fresh = await harness();
        const cat = await fresh.open();
        try {
          const [a, b] = [tenant("a"), tenant("b")];
          expect(await cat.pruneOutbox({ before: 1e13 })).toEqual({ deleted: 0 });
          expect(await cat.outboxHead()).toBeUndefined();
          const plan: [string, number, number][] = [
            [a, 1, 10],
            [b, 1, 20],
            [a, 2, 30],
            [a, 3, 40],
            [b, 2, 50],
            [a, 4, 60],
          ];
          for (const [t, n, at] of plan)
            await commitOk(cat, [{ op: "appendOutbox", event: event(t, n, at) }]);
          const all = await everything(cat, 6);
          expect(names(all, a)).toEqual(["a:e1", "b:e1", "a:e2", "a:e3", "b:e2", "a:e4"]);
          expect(await cat.outboxHead()).toBe(all[5]?.cursor);

          // A consumer named by the engine that has no cursor yet holds back everything.
          await cat.setConsumerCursor("slow", all[2]?.cursor as string);
          await cat.setConsumerCursor("fast", all[5]?.cursor as string);
          expect(await cat.pruneOutbox({ before: 1e13, consumers: ["slow", "new"] })).toEqual({ deleted: 0 });
          // Everything up to the slowest consumer goes, nothing after it.
          expect(await cat.pruneOutbox({ before: 1e13, consumers: ["slow"] })).toEqual({ deleted: 3 });
          expect(names(await everything(cat, 3), a)).toEqual(["a:e3", "b:e2", "a:e4"]);
          expect(await cat.pruneOutbox({ before: 1e13 })).toEqual({ deleted: 0 });

          // The change feed: what is left reads on without gaps; a position before it is refused.
          expect(await cat.changesHorizon(a)).toBe(2);
          expect(await cat.changesHorizon(b)).toBe(1);
          expect(await cat.changesHorizon(tenant())).toBe(0);
          expect((await cat.readChanges(a, { limit: 10 })).map((e) => e.seq)).toEqual([3, 4]);
          expect((await cat.readChanges(a, { after: 2, limit: 10 })).map((e) => e.seq)).toEqual([3, 4]);
          expect((await cat.readChanges(a, { after: 3, limit: 10 })).map((e) => e.seq)).toEqual([4]);
          const expired = await expectKuraError(
            cat.readChanges(a, { after: 1, limit: 10 }),
            "CHANGES_CURSOR_EXPIRED",
          );
          expect(expired.context).toMatchObject({ after: 1, oldest: 3 });
          await expectKuraError(cat.readChanges(b, { after: 0, limit: 10 }), "CHANGES_CURSOR_EXPIRED");
          expect((await cat.readChanges(b, { after: 1, limit: 10 })).map((e) => e.seq)).toEqual([2]);

          // The tail: events created after `before` stay, and so does everything after the first
          // of them in commit order (a5 is old but follows a4), so the feed loses only a prefix.
          await commitOk(cat, [{ op: "appendOutbox", event: event(a, 5, 5) }]);
          const head = (await everything(cat, 4)).at(-1)?.cursor as string;
          await cat.setConsumerCursor("slow", head);
          await cat.setConsumerCursor("fast", head);
          expect(await cat.pruneOutbox({ before: 50 })).toEqual({ deleted: 2 });
          expect(names(await everything(cat, 2), a)).toEqual(["a:e4", "a:e5"]);
          expect(await cat.changesHorizon(b)).toBe(2);
          expect(await cat.readChanges(b, { after: 2, limit: 10 })).toEqual([]);

          // `before` = now keeps nothing every consumer has: the feed is empty, its positions go on.
          expect(await cat.pruneOutbox({ before: 1e13 })).toEqual({ deleted: 2 });
          expect(await everything(cat, 0)).toEqual([]);
          expect(await cat.changesHorizon(a)).toBe(5);
          expect(await cat.readChanges(a, { after: 5, limit: 10 })).toEqual([]);
          expect(await cat.readChanges(a, { limit: 10 })).toEqual([]);
          await expectKuraError(cat.readChanges(a, { after: 4, limit: 10 }), "CHANGES_CURSOR_EXPIRED");
          await commitOk(cat, [{ op: "appendOutbox", event: event(a, 6, 70) }]);
          const [next] = await everything(cat, 1);
          expect(next?.entityId).toBe("e6");
          // Positions are never reissued: the consumers' cursors still lead to the new event.
          expect((await cat.readOutbox(head, 10)).map((e) => e.entityId)).toEqual(["e6"]);
          expect((await cat.readChanges(a, { after: 5, limit: 10 })).map((e) => e.seq)).toEqual([6]);
          await expectKuraError(cat.pruneOutbox({ before: Number.NaN }), "INVALID_ARGUMENT");
        } finally {
          await cat.close();
          await fresh.cleanup();
        }
      });

      it("with no consumer at all, only the tail decides", async () => {
        const fresh = await harness();
        const cat = await fresh.open();
        try {
          const a = tenant("a");
          for (let n = 1; n <= 7; n++)
            await commitOk(cat, [{ op: "appendOutbox", event: event(a, n, n * 10) }]);
          await everything(cat, 7);
          expect(await cat.pruneOutbox({ before: 40 })).toEqual({ deleted: 4 });
          expect((await cat.readChanges(a, { limit: 10 })).map((e) => e.seq)).toEqual([5, 6, 7]);
          expect(await cat.changesHorizon(a)).toBe(4);
        } finally {
          await cat.close();
          await fresh.cleanup();
        }
      });
    });

    // --- audit --------------------------------------------------------------------------------

    describe("audit", () => {
      it("auditLog returns a tenant's entries oldest first, from `since`, at most `limit`", async () => {
        const t = tenant();
        const entry = (at: number, action: string) => ({
          tenantId: t,
          actor: "admin:root",
          action,
          target: `m-${at}`,
          at,
          details: { reason: "test", at },
        });
        await commitOk(c, [
          { op: "appendAudit", entry: entry(30, "message.delete") },
          { op: "appendAudit", entry: entry(10, "message.append") },
          { op: "appendAudit", entry: entry(20, "message.edit") },
        ]);
        await commitOk(c, [{ op: "appendAudit", entry: entry(20, "message.undelete") }]);
        expect((await c.auditLog(t, { limit: 10 })).map((e) => e.action)).toEqual([
          "message.append",
          "message.edit",
          "message.undelete",
          "message.delete",
        ]);
        expect(await c.auditLog(t, { since: 20, limit: 2 })).toEqual([
          entry(20, "message.edit"),
          entry(20, "message.undelete"),
        ]);
        expect(await c.auditLog(t, { since: 31, limit: 10 })).toEqual([]);
      });
    });

    // --- usage --------------------------------------------------------------------------------

    describe("usage", () => {
      it("usage is totals plus pending deltas, exact through negative deltas and folding", async () => {
        const t = tenant();
        expect(await c.usage(t)).toEqual({ tenantId: t, bytes: 0, objects: 0, messages: 0 });
        const add = (bytes: number, objects: number, messages: number): CatalogOp => ({
          op: "addUsage",
          delta: { tenantId: t, bytes, objects, messages },
        });
        await commitOk(c, [add(1000, 1, 1), add(2_000_000_000_000, 2, 0)]);
        await commitOk(c, [add(-300, -1, -1)]);
        const expected = { tenantId: t, bytes: 2_000_000_000_700, objects: 2, messages: 0 };
        expect(await c.usage(t)).toEqual(expected);
        expect(await c.foldUsage()).toBeGreaterThan(0);
        expect(await c.usage(t)).toEqual(expected);
        expect(await c.foldUsage()).toBe(0);
        await commitOk(c, [add(-2_000_000_001_000, -3, -2)]);
        expect(await c.usage(t)).toEqual({ tenantId: t, bytes: -300, objects: -1, messages: -2 });
        await c.foldUsage();
        expect(await c.usage(t)).toEqual({ tenantId: t, bytes: -300, objects: -1, messages: -2 });
        // Deltas that cancel out inside a batch leave the totals alone.
        await commitOk(c, [add(5, 5, 5), add(-5, -5, -5)]);
        expect(await c.usage(t)).toEqual({ tenantId: t, bytes: -300, objects: -1, messages: -2 });
        expectFailed(await commitOne(c, [add(0.5, 0, 0)]), "INVALID_ARGUMENT");
      });

      it("stays exact under 20 concurrent commits with folds in between", async () => {
        const t = tenant();
        let bytes = 0;
        let messages = 0;
        const commits = Array.from({ length: 20 }, (_, i) => {
          const ops: CatalogOp[] = [];
          for (let j = 0; j < 5; j++) {
            const b = (i * 31 + j * 7) % 23 === 0 ? -(i + j) : i * 100 + j;
            bytes += b;
            messages += 1;
            ops.push({ op: "addUsage", delta: { tenantId: t, bytes: b, objects: 0, messages: 1 } });
          }
          return c.commit([{ ops }]);
        });
        const folds = Array.from({ length: 5 }, () => c.foldUsage());
        const results = await Promise.all(commits);
        await Promise.all(folds);
        for (const r of results) expectAllOk(r);
        expect(await c.usage(t)).toEqual({ tenantId: t, bytes, objects: 0, messages });
        await c.foldUsage();
        expect(await c.usage(t)).toEqual({ tenantId: t, bytes, objects: 0, messages });
      });
    });

    // --- leases -------------------------------------------------------------------------------

    describe("leases", () => {
      it("a lease is held by one owner until it expires or is released", async () => {
        const name = `job-${randomBytes(4).toString("hex")}`;
        expect(await c.tryLease({ name, owner: "node-a", now: 1000, ttlMs: 500 })).toBe(true);
        expect(await c.tryLease({ name, owner: "node-b", now: 1100, ttlMs: 500 })).toBe(false);
        // The owner renews.
        expect(await c.tryLease({ name, owner: "node-a", now: 1400, ttlMs: 500 })).toBe(true);
        expect(await c.tryLease({ name, owner: "node-b", now: 1600, ttlMs: 500 })).toBe(false);
        // Expired (held until 1900): another owner takes it.
        expect(await c.tryLease({ name, owner: "node-b", now: 1900, ttlMs: 500 })).toBe(true);
        expect(await c.tryLease({ name, owner: "node-a", now: 2000, ttlMs: 500 })).toBe(false);
        // Only the owner's release frees it.
        await c.releaseLease({ name, owner: "node-a" });
        expect(await c.tryLease({ name, owner: "node-a", now: 2001, ttlMs: 500 })).toBe(false);
        await c.releaseLease({ name, owner: "node-b" });
        expect(await c.tryLease({ name, owner: "node-a", now: 2002, ttlMs: 500 })).toBe(true);
        await c.releaseLease({ name: "never-taken", owner: "node-a" });
      });

      it("concurrent attempts on a free lease: exactly one wins", async () => {
        const name = `race-${randomBytes(4).toString("hex")}`;
        const other = await h.open();
        try {
          const results = await Promise.all(
            Array.from({ length: 10 }, (_, i) =>
              (i % 2 === 0 ? c : other).tryLease({ name, owner: `node-${i}`, now: 5000, ttlMs: 1000 }),
            ),
          );
          expect(results.filter(Boolean)).toHaveLength(1);
        } finally {
          await other.close();
        }
      });

      it("fencing tokens rise with each new holder, and a batch checking a lost lease writes nothing", async () => {
        const name = `fence-${randomBytes(4).toString("hex")}`;
        const a = await c.takeLease({ name, owner: "node-a", now: 1000, ttlMs: 500 });
        expect(a).toBeTypeOf("number");
        // Renewal keeps the token; another owner is refused.
        expect(await c.takeLease({ name, owner: "node-a", now: 1200, ttlMs: 500 })).toBe(a);
        expect(await c.takeLease({ name, owner: "node-b", now: 1300, ttlMs: 500 })).toBeUndefined();
        const t = tenant();
        const check = (owner: string, token: number, now: number): CatalogOp => ({
          op: "checkLease",
          name,
          owner,
          token,
          now,
        });
        const audit = (n: number): CatalogOp => ({
          op: "appendAudit",
          entry: { tenantId: t, actor: "job", action: `fenced.${n}`, target: "x", at: n, details: {} },
        });
        await commitOk(c, [audit(1), check("node-a", a as number, 1300)]);
        // Expired (held until 1700), taken by node-b: a higher token; node-a's writes now fail whole.
        const b = await c.takeLease({ name, owner: "node-b", now: 1800, ttlMs: 500 });
        expect(b).toBeGreaterThan(a as number);
        expectFailed(await commitOne(c, [audit(2), check("node-a", a as number, 1800)]), "LEASE_LOST");
        expectFailed(await commitOne(c, [audit(3), check("node-b", a as number, 1800)]), "LEASE_LOST");
        await commitOk(c, [audit(4), check("node-b", b as number, 1800)]);
        // A release keeps the token: the next holder's is higher still.
        await c.releaseLease({ name, owner: "node-b" });
        expectFailed(await commitOne(c, [audit(5), check("node-b", b as number, 1900)]), "LEASE_LOST");
        const next = await c.takeLease({ name, owner: "node-a", now: 1900, ttlMs: 500 });
        expect(next).toBeGreaterThan(b as number);
        expect((await c.auditLog(t, { limit: 10 })).map((e) => e.action)).toEqual(["fenced.1", "fenced.4"]);
      });
    });

    // --- hostile input ------------------------------------------------------------------------

    describe("SQL metacharacters and unicode", () => {
      it("ids, keys and metadata are stored and read back verbatim", async () => {
        const t = tenant();
        const start = await outboxEnd(c);
        const metadata: Record<string, unknown> = Object.fromEntries(NASTY.map((s, i) => [s, { i, s }]));
        metadata.nul = "a\u0000b";
        const rows = NASTY.map((s) =>
          message(t, s, {
            role: s,
            contentType: s,
            preview: s,
            idempotencyKey: s,
            storeId: s,
            blobKey: `blob ${s}`,
            metadata,
          }),
        );
        await commitOk(c, rows.flatMap(appendOps));
        for (const r of rows) {
          expect(await c.getMessage(t, r.id)).toEqual(r);
          expect(await c.findMessageByIdempotencyKey(t, r.idempotencyKey as string)).toEqual(r);
          expect(await c.history(t, r.chatId, { order: "asc", limit: 10 })).toEqual([r]);
          expect(await c.getChat(t, r.chatId)).toBeDefined();
        }
        expect(await c.findMessageByIdempotencyKey(t, "%")).toEqual(
          rows.find((r) => r.idempotencyKey === "%"),
        );
        expect(await c.findMessageByIdempotencyKey(t, "_%")).toBeUndefined();

        const objects = NASTY.map((s) => objectRow(t, s, { contentType: s, storeId: s, blobKey: s }));
        await commitOk(
          c,
          objects.map((row) => ({ op: "putObject", row }) as CatalogOp),
        );
        for (const o of objects) expect(await c.getObject(t, o.key)).toEqual(o);
        expect((await c.listObjects(t, { prefix: "%", limit: 10 })).map((o) => o.key)).toEqual(["%"]);
        expect((await c.listObjects(t, { prefix: "_", limit: 10 })).map((o) => o.key)).toEqual(["_"]);
        expect((await c.listObjects(t, { prefix: "'", limit: 10 })).map((o) => o.key)).toEqual([
          "'; DROP TABLE messages; --",
        ]);

        for (const s of NASTY) {
          expect(await c.existingBlobRefs(s, [`blob ${s}`, "%", "_"])).toEqual(new Set([`blob ${s}`]));
          const consumer = `consumer ${s}`;
          const end = (await outboxEnd(c)) as string;
          await c.setConsumerCursor(consumer, end);
          expect(await c.getConsumerCursor(consumer)).toBe(end);
          expect(await c.tryLease({ name: `lease ${s}`, owner: s, now: 1, ttlMs: 10 })).toBe(true);
          expect(await c.tryLease({ name: `lease ${s}`, owner: `${s}x`, now: 2, ttlMs: 10 })).toBe(false);
          await c.releaseLease({ name: `lease ${s}`, owner: s });
        }

        await commitOk(c, [
          {
            op: "appendAudit",
            entry: {
              tenantId: t,
              actor: NASTY[0],
              action: NASTY[1],
              target: NASTY[2],
              at: 1,
              details: metadata,
            },
          },
          {
            op: "appendOutbox",
            event: { tenantId: t, type: NASTY[9], entityId: NASTY[10], payload: metadata, createdAt: 1 },
          },
        ]);
        expect(await c.auditLog(t, { limit: 1 })).toEqual([
          { tenantId: t, actor: NASTY[0], action: NASTY[1], target: NASTY[2], at: 1, details: metadata },
        ]);
        const events = await eventsOf(c, start, t, rows.length + 1, 500);
        expect(events[events.length - 1]).toMatchObject({
          tenantId: t,
          type: NASTY[9],
          entityId: NASTY[10],
          payload: metadata,
        });
        // Every table is still there.
        expect(await c.countMessages(t, NASTY[0])).toBe(1);
        expect(await c.schemaVersion()).toBe(LATEST_VERSION);
      });
    });

    // --- concurrency and lifecycle ------------------------------------------------------------

    describe("concurrency and lifecycle", () => {
      it("20 concurrent commits all land, complete and in order", async () => {
        const t = tenant();
        const start = await outboxEnd(c);
        const perCommit = 10;
        const rowsByCommit = Array.from({ length: 20 }, () =>
          Array.from({ length: perCommit }, () => message(t, "busy")),
        );
        const results = await Promise.all(
          rowsByCommit.map((rows, i) =>
            i % 2 === 0
              ? c.commit([{ ops: rows.flatMap(appendOps) }])
              : c.commit(rows.map((r) => ({ ops: appendOps(r) }))),
          ),
        );
        for (const r of results) expectAllOk(r);
        const all = rowsByCommit.flat();
        expect(await c.countMessages(t, "busy")).toBe(all.length);
        const hist = await c.history(t, "busy", { order: "asc", limit: 1000 });
        expect(hist).toEqual([...all].sort(byHistory));
        expect((await c.getChat(t, "busy"))?.lastMessageAt).toBe(Math.max(...all.map((r) => r.createdAt)));
        expect(await c.usage(t)).toEqual({
          tenantId: t,
          bytes: 42 * all.length,
          objects: all.length,
          messages: all.length,
        });
        const events = await eventsOf(c, start, t, all.length, 64);
        expect(new Set(events.map((e) => e.entityId))).toEqual(new Set(all.map((r) => r.id)));
        expect(events).toHaveLength(all.length);
        // Within one commit, events keep their order.
        for (const rows of rowsByCommit) {
          const positions = rows.map((r) => events.findIndex((e) => e.entityId === r.id));
          expect([...positions].sort((a, b) => a - b)).toEqual(positions);
        }
      });

      it("ping answers; a closed catalog refuses reads and fails commits", async () => {
        const other = await h.open();
        await other.ping();
        expect(other.capabilities.multiProcess).toBeTypeOf("boolean");
        await other.close();
        await other.close();
        await expectKuraError(other.ping(), "CLOSED");
        await expectKuraError(other.getMessage("t", "x"), "CLOSED");
        const outcomes = await other.commit([{ ops: [{ op: "ensureTenant", tenantId: "t", at: 1 }] }]);
        expectFailed(outcomes[0], "CLOSED");
      });
    });
  });
}
