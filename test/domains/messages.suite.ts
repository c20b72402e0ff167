/**
 * Messages and objects through the library API, run on each catalog backend.
 */
import { createHash } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { collect } from "../../src/core/checksum.js";
import { isKuraError } from "../../src/core/errors.js";
import type { Kura } from "../../src/kura.js";
import { FaultController, withFaults } from "../../src/layers/fault-injection.js";
import type { OutboxRecord } from "../../src/ports/catalog.js";
import type { TestKuraFactory } from "../support/kura.js";

const sha = (s: string) => createHash("sha256").update(s).digest("hex");
const DAY = 86_400_000;
const contentOf = (m: object): unknown => ("content" in m ? m.content : undefined);
const nestedValue = (depth: number): unknown => {
  let v: unknown = 1;
  for (let i = 0; i < depth; i++) v = { v };
  return v;
};

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (isKuraError(e)) return e.code;
    throw e;
  }
  return "OK";
}

export function messagesSuite(label: string, makeFactory: () => Promise<TestKuraFactory | undefined>): void {
  describe(`messages and objects on ${label}`, () => {
    let f: TestKuraFactory;
    let kura: Kura;
    let now = Date.UTC(2026, 10, 23, 12, 0, 0);
    const clock = () => now;

    beforeAll(async () => {
      f = (await makeFactory()) as TestKuraFactory;
      kura = await f.open({ clock, orphanGraceMs: 3_600_000 });
    });
    afterAll(async () => {
      await kura?.close();
      await f?.cleanup();
    });

    it("lists the tenant's chats a page at a time and its audit log, and nothing of another tenant", async () => {
      const t = kura.tenant("chats-list");
      for (const chat of ["c-b", "c-a", "c-c"])
        await t.messages.append(chat, { role: "user", content: chat });
      await kura.tenant("chats-other").messages.append("c-z", { role: "user", content: "z" });
      const first = await t.chats.list({ limit: 2 });
      expect(first.items.map((c) => c.chatId)).toEqual(["c-a", "c-b"]);
      expect(first.items[0]?.createdAt).toMatch(/^\d{4}-\d\d-\d\dT/);
      const second = await t.chats.list({ limit: 2, cursor: first.nextCursor as string });
      expect(second.items.map((c) => c.chatId)).toEqual(["c-c"]);
      expect(second.nextCursor).toBeUndefined();
      expect(await code(t.chats.list({ cursor: "bogus" }))).toBe("CURSOR_INVALID");
      expect(await code(t.chats.list({ limit: 0 }))).toBe("INVALID_ARGUMENT");
      const audit = await t.audit();
      expect(audit.map((e) => e.action)).toEqual(["message.append", "message.append", "message.append"]);
      expect(audit.every((e) => e.tenantId === "chats-list")).toBe(true);
    });

    it("appends a message: body object in the seed shape, index row, content URL", async () => {
      const t = kura.tenant("acme");
      const ref = await t.messages.append("chat-1", {
        role: "user",
        content: "Hello, 東京!",
        metadata: { source: "web" },
      });
      expect(ref.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7/);
      expect(ref).toMatchObject({
        chatId: "chat-1",
        role: "user",
        preview: "Hello, 東京!",
        contentType: "text/plain",
        version: 1,
      });
      expect(ref.contentUrl).toBe(`local://storage/acme/messages/2026/11/23/chat-1/${ref.id}.json`);
      const raw = JSON.parse((await t.readUrl(ref.contentUrl)).toString());
      expect(raw).toEqual({
        content: "Hello, 東京!",
        metadata: expect.objectContaining({
          chat_id: "chat-1",
          message_id: ref.id,
          original_size: Buffer.byteLength("Hello, 東京!"),
        }),
        created_at: new Date(now).toISOString(),
      });
      expect(ref.checksum).toBe(sha(JSON.stringify(raw)));
      const got = await t.messages.get(ref.id);
      expect(got.content).toBe("Hello, 東京!");
      expect(got.metadata).toEqual({ source: "web" });
      expect(await t.messages.count("chat-1")).toBe(1);
    });

    it("records who acted in the audit log (SEC-3)", async () => {
      const t = kura.tenant("audit", { actor: "user:alice" });
      const ref = await t.messages.append("c", { role: "user", content: "audited" });
      await t.messages.edit(ref.id, "audited again");
      await t.messages.delete(ref.id);
      await kura.tenant("audit").messages.erase(ref.id);
      const log = await kura.catalog.auditLog("audit", { limit: 10 });
      expect(log.map((e) => [e.action, e.actor])).toEqual(
        expect.arrayContaining([
          ["message.append", "user:alice"],
          ["message.edit", "user:alice"],
          ["messages.delete", "user:alice"],
          ["message.erased", "system"],
        ]),
      );
      expect(() => kura.tenant("audit", { actor: "bad actor\n" })).toThrow(
        expect.objectContaining({ code: "INVALID_ARGUMENT" }),
      );
    });

    it("returns the first result for a retried idempotency key, even under concurrency", async () => {
      const t = kura.tenant("idem");
      const first = await t.messages.append("c", { role: "user", content: "once", idempotencyKey: "req-1" });
      const again = await t.messages.append("c", { role: "user", content: "once", idempotencyKey: "req-1" });
      expect(again.id).toBe(first.id);
      const racers = await Promise.all(
        Array.from({ length: 8 }, () =>
          t.messages.append("c", { role: "user", content: "race", idempotencyKey: "req-2" }),
        ),
      );
      expect(new Set(racers.map((r) => r.id)).size).toBe(1);
      expect(await t.messages.count("c")).toBe(2);
      expect(
        await code(t.messages.append("other", { role: "user", content: "x", idempotencyKey: "req-1" })),
      ).toBe("IDEMPOTENCY_CONFLICT");
      // The losers' bodies were removed: only the two winners' objects exist.
      const objects = await kura.store.list("idem/messages/");
      expect(objects.items).toHaveLength(2);
    });

    it("refuses a reused idempotency key with a different request and writes nothing", async () => {
      const t = kura.tenant("idem-mismatch");
      const first = await t.messages.append("c", {
        role: "user",
        content: "hello",
        metadata: { a: 1, b: [1, 2] },
        idempotencyKey: "k1",
      });
      // Same request (metadata keys in another order): the first result.
      const again = await t.messages.append("c", {
        role: "user",
        content: "hello",
        metadata: { b: [1, 2], a: 1 },
        idempotencyKey: "k1",
      });
      expect(again.id).toBe(first.id);
      const variants = [
        { role: "user", content: "hello!", metadata: { a: 1, b: [1, 2] } },
        { role: "assistant", content: "hello", metadata: { a: 1, b: [1, 2] } },
        { role: "user", content: "hello", metadata: { a: 2, b: [1, 2] } },
        { role: "user", content: "hello", metadata: { a: 1, b: [1, 2] }, ttlSeconds: 60 },
      ];
      for (const v of variants) {
        expect(await code(t.messages.append("c", { ...v, idempotencyKey: "k1" } as never))).toBe(
          "IDEMPOTENCY_MISMATCH",
        );
      }
      // Still true after an edit: the key belongs to the first version's request.
      await t.messages.edit(first.id, "edited");
      expect(
        (
          await t.messages.append("c", {
            role: "user",
            content: "hello",
            metadata: { a: 1, b: [1, 2] },
            idempotencyKey: "k1",
          })
        ).id,
      ).toBe(first.id);
      expect(
        await code(t.messages.append("c", { role: "user", content: "edited", idempotencyKey: "k1" })),
      ).toBe("IDEMPOTENCY_MISMATCH");
      expect(await t.messages.count("c")).toBe(1);
      expect((await kura.store.list("idem-mismatch/messages/")).items).toHaveLength(2);
    });

    it("enforces the 128 KiB limit on counted content and stores nothing beyond it", async () => {
      const t = kura.tenant("size");
      await t.messages.append("c", { role: "user", content: "a".repeat(131_072) });
      expect(await code(t.messages.append("c", { role: "user", content: "a".repeat(131_073) }))).toBe(
        "MESSAGE_TOO_LARGE",
      );
      expect(await code(t.messages.append("c", { role: "user", content: "é".repeat(65_537) }))).toBe(
        "MESSAGE_TOO_LARGE",
      );
      // Short http(s) image URLs do not count; data: URLs do.
      const url = `https://img.example.com/${"p".repeat(1500)}.png`;
      await t.messages.append("c", {
        role: "user",
        content: [
          { type: "text", text: "a".repeat(131_072) },
          { type: "image_url", image_url: { url } },
        ],
      });
      const dataUrl = `data:image/png;base64,${"A".repeat(100)}`;
      expect(
        await code(
          t.messages.append("c", {
            role: "user",
            content: [
              { type: "text", text: "a".repeat(131_072) },
              { type: "image_url", image_url: { url: dataUrl } },
            ],
          }),
        ),
      ).toBe("MESSAGE_TOO_LARGE");
      expect(await t.messages.count("c")).toBe(2);
      expect((await kura.store.list("size/")).items).toHaveLength(2);
    });

    it("previews the first 200 code points without splitting surrogate pairs", async () => {
      const t = kura.tenant("preview");
      const text = `${"😀".repeat(199)}ab${"x".repeat(50)}`;
      const ref = await t.messages.append("c", { role: "assistant", content: text });
      expect(Array.from(ref.preview)).toHaveLength(200);
      expect(ref.preview).toBe(`${"😀".repeat(199)}a`);
      expect(ref.preview.isWellFormed()).toBe(true);
    });

    it("rejects bad input with specific errors and leaves nothing behind", async () => {
      const t = kura.tenant("bad");
      const cases: [() => Promise<unknown>, string][] = [
        [() => t.messages.append("c", { role: "user", content: "" }), "MESSAGE_INVALID"],
        [() => t.messages.append("c", { role: "user", content: [] }), "MESSAGE_INVALID"],
        [() => t.messages.append("c", { role: "User!", content: "x" }), "MESSAGE_INVALID"],
        [() => t.messages.append("c", { role: "user", content: "bad \ud800 surrogate" }), "INVALID_UTF8"],
        [
          () => t.messages.append("c", { role: "user", content: [{ type: "text", text: "\udc00" }] }),
          "INVALID_UTF8",
        ],
        [
          () => t.messages.append("c", { role: "user", content: "x", metadata: { k: "\ud800" } }),
          "INVALID_UTF8",
        ],
        [
          () => t.messages.append("c", { role: "user", content: "x", metadata: { deep: nestedValue(100) } }),
          "VALUE_TOO_DEEP",
        ],
        [
          () => t.messages.append("c", { role: "user", content: [{ type: "video", url: "x" } as never] }),
          "MESSAGE_INVALID",
        ],
        [
          () => t.messages.append("c", { role: "user", content: "x", metadata: [] as never }),
          "MESSAGE_INVALID",
        ],
        [() => t.messages.append("c", { role: "user", content: "x", ttlSeconds: -1 }), "MESSAGE_INVALID"],
        [() => t.messages.append("c", { role: "user", content: "x", idempotencyKey: "" }), "MESSAGE_INVALID"],
        [() => t.messages.append("../etc", { role: "user", content: "x" }), "INVALID_ARGUMENT"],
        [() => t.messages.append("a/b", { role: "user", content: "x" }), "INVALID_ARGUMENT"],
        [() => t.messages.append("c", null as never), "MESSAGE_INVALID"],
        [() => t.messages.appendMany("c", []), "MESSAGE_INVALID"],
        [() => t.messages.get("not-a-uuid"), "MESSAGE_NOT_FOUND"],
        [() => t.messages.get("01890000-0000-7000-8000-000000000000"), "MESSAGE_NOT_FOUND"],
        [() => t.messages.get("'; DROP TABLE messages; --"), "MESSAGE_NOT_FOUND"],
        [() => t.messages.history("never-used"), "CHAT_NOT_FOUND"],
        [() => t.messages.delete("01890000-0000-7000-8000-000000000000"), "MESSAGE_NOT_FOUND"],
      ];
      for (const [p, expected] of cases) expect(await code(p())).toBe(expected);
      expect(() => kura.tenant("../evil")).toThrow(expect.objectContaining({ code: "INVALID_ARGUMENT" }));
      // All-or-nothing: one bad message in a batch stores none of them.
      expect(
        await code(
          t.messages.appendMany("c", [
            { role: "user", content: "fine" },
            { role: "user", content: "" },
          ]),
        ),
      ).toBe("MESSAGE_INVALID");
      expect(await code(t.messages.history("c"))).toBe("CHAT_NOT_FOUND");
      expect((await kura.store.list("bad/")).items).toEqual([]);
      expect(await t.usage()).toMatchObject({ bytes: 0, objects: 0, messages: 0 });
    });

    it("keeps tenants apart: ids, URLs and chats of another tenant are not found", async () => {
      const a = kura.tenant("tenant-a");
      const b = kura.tenant("tenant-b");
      const ref = await a.messages.append("shared-chat", { role: "user", content: "secret of A" });
      expect(await code(b.messages.get(ref.id))).toBe("MESSAGE_NOT_FOUND");
      expect(await code(b.readUrl(ref.contentUrl))).toBe("BLOB_NOT_FOUND");
      expect(await code(b.messages.history("shared-chat"))).toBe("CHAT_NOT_FOUND");
      expect(await code(b.messages.delete(ref.id))).toBe("MESSAGE_NOT_FOUND");
      expect(await code(b.messages.edit(ref.id, "overwrite"))).toBe("MESSAGE_NOT_FOUND");
      expect((await b.messages.getMany([ref.id])).missing).toEqual([ref.id]);
      expect((await a.messages.get(ref.id)).content).toBe("secret of A");
    });

    it("pages history newest- or oldest-first with an opaque cursor and a time range", async () => {
      const t = kura.tenant("hist");
      const ids: string[] = [];
      for (let i = 0; i < 25; i++) {
        now += 1000;
        ids.push((await t.messages.append("h", { role: i % 2 ? "assistant" : "user", content: `m${i}` })).id);
      }
      const walk = async (order: "asc" | "desc") => {
        const seen: string[] = [];
        let cursor: string | undefined;
        do {
          const page = await t.messages.history("h", { order, limit: 7, ...(cursor ? { cursor } : {}) });
          seen.push(...page.items.map((m) => m.id));
          cursor = page.nextCursor;
        } while (cursor);
        return seen;
      };
      expect(await walk("asc")).toEqual(ids);
      expect(await walk("desc")).toEqual([...ids].reverse());
      const withContent = await t.messages.history("h", { order: "asc", limit: 3, includeContent: true });
      expect(withContent.items.map((m) => ("content" in m ? m.content : undefined))).toEqual([
        "m0",
        "m1",
        "m2",
      ]);
      const first = (await t.messages.get(ids[0] as string)).createdAt;
      const range = await t.messages.history("h", {
        order: "asc",
        since: Date.parse(first) + 5000,
        until: Date.parse(first) + 8000,
      });
      expect(range.items.map((m) => m.id)).toEqual(ids.slice(5, 8));
      const page = await t.messages.history("h", { limit: 2 });
      expect(await code(t.messages.history("h", { cursor: "garbage!" }))).toBe("CURSOR_INVALID");
      expect(await code(t.messages.history("h", { cursor: page.nextCursor as string, order: "asc" }))).toBe(
        "CURSOR_INVALID",
      );
      await t.messages.append("h2", { role: "user", content: "x" });
      expect(await code(t.messages.history("h2", { cursor: page.nextCursor as string }))).toBe(
        "CURSOR_INVALID",
      );
      expect(await code(t.messages.history("h", { limit: 0 }))).toBe("INVALID_ARGUMENT");
      const many = await t.messages.getMany([ids[3] as string, "nope", ids[1] as string]);
      expect(many.items.map((m) => m.content)).toEqual(["m3", "m1"]);
      expect(many.missing).toEqual(["nope"]);
    });

    it("edits into new immutable versions and keeps the history", async () => {
      const t = kura.tenant("edit");
      const ref = await t.messages.append("c", { role: "user", content: "first draft" });
      const v2 = await t.messages.edit(ref.id, "second draft");
      expect(v2.version).toBe(2);
      expect(v2.contentUrl).toMatch(
        new RegExp(`^${ref.contentUrl.replace(".json", "")}\\.v2\\.[0-9a-f]{12}\\.json$`),
      );
      expect((await t.messages.get(ref.id)).content).toBe("second draft");
      const versions = await t.messages.versions(ref.id);
      expect(versions.map((v) => v.version)).toEqual([1, 2]);
      expect(await t.messages.versionContent(ref.id, 1)).toBe("first draft");
      expect((await t.readUrl(ref.contentUrl)).toString()).toContain("first draft");
      expect(await code(t.messages.edit(ref.id, ""))).toBe("MESSAGE_INVALID");
      expect(await code(t.messages.edit(ref.id, "x".repeat(200_000)))).toBe("MESSAGE_TOO_LARGE");
    });

    it("never loses a message to racing edits, deletes, undeletes and erases (property)", async () => {
      // A fixed-seed generator of concurrent operation mixes on one message. After every round
      // the message is either erased (not found, no body left) or whole: its current content
      // and every version readable, its chat's history with content readable, and every
      // acknowledged edit present among the versions.
      let seed = 0x9e3779b9;
      const rand = (n: number) => {
        seed = (Math.imul(seed ^ (seed >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0;
        return seed % n;
      };
      const t = kura.tenant("race");
      for (let round = 0; round < 12; round++) {
        const chat = `race-${round}`;
        const ref = await t.messages.append(chat, { role: "user", content: `r${round} v1` });
        const withErase = round % 3 === 2;
        const ops = Array.from({ length: 5 + rand(16) }, (_, i) => {
          const pick = rand(10);
          if (withErase && i === 3) return { kind: "erase" as const };
          if (pick < 6) return { kind: "edit" as const, text: `r${round} edit ${i}` };
          if (pick < 8) return { kind: "delete" as const };
          return { kind: "undelete" as const };
        });
        const acked: string[] = [];
        const outcomes = await Promise.all(
          ops.map(async (op) => {
            try {
              if (op.kind === "edit") {
                await t.messages.edit(ref.id, op.text);
                acked.push(op.text);
              } else if (op.kind === "delete") await t.messages.delete(ref.id);
              else if (op.kind === "undelete") await t.messages.undelete(ref.id);
              else await t.messages.erase(ref.id);
              return "OK";
            } catch (e) {
              if (isKuraError(e)) return e.code;
              throw e;
            }
          }),
        );
        for (const o of outcomes) expect(["OK", "CATALOG_STALE_VERSION", "MESSAGE_NOT_FOUND"]).toContain(o);
        if (withErase) {
          expect(await code(t.messages.get(ref.id))).toBe("MESSAGE_NOT_FOUND");
          expect(await code(t.messages.undelete(ref.id))).toBe("MESSAGE_NOT_FOUND");
          continue;
        }
        await t.messages.undelete(ref.id);
        const got = await t.messages.get(ref.id);
        const versions = await t.messages.versions(ref.id);
        expect(versions.map((v) => v.version)).toEqual(versions.map((_, i) => i + 1));
        const texts: unknown[] = [];
        for (const v of versions) texts.push(await t.messages.versionContent(ref.id, v.version));
        expect(texts[0]).toBe(`r${round} v1`);
        expect(got.content).toBe(texts.at(-1));
        for (const text of acked) expect(texts).toContain(text);
        const page = await t.messages.history(chat, { includeContent: true });
        expect(page.items.map(contentOf)).toEqual([got.content]);
        for (const v of versions) expect((await t.readUrl(v.contentUrl)).length).toBeGreaterThan(0);
      }
    });

    it("reads a batch and same-millisecond appends back in the order they were made", async () => {
      const t = kura.tenant("order");
      const words = ["first", "second", "third", "fourth", "fifth", "sixth"];
      for (let round = 0; round < 5; round++) {
        const chat = `batch-${round}`;
        await t.messages.appendMany(
          chat,
          words.map((content) => ({ role: "user", content })),
        );
        const asc = await t.messages.history(chat, { order: "asc", includeContent: true });
        expect(asc.items.map(contentOf)).toEqual(words);
        const desc = await t.messages.history(chat, { order: "desc", includeContent: true });
        expect(desc.items.map(contentOf)).toEqual([...words].reverse());
      }
      // Sequential single appends within one (frozen) millisecond.
      for (const content of words) await t.messages.append("singles", { role: "user", content });
      const singles = await t.messages.history("singles", { order: "asc", includeContent: true });
      expect(singles.items.map(contentOf)).toEqual(words);
    });

    it("soft-deletes, undeletes, purges after retention and erases at once", async () => {
      const t = kura.tenant("life");
      const keep = await t.messages.append("c", { role: "user", content: "keep" });
      const gone = await t.messages.append("c", { role: "user", content: "gone" });
      await t.messages.edit(gone.id, "gone v2");
      const erased = await t.messages.append("c", { role: "user", content: "erase me" });
      expect((await t.messages.get(gone.id)).content).toBe("gone v2"); // now hot in the cache
      await t.messages.delete(gone.id);
      expect(await code(t.messages.get(gone.id))).toBe("MESSAGE_NOT_FOUND");
      expect((await t.messages.history("c")).items.map((m) => m.id)).not.toContain(gone.id);
      expect(await t.messages.count("c")).toBe(2);
      await t.messages.undelete(gone.id);
      expect((await t.messages.get(gone.id)).content).toBe("gone v2");
      await t.messages.delete(gone.id);
      await t.messages.erase(erased.id);
      expect(await code(t.messages.get(erased.id))).toBe("MESSAGE_NOT_FOUND");
      expect(await kura.store.exists(erased.contentUrl.replace("local://storage/", ""))).toBe(false);
      // Not yet purged after 29 days; purged after 31.
      await kura.runJobs(now + 29 * DAY);
      await t.messages.undelete(gone.id);
      await t.messages.delete(gone.id);
      const reports = await kura.runJobs(now + 31 * DAY);
      expect(reports.find((r) => r.name === "lifecycle")?.result?.messagesPurged).toBeGreaterThanOrEqual(1);
      expect(await code(t.messages.undelete(gone.id))).toBe("MESSAGE_NOT_FOUND");
      expect((await kura.store.list("life/")).items.map((i) => i.key)).toEqual([
        keep.contentUrl.replace("local://storage/", ""),
      ]);
      const usage = await t.usage();
      expect(usage).toMatchObject({ objects: 1, messages: 1, bytes: keep.sizeBytes });
    });

    it("purges one tenant's deleted messages on request, leaving other tenants alone", async () => {
      const a = kura.tenant("purge-a");
      const b = kura.tenant("purge-b");
      const ra = await a.messages.append("c", { role: "user", content: "a" });
      const rb = await b.messages.append("c", { role: "user", content: "b" });
      await a.messages.delete(ra.id);
      await b.messages.delete(rb.id);
      expect(await a.messages.purge()).toBe(0); // within retention
      expect(await a.messages.purge({ olderThanDays: 0 })).toBe(0); // deleted "now", not before now
      now += 1;
      expect(await a.messages.purge({ olderThanDays: 0 })).toBe(1);
      expect(await code(a.messages.undelete(ra.id))).toBe("MESSAGE_NOT_FOUND");
      await b.messages.undelete(rb.id);
      expect((await b.messages.get(rb.id)).content).toBe("b");
      expect(await code(a.messages.purge({ olderThanDays: -1 }))).toBe("INVALID_ARGUMENT");
    });

    it("expires messages with a TTL", async () => {
      const t = kura.tenant("ttl");
      const ref = await t.messages.append("c", { role: "user", content: "ephemeral", ttlSeconds: 60 });
      expect((await t.messages.get(ref.id)).content).toBe("ephemeral");
      now += 61_000;
      expect(await code(t.messages.get(ref.id))).toBe("MESSAGE_NOT_FOUND");
      await kura.runJobs(now);
      expect((await kura.store.list("ttl/")).items).toEqual([]);
      expect((await t.usage()).messages).toBe(0);
    });

    it("collects orphan bodies after the grace period and never referenced ones", async () => {
      const t = kura.tenant("gc");
      const ref = await t.messages.append("c", { role: "user", content: "referenced" });
      const orphanKey = "gc/messages/2026/11/23/c/01890000-0000-7000-8000-00000000dead.json";
      await kura.store.put(orphanKey, Buffer.from("{}"));
      await kura.runJobs(now + 60_000);
      expect(await kura.store.exists(orphanKey)).toBe(true); // still within the grace period
      await kura.runJobs(now + 2 * 3_600_000);
      expect(await kura.store.exists(orphanKey)).toBe(false);
      expect((await t.messages.get(ref.id)).content).toBe("referenced");
    });

    it("keeps usage exact through appends, edits, deletes and purges", async () => {
      const t = kura.tenant("usage");
      const refs = await t.messages.appendMany(
        "c",
        Array.from({ length: 10 }, (_, i) => ({ role: "user", content: `message number ${i}` })),
      );
      await t.messages.edit(refs[0]?.id as string, "edited");
      await t.messages.erase(refs[1]?.id as string);
      const listed = (await kura.store.list("usage/")).items;
      const usage = await t.usage();
      expect(usage.objects).toBe(listed.length);
      expect(usage.bytes).toBe(listed.reduce((n, o) => n + o.size, 0));
      expect(usage.messages).toBe(9);
      await kura.runJobs(now);
      expect(await t.usage()).toEqual(usage);
    });

    it("rolls back bodies when a batch's body write fails half-way", async () => {
      const faults = new FaultController().add({
        operations: ["put"],
        keyMatches: (k) => (k ?? "").includes("/c-fail/"),
        times: 1,
      });
      const k2 = await f.open({ clock, wrapStore: (s) => withFaults(s, faults) });
      try {
        const t = k2.tenant("fault");
        const batch = Array.from({ length: 20 }, (_, i) => ({ role: "user", content: `m${i}` }));
        expect(await code(t.messages.appendMany("c-fail", batch))).toBe("FAULT_INJECTED");
        expect((await k2.store.list("fault/")).items).toEqual([]);
        expect(await code(t.messages.history("c-fail"))).toBe("CHAT_NOT_FOUND");
      } finally {
        await k2.close();
      }
    });

    it("feeds outbox events to projectors in order and resumes after a restart", async () => {
      const seen: OutboxRecord[] = [];
      kura.registerProjector({ name: "test-feed", handle: async (events) => void seen.push(...events) });
      const t = kura.tenant("feed");
      const ref = await t.messages.append("c", { role: "user", content: "one" });
      await t.messages.edit(ref.id, "two");
      await t.messages.delete(ref.id);
      await kura.pumpOutbox();
      const mine = seen.filter((e) => e.tenantId === "feed");
      expect(mine.map((e) => e.type)).toEqual(["message.appended", "message.edited", "message.deleted"]);
      expect(await kura.outboxLag("test-feed")).toBe(0);
      await kura.close();
      kura = await f.open({ clock });
      await kura.tenant("feed").messages.append("c", { role: "user", content: "three" });
      const after: OutboxRecord[] = [];
      kura.registerProjector({ name: "test-feed", handle: async (events) => void after.push(...events) });
      await kura.pumpOutbox();
      expect(after.map((e) => e.type)).toEqual(["message.appended"]);
    });

    it("close() finishes in-flight appends; a reopened store has them", async () => {
      const t = kura.tenant("drain");
      const pending = Array.from({ length: 40 }, (_, i) =>
        t.messages.append("c", { role: "user", content: `d${i}` }),
      );
      const refs = await Promise.all(pending);
      await kura.close();
      kura = await f.open({ clock });
      const back = await kura.tenant("drain").messages.getMany(refs.map((r) => r.id));
      expect(back.items).toHaveLength(40);
    });

    describe("objects", () => {
      it("puts, reads, ranges, lists and deletes user objects under the tenant prefix", async () => {
        const t = kura.tenant("obj");
        const info = await t.objects.put("docs/report.txt", Buffer.from("hello objects"), {
          contentType: "text/plain",
        });
        expect(info).toMatchObject({
          key: "docs/report.txt",
          size: 13,
          contentType: "text/plain",
          sha256: sha("hello objects"),
        });
        expect(info.contentUrl.startsWith("local://storage/obj/objects/docs/report.txt@")).toBe(true);
        expect((await t.objects.getBuffer("docs/report.txt")).data.toString()).toBe("hello objects");
        const range = await t.objects.get("docs/report.txt", { range: { start: 6, end: 12 } });
        expect((await collect(range.body)).toString()).toBe("objects");
        await t.objects.put("docs/a.txt", Buffer.from("a"));
        await t.objects.put("img/b.png", Buffer.from("b"));
        expect((await t.objects.list({ prefix: "docs/" })).items.map((i) => i.key)).toEqual([
          "docs/a.txt",
          "docs/report.txt",
        ]);
        const p1 = await t.objects.list({ limit: 2 });
        const p2 = await t.objects.list({ limit: 2, cursor: p1.nextCursor as string });
        expect([...p1.items, ...p2.items].map((i) => i.key)).toEqual([
          "docs/a.txt",
          "docs/report.txt",
          "img/b.png",
        ]);
        await t.objects.delete("docs/a.txt");
        await t.objects.delete("docs/a.txt");
        expect(await code(t.objects.head("docs/a.txt"))).toBe("OBJECT_NOT_FOUND");
        expect(await t.usage()).toMatchObject({ objects: 2, bytes: 14 });
      });

      it("replaces an object with a new immutable blob and removes the old one", async () => {
        const t = kura.tenant("obj2");
        const v1 = await t.objects.put("k", Buffer.from("version one"));
        const v2 = await t.objects.put("k", Buffer.from("v2"));
        expect(v2.contentUrl).not.toBe(v1.contentUrl);
        expect((await t.objects.getBuffer("k")).data.toString()).toBe("v2");
        expect((await kura.store.list("obj2/")).items).toHaveLength(1);
        expect(await code(t.objects.put("k", Buffer.from("v3"), { ifNoneMatch: "*" }))).toBe(
          "BLOB_ALREADY_EXISTS",
        );
        expect(await t.usage()).toMatchObject({ objects: 1, bytes: 2 });
        const streamed = await t.objects.put(
          "s",
          (async function* () {
            yield Buffer.from("streamed ");
            yield Buffer.from("body");
          })(),
        );
        expect(streamed.size).toBe(13);
      });

      it("rejects hostile keys and never crosses tenants", async () => {
        const a = kura.tenant("obj-a");
        const b = kura.tenant("obj-b");
        await a.objects.put("private.txt", Buffer.from("A only"));
        expect(await code(b.objects.getBuffer("private.txt"))).toBe("OBJECT_NOT_FOUND");
        for (const bad of ["../obj-a/objects/private.txt", "/abs", "a//b", "x\u0000", "..", ""]) {
          expect(await code(b.objects.put(bad, Buffer.from("x")))).toBe("KEY_INVALID");
          expect(await code(b.objects.getBuffer(bad))).toBe("KEY_INVALID");
        }
        expect((await b.objects.list()).items).toEqual([]);
        const presigned = await a.objects.presign("private.txt", { expiresIn: 60 });
        expect(presigned.url).toContain("/v1/presigned/obj-a/objects/private.txt");
      });
    });
  });
}
