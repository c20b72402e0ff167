/**
 * Mail storage (MAIL-1) through the library, on one catalog + blob store pair: raw bytes read
 * back exactly, decoding, attachments, flags, listing filters, copy/move/delete and the life of
 * shared bodies, threads, quotas, usage.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { collect } from "../../src/core/checksum.js";
import { KuraError } from "../../src/core/errors.js";
import { MAX_ATTACHMENTS } from "../../src/domains/mail-parse.js";
import { SearchService } from "../../src/engine/search.js";
import type { Kura } from "../../src/kura.js";
import {
  ALTERNATIVE,
  ATTACHMENT_BYTES,
  ATTACHMENT_FILENAME,
  EUC_JP,
  ISO_2022_JP,
  ISO_2022_JP_FROM_NAME,
  ISO_2022_JP_SUBJECT,
  MALFORMED,
  mail,
  PNG_BYTES,
  plain,
  REPLY,
  REPLY_TO_REPLY,
  SHIFT_JIS,
  UTF8_QP,
  WITH_ATTACHMENTS,
} from "../support/mail-fixtures.js";

export interface MailHarness {
  /** Opens Kura on the pair under test, with `config` merged in. */
  open(config?: Record<string, unknown>): Promise<Kura>;
  cleanup(): Promise<void>;
}

