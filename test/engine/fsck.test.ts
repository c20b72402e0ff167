/**
 * CONS-3: `kura.fsck()` finds every injected fault — a deleted message body, flipped bytes in
 * an object's and a message's body, an orphan body, a dropped full-text row, a wrong usage
 * counter, a dropped memory vector — repairs them, and a second run is clean; reads of the messages whose bodies cannot
 * be recovered answer BODY_MISSING / BODY_CORRUPT. On SQLite + fs, and on PostgreSQL + fs when
 * the test server is available. Real backends throughout: faults are made in the files and
 * databases themselves.
 */
import { existsSync } from "node:fs";
import { open } from "node:fs/promises";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { objectFile } from "../../src/adapters/blob/fs/layout.js";
import { isKuraError } from "../../src/core/errors.js";
import type { Kura } from "../../src/kura.js";
import { backendAvailable } from "../support/backends.js";
import { type TestKuraFactory, testKura } from "../support/kura.js";
import { postgresForTests } from "../support/servers/postgres.js";

const db = await postgresForTests();
const pgAvailable = backendAvailable("fsck-postgres", "problem" in db ? db.problem : undefined);

/** Flips one byte of a stored body in its file (the first byte: the body, not the footer). */
async function flipByte(base: string, key: string): Promise<void> {
  const file = objectFile(base, key);
  const handle = await open(file, "r+");
  try {
    const one = Buffer.alloc(1);
    await handle.read(one, 0, 1, 0);
    one[0] = (one[0] as number) ^ 0xff;
    await handle.write(one, 0, 1, 0);
  } finally {
    await handle.close();
  }
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (isKuraError(e)) return e.code;
    throw e;
  }
  return "OK";
}

