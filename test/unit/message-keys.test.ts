/**
 * Message body keys parse back to the tenant, message and version they name: keys made by an
 * append, an edit and the archive's move, and nothing else.
 */
import { afterAll, describe, expect, it } from "vitest";
import { newMessageId } from "../../src/core/ids.js";
import { messageBodyKey, parseMessageBodyKey } from "../../src/core/message-keys.js";
import { messageArchiveKey } from "../../src/engine/lifecycle.js";
import type { Kura } from "../../src/kura.js";
import { type TestKuraFactory, testKura } from "../support/kura.js";

describe("parseMessageBodyKey", () => {
  let factory: TestKuraFactory | undefined;
  let kura: Kura | undefined;
  afterAll(async () => {
    await kura?.close();
    await factory?.cleanup();
  });

  it("parses the keys an append, an edit and an archive move make", async () => {
    factory = await testKura("sqlite");
    kura = await factory.open();
    const t = kura.tenant("acme.eu-1");
    const ref = await t.messages.append("chat_7", { role: "user", content: "first" });
    await t.messages.edit(ref.id, "second");
    const versions = await kura.catalog.listMessageVersions("acme.eu-1", ref.id);
    expect(versions.map((v) => v.version)).toEqual([1, 2]);
    for (const v of versions) {
      const named = { tenantId: "acme.eu-1", messageId: ref.id, version: v.version };
      expect(parseMessageBodyKey(v.blobKey)).toEqual(named);
      const archived = messageArchiveKey(v.blobKey, "acme.eu-1");
      expect(archived.startsWith("acme.eu-1/archive/messages/")).toBe(true);
      expect(parseMessageBodyKey(archived)).toEqual(named);
    }
  });

  it("reads version, tenant and id from made keys; a failed attempt's key parses the same", () => {
    const id = newMessageId(Date.UTC(2026, 0, 2));
    const at = Date.UTC(2026, 0, 2, 3, 4, 5);
    const key = (version: number, attempt: string) =>
      messageBodyKey({ tenantId: "t1", chatId: "c", id, createdAt: at, version, attempt });
    expect(key(1, "")).toBe(`t1/messages/2026/01/02/c/${id}.json`);
    expect(parseMessageBodyKey(key(1, ""))).toEqual({ tenantId: "t1", messageId: id, version: 1 });
    expect(parseMessageBodyKey(key(12, "0a1b2c3d4e5f"))).toEqual({
      tenantId: "t1",
      messageId: id,
      version: 12,
    });
  });

  it("refuses keys it does not make", () => {
    const id = newMessageId(Date.now());
    for (const k of [
      "t1/objects/notes.txt@0190",
      `t1/messages/2026/01/02/c/${id}.txt`,
      `t1/messages/2026/01/02/c/${id}.v1.00ff.json`,
      `t1/messages/2026/01/02/c/${id}.a00ff.json`,
      `t1/archive/messages/2026/01/02/c/${id}.json`,
      `t1/messages/2026/01/c/${id}.json`,
      `t1/messages/2026/01/02/c/d/${id}.json`,
      `../messages/2026/01/02/c/${id}.json`,
      "t1/messages/2026/01/02/c/not-a-uuid-not-a-uuid-not-a-uuid-xx.json",
      `t1/sessions/s/${id}.json`,
      "",
    ])
      expect(parseMessageBodyKey(k), k).toBeUndefined();
  });
});
