/**
 * Several nodes over one PostgreSQL catalog (DIST-1, ADR 0039), each with its own data
 * directory and so its own embedded search index: every node's index consumes the whole outbox
 * under a consumer of its own, a node that joins late takes what the outbox lost from the
 * catalog, retention waits for every node until one is forgotten (by hand or for staleness),
 * a per-node vector plane is refused beside a live node, and a message cached on one node is
 * never served stale after another node's edit or delete.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { JobReport } from "../../src/engine/jobs.js";
import { Kura } from "../../src/kura.js";
import { expectKuraError } from "../conformance/kv-store.suite.js";
import { backendAvailable } from "../support/backends.js";
import { postgresForTests } from "../support/servers/postgres.js";

const db = await postgresForTests();
const available = backendAvailable("nodes-postgres", "problem" in db ? db.problem : undefined);
const HOUR = 3_600_000;

const job = (reports: JobReport[], name: string) => reports.find((r) => r.name === name)?.result;

describe.skipIf(!available)("nodes sharing a PostgreSQL catalog", () => {
  let root: string;
  const open: Kura[] = [];
  let schemaN = 0;
  let schema = "";

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), "kura-nodes-"));
  });
  afterEach(async () => {
    for (const k of open.splice(0)) await k.close();
  });
  afterAll(async () => {
    if ("destroy" in db) await db.destroy();
    if (root) await rm(root, { recursive: true, force: true });
  });

  /** A node with its own data directory over this test's schema. */
  const node = async (name: string, config: Record<string, unknown> = {}, clock?: () => number) => {
    const kura = await Kura.open(
      {
        data_dir: join(root, `${schema}-${name}`),
        database: { backend: "postgres", url: "url" in db ? db.url : "", schema },
        // One blob store for all, as S3 would be.
        storage: { backend: "fs", options: { base_path: join(root, `${schema}-blobs`) } },
        ...config,
      },
      clock ? { clock } : {},
    );
    open.push(kura);
    return kura;
  };
  const fresh = () => {
    schema = `nodes_${process.pid}_${++schemaN}`;
  };
  const allLocal = { node: { allow_local_vectors: true } };

  it("every node's own index finds every message, under a consumer named after the node", async () => {
    fresh();
    const nodes = [await node("a", allLocal), await node("b", allLocal), await node("c", allLocal)];
    const ids = nodes.map((k) => k.nodeId);
    expect(new Set(ids).size).toBe(3);
    // The generated id is kept in the data directory: a restart is the same node.
    expect((await readFile(join(root, `${schema}-a`, "node-id"), "utf8")).trim()).toBe(ids[0]);
    for (let i = 0; i < 6; i++)
      await nodes[i % 3]?.tenant("acme").messages.append("c1", { role: "user", content: `lantern ${i}` });
    for (const k of nodes) {
      await k.pumpOutbox();
      expect(k.projectors).toContain(`search@${k.nodeId}`);
      const found = await k.tenant("acme").search("lantern", { limit: 20 });
      expect(found.degraded).toBe(false);
      expect(found.hits).toHaveLength(6);
    }
    const listed = await nodes[0]?.nodes();
    expect(listed?.map((n) => n.id).sort()).toEqual([...ids].sort());
    expect(listed?.every((n) => n.live && n.consumers.length === 1)).toBe(true);
  });

  it("a node that joins after the outbox was pruned takes every message from the catalog", async () => {
    fresh();
    let now = Date.now();
    const clock = () => now;
    const a = await node("a", { ...allLocal, outbox: { retention_hours: 0 } }, clock);
    for (let i = 0; i < 5; i++)
      await a.tenant("acme").messages.append("c1", { role: "user", content: `harbor ${i}` });
    await a.pumpOutbox();
    now += HOUR;
    expect(job(await a.runJobs(now), "prune-outbox")?.deleted).toBeGreaterThanOrEqual(5);
    const b = await node("b", allLocal);
    // Its rebuild from the catalog runs in the background after open.
    const deadline = Date.now() + 60_000;
    let hits = 0;
    while (hits < 5 && Date.now() < deadline) {
      await b.pumpOutbox();
      hits = (await b.tenant("acme").search("harbor", { limit: 20 })).hits.length;
      if (hits < 5) await new Promise((r) => setTimeout(r, 100));
    }
    expect(hits).toBe(5);
  });

  it("retention waits for every node; a stopped one is forgotten by hand or once stale", async () => {
    fresh();
    let now = Date.now();
    const clock = () => now;
    const config = {
      ...allLocal,
      outbox: { retention_hours: 0 },
      node: { ...allLocal.node, stale_after_hours: 3 },
    };
    const a = await node("a", config, clock);
    const t = a.tenant("acme");
    await t.messages.append("c1", { role: "user", content: "zero" });
    await a.pumpOutbox();
    // b joins (its consumer starts at the outbox head) and stops.
    const b = await node("b", config, clock);
    const bId = b.nodeId as string;
    await b.close();
    open.splice(open.indexOf(b), 1);
    now += HOUR;
    expect(job(await a.runJobs(now), "prune-outbox")).toEqual({ deleted: 1, forgotten_nodes: 0 });
    for (let i = 0; i < 3; i++) await t.messages.append("c1", { role: "user", content: `x ${i}` });
    await a.pumpOutbox();
    now += HOUR;
    // b has passed none of them: nothing goes.
    expect(job(await a.runJobs(now), "prune-outbox")).toEqual({ deleted: 0, forgotten_nodes: 0 });
    expect((await a.nodes()).find((n) => n.id === bId)).toMatchObject({ live: false, state: "stopped" });
    // Forgotten by hand (`kura nodes forget`): its cursor goes, and so do the events.
    expect(await a.forgetNode(bId)).toBe(true);
    expect(await a.forgetNode(bId)).toBe(false);
    expect(job(await a.runJobs(now), "prune-outbox")?.deleted).toBe(3);

    // A node that stops heartbeating is forgotten once older than node.stale_after_hours.
    await t.messages.append("c1", { role: "user", content: "mid" });
    await a.pumpOutbox();
    const c = await node("c", config, clock);
    const cId = c.nodeId as string;
    await c.close();
    open.splice(open.indexOf(c), 1);
    await t.messages.append("c1", { role: "user", content: "late" });
    await a.pumpOutbox();
    now += HOUR;
    // c passed "mid" (it started at the head), not "late".
    expect(job(await a.runJobs(now), "prune-outbox")).toEqual({ deleted: 1, forgotten_nodes: 0 });
    now += 3 * HOUR;
    expect(job(await a.runJobs(now), "prune-outbox")).toEqual({ deleted: 1, forgotten_nodes: 1 });
    expect((await a.nodes()).map((n) => n.id)).not.toContain(cId);
  });

  it("refuses a vector plane of the node's own beside a live node, unless allowed", async () => {
    fresh();
    await node("a");
    const e = await expectKuraError(node("b"), "CONFIG_INVALID");
    expect(e.message).toContain("pgvector");
    const b = await node("b", allLocal);
    expect(b.nodeId).toBeDefined();
  });

  it("a message cached on one node is never served stale after another node's edit or delete", async () => {
    fresh();
    const a = await node("a", allLocal);
    const b = await node("b", allLocal);
    const ref = await a.tenant("acme").messages.append("c1", { role: "user", content: "first" });
    const onB = b.tenant("acme").messages;
    expect((await onB.get(ref.id)).content).toBe("first");
    expect((await onB.get(ref.id)).content).toBe("first");
    await a.tenant("acme").messages.edit(ref.id, "second");
    expect((await onB.get(ref.id)).content).toBe("second");
    await a.tenant("acme").messages.delete(ref.id);
    await expectKuraError(onB.get(ref.id), "MESSAGE_NOT_FOUND");
  });
});
