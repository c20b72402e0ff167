/**
 * MEM-1's write protocol across the KV and vector planes (ADR 0022), over a real LMDB KV store
 * and a usearch index persisted on disk (`memory-writes-pgvector.test.ts`: a pgvector table). A put, an update and a delete are stopped after each
 * of their writes in turn — every later call of either plane fails, as if the process had died
 * there — then both stores are reopened: a memory must be found by similarity search, with the
 * embedding of its current content and its current category, exactly when its record exists,
 * and an acknowledged change must hold. Also through `Kura.open`: a KV failure between the two
 * writes of a delete, and the in-memory `exact` index rebuilt from the records after a restart.
 */
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { KuraError } from "../../src/core/errors.js";
import { Memories } from "../../src/domains/memories.js";
import { MEMORY_INTENT_PREFIX } from "../../src/engine/memory-index.js";
import { Kura } from "../../src/kura.js";
import { PortFaults, withPortFaults } from "../../src/layers/port-faults.js";
import {
  clock,
  crashPoints,
  dirs,
  embedder,
  expectAgreement,
  NEW,
  OLD,
  stores,
  usearch,
} from "../support/memory-crash-points.js";

describe("memories: one write across the KV record and the vector index", () => {
  crashPoints(() => usearch);

  it("a failed index write leaves no trace once the index answers again, without a restart", async () => {
    const dir = await mkdtemp(join(tmpdir(), "kura-memw-"));
    dirs.push(dir);
    const { kv, index } = await stores(dir, usearch);
    const faults = new PortFaults();
    const ctx = { kv, index: withPortFaults(index, faults), embedder, clock };
    const m = new Memories(ctx, "acme");
    await m.put("alice", { memoryId: "m1", content: OLD, category: "work" });
    faults.arm({
      mode: "reject",
      methods: ["upsert", "remove"],
      make: () => new KuraError("VECTOR_UNAVAILABLE", "index down"),
    });
    await expect(m.put("alice", { memoryId: "m1", content: NEW })).rejects.toThrow(/index down/);
    // The failed put was undone in the record: the memory is as it was.
    expect((await m.get("alice", "m1"))?.content).toBe(OLD);
    await expect(m.put("alice", { memoryId: "m2", content: NEW })).rejects.toThrow(/index down/);
    expect(await m.get("alice", "m2")).toBeUndefined();
    await expect(m.delete("alice", "m1")).rejects.toThrow(/index down/);
    expect((await m.get("alice", "m1"))?.content).toBe(OLD);
    faults.disarm();
    await expectAgreement(m, index, "after the index came back");
    expect((await kv.scan(MEMORY_INTENT_PREFIX)).items).toEqual([]);
    expect(await m.delete("alice", "m1")).toBe(true);
    await expectAgreement(m, index, "after the delete");
    await index.close();
    await kv.close();
  });
});

describe("memories through Kura.open", () => {
  it("a KV failure between the two writes of a delete: reopened, the memory is still found", async () => {
    const dir = await mkdtemp(join(tmpdir(), "kura-memw-"));
    dirs.push(dir);
    const faults = new PortFaults();
    let kura = await Kura.open({ data_dir: dir }, { wrapKv: (kv) => withPortFaults(kv, faults) });
    const m = kura.tenant("acme").memories;
    await m.put("alice", { memoryId: "m1", content: OLD });
    faults.arm({
      mode: "reject",
      methods: ["delete"],
      make: () => new KuraError("KV_UNAVAILABLE", "kv down"),
    });
    await expect(m.delete("alice", "m1")).rejects.toThrow(/kv down/);
    faults.disarm();
    await kura.close();

    kura = await Kura.open({ data_dir: dir }, { projectors: "inline" });
    const again = kura.tenant("acme").memories;
    expect((await again.get("alice", "m1"))?.content).toBe(OLD);
    const [hit] = await again.search("alice", { query: OLD, k: 1 });
    expect(hit?.memory.memoryId).toBe("m1");
    expect(await again.delete("alice", "m1")).toBe(true);
    expect(await again.search("alice", { query: OLD, k: 1 })).toEqual([]);
    await kura.close();
  });

  it("the in-memory exact index is rebuilt from the records after a restart", async () => {
    const dir = await mkdtemp(join(tmpdir(), "kura-memw-"));
    dirs.push(dir);
    const config = { data_dir: dir, vector: { backend: "exact" } };
    let kura = await Kura.open(config, { projectors: "inline" });
    await kura.tenant("acme").memories.put("alice", { memoryId: "m1", content: OLD, category: "work" });
    await kura.tenant("acme").memories.put("bob", { memoryId: "b1", content: NEW });
    await kura.close();

    kura = await Kura.open(config, { projectors: "inline" });
    const [hit] = await kura.tenant("acme").memories.search("alice", { query: OLD, k: 1, category: "work" });
    expect(hit?.memory).toMatchObject({ memoryId: "m1", content: OLD });
    expect(hit?.distance).toBeLessThan(1e-3);
    expect(hit?.memory).not.toHaveProperty("embedding");
    expect(await kura.vectors.memories().count("acme")).toBe(2);
    await kura.close();
  });
});
