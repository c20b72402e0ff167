/**
 * Jobs exactly once across nodes (DIST-1, ADR 0039), on both catalogs: a job's lease carries a
 * fencing token that rises with every run and every takeover; while one runner holds a job,
 * another skips it; a lease its holder stopped renewing (a dead node) is taken over once it
 * expires; and a batch a job commits after its lease passed to another runner is refused whole
 * (LEASE_LOST), so a node that stalled and wakes up writes nothing more.
 */
import { describe, expect, it } from "vitest";
import { GroupCommitter } from "../../src/engine/group-commit.js";
import { type Job, JobRunner } from "../../src/engine/jobs.js";
import type { Catalog, CatalogOp } from "../../src/ports/catalog.js";
import { onBothDialects } from "../support/catalog-sqlite.js";

const audit = (tenantId: string, action: string): CatalogOp => ({
  op: "appendAudit",
  entry: { tenantId, actor: "job", action, target: "x", at: 1, details: {} },
});

await onBothDialects("job leases with fencing tokens", (dialect, harness) =>
  describe(dialect, () => {
    const withCatalogs = async (work: (a: Catalog, b: Catalog) => Promise<void>) => {
      const h = await harness();
      const a = await h.open();
      const b = await h.open();
      try {
        await work(a, b);
      } finally {
        await a.close();
        await b.close();
        await h.cleanup();
      }
    };

    it("one runner at a time; tokens rise; a dead holder's lease is taken over once it expires", async () => {
      await withCatalogs(async (a, b) => {
        const now = Date.now();
        let release: () => void = () => undefined;
        const gate = new Promise<void>((r) => {
          release = r;
        });
        let started: () => void = () => undefined;
        const running = new Promise<void>((r) => {
          started = r;
        });
        const slow: Job = {
          name: "slow",
          run: async () => {
            started();
            await gate;
            return { done: 1 };
          },
        };
        const one = new JobRunner(a, () => now, { owner: "one" });
        const two = new JobRunner(b, () => now, { owner: "two" });
        one.register(slow);
        two.register({ name: "slow", run: async () => ({ done: 2 }) });
        const first = one.runOnce(now);
        await running;
        expect(await two.runOnce(now)).toEqual([{ name: "slow", ran: false }]);
        expect((await one.owners(now)).get("slow")).toBe(one.owner);
        release();
        const [ran] = await first;
        expect(ran).toMatchObject({ name: "slow", ran: true, result: { done: 1 } });
        const [next] = await two.runOnce(now);
        expect(next?.token).toBeGreaterThan(ran?.token as number);
        expect(two.jobStats()[0]).toMatchObject({ name: "slow", runs: 1, failures: 0 });

        // A node that died holding the lease (no renewals): skipped until it expires, then taken.
        expect(await a.takeLease({ name: "job:slow", owner: "dead", now, ttlMs: 15_000 })).toBeDefined();
        expect(await two.runOnce(now + 1_000)).toEqual([{ name: "slow", ran: false }]);
        const [taken] = await two.runOnce(now + 15_001);
        expect(taken).toMatchObject({ ran: true, result: { done: 2 } });
        expect(taken?.token).toBeGreaterThan(next?.token as number);
      });
    });

    it("a job's commits after its lease passed to another runner fail whole with LEASE_LOST", async () => {
      await withCatalogs(async (a, b) => {
        const committer = new GroupCommitter(a);
        const tenant = `t${Date.now()}`;
        const now = Date.now();
        const outcome: string[] = [];
        const runner = new JobRunner(a, () => now, { owner: "stalled" });
        runner.register({
          name: "writer",
          run: async () => {
            await committer.commit({ ops: [audit(tenant, "before")] });
            // Another node takes the job over (this one stalled past its lease).
            await b.takeLease({ name: "job:writer", owner: "other", now: now + 60_000, ttlMs: 15_000 });
            try {
              await committer.commit({ ops: [audit(tenant, "after")] });
              outcome.push("committed");
            } catch (e) {
              outcome.push((e as { code?: string }).code ?? String(e));
            }
            return {};
          },
        });
        await runner.runOnce(now);
        expect(outcome).toEqual(["LEASE_LOST"]);
        // Outside a job nothing is fenced.
        await committer.commit({ ops: [audit(tenant, "outside")] });
        expect((await a.auditLog(tenant, { limit: 10 })).map((e) => e.action)).toEqual(["before", "outside"]);
        await committer.close();
      });
    });
  }),
);
