/**
 * Mail under encryption at rest (SEC-2): the raw message and attachments are sealed in the blob
 * store by the encrypting layer, the row's derived text (subject, addresses, decoded headers,
 * search text) in the catalog; everything reads back and is found as without encryption, and a
 * shred makes it unreadable.
 */
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { collect } from "../../src/core/checksum.js";
import type { Kura } from "../../src/kura.js";
import { type TestKuraFactory, testKura } from "../support/kura.js";
import {
  ALTERNATIVE,
  ISO_2022_JP,
  ISO_2022_JP_SUBJECT,
  PNG_BYTES,
  WITH_ATTACHMENTS,
} from "../support/mail-fixtures.js";

describe("mail with encryption at rest", () => {
  let factory: TestKuraFactory;
  let kura: Kura;

  beforeAll(async () => {
    factory = await testKura("sqlite");
    kura = await factory.open({
      projectors: "inline",
      config: { encryption: { master_key: randomBytes(32).toString("base64") } },
    });
  });
  afterAll(async () => {
    await kura?.close();
    await factory?.cleanup();
  });

  it("reads back, searches, copies and deletes as without it, with no derived text in the clear", async () => {
    const t = kura.tenant("acme");
    const alt = await t.mail.store("inbox", ALTERNATIVE);
    const jis = await t.mail.store("inbox", ISO_2022_JP);
    const att = await t.mail.store("inbox", WITH_ATTACHMENTS);
    expect((await t.mail.get("inbox", jis.id)).subject).toBe(ISO_2022_JP_SUBJECT);
    expect((await t.mail.get("inbox", alt.id)).from).toEqual({ name: "Alice", address: "alice@example.com" });
    expect(Buffer.compare(await collect((await t.mail.raw("inbox", alt.id)).body), ALTERNATIVE)).toBe(0);
    const png = att.attachments.find((a) => a.contentType === "image/png");
    expect(
      Buffer.compare(
        await collect((await t.mail.attachment("inbox", att.id, png?.id ?? "")).body),
        PNG_BYTES,
      ),
    ).toBe(0);
    expect((await t.searchMail("pineapple", { consistent: true })).hits.map((h) => h.id)).toEqual([alt.id]);
    expect((await t.searchMail("東京", { consistent: true })).hits.map((h) => h.id)).toEqual([jis.id]);
    const copy = await t.mail.copy("inbox", alt.id, "saved");
    expect(copy.subject).toBe("Quarterly roadmap");
    await t.mail.delete("inbox", alt.id);
    expect((await t.mail.list("saved")).items.map((m) => m.subject)).toEqual(["Quarterly roadmap"]);

    const db = new Database(join(factory.dir, "kura.db"), { readonly: true });
    try {
      const rows = db
        .prepare("SELECT subject, from_addr, to_addrs, headers, search_text FROM mail_messages")
        .all();
      const text = JSON.stringify(rows);
      for (const clear of [
        "Quarterly",
        "pineapple",
        "alice@example.com",
        "東京",
        ISO_2022_JP_SUBJECT,
        "Carol",
      ])
        expect(text).not.toContain(clear);
    } finally {
      db.close();
    }
  });

  it("after a shred answers TENANT_KEYS_DESTROYED to every mail read", async () => {
    const t = kura.tenant("gone");
    const m = await t.mail.store("inbox", ALTERNATIVE);
    await kura.encryption.shred("gone");
    await expect(t.mail.get("inbox", m.id)).rejects.toMatchObject({ code: "TENANT_KEYS_DESTROYED" });
    await expect(t.mail.list("inbox")).rejects.toMatchObject({ code: "TENANT_KEYS_DESTROYED" });
  });
});
