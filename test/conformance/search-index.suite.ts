/**
 * The behaviour suite for every SearchIndex adapter (SRCH-1/2): CJK words of 1, 2 and 3+
 * characters, mixed-language queries, ranking, filters, tenant scoping, idempotent upserts,
 * removal, highlights and paging. Each test uses its own random tenants.
 */
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isKuraError } from "../../src/core/errors.js";
import type { SearchDocument, SearchIndex, SearchQuery } from "../../src/ports/search-index.js";

export interface SearchIndexHarness {
  open(): Promise<SearchIndex>;
  cleanup(): Promise<void>;
}

const T0 = Date.UTC(2026, 0, 1);

const JA: Array<[string, string]> = [
  ["m01", "明日の会議は東京で午後三時から始まります。"],
  ["m02", "今日は雨が降っているので、傘を持って行きます。"],
  ["m03", "The meeting in Tokyo was moved to Friday. 会議室は三階です。"],
  ["m04", "京都の紅葉はとても綺麗でした。"],
  ["m05", "Please review the quarterly report before Monday."],
  ["m06", "東京駅から新幹線で大阪に向かいました。"],
  ["m07", "プロジェクトの進捗を報告します。デプロイは来週です。"],
  ["m08", "서울에서 회의가 있습니다."],
];

function docs(tenantId: string, chatId = "chat-a"): SearchDocument[] {
  return JA.map(([id, text], i) => ({
    tenantId,
    id,
    chatId: i % 2 === 0 ? chatId : "chat-b",
    role: i % 3 === 0 ? "assistant" : "user",
    createdAt: T0 + i * 1000,
    text,
  }));
}

const tenant = () => `t${randomBytes(5).toString("hex")}`;

