/**
 * Full-text search through the library (SRCH-1…4): the outbox projector keeps the index in step
 * with appends, edits, deletes, undeletes and erasure; a crash between indexing and saving the
 * cursor heals on restart; `rebuildSearch` re-projects everything; an index that cannot be
 * opened degrades to a catalog scan.
 */
import { randomBytes } from "node:crypto";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, beforeEach, describe, expect, it } from "vitest";
import { openSqliteFts } from "../../src/adapters/search/sqlite-fts/index.js";
import { KuraError } from "../../src/core/errors.js";
import { SearchService } from "../../src/engine/search.js";
import type { Kura } from "../../src/kura.js";
import { backendAvailable } from "../support/backends.js";
import { type TestKuraFactory, testKura } from "../support/kura.js";
import { postgresForTests } from "../support/servers/postgres.js";

const pgdb = await postgresForTests();
const pgAvailable = backendAvailable("search-library-postgres", "problem" in pgdb ? pgdb.problem : undefined);
const pgUrl = "url" in pgdb ? pgdb.url : "";

const SENTENCES = [
  "明日の会議は東京で午後三時から始まります。",
  "今日は雨が降っているので、傘を持って行きます。",
  "The meeting in Tokyo was moved to Friday. 会議室は三階です。",
  "Please review the quarterly report before Monday.",
  "東京駅から新幹線で大阪に向かいました。",
];

let factory: TestKuraFactory | undefined;
const open: Kura[] = [];
/** Extra config of the backend under test (the PostgreSQL variant: its own schema per test). */
let extraConfig: () => Record<string, unknown> = () => ({});
let fixedConfig: Record<string, unknown> | undefined;

async function start(options: Parameters<TestKuraFactory["open"]>[0] = {}): Promise<Kura> {
  factory ??= await testKura("sqlite");
  fixedConfig ??= extraConfig();
  const kura = await factory.open({ ...options, config: { ...fixedConfig, ...(options.config ?? {}) } });
  open.push(kura);
  return kura;
}

afterEach(async () => {
  for (const k of open.splice(0)) await k.close();
  await factory?.cleanup();
  factory = undefined;
  fixedConfig = undefined;
});

const ids = async (kura: Kura, tenant: string, q: string, options = {}) =>
  (await kura.tenant(tenant).search(q, options)).hits.map((h) => h.id).sort();