function fsckSuite(backend: "sqlite" | "postgres") {
  describe(`fsck on ${backend} + fs`, () => {
    let factory: TestKuraFactory;
    let kura: Kura;
    const ids: string[] = [];
    const memoryIds: string[] = [];

    beforeAll(async () => {
      factory = await testKura(backend, async () =>
        "url" in db ? { url: db.url, drop: () => db.destroy() } : undefined,
      );
      kura = await factory.open();
      const t = kura.tenant("acme");
      for (let i = 0; i < 6; i++) {
        const m = await t.messages.append("c", { role: "user", content: `message number ${i} pelican${i}` });
        ids.push(m.id);
      }
      await t.objects.put("docs/a.txt", Buffer.from("an object body"));
      await kura.tenant("beta").messages.append("d", { role: "user", content: "other tenant" });
      for (const content of ["likes green tea", "lives in Osaka"])
        memoryIds.push((await t.memories.put("u1", { content })).memoryId);
      await kura.pumpOutbox();
    });
    afterAll(async () => {
      await kura?.close();
      await factory?.cleanup();
    });

    it("finds nothing wrong in a store written through Kura", async () => {
      const report = await kura.fsck({ graceMs: 0 });
      expect(report.problems).toEqual({
        missing_objects: 0,
        orphan_objects: 0,
        checksum_mismatches: 0,
        index_drift: 0,
        usage_drift: 0,
        outbox: 0,
      });
      expect(report.ok).toBe(true);
      expect(report.checked.bodies).toBe(8);
      expect(report.checked.messages).toBe(7);
      expect(report.checked.search_documents).toBe(7);
      expect(report.checked.tenants).toBe(2);
      expect(report.checked.memory_vectors).toBe(2);
    });

    it("finds every injected fault, repairs them, and a second run is clean", async () => {
      const base = join(factory.dir, "blobs");
      const rows = await kura.catalog.getMessages("acme", ids);
      const row = (id: string) => rows.find((r) => r.id === id) as (typeof rows)[number];
      const object = await kura.catalog.getObject("acme", "docs/a.txt");
      // 1. a deleted message body
      await kura.store.delete([row(ids[0] as string).blobKey]);
      // 2. and 3. a flipped byte in a message body and in an object body
      await flipByte(base, row(ids[1] as string).blobKey);
      await flipByte(base, object?.blobKey as string);
      // 4. an orphan body
      await kura.store.put(
        "acme/messages/2020/01/01/c/0190a000-0000-7000-8000-000000000000.json",
        Buffer.from("{}"),
      );
      // 5. a dropped full-text row
      const search = new Database(join(factory.dir, "search.db"));
      try {
        expect(search.prepare("DELETE FROM search_docs WHERE id = ?").run(ids[2]).changes).toBe(1);
      } finally {
        search.close();
      }
      // 6. a wrong usage counter
      const [outcome] = await kura.catalog.commit([
        { ops: [{ op: "addUsage", delta: { tenantId: "beta", bytes: 100, objects: 1, messages: 0 } }] },
      ]);
      expect(outcome?.ok).toBe(true);
      // 7. a dropped memory vector, from the index's own store of record
      await kura.vectors.memories().remove("acme", [`u1/${memoryIds[0]}`]);
      await kura.vectors.memories().save();

      // Caches forgotten: the reads below go to the planes.
      await kura.close();
      kura = await factory.open();

      const found = await kura.fsck({ graceMs: 0 });
      expect(found.problems).toEqual({
        missing_objects: 1,
        orphan_objects: 1,
        checksum_mismatches: 2,
        index_drift: 2,
        usage_drift: 1,
        outbox: 0,
      });
      expect(found.ok).toBe(false);
      expect(found.remaining).toBe(7);
      expect(found.samples.find((s) => s.problem === "missing_object")?.message_id).toBe(ids[0]);
      expect(found.samples.find((s) => s.problem === "index_drift")?.message_id).toBe(ids[2]);
      expect(found.samples.find((s) => s.problem === "usage_drift")?.tenant_id).toBe("beta");

      // Reads of the damaged messages answer their own codes, never a generic error.
      const acme = kura.tenant("acme");
      expect(await codeOf(acme.messages.get(ids[0] as string))).toBe("BODY_MISSING");
      expect(await codeOf(acme.messages.get(ids[1] as string))).toBe("BODY_CORRUPT");
      expect(await codeOf(acme.messages.get(ids[3] as string))).toBe("OK");

      const repaired = await kura.fsck({ graceMs: 0, repair: true });
      expect(repaired.problems).toEqual(found.problems);
      expect(repaired.remaining).toBe(0);
      expect(repaired.repairs).toMatchObject({
        marked_missing: 1,
        marked_corrupt: 2,
        orphans_deleted: 1,
        reindexed: 2,
        usage_fixed: 1,
      });

      const again = await kura.fsck({ graceMs: 0 });
      expect(again.ok).toBe(true);
      expect(again.remaining).toBe(0);
      expect(again.checked.known_missing).toBe(1);
      expect(again.checked.known_corrupt).toBe(2);
      // The repairs hold: the message is searchable again, usage is exact, the orphan is gone.
      const hits = await acme.search("pelican2", { consistent: true });
      expect(hits.hits.map((h) => h.id)).toEqual([ids[2]]);
      expect((await kura.tenant("beta").usage()).objects).toBe(1);
      expect(await kura.vectors.memories().count("acme")).toBe(2);
      const [near] = await acme.memories.search("u1", { query: "likes green tea", k: 1 });
      expect(near?.memory.memoryId).toBe(memoryIds[0]);
      expect(
        existsSync(objectFile(base, "acme/messages/2020/01/01/c/0190a000-0000-7000-8000-000000000000.json")),
      ).toBe(false);
      // Still unreadable, still listed in history.
      expect(await codeOf(acme.messages.get(ids[0] as string))).toBe("BODY_MISSING");
      expect(await codeOf(acme.messages.get(ids[1] as string))).toBe("BODY_CORRUPT");
      const history = await acme.messages.history("c", { limit: 10 });
      expect(history.items.map((m) => m.id)).toContain(ids[0]);
    });

    it("drops the mark of a body that reads back whole again", async () => {
      const rows = await kura.catalog.getMessages("acme", [ids[1] as string]);
      await flipByte(join(factory.dir, "blobs"), rows[0]?.blobKey as string);
      const report = await kura.fsck({ graceMs: 0, repair: true });
      expect(report.repairs.marks_cleared).toBe(1);
      expect(report.checked.known_corrupt).toBe(1);
      expect(await codeOf(kura.tenant("acme").messages.get(ids[1] as string))).toBe("OK");
      // The message whose body is lost is erased: its mark goes with the next repair.
      await kura.tenant("acme").messages.erase(ids[0] as string);
      const erased = await kura.fsck({ graceMs: 0, repair: true });
      expect(erased.ok).toBe(true);
      expect(erased.repairs.marks_cleared).toBe(1);
      expect((await kura.fsck({ graceMs: 0 })).checked.known_missing).toBe(0);
    });
  });
}

fsckSuite("sqlite");
describe.skipIf(!pgAvailable)("PostgreSQL", () => {
  fsckSuite("postgres");
});