export function mailSuite(name: string, make: () => Promise<MailHarness | undefined>): void {
  describe(`mail storage on ${name}`, () => {
    let h: MailHarness;
    let kura: Kura;

    beforeAll(async () => {
      const made = await make();
      if (!made) throw new Error("no harness");
      h = made;
      kura = await h.open({
        tiers: { small: { limits: { max_mailbox_bytes: 4000, max_mail_bytes: 20_000 } } },
      });
    }, 300_000);

    afterAll(async () => {
      await kura?.close();
      await h?.cleanup();
    });

    const t = (id: string) => kura.tenant(id);

    it("stores the raw bytes immutably under {tenant}/{mailbox}/{id}.eml and reads them back exactly", async () => {
      for (const raw of [ISO_2022_JP, SHIFT_JIS, EUC_JP, UTF8_QP, ALTERNATIVE, WITH_ATTACHMENTS, MALFORMED]) {
        const m = await t("acme").mail.store("inbox", raw);
        expect(m.size).toBe(raw.length);
        const { body } = await t("acme").mail.raw("inbox", m.id);
        expect(Buffer.compare(await collect(body), raw)).toBe(0);
        expect(await kura.store.exists(`acme/inbox/${m.id}.eml`)).toBe(true);
      }
    });

    it("decodes Japanese headers and bodies (ISO-2022-JP, Shift_JIS, EUC-JP, UTF-8; RFC 2047 B and Q)", async () => {
      const jis = await t("acme").mail.store("jp", ISO_2022_JP);
      expect(jis.subject).toBe(ISO_2022_JP_SUBJECT);
      expect(jis.from).toEqual({ name: ISO_2022_JP_FROM_NAME, address: "tanaka@example.jp" });
      expect(jis.date).toBe("2026-12-01T00:00:00.000Z");
      expect(jis.messageId).toBe("jis-1@example.jp");
      expect(jis.problems).toEqual([]);
      expect((await t("acme").mail.store("jp", SHIFT_JIS)).subject).toBe("見積書");
      expect((await t("acme").mail.store("jp", EUC_JP)).subject).toBe("横浜の中華街");
      const utf8 = await t("acme").mail.store("jp", UTF8_QP);
      expect(utf8.subject).toBe("札幌の雪まつり");
      expect(utf8.from?.name).toBe("Jörg Müller");
      expect(utf8.cc).toEqual([{ name: "Boss", address: "boss@example.com" }]);
    });

    it("extracts attachments and inline images under {id}/attachments/{attachment_id}", async () => {
      const m = await t("acme").mail.store("inbox", WITH_ATTACHMENTS);
      expect(m.attachments).toHaveLength(2);
      const png = m.attachments.find((a) => a.contentType === "image/png");
      const pdf = m.attachments.find((a) => a.contentType === "application/pdf");
      expect(png).toMatchObject({
        disposition: "inline",
        contentId: "logo@example.com",
        size: PNG_BYTES.length,
      });
      expect(pdf).toMatchObject({ disposition: "attachment", filename: ATTACHMENT_FILENAME });
      for (const [a, bytes] of [
        [png, PNG_BYTES],
        [pdf, ATTACHMENT_BYTES],
      ] as const) {
        const got = await t("acme").mail.attachment("inbox", m.id, a?.id ?? "");
        expect(Buffer.compare(await collect(got.body), bytes)).toBe(0);
        expect(await kura.store.exists(`acme/inbox/${m.id}/attachments/${a?.id}`)).toBe(true);
      }
      await expect(t("acme").mail.attachment("inbox", m.id, "99")).rejects.toMatchObject({
        code: "MAIL_ATTACHMENT_NOT_FOUND",
      });
    });

    it("stores malformed but acceptable messages with their problems, refuses what is no message", async () => {
      const m = await t("acme").mail.store("odd", MALFORMED);
      expect(m.problems).toEqual(
        expect.arrayContaining(["missing-date", "missing-message-id", "unknown-charset:x-unknown-charset"]),
      );
      expect(m.date).toBeNull();
      for (const bad of [
        Buffer.alloc(0),
        Buffer.from("   \r\n"),
        Buffer.from("just some words without any header"),
      ]) {
        await expect(t("acme").mail.store("odd", bad)).rejects.toMatchObject({ code: "MAIL_UNPARSEABLE" });
      }
      expect((await t("acme").mail.list("odd")).items).toHaveLength(1);
    });

    it("stores a message with more attachments than are extracted whole, noting the problem", async () => {
      const parts = Array.from({ length: MAX_ATTACHMENTS + 3 }, (_, i) =>
        [
          "--b",
          "Content-Type: application/octet-stream",
          `Content-Disposition: attachment; filename="f${i}.bin"`,
          "",
          `part ${i}`,
        ].join("\r\n"),
      );
      const raw = mail(
        [
          "From: a@example.com",
          "Subject: many",
          "MIME-Version: 1.0",
          'Content-Type: multipart/mixed; boundary="b"',
        ],
        `${parts.join("\r\n")}\r\n--b--\r\n`,
      );
      const m = await t("acme").mail.store("many", raw);
      expect(m.attachments).toHaveLength(MAX_ATTACHMENTS);
      expect(m.problems).toContain("attachments-truncated");
      const { body } = await t("acme").mail.raw("many", m.id);
      expect(Buffer.compare(await collect(body), raw)).toBe(0);
    }, 120_000);

    it("adds and removes flags in the catalog, and lists by flag, since and page", async () => {
      const ids: string[] = [];
      for (let i = 0; i < 7; i++) ids.push((await t("flags").mail.store("inbox", plain(i))).id);
      const seen = await t("flags").mail.setFlags("inbox", ids[1] as string, {
        add: ["\\Seen", "important"],
      });
      expect(seen.flags).toEqual(["\\Seen", "important"]);
      await t("flags").mail.setFlags("inbox", ids[4] as string, { add: ["\\Seen"] });
      const after = await t("flags").mail.setFlags("inbox", ids[1] as string, { remove: ["important"] });
      expect(after.flags).toEqual(["\\Seen"]);
      expect((await t("flags").mail.get("inbox", ids[1] as string)).flags).toEqual(["\\Seen"]);
      const flagged = await t("flags").mail.list("inbox", { flag: "\\Seen" });
      expect(flagged.items.map((m) => m.id)).toEqual([ids[1], ids[4]]);
      await expect(
        t("flags").mail.setFlags("inbox", ids[0] as string, { add: ["bad flag"] }),
      ).rejects.toMatchObject({
        code: "INVALID_ARGUMENT",
      });
      // Pages of 3 in received order.
      const seenIds: string[] = [];
      let cursor: string | undefined;
      do {
        const page = await t("flags").mail.list("inbox", { limit: 3, ...(cursor ? { cursor } : {}) });
        seenIds.push(...page.items.map((m) => m.id));
        cursor = page.nextCursor;
      } while (cursor);
      expect(seenIds).toEqual(ids);
      const fifth = await t("flags").mail.get("inbox", ids[5] as string);
      const since = await t("flags").mail.list("inbox", { since: fifth.receivedAt });
      expect(since.items.map((m) => m.id)).toEqual(ids.slice(5));
    });

    it("copies and moves without copying the body; the body lives until its last message goes", async () => {
      const m = await t("share").mail.store("inbox", WITH_ATTACHMENTS);
      const usage0 = await t("share").usage();
      const copy = await t("share").mail.copy("inbox", m.id, "archive");
      expect(copy.id).not.toBe(m.id);
      expect((await t("share").usage()).bytes).toBe(usage0.bytes);
      const moved = await t("share").mail.move("archive", copy.id, "saved");
      expect(moved.id).toBe(copy.id);
      await expect(t("share").mail.get("archive", copy.id)).rejects.toMatchObject({ code: "MAIL_NOT_FOUND" });
      await t("share").mail.delete("inbox", m.id);
      await expect(t("share").mail.get("inbox", m.id)).rejects.toMatchObject({ code: "MAIL_NOT_FOUND" });
      // The copy still reads the original bytes and attachments.
      const { body } = await t("share").mail.raw("saved", copy.id);
      expect(Buffer.compare(await collect(body), WITH_ATTACHMENTS)).toBe(0);
      expect(await kura.store.exists(`share/inbox/${m.id}.eml`)).toBe(true);
      expect((await t("share").usage()).bytes).toBe(usage0.bytes);
      await t("share").mail.delete("saved", copy.id);
      expect(await kura.store.exists(`share/inbox/${m.id}.eml`)).toBe(false);
      for (const a of m.attachments)
        expect(await kura.store.exists(`share/inbox/${m.id}/attachments/${a.id}`)).toBe(false);
      expect((await t("share").usage()).bytes).toBe(
        usage0.bytes - WITH_ATTACHMENTS.length - PNG_BYTES.length - ATTACHMENT_BYTES.length,
      );
    });

    it("racing deletes and copies of messages sharing a body drop it exactly once", async () => {
      const usage0 = await t("race").usage();
      const m = await t("race").mail.store("inbox", WITH_ATTACHMENTS);
      const copies = await Promise.all(
        [1, 2, 3, 4].map((n) => t("race").mail.copy("inbox", m.id, `box${n}`)),
      );
      // Every message goes at once, while more copies of the last one are attempted.
      const results = await Promise.allSettled([
        t("race").mail.delete("inbox", m.id),
        ...copies.map((c) => t("race").mail.delete(c.mailboxId, c.id)),
        ...copies.map((c) => t("race").mail.copy(c.mailboxId, c.id, "late")),
      ]);
      const late = (await t("race").mail.list("late")).items;
      for (const r of results.slice(0, 5)) expect(r.status).toBe("fulfilled");
      for (const r of results.slice(5))
        if (r.status === "rejected") expect((r.reason as { code?: string }).code).toBe("MAIL_NOT_FOUND");
      const bodies = [
        `race/inbox/${m.id}.eml`,
        ...m.attachments.map((a) => `race/inbox/${m.id}/attachments/${a.id}`),
      ];
      if (late.length === 0) {
        for (const key of bodies) expect(await kura.store.exists(key)).toBe(false);
        expect((await t("race").usage()).bytes).toBe(usage0.bytes);
      } else {
        // A copy that won keeps the body alive and readable; deleting the copies drops it.
        const { body } = await t("race").mail.raw("late", late[0]?.id ?? "");
        expect(Buffer.compare(await collect(body), WITH_ATTACHMENTS)).toBe(0);
        await Promise.all(late.map((c) => t("race").mail.delete("late", c.id)));
        for (const key of bodies) expect(await kura.store.exists(key)).toBe(false);
        expect((await t("race").usage()).bytes).toBe(usage0.bytes);
      }
    });

    it("threads messages by References and In-Reply-To, across mailboxes", async () => {
      const root = await t("threads").mail.store("inbox", ALTERNATIVE);
      const reply = await t("threads").mail.store("sent", REPLY);
      const again = await t("threads").mail.store("inbox", REPLY_TO_REPLY);
      const other = await t("threads").mail.store("inbox", plain(1));
      expect(reply.threadId).toBe(root.threadId);
      expect(again.threadId).toBe(root.threadId);
      expect(other.threadId).not.toBe(root.threadId);
      const thread = await t("threads").mail.thread(root.threadId);
      expect(thread.items.map((m) => m.id)).toEqual([root.id, reply.id, again.id]);
    });

    it("refuses a delivery past the tier's max_mailbox_bytes or max_mail_bytes, storing nothing", async () => {
      await kura.tenants.create({ tenantId: "tiny", tier: "small" });
      await t("tiny").mail.store("inbox", plain(1, 1500));
      await t("tiny").mail.store("inbox", plain(2, 1500));
      await expect(t("tiny").mail.store("inbox", plain(3, 1500))).rejects.toMatchObject({
        code: "QUOTA_EXCEEDED",
      });
      await expect(t("tiny").mail.store("other", plain(4, 30_000))).rejects.toMatchObject({
        code: "PAYLOAD_TOO_LARGE",
      });
      const full = (await t("tiny").mail.list("inbox")).items;
      expect(full).toHaveLength(2);
      await expect(t("tiny").mail.copy("inbox", full[0]?.id ?? "", "inbox2")).resolves.toBeTruthy();
      await expect(t("tiny").mail.copy("inbox", full[0]?.id ?? "", "inbox2")).resolves.toBeTruthy();
      await expect(t("tiny").mail.copy("inbox", full[0]?.id ?? "", "inbox2")).rejects.toMatchObject({
        code: "QUOTA_EXCEEDED",
      });
      expect((await t("tiny").mail.list("inbox2")).items).toHaveLength(2);
    });

    it("refuses mailbox ids that name Kura's own key prefixes", async () => {
      for (const id of ["uploads", "sessions", "objects", "messages", "multipart", "../x", ""]) {
        await expect(t("acme").mail.store(id, UTF8_QP)).rejects.toMatchObject({ kind: "InvalidArgument" });
      }
    });

    it("orphan GC collects mail bodies no row names, after the grace period, and only those", async () => {
      const kept = await t("gc").mail.store("inbox", WITH_ATTACHMENTS);
      const orphanId = "01900000-0000-7000-8000-000000000001";
      const orphans = [`gc/inbox/${orphanId}.eml`, `gc/inbox/${orphanId}/attachments/1`];
      for (const key of orphans) await kura.store.put(key, Buffer.from("cut short by a crash"));
      await kura.runJobs(Date.now() + 3 * 3_600_000);
      for (const key of orphans) expect(await kura.store.exists(key)).toBe(false);
      expect(await kura.store.exists(`gc/inbox/${kept.id}.eml`)).toBe(true);
      for (const a of kept.attachments)
        expect(await kura.store.exists(`gc/inbox/${kept.id}/attachments/${a.id}`)).toBe(true);
      const { body } = await t("gc").mail.raw("inbox", kept.id);
      expect(Buffer.compare(await collect(body), WITH_ATTACHMENTS)).toBe(0);
    });

    it("degrades mail search to a catalog scan when the index is unavailable (SRCH-3)", async () => {
      const m = await t("scan").mail.store("inbox", ISO_2022_JP);
      await t("scan").mail.store("other", ALTERNATIVE);
      const broken = {
        backend: "broken",
        search: () => Promise.reject(new KuraError("SEARCH_UNAVAILABLE", "down", { operation: "search" })),
      };
      const service = new SearchService(
        kura.catalog,
        broken as unknown as ConstructorParameters<typeof SearchService>[1],
        undefined,
        Date.now,
      );
      const res = await service.searchMail("scan", "東京");
      expect(res.degraded).toBe(true);
      expect(res.backend).toBe("catalog-scan");
      expect(res.hits.map((h) => h.id)).toEqual([m.id]);
      expect(res.hits[0]?.highlights.map(([a, b]) => res.hits[0]?.snippet.slice(a, b))).toEqual(["東京"]);
      expect((await service.searchMail("scan", "ROADMAP")).hits.map((h) => h.mailboxId)).toEqual(["other"]);
      expect((await service.searchMail("scan", "roadmap", { mailboxId: "inbox" })).hits).toEqual([]);
      expect((await service.searchMail("acme-other", "東京")).hits).toEqual([]);
    });

    it("never shows one tenant's mail to another", async () => {
      const m = await t("acme").mail.store("private", UTF8_QP);
      await expect(t("evil").mail.get("private", m.id)).rejects.toMatchObject({ code: "MAIL_NOT_FOUND" });
      await expect(t("evil").mail.raw("private", m.id)).rejects.toMatchObject({ code: "MAIL_NOT_FOUND" });
      await expect(t("evil").mail.delete("private", m.id)).rejects.toMatchObject({ code: "MAIL_NOT_FOUND" });
      await expect(t("evil").mail.copy("private", m.id, "mine")).rejects.toMatchObject({
        code: "MAIL_NOT_FOUND",
      });
      expect((await t("evil").mail.list("private")).items).toEqual([]);
      expect((await t("acme").mail.get("private", m.id)).id).toBe(m.id);
    });
  });
}
