/**
 * The full-text projector in its worker thread: appends wake it with no manual pump, it sees
 * edits and deletes like the inline projector, a worker that dies is replaced and the events it
 * was given are delivered again, and an in-memory catalog keeps the projector inline.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { WorkerProjector } from "../../src/engine/worker-projector.js";
import { Kura } from "../../src/kura.js";

let dir: string | undefined;
let kura: Kura | undefined;

afterEach(async () => {
  await kura?.close();
  kura = undefined;
  if (dir) await rm(dir, { recursive: true, force: true });
  dir = undefined;
});

async function open(config: Record<string, unknown> = {}): Promise<Kura> {
  dir = await mkdtemp(join(tmpdir(), "kura-projection-"));
  kura = await Kura.open({ data_dir: dir, ...config });
  return kura;
}

const hitIds = async (k: Kura, q: string) => (await k.tenant("t").search(q)).hits.map((h) => h.id);

describe("the projection worker", () => {
  it("indexes an append without any pump: the commit wakes it", async () => {
    const k = await open();
    expect(k.searchProjection).toBe("worker");
    const ref = await k.tenant("t").messages.append("c", { role: "user", content: "a heron over the marsh" });
    await vi.waitFor(async () => expect(await hitIds(k, "heron")).toEqual([ref.id]), { timeout: 10_000 });
    expect(await k.outboxLag("search")).toBe(0);
  });

  it("follows edits and deletes, and answers consistent searches", async () => {
    const k = await open();
    const t = k.tenant("t");
    const a = await t.messages.append("c", { role: "user", content: "kestrel hovering" });
    const b = await t.messages.append("c", { role: "user", content: "kestrel again" });
    await t.messages.edit(a.id, "falcon diving");
    await t.messages.delete(b.id);
    expect((await t.search("falcon", { consistent: true })).hits.map((h) => h.id)).toEqual([a.id]);
    expect((await t.search("kestrel", { consistent: true })).hits).toEqual([]);
  });

  it("replaces a worker that died and delivers its events again", async () => {
    const k = await open();
    const t = k.tenant("t");
    const first = await t.messages.append("c", { role: "user", content: "osprey fishing" });
    await vi.waitFor(async () => expect(await hitIds(k, "osprey")).toEqual([first.id]), { timeout: 10_000 });
    const worker = (k as unknown as { searchWorker: WorkerProjector }).searchWorker;
    await worker.terminate();
    const second = await t.messages.append("c", { role: "user", content: "osprey again" });
    await vi.waitFor(
      async () => expect((await hitIds(k, "osprey")).sort()).toEqual([first.id, second.id].sort()),
      { timeout: 10_000 },
    );
  });

  it("stays inline with an in-memory catalog, and when asked to", async () => {
    const memory = await Kura.open({
      data_dir: await mkdtemp(join(tmpdir(), "kura-mem-")),
      database: { backend: "sqlite", path: ":memory:" },
    });
    try {
      expect(memory.searchProjection).toBe("inline");
    } finally {
      await memory.close();
    }
    dir = await mkdtemp(join(tmpdir(), "kura-projection-"));
    kura = await Kura.open({ data_dir: dir }, { projectors: "inline" });
    expect(kura.searchProjection).toBe("inline");
    const ref = await kura.tenant("t").messages.append("c", { role: "user", content: "inline plover" });
    await vi.waitFor(async () => expect(await hitIds(kura as Kura, "plover")).toEqual([ref.id]), {
      timeout: 10_000,
    });
  });

  it("closes with the worker's deliveries finished: a reopened index has every message", async () => {
    let k = await open();
    const t = k.tenant("t");
    const refs = await t.messages.appendMany(
      "c",
      Array.from({ length: 300 }, (_, i) => ({ role: "user", content: `gannet ${i}` })),
    );
    await k.close();
    k = await Kura.open({ data_dir: dir as string }, { projectors: "inline" });
    kura = k;
    expect(await k.outboxLag("search")).toBe(0);
    expect((await k.tenant("t").search("gannet", { limit: 100 })).hits).toHaveLength(100);
    expect(refs).toHaveLength(300);
  });
});
