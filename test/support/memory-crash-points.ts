/**
 * What the memories write-protocol tests share (ADR 0022): a LMDB KV store and a vector index
 * per test directory, a "process" that dies after its n-th write, the changes stopped at each
 * write, and the check that a memory's record and its index item agree.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, expect, it } from "vitest";
import { createHashingEmbedder } from "../../src/adapters/embedder/hashing/index.js";
import { lmdbKvStore } from "../../src/adapters/kv/lmdb/index.js";
import { openUsearchVectorIndex } from "../../src/adapters/vector/usearch/index.js";
import { KuraError } from "../../src/core/errors.js";
import { Memories, type MemoriesContext } from "../../src/domains/memories.js";
import { MEMORY_INTENT_PREFIX } from "../../src/engine/memory-index.js";
import { PortFaults, withPortFaults } from "../../src/layers/port-faults.js";
import type { KvStore } from "../../src/ports/kv-store.js";
import type { VectorIndex } from "../../src/ports/vector-index.js";

export const DIMS = 64;
export const OLD = "the quarterly report is due on Monday";
export const NEW = "favourite food is ramen with extra noodles";
export const embedder = createHashingEmbedder({ dimensions: DIMS });
export const clock = () => Date.UTC(2026, 0, 1);

/** Test directories, removed after each test. */
export const dirs: string[] = [];
afterEach(async () => {
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

/** Opens the vector index of a test directory (its usearch directory, or its pgvector table). */
export type OpenIndex = (dir: string) => Promise<VectorIndex>;

export const usearch: OpenIndex = (dir) =>
  openUsearchVectorIndex({ dimensions: DIMS, metric: "cosine", dir: join(dir, "vectors") });

export async function stores(
  dir: string,
  openIndex: OpenIndex,
): Promise<{ kv: KvStore; index: VectorIndex }> {
  const kv = await lmdbKvStore.create(lmdbKvStore.parseOptions({ path: join(dir, "kv") }));
  return { kv, index: await openIndex(dir) };
}

const KV_WRITES = ["set", "delete", "setMany", "incr"];
const INDEX_WRITES = ["upsert", "remove"];

/** `port` whose write methods call `after` once they succeed. */
function afterWrites<T extends object>(port: T, methods: readonly string[], after: () => void): T {
  return new Proxy(port, {
    get(target, property) {
      const value = Reflect.get(target, property, target);
      if (typeof value !== "function") return value;
      if (typeof property !== "string" || !methods.includes(property)) return value.bind(target);
      return async (...args: unknown[]) => {
        const result = await value.apply(target, args);
        after();
        return result;
      };
    },
  });
}

/**
 * A context over `kv` and `index` in which every call of either fails once `n` writes (KV or
 * index) have succeeded: the process "dies" right after its n-th write.
 */
function dyingAfter(
  n: number,
  kv: KvStore,
  index: VectorIndex,
): { ctx: MemoriesContext; died: () => boolean } {
  const faults = new PortFaults();
  let writes = 0;
  const count = () => {
    if (++writes === n)
      faults.arm({ mode: "reject", make: () => new KuraError("KV_UNAVAILABLE", "the process died here") });
  };
  return {
    ctx: {
      kv: withPortFaults(afterWrites(kv, KV_WRITES, count), faults),
      index: withPortFaults(afterWrites(index, INDEX_WRITES, count), faults),
      embedder,
      clock,
    },
    died: () => writes >= n,
  };
}

type Change = {
  name: string;
  setup?: (m: Memories) => Promise<unknown>;
  run: (m: Memories) => Promise<unknown>;
};

const CHANGES: Change[] = [
  {
    name: "a put of a new memory",
    setup: (m) => m.put("alice", { memoryId: "other", content: "an unrelated memory about cycling" }),
    run: (m) => m.put("alice", { memoryId: "m1", content: NEW, category: "food" }),
  },
  {
    name: "an update (new text and category)",
    setup: (m) => m.put("alice", { memoryId: "m1", content: OLD, category: "work" }),
    run: (m) => m.put("alice", { memoryId: "m1", content: NEW, category: "food" }),
  },
  {
    name: "a delete",
    setup: (m) => m.put("alice", { memoryId: "m1", content: OLD, category: "work" }),
    run: (m) => m.delete("alice", "m1"),
  },
];

/** The record of `m1` and the index agree: searchable with its current embedding and category, or absent from both. */
export async function expectAgreement(m: Memories, index: VectorIndex, label: string): Promise<void> {
  const record = await m.get("alice", "m1");
  const records = (await m.list("alice")).items.length;
  if (record) {
    const [hit] = await m.search("alice", { query: record.content, k: 1, mode: "accurate" });
    expect(hit?.memory.memoryId, `${label}: the record is found by its own text`).toBe("m1");
    expect(hit?.distance, `${label}: with the embedding of its current text`).toBeLessThan(1e-3);
    if (record.category !== null) {
      const byCategory = await m.search("alice", { query: record.content, k: 5, category: record.category });
      expect(
        byCategory.map((h) => h.memory.memoryId),
        `${label}: under its category`,
      ).toContain("m1");
    }
  } else {
    for (const text of [OLD, NEW]) {
      const hits = await m.search("alice", { query: text, k: 5, mode: "accurate" });
      expect(
        hits.map((h) => h.memory.memoryId),
        `${label}: no record, no hit`,
      ).not.toContain("m1");
    }
  }
  expect(await index.count("acme"), `${label}: one item per record`).toBe(records);
}

/** Each change stopped after each of its writes in turn, then both stores reopened and compared. */
export function crashPoints(openIndex: () => OpenIndex): void {
  for (const change of CHANGES) {
    it(`${change.name} stopped after any of its writes: reopened, record and index agree`, {
      timeout: 60_000,
    }, async () => {
      let n = 1;
      for (; ; n++) {
        const dir = await mkdtemp(join(tmpdir(), "kura-memw-"));
        dirs.push(dir);
        const before = await stores(dir, openIndex());
        if (change.setup) await change.setup(new Memories({ ...before, embedder, clock }, "acme"));
        const dying = dyingAfter(n, before.kv, before.index);
        let acknowledged = true;
        try {
          await change.run(new Memories(dying.ctx, "acme"));
        } catch (e) {
          expect(dying.died(), `after write ${n}: ${String(e)}`).toBe(true);
          acknowledged = false;
        }
        await before.index.close();
        await before.kv.close();

        const after = await stores(dir, openIndex());
        const m = new Memories({ ...after, embedder, clock }, "acme");
        const label = `${change.name}, stopped after write ${n}`;
        await expectAgreement(m, after.index, label);
        if (acknowledged) {
          const record = await m.get("alice", "m1");
          if (change.name === "a delete") expect(record, label).toBeUndefined();
          else expect(record?.content, label).toBe(NEW);
        }
        expect((await after.kv.scan(MEMORY_INTENT_PREFIX)).items, `${label}: intents completed`).toEqual([]);
        await after.index.close();
        await after.kv.close();
        if (!dying.died()) break;
        expect(n, "a change writes a bounded number of times").toBeLessThan(20);
      }
      // Intent, record, index, intent removed: each was a place to stop.
      expect(n).toBeGreaterThan(4);
    });
  }
}
