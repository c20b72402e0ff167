/**
 * Message embeddings projected in a worker thread: with the embedder of `config.embedder`,
 * appends become findable by vector search with no manual pump, edits and deletes follow, the
 * `messages` index (usearch, exact) is the worker's and this thread's queries and rebuilds reach
 * it through the worker with the same results and errors, a worker that dies is replaced and its
 * events delivered again (an exact index, which does not persist, is embedded again), close
 * drains the worker, and an embedder object given to `open` keeps the projector inline.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { createHashingEmbedder } from "../../src/adapters/embedder/hashing/index.js";
import { isKuraError } from "../../src/core/errors.js";
import { WorkerVectorIndex } from "../../src/engine/vectors.js";
import type { WorkerProjector } from "../../src/engine/worker-projector.js";
import { Kura, type KuraOpenOptions } from "../../src/kura.js";

const DIMS = 64;
const vector = { dimensions: DIMS, metric: "cosine", embed_messages: true };

let dir: string | undefined;
let kura: Kura | undefined;

afterEach(async () => {
  await kura?.close();
  kura = undefined;
  if (dir) await rm(dir, { recursive: true, force: true });
  dir = undefined;
});

async function open(config: Record<string, unknown> = {}, options: KuraOpenOptions = {}): Promise<Kura> {
  dir ??= await mkdtemp(join(tmpdir(), "kura-vector-projection-"));
  kura = await Kura.open({ data_dir: dir, vector, ...config }, options);
  return kura;
}

const near = async (k: Kura, q: string, limit = 10) =>
  (await k.tenant("t").search(q, { mode: "vector", limit })).hits.map((h) => h.id);
const worker = (k: Kura) => (k as unknown as { vectorsWorker: WorkerProjector }).vectorsWorker;

describe("the message-embedding projector in a worker thread", () => {
  it("embeds an append without any pump, in the worker that owns the index", async () => {
    const k = await open();
    expect(k.vectorProjection).toBe("worker");
    expect(k.searchProjection).toBe("worker");
    expect(k.vectors.messages?.index).toBeInstanceOf(WorkerVectorIndex);
    const t = k.tenant("t");
    const a = await t.messages.append("c", { role: "user", content: "quarterly budget review meeting" });
    const b = await t.messages.append("c", { role: "user", content: "weekend hiking trip photos" });
    await vi.waitFor(async () => expect((await near(k, "budget review", 1))[0]).toBe(a.id), {
      timeout: 15_000,
    });
    expect((await near(k, "hiking photos", 1))[0]).toBe(b.id);
    const hybrid = await t.search("budget review", { mode: "hybrid", limit: 1 });
    expect(hybrid.backend).toBe("sqlite-fts+usearch");
    expect(hybrid.hits[0]?.id).toBe(a.id);
    expect(await k.outboxLag("vectors")).toBe(0);
    expect(await k.vectors.messages?.index.count("t")).toBe(2);
    // Errors of the index cross as they are.
    const err = await t.search("", { mode: "vector", vector: [1, 2, 3], limit: 1 }).catch((e: unknown) => e);
    expect(
      isKuraError(err) && err.code === "VECTOR_DIMENSIONS_MISMATCH" && err.kind === "InvalidArgument",
    ).toBe(true);
    // A query vector finds the same message as on this thread.
    const [v] = await createHashingEmbedder({ dimensions: DIMS }).embed(["weekend hiking trip photos"]);
    const byVector = await t.search("", { mode: "vector", vector: v as Float32Array, limit: 1 });
    expect(byVector.hits.map((h) => h.id)).toEqual([b.id]);
    // A rebuild hands the catalog's messages to the worker.
    expect(await k.reembedMessages()).toBe(2);
    expect(await k.vectors.messages?.index.count("t")).toBe(2);
  });

  it("follows edits and deletes, and answers consistent searches", async () => {
    const k = await open();
    const t = k.tenant("t");
    const a = await t.messages.append("c", { role: "user", content: "kestrel hovering over the field" });
    const b = await t.messages.append("c", { role: "user", content: "lunch plans near the office" });
    await t.messages.edit(a.id, "falcon diving at the cliffs");
    await t.messages.delete(b.id);
    const r = await t.search("falcon diving cliffs", { mode: "vector", limit: 10, consistent: true });
    expect(r.hits.map((h) => h.id)).toEqual([a.id]);
    expect(await k.vectors.messages?.index.count("t")).toBe(1);
    await t.messages.undelete(b.id);
    await vi.waitFor(async () => expect((await near(k, "lunch plans office", 1))[0]).toBe(b.id), {
      timeout: 15_000,
    });
  });

  it("replaces a worker that died and delivers its events again", async () => {
    const k = await open();
    const t = k.tenant("t");
    const first = await t.messages.append("c", { role: "user", content: "osprey fishing in the bay" });
    await vi.waitFor(async () => expect(await near(k, "osprey fishing")).toEqual([first.id]), {
      timeout: 15_000,
    });
    await worker(k).terminate();
    const second = await t.messages.append("c", { role: "user", content: "osprey nest on the pole" });
    await vi.waitFor(
      async () => expect((await near(k, "osprey")).sort()).toEqual([first.id, second.id].sort()),
      { timeout: 15_000 },
    );
    expect(await k.outboxLag("vectors")).toBe(0);
  });

  it("embeds everything again when the worker of an exact index is replaced", async () => {
    const k = await open({ vector: { ...vector, backend: "exact" } });
    expect(k.vectors.messages?.index).toBeInstanceOf(WorkerVectorIndex);
    const t = k.tenant("t");
    await t.messages.appendMany(
      "c",
      ["heron over the marsh", "plover on the beach", "gannet diving"].map((content) => ({
        role: "user",
        content,
      })),
    );
    await vi.waitFor(async () => expect(await k.vectors.messages?.index.count("t")).toBe(3), {
      timeout: 15_000,
    });
    await worker(k).terminate();
    await vi.waitFor(async () => expect(await k.vectors.messages?.index.count("t")).toBe(3), {
      timeout: 15_000,
    });
  });

  it("closes with the worker's deliveries finished: a reopened index has every message", async () => {
    let k = await open();
    const refs = await k.tenant("t").messages.appendMany(
      "c",
      Array.from({ length: 300 }, (_, i) => ({ role: "user", content: `gannet number ${i}` })),
    );
    await k.close();
    k = await open({}, { projectors: "inline" });
    expect(k.vectorProjection).toBe("inline");
    expect(await k.outboxLag("vectors")).toBe(0);
    expect(await k.vectors.messages?.index.count("t")).toBe(refs.length);
  });

  it("stays inline with an embedder object, or without embedded messages", async () => {
    const k = await open({}, { embedder: createHashingEmbedder({ dimensions: DIMS }) });
    expect(k.vectorProjection).toBe("inline");
    expect(k.searchProjection).toBe("worker");
    expect(k.vectors.messages?.index).not.toBeInstanceOf(WorkerVectorIndex);
    const ref = await k.tenant("t").messages.append("c", { role: "user", content: "inline sandpiper" });
    await vi.waitFor(async () => expect(await near(k, "inline sandpiper", 1)).toEqual([ref.id]), {
      timeout: 15_000,
    });
    await k.close();
    const off = await open({ vector: { dimensions: DIMS, metric: "cosine" } });
    expect(off.vectorProjection).toBe("none");
  });
});