describe("fsck beside a write load (SQLite + fs)", () => {
  let factory: TestKuraFactory;
  let kura: Kura;
  beforeAll(async () => {
    factory = await testKura("sqlite");
    kura = await factory.open();
  });
  afterAll(async () => {
    await kura?.close();
    await factory?.cleanup();
  });

  it("counts no write under way as an orphan or drift, and deletes none of their bodies", {
    timeout: 120_000,
  }, async () => {
    const t = kura.tenant("acme");
    const appended: string[] = [];
    const failures: string[] = [];
    let stop = false;
    const writers = Array.from({ length: 8 }, async (_, w) => {
      for (let i = 0; !stop; i++) {
        try {
          const m = await t.messages.append(`c${w}`, { role: "user", content: `load ${w} ${i}` });
          appended.push(m.id);
          if (i % 5 === 0) await t.objects.put(`w${w}/o${i}.txt`, Buffer.from(`object ${w} ${i}`));
        } catch (e) {
          failures.push(e instanceof Error ? `${(e as { code?: string }).code}: ${e.message}` : String(e));
          return;
        }
      }
    });
    const reports = [];
    try {
      // Grace 0 and repair: every unreferenced body found would be deleted at once.
      // Until the writers have stored a few hundred messages while the runs went on.
      for (let run = 0; run < 4 || (appended.length < 400 && run < 200); run++)
        reports.push(await kura.fsck({ graceMs: 0, repair: true }));
    } finally {
      stop = true;
      await Promise.all(writers);
    }
    expect(failures).toEqual([]);
    for (const r of reports) {
      expect(r.problems, JSON.stringify(r.samples.slice(0, 3))).toEqual({
        missing_objects: 0,
        orphan_objects: 0,
        checksum_mismatches: 0,
        index_drift: 0,
        usage_drift: 0,
        outbox: 0,
      });
    }
    expect(appended.length).toBeGreaterThanOrEqual(400);
    // Every acknowledged write is whole: nothing of theirs was taken for an orphan.
    const { items, missing } = await t.messages.getMany(appended.slice(-1000));
    expect(missing).toEqual([]);
    expect(items).toHaveLength(Math.min(1000, appended.length));
    await kura.pumpOutbox();
    const after = await kura.fsck({ graceMs: 0 });
    expect(after.ok).toBe(true);
    expect(after.checked.messages).toBe(appended.length);
  });
});

describe("fsck of message embeddings (vector.embed_messages, SQLite + fs)", () => {
  let factory: TestKuraFactory;
  let kura: Kura;
  beforeAll(async () => {
    factory = await testKura("sqlite");
    // The embeddings projector in its worker thread, which owns the `messages` index.
    kura = await factory.open({ config: { vector: { dimensions: 32, embed_messages: true } } });
  });
  afterAll(async () => {
    await kura?.close();
    await factory?.cleanup();
  });

  it("finds an embedding a live message lacks and one of an erased message, repairs both, and is clean after", async () => {
    const t = kura.tenant("acme");
    const ids: string[] = [];
    for (let i = 0; i < 5; i++)
      ids.push((await t.messages.append("c", { role: "user", content: `heron number ${i}` })).id);
    const erased = (await t.messages.append("c", { role: "user", content: "to be erased" })).id;
    await kura.pumpOutbox();
    const clean = await kura.fsck();
    expect(clean.ok, JSON.stringify(clean.samples)).toBe(true);
    expect(clean.checked.message_vectors).toBe(6);

    const index = kura.vectors.messages?.index;
    if (!index) throw new Error("messages are embedded");
    const stale = (await index.query({ tenantId: "acme", vector: new Array(32).fill(0.1), k: 10 })).length;
    expect(stale).toBe(6);
    await t.messages.erase(erased);
    await kura.pumpOutbox();
    // Faults made in the index itself: a live message's embedding dropped, an erased one's back.
    await index.remove("acme", [ids[2] as string]);
    await index.upsert([{ tenantId: "acme", id: erased, vector: new Array(32).fill(0.5) }]);
    await index.save();

    const found = await kura.fsck();
    expect(found.ok).toBe(false);
    expect(found.problems.index_drift).toBe(2);
    expect(found.samples.map((s) => [s.problem, s.message_id, s.detail]).sort()).toEqual(
      [
        ["index_drift", ids[2], "a live message is missing from the message embeddings"],
        ["index_drift", erased, "the message embeddings hold a message that is deleted or gone"],
      ].sort(),
    );
    expect(await index.existing("acme", [ids[2] as string, erased])).toEqual(new Set([erased]));

    const repaired = await kura.fsck({ repair: true });
    expect(repaired.problems.index_drift).toBe(2);
    expect(repaired.repairs.reindexed).toBe(2);
    expect(await index.existing("acme", [ids[2] as string, erased])).toEqual(new Set([ids[2]]));
    const again = await kura.fsck();
    expect(again.ok, JSON.stringify(again.samples)).toBe(true);
    expect(again.checked.message_vectors).toBe(5);
  });
});
