/**
 * The lifecycle engine (LIFE-1) through `Kura.open` with an injected clock: TTL expiry, purge
 * after retention, the archive (bodies under `{tenant}/archive/`, read back as before), legal
 * holds keeping data from purge, expiry and erase, dry runs that change nothing, and runs that
 * happen once across two instances on one PostgreSQL database.
 */
import { afterAll, afterEach, beforeEach, describe, expect, it } from "vitest";
import { isKuraError } from "../../src/core/errors.js";
import { LruCache } from "../../src/engine/lru-cache.js";
import type { Kura } from "../../src/kura.js";
import type { MessageRow } from "../../src/ports/catalog.js";
import { backendAvailable } from "../support/backends.js";
import { type TestKuraFactory, testKura } from "../support/kura.js";
import { postgresForTests } from "../support/servers/postgres.js";

const DAY = 86_400_000;
const START = Date.UTC(2026, 0, 15, 12);

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (isKuraError(e)) return e.code;
    throw e;
  }
  return "ok";
}

/** Every stored body key under `prefix`. */
async function keys(kura: Kura, prefix: string): Promise<string[]> {
  return (await kura.store.list(prefix)).items.map((i) => i.key).sort();
}

describe("lifecycle on SQLite + fs", () => {
  let factory: TestKuraFactory;
  let kura: Kura;
  let now = START;

  beforeEach(async () => {
    now = START;
    factory = await testKura("sqlite");
    kura = await factory.open({
      clock: () => now,
      projectors: "inline",
      config: { retention: { deleted_messages_days: 30, archive_after_days: 90, session_files_days: 7 } },
    });
  });
  afterEach(async () => {
    await kura.close();
    await factory.cleanup();
  });

  it("expires messages whose TTL ran out, and purges soft-deleted ones only after retention", async () => {
    const t = kura.tenant("acme");
    const short = await t.messages.append("c1", { role: "user", content: "short-lived", ttlSeconds: 60 });
    const gone = await t.messages.append("c1", { role: "user", content: "deleted" });
    const keep = await t.messages.append("c1", { role: "user", content: "kept" });
    await t.messages.delete(gone.id);
    now += 2 * 60_000;
    let report = await kura.runLifecycle();
    expect(report.counts).toMatchObject({ messagesExpired: 1, messagesPurged: 0, held: 0 });
    expect(await code(t.messages.get(short.id))).toBe("MESSAGE_NOT_FOUND");
    now = START + 29 * DAY;
    expect((await kura.runLifecycle()).counts.messagesPurged).toBe(0);
    expect(await code(t.messages.undelete(gone.id))).toBe("ok");
    await t.messages.delete(gone.id);
    now = START + 60 * DAY;
    report = await kura.runLifecycle();
    expect(report.counts.messagesPurged).toBe(1);
    expect(await code(t.messages.undelete(gone.id))).toBe("MESSAGE_NOT_FOUND");
    expect((await t.messages.get(keep.id)).content).toBe("kept");
    // Only the kept message's body is left, and usage counts it alone.
    expect(await keys(kura, "acme/messages/")).toEqual([keep.contentUrl.replace("local://storage/", "")]);
    expect(await t.usage()).toMatchObject({ messages: 1, objects: 1, bytes: keep.sizeBytes });
    const actions = (await t.audit({ limit: 100 })).map((a) => a.action);
    expect(actions).toContain("message.expired");
    expect(actions).toContain("message.purged");
  });

  it("archives message bodies (every version) and object bodies under {tenant}/archive/, which still read back", async () => {
    const t = kura.tenant("acme");
    const m = await t.messages.append("c1", { role: "user", content: "first words 会議" });
    await t.messages.edit(m.id, "second words 東京");
    const fresh = await t.messages.append("c2", { role: "user", content: "too recent" });
    now = START + 50 * DAY;
    const late = await t.messages.append("c2", { role: "user", content: "later" });
    await t.objects.put("docs/report.txt", Buffer.from("object body"), { contentType: "text/plain" });
    const usage = await t.usage();
    now = START + 91 * DAY;

    const dry = await kura.runLifecycle({ dryRun: true });
    expect(dry).toMatchObject({ dryRun: true, counts: { messagesArchived: 2, objectsArchived: 0 } });
    expect(await keys(kura, "acme/archive/")).toEqual([]);

    const report = await kura.runLifecycle();
    expect(report.counts).toMatchObject({ messagesArchived: 2, objectsArchived: 0, failed: 0 });
    // The old bodies are gone, the archived ones under {tenant}/archive/messages/… with their dates.
    const archived = await keys(kura, "acme/archive/");
    expect(archived).toHaveLength(3);
    for (const k of archived) expect(k).toMatch(/^acme\/archive\/messages\/2026\/01\/15\/c[12]\//);
    expect(await keys(kura, "acme/messages/")).toEqual([late.contentUrl.replace("local://storage/", "")]);
    const got = await t.messages.get(m.id);
    expect(got.content).toBe("second words 東京");
    expect(got.contentUrl).toContain("/acme/archive/messages/");
    expect(got.version).toBe(2);
    expect(await t.messages.versionContent(m.id, 1)).toBe("first words 会議");
    expect((await t.messages.get(fresh.id)).content).toBe("too recent");
    const history = await t.messages.history("c1", { includeContent: true });
    expect(history.items.map((i) => ("content" in i ? i.content : undefined))).toEqual(["second words 東京"]);
    expect(await t.usage()).toEqual(usage);
    expect((await t.audit({ limit: 100 })).filter((a) => a.action === "message.archive")).toHaveLength(3);
    // Search still finds the archived message (its content is unchanged: no re-projection needed).
    await kura.pumpOutbox();
    expect((await t.search("second")).hits).toHaveLength(1);
    // Archived bodies are not due again; the object follows once it is old enough.
    now = START + 141 * DAY;
    const again = await kura.runLifecycle();
    expect(again.counts).toMatchObject({ messagesArchived: 1, objectsArchived: 1 });
    const object = await t.objects.getBuffer("docs/report.txt");
    expect(object.data.toString()).toBe("object body");
    expect(object.info.contentUrl).toContain("/acme/archive/objects/docs/report.txt@");
    expect(await keys(kura, "acme/objects/")).toEqual([]);
    expect(await t.usage()).toEqual(usage);
    // Orphan GC keeps archived bodies: they have refs.
    await kura.runJobs(now + DAY);
    expect(await keys(kura, "acme/archive/")).toHaveLength(5);
    expect((await t.messages.get(late.id)).content).toBe("later");
  });

  it("legal holds keep messages from purge, expiry and erase; soft delete still works", async () => {
    const t = kura.tenant("acme");
    const other = kura.tenant("other");
    const byChat = await t.messages.append("held-chat", { role: "user", content: "chat hold" });
    const byUser = await t.messages.append("c1", {
      role: "user",
      content: "user hold",
      metadata: { user_id: "u-7" },
    });
    const byId = await t.messages.append("c1", { role: "user", content: "message hold", ttlSeconds: 60 });
    const free = await t.messages.append("c1", { role: "user", content: "free" });
    const theirs = await other.messages.append("held-chat", { role: "user", content: "other tenant" });
    const holds = [
      await t.legalHolds.create({ chatId: "held-chat", reason: "case 1" }),
      await t.legalHolds.create({ userId: "u-7", reason: "case 2" }),
      await t.legalHolds.create({ messageId: byId.id, reason: "case 3" }),
    ];
    expect((await t.legalHolds.list()).items.map((h) => h.id)).toEqual(holds.map((h) => h.id));
    expect((await other.legalHolds.list()).items).toEqual([]);
    expect(await code(other.legalHolds.get(holds[0]?.id as string))).toBe("LEGAL_HOLD_NOT_FOUND");

    for (const m of [byChat, byUser, free]) await t.messages.delete(m.id);
    await other.messages.delete(theirs.id);
    expect(await code(t.messages.erase(byChat.id))).toBe("LEGAL_HOLD");
    expect(await code(t.messages.erase(byUser.id))).toBe("LEGAL_HOLD");
    expect(await code(t.messages.erase(byId.id))).toBe("LEGAL_HOLD");
    now = START + 31 * DAY;
    const report = await kura.runLifecycle();
    expect(report.counts).toMatchObject({ messagesPurged: 2, messagesExpired: 0, held: 3 });
    // The held ones are still stored (hidden: deleted or expired), the free ones gone.
    for (const m of [byChat, byUser, byId])
      expect((await kura.catalog.getMessage("acme", m.id))?.id).toBe(m.id);
    expect(await kura.catalog.getMessage("acme", free.id)).toBeUndefined();
    expect(await kura.catalog.getMessage("other", theirs.id)).toBeUndefined();
    expect(await t.messages.purge()).toBe(0);

    // A removed hold frees what it held.
    for (const h of holds) await t.legalHolds.delete(h.id);
    expect(await code(t.legalHolds.delete(holds[0]?.id as string))).toBe("LEGAL_HOLD_NOT_FOUND");
    const after = await kura.runLifecycle();
    expect(after.counts).toMatchObject({ messagesPurged: 2, messagesExpired: 1, held: 0 });
    const actions = (await t.audit({ limit: 200 })).map((a) => a.action);
    expect(actions.filter((a) => a === "legal_hold.create")).toHaveLength(3);
    expect(actions.filter((a) => a === "legal_hold.delete")).toHaveLength(3);
  });

  it("a dry run reports what a run would do and changes nothing", async () => {
    const t = kura.tenant("acme");
    await t.messages.append("c1", { role: "user", content: "ttl", ttlSeconds: 1 });
    const d = await t.messages.append("c1", { role: "user", content: "deleted" });
    await t.messages.delete(d.id);
    await t.sessions.putFile("s1", "a.txt", Buffer.from("a"));
    now = START + 100 * DAY;
    const before = {
      audit: await t.audit({ limit: 1000 }),
      usage: await t.usage(),
      blobs: await keys(kura, ""),
      files: await t.sessions.listFiles("s1"),
    };
    const dry = await kura.runLifecycle({ dryRun: true });
    expect(dry.counts).toEqual({
      messagesExpired: 1,
      messagesPurged: 1,
      messagesArchived: 0,
      objectsArchived: 0,
      kvExpired: null,
      sessionFilesExpired: 1,
      held: 0,
      failed: 0,
    });
    expect({
      audit: await t.audit({ limit: 1000 }),
      usage: await t.usage(),
      blobs: await keys(kura, ""),
      files: await t.sessions.listFiles("s1"),
    }).toEqual(before);
    const real = await kura.runLifecycle();
    expect(real.counts).toMatchObject({ messagesExpired: 1, messagesPurged: 1, sessionFilesExpired: 1 });
    expect(await t.sessions.listFiles("s1")).toEqual([]);
  });
});

describe("reads racing the archive", () => {
  it("a read that holds the row from before the move reads the moved body", async () => {
    const factory = await testKura("sqlite");
    let now = START;
    /** A row the next getMessage of its id answers instead of the current one. */
    let stale: MessageRow | undefined;
    const kura = await factory.open({
      clock: () => now,
      projectors: "inline",
      // No body cache: every read goes to the store.
      cache: new LruCache(0, 0),
      config: { retention: { archive_after_days: 1 } },
      wrapCatalog: (c) =>
        new Proxy(c, {
          get(target, prop) {
            if (prop === "getMessage")
              return async (tenantId: string, id: string) => {
                if (stale?.id === id) {
                  const row = stale;
                  stale = undefined;
                  return row;
                }
                return target.getMessage(tenantId, id);
              };
            const value = Reflect.get(target, prop, target);
            return typeof value === "function" ? value.bind(target) : value;
          },
        }),
    });
    try {
      const t = kura.tenant("acme");
      const m = await t.messages.append("c1", { role: "user", content: "moved while read" });
      const before = await kura.catalog.getMessage("acme", m.id);
      now += 2 * DAY;
      expect((await kura.runLifecycle()).counts.messagesArchived).toBe(1);
      stale = before;
      expect((await t.messages.get(m.id)).content).toBe("moved while read");
      stale = before;
      expect((await t.messages.getMany([m.id])).items[0]?.content).toBe("moved while read");
    } finally {
      await kura.close();
      await factory.cleanup();
    }
  });
});

const db = await postgresForTests();
const available = backendAvailable("lifecycle-postgres", "problem" in db ? db.problem : undefined);

describe.skipIf(!available)("lifecycle on PostgreSQL: two instances, one catalog", () => {
  afterAll(async () => {
    if ("destroy" in db) await db.destroy();
  });

  it("each message is purged once, whichever instance runs, however they overlap", async () => {
    const factory = await testKura("postgres", async () =>
      "url" in db ? { url: db.url, drop: async () => {} } : undefined,
    );
    let now = START;
    const config = { retention: { deleted_messages_days: 0 } };
    const a = await factory.open({ clock: () => now, config, projectors: "inline" });
    const b = await factory.open({ clock: () => now, config, projectors: "inline" });
    try {
      const t = a.tenant("acme");
      const ids: string[] = [];
      for (let i = 0; i < 30; i++) {
        const m = await t.messages.append("c1", { role: "user", content: `m${i}` });
        await t.messages.delete(m.id);
        ids.push(m.id);
      }
      now += 1000;
      // The jobs of both instances at once: the lease lets one run at a time.
      const [ra, rb] = await Promise.all([a.runJobs(now), b.runJobs(now)]);
      const runs = [...ra, ...rb].filter((r) => r.name === "lifecycle");
      expect(runs.every((r) => r.error === undefined)).toBe(true);
      const purged = runs.reduce((n, r) => n + (r.result?.messagesPurged ?? 0), 0);
      // On demand beside them: a run either finds the lease taken or nothing left to do.
      const manual = await Promise.all([
        a.runLifecycle().catch((e: unknown) => (isKuraError(e) ? e.code : e)),
        b.runLifecycle().catch((e: unknown) => (isKuraError(e) ? e.code : e)),
      ]);
      for (const r of manual) {
        if (typeof r === "string") expect(r).toBe("LIFECYCLE_RUNNING");
        else expect((r as { counts: { messagesPurged: number } }).counts.messagesPurged).toBe(0);
      }
      expect(purged).toBe(30);
      const audit = (await t.audit({ limit: 1000 })).filter((e) => e.action === "message.purged");
      expect(audit.map((e) => e.target).sort()).toEqual([...ids].sort());
      expect(await t.usage()).toMatchObject({ messages: 0, objects: 0, bytes: 0 });
    } finally {
      await a.close();
      await b.close();
      await factory.cleanup();
    }
  });
});
