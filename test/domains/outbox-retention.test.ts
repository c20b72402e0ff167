/**
 * Outbox retention (SPEC OUT-1) through `Kura.open`: the `prune-outbox` job deletes what every
 * projector has passed, keeping `outbox.retention_hours` of tail for the change feed, and the
 * feed refuses a position whose next events are gone.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { JobReport } from "../../src/engine/jobs.js";
import type { Kura } from "../../src/kura.js";
import { expectKuraError } from "../conformance/kv-store.suite.js";
import { type TestKuraFactory, testKura } from "../support/kura.js";

const HOUR = 3_600_000;

const pruned = (reports: JobReport[]) => reports.find((r) => r.name === "prune-outbox")?.result?.deleted;

describe("outbox retention", () => {
  let factory: TestKuraFactory;
  let kura: Kura;
  let now = Date.now();
  beforeEach(async () => {
    factory = await testKura("sqlite");
  });
  afterEach(async () => {
    await kura?.close();
    await factory.cleanup();
  });

  it("keeps the tail of outbox.retention_hours, then prunes it; the feed refuses what it lost", async () => {
    now = Date.now();
    kura = await factory.open({ clock: () => now, config: { outbox: { retention_hours: 24 } } });
    const t = kura.tenant("acme");
    for (const text of ["one", "two", "three"]) await t.messages.append("c", { role: "user", content: text });
    await kura.pumpOutbox();
    const feed = await t.changes();
    expect(feed.map((e) => e.seq)).toEqual([1, 2, 3]);

    // Consumed by every projector, but younger than the tail: kept.
    expect(pruned(await kura.runJobs(now + 23 * HOUR))).toBe(0);
    expect((await t.changes({ after: 0 })).map((e) => e.seq)).toEqual([1, 2, 3]);

    now += 24 * HOUR;
    await t.messages.append("c", { role: "user", content: "four" });
    await kura.pumpOutbox();
    expect(pruned(await kura.runJobs(now + HOUR))).toBe(3);
    expect(await t.changesHorizon()).toBe(3);
    expect((await t.changes()).map((e) => e.seq)).toEqual([4]);
    expect((await t.changes({ after: 3 })).map((e) => e.seq)).toEqual([4]);
    const e = await expectKuraError(t.changes({ after: 1 }), "CHANGES_CURSOR_EXPIRED");
    expect(e.context).toMatchObject({ after: 1, oldest: 4 });
    await expectKuraError(t.changes({ after: 0 }), "CHANGES_CURSOR_EXPIRED");
    // Search still finds every message: projections never needed the pruned events again.
    expect((await t.search("two")).hits).toHaveLength(1);
  });

  it("never prunes what a projector has not passed, even with retention 0", async () => {
    kura = await factory.open({ config: { outbox: { retention_hours: 0 } } });
    const t = kura.tenant("acme");
    let failing = true;
    const seen: string[] = [];
    kura.registerProjector({
      name: "audit-export",
      handle: async (events) => {
        if (failing) throw new Error("downstream unavailable");
        seen.push(...events.map((e) => e.entityId));
      },
    });
    const a = await t.messages.append("c", { role: "user", content: "kept for the exporter" });
    await kura.pumpOutbox();
    // The exporter has saved no position yet: it holds back the whole outbox.
    expect(pruned(await kura.runJobs())).toBe(0);
    expect((await kura.catalog.readOutbox(undefined, 10)).map((e) => e.entityId)).toEqual([a.id]);

    failing = false;
    await kura.pumpOutbox();
    expect(seen).toEqual([a.id]);
    const b = await t.messages.append("c", { role: "user", content: "second" });
    await kura.pumpOutbox();
    failing = true;
    const c = await t.messages.append("c", { role: "user", content: "third" });
    await kura.pumpOutbox();
    // Everything up to what the exporter passed goes; the event it failed on stays.
    expect(pruned(await kura.runJobs())).toBe(2);
    expect((await kura.catalog.readOutbox(undefined, 10)).map((e) => e.entityId)).toEqual([c.id]);
    expect(seen).toEqual([a.id, b.id]);
    failing = false;
    await kura.pumpOutbox();
    expect(seen).toEqual([a.id, b.id, c.id]);
    expect(pruned(await kura.runJobs())).toBe(1);
  });

  it("message embeddings enabled after the outbox was pruned embed the catalog's messages", async () => {
    const config = { outbox: { retention_hours: 0 } };
    kura = await factory.open({ config });
    const t = kura.tenant("acme");
    await t.messages.append("c", { role: "user", content: "quarterly budget review" });
    await t.messages.append("c", { role: "user", content: "weekend hiking trip" });
    await kura.pumpOutbox();
    expect(pruned(await kura.runJobs())).toBe(2);
    await kura.close();

    const vector = { dimensions: 64, metric: "cosine", embed_messages: true };
    kura = await factory.open({ config: { ...config, vector } });
    await kura.close(); // waits for the background embedding
    kura = await factory.open({ config: { ...config, vector } });
    expect(await kura.vectors.messages?.index.count("acme")).toBe(2);
  });
});
