/**
 * What the sqlite-fts adapter does beyond the port's contract: ranking windows, filters inside
 * them, tenant numbers across handles and failures, schema migration.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { openSqliteFts } from "../../src/adapters/search/sqlite-fts/index.js";
import { isKuraError } from "../../src/core/errors.js";
import type { SearchDocument, SearchIndex, SearchQuery } from "../../src/ports/search-index.js";

describe("sqlite-fts specifics", () => {
  it("a database that cannot be opened is SEARCH_UNAVAILABLE", async () => {
    const file = join(mkdtempSync(join(tmpdir(), "kura-fts-")), "a-file");
    writeFileSync(file, "not a directory");
    await expect(openSqliteFts({ path: join(file, "search.db") })).rejects.toSatisfy(
      (e: unknown) => isKuraError(e) && e.code === "SEARCH_UNAVAILABLE" && e.kind === "Unavailable",
    );
  });

  it("persists across reopen and clear empties it", async () => {
    const path = join(mkdtempSync(join(tmpdir(), "kura-fts-")), "s.db");
    const a = await openSqliteFts({ path });
    await a.upsert([{ tenantId: "t", id: "x", chatId: "c", role: "user", createdAt: 1, text: "永続 data" }]);
    await a.close();
    const b = await openSqliteFts({ path });
    expect((await b.search({ tenantId: "t", q: "永続", limit: 5 })).hits.map((h) => h.id)).toEqual(["x"]);
    await b.clear();
    expect(await b.count()).toBe(0);
    await b.close();
  });

  const doc = (id: string, text: string, createdAt: number, chatId = "c", role = "user"): SearchDocument => ({
    tenantId: "t",
    id,
    chatId,
    role,
    createdAt,
    text,
  });
  const fresh = () => join(mkdtempSync(join(tmpdir(), "kura-fts-")), "s.db");
  const allPages = async (index: SearchIndex, q: Omit<SearchQuery, "cursor">) => {
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await index.search({ ...q, ...(cursor ? { cursor } : {}) });
      seen.push(...page.hits.map((h) => h.id));
      cursor = page.cursor;
    } while (cursor);
    return seen;
  };

  it.each([
    ["FTS5's bm25()", undefined],
    ["the stored text", 0],
  ])(
    "ranks the newest window of a frequent term by BM25 (%s), then the next window, every match once",
    async (_, countBudget) => {
      const index = await openSqliteFts({
        path: fresh(),
        rank_window: 3,
        ...(countBudget === undefined ? {} : { count_budget: countBudget }),
      });
      try {
        await index.upsert([
          doc("old-best", "weather weather weather weather weather", 1),
          doc("old-1", "the weather today", 2),
          doc("old-2", "weather report for the week ahead and more", 3),
          doc("new-1", "weather report for the week ahead and more", 4),
          doc("new-best", "weather weather weather", 5),
          doc("new-2", "some weather", 6),
          doc("other", "nothing to see", 7),
        ]);
        const page = await index.search({ tenantId: "t", q: "weather", limit: 2 });
        // Window 1 is the 3 newest matches; within it, more occurrences rank first.
        expect(page.hits.map((h) => h.id)).toEqual(["new-best", "new-2"]);
        expect((page.hits[0]?.score ?? 0) > (page.hits[1]?.score ?? 0)).toBe(true);
        const seen = await allPages(index, { tenantId: "t", q: "weather", limit: 2 });
        expect(seen).toEqual(["new-best", "new-2", "new-1", "old-best", "old-1", "old-2"]);
        // Two terms: every hit holds both, each match once, windows newest first.
        const both = await allPages(index, { tenantId: "t", q: "report weather", limit: 1 });
        expect(both).toEqual(["new-1", "old-2"]);
        // Japanese words in a window are counted like their tokens; shorter texts rank first.
        await index.upsert([
          doc("j1", "会議の会議の会議", 10),
          doc("j2", "明日の会議", 11),
          doc("j3", "会議室の予約", 12),
          doc("j4", "会議", 13),
          doc("j5", "東京", 14),
        ]);
        expect(await allPages(index, { tenantId: "t", q: "会議", limit: 3 })).toEqual([
          "j4",
          "j2",
          "j3",
          "j1",
        ]);
        expect(await allPages(index, { tenantId: "t", q: "会議室", limit: 5 })).toEqual(["j3"]);
      } finally {
        await index.close();
      }
    },
  );

  it.each([
    ["FTS5's bm25()", undefined],
    ["the stored text", 0],
  ])("applies chat, role and time filters inside the window (%s), not after it", async (_, countBudget) => {
    const index = await openSqliteFts({
      path: fresh(),
      rank_window: 2,
      ...(countBudget === undefined ? {} : { count_budget: countBudget }),
    });
    try {
      await index.upsert([
        doc("b-old", "東京 report", 1, "chat-b", "assistant"),
        ...Array.from({ length: 6 }, (_, i) => doc(`a${i}`, "東京 report", 10 + i, "chat-a", "user")),
      ]);
      const ids = async (q: Partial<SearchQuery>) =>
        (await allPages(index, { tenantId: "t", q: "東京", limit: 10, ...q })).sort();
      expect(await ids({ chatId: "chat-b" })).toEqual(["b-old"]);
      expect(await ids({ role: "assistant" })).toEqual(["b-old"]);
      expect(await ids({ until: 10 })).toEqual(["b-old"]);
      expect(await ids({ since: 14 })).toEqual(["a4", "a5"]);
      expect(await ids({ chatId: "chat-a", since: 11, until: 13 })).toEqual(["a1", "a2"]);
      expect(await ids({})).toHaveLength(7);
    } finally {
      await index.close();
    }
  });

  it("keeps tenants apart through clear, even for a second handle on the same file", async () => {
    const path = fresh();
    const a = await openSqliteFts({ path });
    const b = await openSqliteFts({ path });
    try {
      await a.upsert([{ ...doc("x", "共有 word", 1), tenantId: 'odd "tenant" 1_' }]);
      expect((await b.search({ tenantId: 'odd "tenant" 1_', q: "共有", limit: 5 })).hits).toHaveLength(1);
      await a.clear();
      // After a clear, another tenant indexed first must not take the first tenant's place.
      await a.upsert([{ ...doc("y", "共有 word", 2), tenantId: "other" }]);
      expect((await b.search({ tenantId: 'odd "tenant" 1_', q: "共有", limit: 5 })).hits).toEqual([]);
      expect((await b.search({ tenantId: "other", q: "word", limit: 5 })).hits.map((h) => h.id)).toEqual([
        "y",
      ]);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it("does not keep a tenant number from a failed upsert", async () => {
    const index = await openSqliteFts({ path: fresh() });
    try {
      const bad = { ...doc("x", "秘密 secret", 1), tenantId: "first", text: null as unknown as string };
      await expect(index.upsert([bad])).rejects.toSatisfy(
        (e: unknown) => isKuraError(e) && e.code === "SEARCH_UNAVAILABLE",
      );
      // The rolled-back number goes to the next new tenant; "first" must not read its documents.
      await index.upsert([{ ...doc("y", "秘密 secret", 2), tenantId: "second" }]);
      expect((await index.search({ tenantId: "first", q: "秘密", limit: 5 })).hits).toEqual([]);
      expect(
        (await index.search({ tenantId: "second", q: "secret", limit: 5 })).hits.map((h) => h.id),
      ).toEqual(["y"]);
    } finally {
      await index.close();
    }
  });

  it("migrates an index of the first schema by re-indexing its stored text", async () => {
    const path = fresh();
    const old = new Database(path);
    old.exec(`CREATE TABLE search_docs (
        rowid INTEGER PRIMARY KEY, tenant_id TEXT NOT NULL, id TEXT NOT NULL, chat_id TEXT NOT NULL,
        role TEXT NOT NULL, created_at INTEGER NOT NULL, text TEXT NOT NULL, UNIQUE (tenant_id, id));
      CREATE VIRTUAL TABLE search_fts USING fts5(tokens, tenant_id UNINDEXED, tokenize = 'unicode61 remove_diacritics 0');`);
    const put = old.prepare(
      "INSERT INTO search_docs (tenant_id, id, chat_id, role, created_at, text) VALUES (?, ?, ?, ?, ?, ?)",
    );
    put.run("t", "m1", "c1", "user", 1, "明日の会議は東京で");
    put.run("t", "m2", "c2", "assistant", 2, "rain in Tokyo");
    put.run("u", "m1", "c1", "user", 3, "東京タワー");
    old.close();
    const index = await openSqliteFts({ path });
    try {
      expect(await index.count()).toBe(3);
      expect((await index.search({ tenantId: "t", q: "東京", limit: 5 })).hits.map((h) => h.id)).toEqual([
        "m1",
      ]);
      expect(
        (await index.search({ tenantId: "t", q: "tokyo", role: "assistant", limit: 5 })).hits,
      ).toHaveLength(1);
      expect((await index.search({ tenantId: "u", q: "東京", limit: 5 })).hits[0]?.snippet).toBe(
        "東京タワー",
      );
    } finally {
      await index.close();
    }
    const check = new Database(path, { readonly: true });
    expect(check.pragma("user_version", { simple: true })).toBe(2);
    check.close();
  });

  it("refuses an index written by a newer schema with a clear error", async () => {
    const path = fresh();
    const db = new Database(path);
    db.pragma("user_version = 99");
    db.close();
    await expect(openSqliteFts({ path })).rejects.toSatisfy(
      (e: unknown) => isKuraError(e) && e.code === "SEARCH_UNAVAILABLE" && /kura reindex/.test(e.message),
    );
  });
});
