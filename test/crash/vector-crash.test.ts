/**
 * VEC-3 under SIGKILL: a child upserts into a persisted usearch index (saving the graph now and
 * then) and is killed at random moments; every reopen must hold every acknowledged upsert (found
 * by an exact query for its own vector) and none of the acknowledged removes, whether the graph
 * file was current or had to be rebuilt from the items in LMDB.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openUsearchVectorIndex, type Quantization } from "../../src/adapters/vector/usearch/index.js";
import { runUntilKilled } from "./kill.js";

const TRIALS = 6;
/** The writer's vector of item `id` of a trial (the same function as in vector-writer.ts). */
const vectorOf = (trial: number, id: number) => {
  let s = trial * 1_000_003 + id + 1;
  return Float32Array.from({ length: 32 }, () => {
    s = (Math.imul(s ^ (s >>> 15), 2246822519) + 0x9e3779b9) | 0;
    return (s >>> 0) / 2 ** 32 - 0.5;
  });
};
const writer = resolve(import.meta.dirname, "vector-writer.ts");

async function writeUntilKilled(
  dir: string,
  trial: number,
  quantization: Quantization,
  killAfterMs: number,
): Promise<{ acked: Set<string>; deleted: Set<string>; removing: Set<string> }> {
  const acked = new Set<string>();
  const deleted = new Set<string>();
  const removing = new Set<string>();
  await runUntilKilled(writer, [dir, String(trial), quantization], killAfterMs, (line) => {
    if (line.startsWith("ACK ")) acked.add(line.slice(4));
    else if (line.startsWith("DEL ")) deleted.add(line.slice(4));
    else if (line.startsWith("REMOVING ")) removing.add(line.slice(9));
  });
  return { acked, deleted, removing };
}

describe("crash safety: SIGKILL during vector upserts (VEC-3)", () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), "kura-vcrash-"));
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  for (const quantization of ["f32", "i8"] as Quantization[]) {
    it(`keeps every acknowledged write of a ${quantization} index (${TRIALS / 2} kills)`, {
      timeout: 120_000,
    }, async () => {
      const dir = join(root, quantization);
      const live = new Set<string>();
      for (let trial = 0; trial < TRIALS / 2; trial++) {
        const { acked, deleted, removing } = await writeUntilKilled(
          dir,
          trial,
          quantization,
          300 + trial * 350,
        );
        expect(acked.size).toBeGreaterThan(0);
        for (const id of acked) live.add(id);
        for (const id of deleted) live.delete(id);
        // A remove in flight at the kill may have landed or not: its item is checked no further.
        for (const id of removing) if (!deleted.has(id)) live.delete(id);
        const index = await openUsearchVectorIndex({ dimensions: 32, metric: "cosine", quantization, dir });
        // Unacknowledged writes in flight at the kill may or may not have landed.
        const count = await index.count("t");
        expect(count).toBeGreaterThanOrEqual(live.size - deleted.size);
        for (const id of live) {
          const [t, i] = id.split("-").map(Number) as [number, number];
          const vector = vectorOf(t, i);
          let hits = await index.query({ tenantId: "t", vector, k: 1, mode: "balanced" });
          if (hits[0]?.id !== id) hits = await index.query({ tenantId: "t", vector, k: 1, mode: "accurate" });
          expect(hits[0]?.id, `acknowledged ${id} after trial ${trial}`).toBe(id);
        }
        for (const id of deleted) {
          const [t, i] = id.split("-").map(Number) as [number, number];
          const vector = vectorOf(t, i);
          const hits = await index.query({ tenantId: "t", vector, k: 1, mode: "accurate" });
          expect(hits[0]?.id === id, `removed ${id} came back after trial ${trial}`).toBe(false);
        }
        await index.close();
      }
    });
  }
});