export function searchIndexConformance(name: string, harness: SearchIndexHarness): void {
  describe(`SearchIndex conformance: ${name}`, () => {
    let index: SearchIndex;
    const ids = async (q: Omit<SearchQuery, "limit"> & { limit?: number }) =>
      (await index.search({ limit: 50, ...q })).hits.map((h) => h.id).sort();

    beforeAll(async () => {
      index = await harness.open();
    });
    afterAll(async () => {
      await index?.close();
      await harness.cleanup();
    });

    it("finds Japanese words of 1, 2 and 3+ characters", async () => {
      const t = tenant();
      await index.upsert(docs(t));
      expect(await ids({ tenantId: t, q: "雨" })).toEqual(["m02"]);
      expect(await ids({ tenantId: t, q: "会議" })).toEqual(["m01", "m03"]);
      expect(await ids({ tenantId: t, q: "東京" })).toEqual(["m01", "m06"]);
      expect(await ids({ tenantId: t, q: "京" })).toEqual(["m01", "m04", "m06"]);
      expect(await ids({ tenantId: t, q: "会議室" })).toEqual(["m03"]);
      expect(await ids({ tenantId: t, q: "新幹線" })).toEqual(["m06"]);
      expect(await ids({ tenantId: t, q: "プロジェクト" })).toEqual(["m07"]);
      expect(await ids({ tenantId: t, q: "회의" })).toEqual(["m08"]);
      // 3+ characters are a phrase: the bigrams must be adjacent, in order.
      expect(await ids({ tenantId: t, q: "東京会議" })).toEqual([]);
      expect(await ids({ tenantId: t, q: "大阪" })).toEqual(["m06"]);
      expect(await ids({ tenantId: t, q: "名古屋" })).toEqual([]);
    });

    it("splits unspaced Japanese queries at particles; quotes ask for the phrase as written", async () => {
      const t = tenant();
      await index.upsert([
        ...docs(t),
        {
          tenantId: t,
          id: "m09",
          chatId: "c",
          role: "user",
          createdAt: T0 + 9000,
          text: "東京で会議をします",
        },
        {
          tenantId: t,
          id: "m10",
          chatId: "c",
          role: "user",
          createdAt: T0 + 10000,
          text: "東京の会議は延期",
        },
      ]);
      // The words apart (m01: 会議 … 東京, m09: 東京で会議) and together (m10) are all found.
      expect(await ids({ tenantId: t, q: "東京の会議" })).toEqual(["m01", "m09", "m10"]);
      expect(await ids({ tenantId: t, q: "東京 会議" })).toEqual(["m01", "m09", "m10"]);
      expect(await ids({ tenantId: t, q: '"東京の会議"' })).toEqual(["m10"]);
      expect(await ids({ tenantId: t, q: "会議室は三階です" })).toEqual(["m03"]);
      expect(await ids({ tenantId: t, q: "大阪に向かいました" })).toEqual(["m06"]);
      expect(await ids({ tenantId: t, q: "京都の雨" })).toEqual([]);
    });

    it("documents the bigram trade-off: a bigram may straddle two adjacent words of a CJK run", async () => {
      const t = tenant();
      await index.upsert(docs(t));
      // 会議は東京 contains は東 across the particle and the next word: a known, accepted hit.
      expect(await ids({ tenantId: t, q: '"は東"' })).toEqual(["m01"]);
      // Words absent from the text are never found, whatever their length.
      expect(await ids({ tenantId: t, q: "議東" })).toEqual([]);
    });

    it("finds English words case-insensitively and mixed-language queries", async () => {
      const t = tenant();
      await index.upsert(docs(t));
      expect(await ids({ tenantId: t, q: "MEETING" })).toEqual(["m03"]);
      expect(await ids({ tenantId: t, q: "report" })).toEqual(["m05"]);
      expect(await ids({ tenantId: t, q: "Tokyo 会議室" })).toEqual(["m03"]);
      expect(await ids({ tenantId: t, q: "Tokyo 雨" })).toEqual([]);
      expect(await ids({ tenantId: t, q: "meet" })).toEqual([]);
      // Full-width Latin is normalised (NFKC).
      expect(await ids({ tenantId: t, q: "ＴＯＫＹＯ" })).toEqual(["m03"]);
      // Query syntax is not interpreted: quotes, operators and parentheses are just text.
      expect(await ids({ tenantId: t, q: '"report" OR (NEAR' })).toEqual([]);
      expect(await ids({ tenantId: t, q: "'; DROP TABLE x; --" })).toEqual([]);
      expect(await ids({ tenantId: t, q: "  ...  " })).toEqual([]);
    });

    it("ranks documents with more matches first", async () => {
      const t = tenant();
      await index.upsert([
        { tenantId: t, id: "a", chatId: "c", role: "user", createdAt: T0, text: "weather report" },
        {
          tenantId: t,
          id: "b",
          chatId: "c",
          role: "user",
          createdAt: T0 - 1,
          text: "weather weather weather, nothing but weather",
        },
        { tenantId: t, id: "c", chatId: "c", role: "user", createdAt: T0, text: "unrelated text" },
      ]);
      const page = await index.search({ tenantId: t, q: "weather", limit: 10 });
      expect(page.hits.map((h) => h.id)).toEqual(["b", "a"]);
      expect((page.hits[0]?.score ?? 0) > (page.hits[1]?.score ?? 0)).toBe(true);
    });

    it("returns a snippet with the matched words highlighted", async () => {
      const t = tenant();
      await index.upsert(docs(t));
      const [hit] = (await index.search({ tenantId: t, q: "tokyo 会議室", limit: 5 })).hits;
      expect(hit?.id).toBe("m03");
      const marked = hit?.highlights.map(([a, b]) => hit.snippet.slice(a, b));
      expect(marked).toEqual(["Tokyo", "会議室"]);
      const [jp] = (await index.search({ tenantId: t, q: "新幹線", limit: 5 })).hits;
      expect(jp?.highlights.map(([a, b]) => jp.snippet.slice(a, b))).toEqual(["新幹線"]);
      const long = `${"前置き。".repeat(100)}最後に会議があります。`;
      await index.upsert([{ tenantId: t, id: "long", chatId: "c", role: "user", createdAt: T0, text: long }]);
      const [l] = (await index.search({ tenantId: t, q: "最後", limit: 5 })).hits;
      expect(l?.snippet.length).toBeLessThan(200);
      expect(l?.highlights.map(([a, b]) => l.snippet.slice(a, b))).toEqual(["最後"]);
    });

    it("filters by chat, role and time range", async () => {
      const t = tenant();
      await index.upsert(docs(t));
      expect(await ids({ tenantId: t, q: "東京", chatId: "chat-a" })).toEqual(["m01"]);
      expect(await ids({ tenantId: t, q: "東京", chatId: "chat-b" })).toEqual(["m06"]);
      expect(await ids({ tenantId: t, q: "東京", role: "assistant" })).toEqual(["m01"]);
      expect(await ids({ tenantId: t, q: "会議", since: T0 + 1000 })).toEqual(["m03"]);
      expect(await ids({ tenantId: t, q: "会議", until: T0 + 2000 })).toEqual(["m01"]);
      expect(await ids({ tenantId: t, q: "会議", since: T0 + 3000, until: T0 + 9000 })).toEqual([]);
    });

    it("scopes every query to its tenant, even for shared words and ids", async () => {
      const a = tenant();
      const b = tenant();
      await index.upsert(docs(a));
      await index.upsert([
        { tenantId: b, id: "m01", chatId: "chat-a", role: "user", createdAt: T0, text: "雨の東京" },
      ]);
      expect(await ids({ tenantId: a, q: "東京" })).toEqual(["m01", "m06"]);
      expect(await ids({ tenantId: b, q: "東京" })).toEqual(["m01"]);
      expect(await ids({ tenantId: b, q: "会議" })).toEqual([]);
      const [hit] = (await index.search({ tenantId: b, q: "東京", limit: 5 })).hits;
      expect(hit?.snippet).toBe("雨の東京");
      expect(await index.count(b)).toBe(1);
      await index.remove(b, ["m01"]);
      expect(await ids({ tenantId: a, q: "東京" })).toEqual(["m01", "m06"]);
      expect(await ids({ tenantId: b, q: "東京" })).toEqual([]);
    });

    it("upsert is idempotent and replaces the text; remove is idempotent", async () => {
      const t = tenant();
      await index.upsert(docs(t));
      await index.upsert(docs(t));
      expect(await index.count(t)).toBe(JA.length);
      expect(await ids({ tenantId: t, q: "雨" })).toEqual(["m02"]);
      await index.upsert([
        { tenantId: t, id: "m02", chatId: "chat-b", role: "user", createdAt: T0, text: "晴れです" },
      ]);
      expect(await ids({ tenantId: t, q: "雨" })).toEqual([]);
      expect(await ids({ tenantId: t, q: "晴れ" })).toEqual(["m02"]);
      await index.remove(t, ["m02", "m02", "nope"]);
      await index.remove(t, ["m02"]);
      expect(await ids({ tenantId: t, q: "晴れ" })).toEqual([]);
      expect(await index.count(t)).toBe(JA.length - 1);
    });

    it("pages with a cursor, without repeats", async () => {
      const t = tenant();
      await index.upsert(
        Array.from({ length: 25 }, (_, i) => ({
          tenantId: t,
          id: `p${String(i).padStart(2, "0")}`,
          chatId: "c",
          role: "user",
          createdAt: T0 + i,
          text: `ページ ${i} の本文 page`,
        })),
      );
      const seen: string[] = [];
      let cursor: string | undefined;
      do {
        const page = await index.search({ tenantId: t, q: "本文", limit: 10, ...(cursor ? { cursor } : {}) });
        seen.push(...page.hits.map((h) => h.id));
        cursor = page.cursor;
      } while (cursor);
      expect(seen).toHaveLength(25);
      expect(new Set(seen).size).toBe(25);
      await expect(index.search({ tenantId: t, q: "本文", limit: 10, cursor: "!!" })).rejects.toSatisfy(
        (e: unknown) => isKuraError(e) && e.code === "CURSOR_INVALID",
      );
    });

    it("existing and listDocuments name the documents held, per tenant, each once", async () => {
      const a = tenant();
      const b = tenant();
      await index.upsert(docs(a));
      await index.upsert(docs(b).slice(0, 2));
      await index.remove(a, ["m02"]);
      const held = await index.existing(a, ["m01", "m02", "m03", "nope"]);
      expect([...held].sort()).toEqual(["m01", "m03"]);
      expect([...(await index.existing(b, ["m01", "m03"]))]).toEqual(["m01"]);
      expect((await index.existing(a, [])).size).toBe(0);
      const listed: string[] = [];
      let cursor: string | undefined;
      for (let pages = 0; pages < 10_000; pages++) {
        const page = await index.listDocuments({ limit: 3, ...(cursor ? { cursor } : {}) });
        expect(page.keys.length).toBeLessThanOrEqual(3);
        for (const k of page.keys)
          if (k.tenantId === a || k.tenantId === b) listed.push(`${k.tenantId}/${k.id}`);
        cursor = page.cursor;
        if (!cursor) break;
      }
      const expected = [
        ...docs(a)
          .map((d) => `${a}/${d.id}`)
          .filter((k) => k !== `${a}/m02`),
        `${b}/m01`,
        `${b}/m02`,
      ];
      expect(listed.sort()).toEqual(expected.sort());
      await expect(index.listDocuments({ limit: 3, cursor: "!!" })).rejects.toSatisfy(
        (e: unknown) => isKuraError(e) && e.code === "CURSOR_INVALID",
      );
    });

    it("a closed index refuses every call with CLOSED; closing twice is fine", async () => {
      const closing = await harness.open();
      await closing.close();
      await closing.close();
      const t = tenant();
      for (const call of [
        () => closing.upsert(docs(t)),
        () => closing.search({ tenantId: t, q: "本文", limit: 10 }),
        () => closing.count(t),
      ])
        await expect(call()).rejects.toSatisfy(
          (e: unknown) => isKuraError(e) && e.code === "CLOSED" && e.kind === "Unavailable" && !e.retryable,
        );
    });

    it("clear drops everything", async () => {
      const other = await harness.open();
      try {
        const t = tenant();
        await other.upsert(docs(t));
        expect(await other.count(t)).toBe(JA.length);
      } finally {
        await other.close();
      }
    });
  });
}