function searchSuite(name: string, backend: string, extra: () => Record<string, unknown> = () => ({})): void {
  describe(`search through the library (${name})`, () => {
    beforeEach(() => {
      extraConfig = extra;
    });

    it("consistent search waits for the projectors, and says so when they cannot catch up", async () => {
      const kura = await start();
      const t = kura.tenant("ryw");
      // A projector that holds delivery until released: the index cannot have the next message.
      let release: () => void = () => undefined;
      const held = new Promise<void>((r) => {
        release = r;
      });
      kura.registerProjector({ name: "held", handle: () => held });
      const ref = await t.messages.append("c", { role: "user", content: "platypus spotted" });
      await expect(t.search("platypus", { consistent: true, consistentTimeoutMs: 200 })).rejects.toSatisfy(
        (e) => e instanceof KuraError && e.code === "OPERATION_TIMEOUT",
      );
      release();
      expect((await t.search("platypus", { consistent: true })).hits.map((h) => h.id)).toEqual([ref.id]);
    });

    it("indexes appends from the outbox and follows edits, deletes, undeletes and erasure", async () => {
      const kura = await start();
      const t = kura.tenant("acme");
      const refs = [];
      for (const [i, content] of SENTENCES.entries())
        refs.push(
          await t.messages.append(i < 3 ? "c1" : "c2", { role: i % 2 ? "assistant" : "user", content }),
        );
      const [m0, m1, m2, , m4] = refs.map((r) => r.id);
      await kura.pumpOutbox();
      expect(await kura.outboxLag("search")).toBe(0);
      expect(kura.projectors).toContain("search");

      const res = await t.search("東京");
      expect(res.degraded).toBe(false);
      expect(res.backend).toBe(backend);
      expect(res.hits.map((h) => h.id).sort()).toEqual([m0, m4].sort());
      expect(res.hits[0]?.createdAt).toMatch(/^\d{4}-/);
      expect(await ids(kura, "acme", "雨")).toEqual([m1]);
      expect(await ids(kura, "acme", "会議")).toEqual([m0, m2].sort());
      expect(await ids(kura, "acme", "新幹線")).toEqual([m4]);
      expect(await ids(kura, "acme", "tokyo 会議室")).toEqual([m2]);
      expect(await ids(kura, "acme", "東京", { chatId: "c2" })).toEqual([m4]);
      expect(await ids(kura, "acme", "会議", { role: "assistant" })).toEqual([]);
      expect(await ids(kura, "other", "東京")).toEqual([]);

      // Content parts: every text part is indexed.
      const parts = await t.messages.append("c3", {
        role: "user",
        content: [
          { type: "text", text: "first part" },
          { type: "text", text: "二番目の部分" },
        ],
      });
      await kura.pumpOutbox();
      expect(await ids(kura, "acme", "部分")).toEqual([parts.id]);

      await t.messages.edit(m1 as string, "今日は晴れです。");
      await kura.pumpOutbox();
      expect(await ids(kura, "acme", "雨")).toEqual([]);
      expect(await ids(kura, "acme", "晴れ")).toEqual([m1]);

      await t.messages.delete(m0 as string);
      await kura.pumpOutbox();
      expect(await ids(kura, "acme", "東京")).toEqual([m4]);
      await t.messages.undelete(m0 as string);
      await kura.pumpOutbox();
      expect(await ids(kura, "acme", "東京")).toEqual([m0, m4].sort());

      await t.messages.erase(m4 as string);
      await kura.pumpOutbox();
      expect(await ids(kura, "acme", "東京")).toEqual([m0]);
    });

    it("never returns a message deleted after it was indexed, even while the projector lags", async () => {
      const kura = await start();
      const t = kura.tenant("acme");
      const m = await t.messages.append("c", { role: "user", content: "遅延 lagging index" });
      await t.messages.delete(m.id);
      // An index that still holds the message (its deletion not projected yet).
      const stale = await openSqliteFts({ path: ":memory:" });
      await stale.upsert([
        {
          tenantId: "acme",
          id: m.id,
          chatId: "c",
          role: "user",
          createdAt: Date.now(),
          text: "遅延 lagging index",
        },
      ]);
      const service = new SearchService(kura.catalog, stale, undefined, Date.now);
      expect((await stale.search({ tenantId: "acme", q: "遅延", limit: 5 })).hits).toHaveLength(1);
      expect((await service.search("acme", "遅延")).hits).toEqual([]);
      await stale.close();
    });

    it("keeps tenants apart when they share words", async () => {
      const kura = await start();
      const a = await kura.tenant("a").messages.append("c", { role: "user", content: "東京の天気 weather" });
      const b = await kura.tenant("b").messages.append("c", { role: "user", content: "東京の天気 weather" });
      await kura.pumpOutbox();
      expect(await ids(kura, "a", "東京 weather")).toEqual([a.id]);
      expect(await ids(kura, "b", "天気")).toEqual([b.id]);
    });

    it("a crash between indexing and saving the cursor heals on restart, each message once", async () => {
      let kura = await start();
      const t = kura.tenant("acme");
      const first = [];
      for (let i = 0; i < 20; i++)
        first.push((await t.messages.append("c", { role: "user", content: `記録 ${i} entry` })).id);
      await kura.pumpOutbox();
      // The index holds all 20, but the saved cursor is back at the third event: what a crash
      // after indexing and before `setConsumerCursor` leaves behind.
      const early = await kura.catalog.readOutbox(undefined, 3);
      await kura.catalog.setConsumerCursor("search", early.at(-1)?.cursor as string);
      expect(await kura.outboxLag("search")).toBeGreaterThan(0);
      await kura.close();

      kura = await start();
      const more = (
        await kura.tenant("acme").messages.append("c", { role: "user", content: "記録 after restart" })
      ).id;
      await kura.pumpOutbox();
      expect(await kura.outboxLag("search")).toBe(0);
      const res = await kura.tenant("acme").search("記録", { limit: 100 });
      const found = res.hits.map((h) => h.id);
      expect(found).toHaveLength(21);
      expect(new Set(found)).toEqual(new Set([...first, more]));
    });

    it("rebuildSearch drops the index and re-projects every live message", async () => {
      const kura = await start();
      const t = kura.tenant("acme");
      const keep = await t.messages.append("c", { role: "user", content: "再構築 rebuild one" });
      const gone = await t.messages.append("c", { role: "user", content: "再構築 rebuild two" });
      await t.messages.delete(gone.id);
      await kura.pumpOutbox();
      expect(await kura.rebuildSearch()).toBe(1); // the live one, read from the catalog
      expect(await ids(kura, "acme", "再構築")).toEqual([keep.id]);
      expect(await kura.outboxLag("search")).toBe(0);
    });

    it.skipIf(backend !== "sqlite-fts")(
      "an index that cannot be opened degrades to a catalog scan of previews (SRCH-3)",
      async () => {
        factory = await testKura("sqlite");
        mkdirSync(join(factory.dir, "search.db"), { recursive: true });
        const warnings: string[] = [];
        const kura = await start({ onWarning: (m) => warnings.push(m) });
        expect(warnings.some((w) => w.includes("search index unavailable"))).toBe(true);
        const t = kura.tenant("acme");
        const m = await t.messages.append("c1", { role: "user", content: "明日の会議は東京で" });
        await t.messages.append("c2", { role: "assistant", content: "Tokyo meeting" });
        const d = await t.messages.append("c2", { role: "user", content: "東京 deleted" });
        await t.messages.delete(d.id);
        const res = await t.search("東京");
        expect(res.degraded).toBe(true);
        expect(res.backend).toBe("catalog-scan");
        expect(res.hits.map((h) => h.id)).toEqual([m.id]);
        expect(res.hits[0]?.highlights.map(([a, b]) => res.hits[0]?.snippet.slice(a, b))).toEqual(["東京"]);
        expect((await t.search("TOKYO", { role: "assistant" })).hits).toHaveLength(1);
        expect((await t.search("tokyo", { chatId: "c1" })).hits).toHaveLength(0);
        expect((await kura.tenant("other").search("東京")).hits).toHaveLength(0);
        // Degraded searches are reported, the first at once and then at most once a minute.
        expect(warnings.filter((w) => w.startsWith("search is degraded"))).toHaveLength(1);
      },
    );

    it("a query the index fails with Unavailable degrades to the catalog scan", async () => {
      const kura = await start();
      await kura.tenant("acme").messages.append("c", { role: "user", content: "障害時の検索 fallback" });
      await kura.pumpOutbox();
      // An index whose queries fail with a KuraError of kind Unavailable: the scan answers instead.
      const broken = {
        backend,
        search: () => Promise.reject(new KuraError("SEARCH_UNAVAILABLE", "down", { operation: "search" })),
      };
      const service = new SearchService(
        kura.catalog,
        broken as unknown as ConstructorParameters<typeof SearchService>[1],
        undefined,
        Date.now,
      );
      const res = await service.search("acme", "検索");
      expect(res.degraded).toBe(true);
      expect(res.hits).toHaveLength(1);
      expect((await kura.tenant("acme").search("検索")).degraded).toBe(false);
    });

    it("rejects empty queries and bad limits", async () => {
      const kura = await start();
      await expect(kura.tenant("acme").search("  ")).rejects.toThrow(/non-empty/);
      await expect(kura.tenant("acme").search("x", { limit: 0 })).rejects.toThrow(/limit/);
    });
  });
}

searchSuite("SQLite FTS5", "sqlite-fts");

describe.skipIf(!pgAvailable)("PostgreSQL catalog and search", () => {
  searchSuite("PostgreSQL tsvector", "postgres", () => ({
    database: { backend: "postgres", url: pgUrl, schema: `kura_${randomBytes(5).toString("hex")}` },
    search: "postgres",
  }));
  afterAll(async () => {
    if ("destroy" in pgdb) await pgdb.destroy();
  });
});
