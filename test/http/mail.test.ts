/**
 * Mail over HTTP (MAIL-1): real-world shaped messages (multipart/alternative, attachments,
 * inline images, Japanese encodings, malformed headers) stored as message/rfc822, read back
 * byte for byte, decoded, flagged, listed, copied and moved, threaded, searched; refusals are
 * specific 4xx, a backend down is 503.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ErrorCode, KuraError } from "../../src/core/errors.js";
import { type PortFault, PortFaults, withPortFaults } from "../../src/layers/port-faults.js";
import {
  ALTERNATIVE,
  ATTACHMENT_BYTES,
  ATTACHMENT_FILENAME,
  EUC_JP,
  ISO_2022_JP,
  ISO_2022_JP_SUBJECT,
  MALFORMED,
  PNG_BYTES,
  plain,
  REPLY,
  SHIFT_JIS,
  UTF8_QP,
  WITH_ATTACHMENTS,
} from "../support/mail-fixtures.js";
import { type CallResult, errorCode, type Harness, startServer } from "./harness.js";

const RFC822 = { "content-type": "message/rfc822" };

describe("mail over HTTP", () => {
  let h: Harness;
  let acme: string;
  let globex: string;
  const faults = new PortFaults();

  beforeAll(async () => {
    h = await startServer({
      config: { tiers: { small: { limits: { max_mailbox_bytes: 3000, max_mail_bytes: 10_000 } } } },
      open: { wrapStore: (s) => withPortFaults(s, faults), wrapCatalog: (c) => withPortFaults(c, faults) },
    });
    acme = await h.token("acme");
    globex = await h.token("globex");
  });
  afterAll(async () => {
    faults.disarm();
    await h?.close();
  });

  const deliver = (mailbox: string, raw: Buffer, token = acme, headers: Record<string, string> = RFC822) =>
    h.call("POST", `/v1/mailboxes/${mailbox}/messages`, { token, body: raw, headers });
  const stored = async (mailbox: string, raw: Buffer, token = acme) => {
    const r = await deliver(mailbox, raw, token);
    expect(r.status, r.text).toBe(201);
    return r.json.data;
  };
  const rawOf = async (mailbox: string, id: string, token = acme) => {
    const res = await fetch(`${h.base}/v1/mailboxes/${mailbox}/messages/${id}/raw`, {
      headers: { authorization: `Bearer ${token}` },
    });
    return {
      status: res.status,
      type: res.headers.get("content-type"),
      bytes: Buffer.from(await res.arrayBuffer()),
    };
  };

  it("stores multipart/alternative and reads back the exact bytes and the decoded envelope", async () => {
    const m = await stored("inbox", ALTERNATIVE);
    expect(m).toMatchObject({
      mailbox_id: "inbox",
      message_id: "alt-1@example.com",
      subject: "Quarterly roadmap",
      from: { name: "Alice", address: "alice@example.com" },
      to: [{ name: "Bob", address: "bob@example.com" }],
      cc: [],
      date: "2026-11-30T15:04:05.000Z",
      size: ALTERNATIVE.length,
      flags: [],
      attachments: [],
      problems: [],
    });
    const raw = await rawOf("inbox", m.id);
    expect(raw.status).toBe(200);
    expect(raw.type).toBe("message/rfc822");
    expect(Buffer.compare(raw.bytes, ALTERNATIVE)).toBe(0);
    const got = await h.call("GET", `/v1/mailboxes/inbox/messages/${m.id}`, { token: acme });
    expect(got.json.data).toEqual(m);
    expect(got.json.data.headers.subject).toBe("Quarterly roadmap");
  });

  it("decodes ISO-2022-JP, Shift_JIS, EUC-JP and UTF-8 (RFC 2047 B and Q) and keeps the bytes as delivered", async () => {
    const expected: Array<[Buffer, string]> = [
      [ISO_2022_JP, ISO_2022_JP_SUBJECT],
      [SHIFT_JIS, "見積書"],
      [EUC_JP, "横浜の中華街"],
      [UTF8_QP, "札幌の雪まつり"],
    ];
    for (const [raw, subject] of expected) {
      const m = await stored("jp", raw);
      expect(m.subject).toBe(subject);
      expect(Buffer.compare((await rawOf("jp", m.id)).bytes, raw)).toBe(0);
    }
  });

  it("extracts attachments and inline images (cid) and serves their decoded bytes", async () => {
    const m = await stored("inbox", WITH_ATTACHMENTS);
    const png = m.attachments.find((a: { content_type: string }) => a.content_type === "image/png");
    const pdf = m.attachments.find((a: { content_type: string }) => a.content_type === "application/pdf");
    expect(png).toMatchObject({ disposition: "inline", content_id: "logo@example.com" });
    expect(pdf).toMatchObject({
      disposition: "attachment",
      filename: ATTACHMENT_FILENAME,
      size: ATTACHMENT_BYTES.length,
    });
    for (const [a, bytes] of [
      [png, PNG_BYTES],
      [pdf, ATTACHMENT_BYTES],
    ] as const) {
      const res = await fetch(`${h.base}/v1/mailboxes/inbox/messages/${m.id}/attachments/${a.id}`, {
        headers: { authorization: `Bearer ${acme}` },
      });
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toContain(a.content_type);
      expect(Buffer.compare(Buffer.from(await res.arrayBuffer()), bytes)).toBe(0);
    }
    const missing = await h.call("GET", `/v1/mailboxes/inbox/messages/${m.id}/attachments/9`, {
      token: acme,
    });
    expect(missing.status).toBe(404);
    expect(errorCode(missing)).toBe("MAIL_ATTACHMENT_NOT_FOUND");
  });

  it("stores malformed headers with their problems; refuses unparseable bodies with 400 and wrong types with 415", async () => {
    const m = await stored("odd", MALFORMED);
    expect(m.date).toBeNull();
    expect(m.message_id).toBeNull();
    expect(m.problems).toEqual(
      expect.arrayContaining(["missing-date", "missing-message-id", "unknown-charset:x-unknown-charset"]),
    );
    expect(Buffer.compare((await rawOf("odd", m.id)).bytes, MALFORMED)).toBe(0);
    for (const bad of [Buffer.alloc(0), Buffer.from("no header, no separator, just words")]) {
      const r = await deliver("odd", bad);
      expect(r.status, r.text).toBe(400);
      expect(errorCode(r)).toBe("MAIL_UNPARSEABLE");
    }
    const wrongType = await deliver("odd", ALTERNATIVE, acme, { "content-type": "text/plain" });
    expect(wrongType.status).toBe(415);
    const list = await h.call("GET", "/v1/mailboxes/odd/messages", { token: acme });
    expect(list.json.data.items).toHaveLength(1);
  });

  it("adds and removes flags, filters by ?flag= and ?since, and pages", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await stored("paged", plain(i))).id);
    const patch = (id: string, json: unknown) =>
      h.call("PATCH", `/v1/mailboxes/paged/messages/${id}/flags`, { token: acme, json });
    expect((await patch(ids[1] as string, { add: ["\\Seen", "$Important"] })).json.data.flags).toEqual([
      "$Important",
      "\\Seen",
    ]);
    expect((await patch(ids[3] as string, { add: ["\\Seen"] })).status).toBe(200);
    expect((await patch(ids[1] as string, { remove: ["$Important"] })).json.data.flags).toEqual(["\\Seen"]);
    const bad = await patch(ids[1] as string, { add: ["not a flag"] });
    expect(bad.status).toBe(400);
    const seen = await h.call("GET", `/v1/mailboxes/paged/messages?flag=${encodeURIComponent("\\Seen")}`, {
      token: acme,
    });
    expect(seen.json.data.items.map((m: { id: string }) => m.id)).toEqual([ids[1], ids[3]]);
    const all: string[] = [];
    let cursor: string | null = null;
    do {
      const q: string = cursor ? `&cursor=${encodeURIComponent(cursor)}` : "";
      const page: CallResult = await h.call("GET", `/v1/mailboxes/paged/messages?limit=2${q}`, {
        token: acme,
      });
      expect(page.json.data.items.length).toBeLessThanOrEqual(2);
      all.push(...page.json.data.items.map((m: { id: string }) => m.id));
      cursor = page.json.data.next_cursor;
    } while (cursor);
    expect(all).toEqual(ids);
    const third = (await h.call("GET", `/v1/mailboxes/paged/messages/${ids[2]}`, { token: acme })).json.data;
    const since = await h.call(
      "GET",
      `/v1/mailboxes/paged/messages?since=${encodeURIComponent(third.received_at)}`,
      {
        token: acme,
      },
    );
    expect(since.json.data.items.map((m: { id: string }) => m.id)).toEqual(ids.slice(2));
  });

  it("copies and moves without copying the body, which stays readable after the original is deleted", async () => {
    const m = await stored("inbox", WITH_ATTACHMENTS);
    const before = (await h.call("GET", "/v1/usage", { token: acme })).json.data;
    const copy = await h.call("POST", `/v1/mailboxes/inbox/messages/${m.id}/copy`, {
      token: acme,
      json: { mailbox_id: "archive" },
    });
    expect(copy.status, copy.text).toBe(201);
    expect(copy.json.data.id).not.toBe(m.id);
    expect((await h.call("GET", "/v1/usage", { token: acme })).json.data.bytes).toBe(before.bytes);
    const moved = await h.call("POST", `/v1/mailboxes/archive/messages/${copy.json.data.id}/move`, {
      token: acme,
      json: { mailbox_id: "saved" },
    });
    expect(moved.status).toBe(200);
    expect(moved.json.data.mailbox_id).toBe("saved");
    expect((await h.call("DELETE", `/v1/mailboxes/inbox/messages/${m.id}`, { token: acme })).status).toBe(
      204,
    );
    expect((await h.call("GET", `/v1/mailboxes/inbox/messages/${m.id}`, { token: acme })).status).toBe(404);
    expect(Buffer.compare((await rawOf("saved", copy.json.data.id)).bytes, WITH_ATTACHMENTS)).toBe(0);
    const pdf = copy.json.data.attachments.find(
      (a: { content_type: string }) => a.content_type === "application/pdf",
    );
    const res = await fetch(
      `${h.base}/v1/mailboxes/saved/messages/${copy.json.data.id}/attachments/${pdf.id}`,
      {
        headers: { authorization: `Bearer ${acme}` },
      },
    );
    expect(Buffer.compare(Buffer.from(await res.arrayBuffer()), ATTACHMENT_BYTES)).toBe(0);
  });

  it("threads a reply with its original by References / In-Reply-To", async () => {
    const root = await stored("threads", ALTERNATIVE);
    const reply = await stored("sent", REPLY);
    expect(reply.thread_id).toBe(root.thread_id);
    expect(reply.in_reply_to).toBe("alt-1@example.com");
    const thread = await h.call("GET", `/v1/mail/threads/${root.thread_id}`, { token: acme });
    expect(thread.json.data.items.map((m: { id: string }) => m.id)).toEqual(
      expect.arrayContaining([root.id, reply.id]),
    );
  });

  it("refuses deliveries past max_mailbox_bytes (507) and max_mail_bytes (413), storing nothing", async () => {
    await h.kura.tenants.create({ tenantId: "tiny", tier: "small" });
    const tiny = await h.token("tiny");
    expect((await deliver("inbox", plain(1, 1400), tiny)).status).toBe(201);
    expect((await deliver("inbox", plain(2, 1400), tiny)).status).toBe(201);
    const full = await deliver("inbox", plain(3, 1400), tiny);
    expect(full.status).toBe(507);
    expect(errorCode(full)).toBe("QUOTA_EXCEEDED");
    const big = await deliver("other", plain(4, 20_000), tiny);
    expect(big.status).toBe(413);
    expect(errorCode(big)).toBe("PAYLOAD_TOO_LARGE");
    expect(
      (await h.call("GET", "/v1/mailboxes/inbox/messages", { token: tiny })).json.data.items,
    ).toHaveLength(2);
    expect(
      (await h.call("GET", "/v1/mailboxes/other/messages", { token: tiny })).json.data.items,
    ).toHaveLength(0);
  });

  it("answers 404 for another tenant's mail, whatever the route", async () => {
    const m = await stored("private", UTF8_QP);
    const base = `/v1/mailboxes/private/messages/${m.id}`;
    for (const [method, path, json] of [
      ["GET", base, undefined],
      ["GET", `${base}/raw`, undefined],
      ["GET", `${base}/attachments/1`, undefined],
      ["PATCH", `${base}/flags`, { add: ["\\Seen"] }],
      ["POST", `${base}/copy`, { mailbox_id: "mine" }],
      ["POST", `${base}/move`, { mailbox_id: "mine" }],
      ["DELETE", base, undefined],
    ] as const) {
      const r = await h.call(method, path, { token: globex, ...(json ? { json } : {}) });
      expect(r.status, `${method} ${path}`).toBe(404);
    }
    expect(
      (await h.call("GET", "/v1/mailboxes/private/messages", { token: globex })).json.data.items,
    ).toEqual([]);
    expect((await h.call("GET", base, { token: acme })).json.data.flags).toEqual([]);
  });

  it("finds mail by subject, sender and body words in English and Japanese with scope=mail", async () => {
    const alt = await stored("search", ALTERNATIVE);
    const jis = await stored("search", ISO_2022_JP);
    const euc = await stored("search-2", EUC_JP);
    const find = async (q: string, extra = "") => {
      const r = await h.call(
        "GET",
        `/v1/search?scope=mail&consistent=true&q=${encodeURIComponent(q)}${extra}`,
        {
          token: acme,
        },
      );
      expect(r.status, r.text).toBe(200);
      return r.json.data.items.map((i: { id: string }) => i.id) as string[];
    };
    expect(await find("roadmap")).toContain(alt.id); // subject
    expect(await find("pineapple")).toContain(alt.id); // body
    expect(await find("alice@example.com")).toContain(alt.id); // from
    expect(await find("議事録")).toContain(jis.id); // Japanese subject
    expect(await find("東京")).toContain(jis.id); // Japanese body (ISO-2022-JP)
    expect(await find("名古屋")).toContain(euc.id); // EUC-JP body
    expect(await find("名古屋", "&mailbox_id=search")).not.toContain(euc.id);
    // Another tenant's search finds none of it; message search does not return mail.
    const other = await h.call("GET", "/v1/search?scope=mail&consistent=true&q=roadmap", { token: globex });
    expect(other.json.data.items).toEqual([]);
    const messages = await h.call("GET", "/v1/search?consistent=true&q=pineapple", { token: acme });
    expect(messages.json.data.items).toEqual([]);
    // Deleted mail is not found.
    await h.call("DELETE", `/v1/mailboxes/search/messages/${alt.id}`, { token: acme });
    expect(await find("pineapple")).not.toContain(alt.id);
  });

  it("finds memories by their text with scope=memories", async () => {
    const add = await h.call("POST", "/v1/users/u1/memories", {
      token: acme,
      json: { content: "prefers green tea in the morning" },
    });
    expect(add.status, add.text).toBeLessThan(300);
    await h.call("POST", "/v1/users/u2/memories", { token: acme, json: { content: "drives a red bicycle" } });
    const r = await h.call("GET", `/v1/search?scope=memories&q=${encodeURIComponent("green tea morning")}`, {
      token: acme,
    });
    expect(r.status, r.text).toBe(200);
    expect(r.json.data.items[0]).toMatchObject({
      user_id: "u1",
      content: "prefers green tea in the morning",
    });
    const one = await h.call("GET", "/v1/search?scope=memories&q=bicycle&user_id=u1", { token: acme });
    expect(one.json.data.items.map((i: { user_id: string }) => i.user_id)).not.toContain("u2");
  });

  it("answers 503 when the catalog or the blob store is down, never 5xx otherwise", async () => {
    const m = await stored("faults", UTF8_QP);
    const down = (code: ErrorCode): PortFault => ({
      make: () => new KuraError(code, `${code} (injected)`, { operation: "test" }),
      mode: "reject",
    });
    faults.arm(down("CATALOG_UNAVAILABLE"));
    try {
      expect((await deliver("faults", ALTERNATIVE)).status).toBe(503);
      expect((await h.call("GET", `/v1/mailboxes/faults/messages/${m.id}`, { token: acme })).status).toBe(
        503,
      );
    } finally {
      faults.disarm();
    }
    faults.arm({ ...down("BLOB_BACKEND_UNAVAILABLE"), methods: ["put", "putMany", "get", "getBuffer"] });
    try {
      const r = await deliver("faults", ALTERNATIVE);
      expect(r.status).toBe(503);
      expect(Number(r.headers.get("retry-after"))).toBeGreaterThan(0);
      expect((await rawOf("faults", m.id)).status).toBe(503);
      // Metadata is still readable.
      expect((await h.call("GET", `/v1/mailboxes/faults/messages/${m.id}`, { token: acme })).status).toBe(
        200,
      );
    } finally {
      faults.disarm();
    }
    expect(
      (await h.call("GET", "/v1/mailboxes/faults/messages", { token: acme })).json.data.items,
    ).toHaveLength(1);
  });
});
