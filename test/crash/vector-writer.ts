/**
 * Child process of the vector crash test: upserts batches into a usearch index (saving the graph
 * now and then) and removes some items, printing `ACK <id>` for each acknowledged upsert and
 * `DEL <id>` for each acknowledged remove (`REMOVING <id>` before it starts). The parent kills it with SIGKILL at a random moment.
 */
import { openUsearchVectorIndex, type Quantization } from "../../src/adapters/vector/usearch/index.js";

const [dir, trial, quantization] = process.argv.slice(2) as [string, string, Quantization];
const dims = 32;
const index = await openUsearchVectorIndex({ dimensions: dims, metric: "cosine", quantization, dir });
process.stdout.write("READY\n");
let n = 0;
const vectorOf = (trial: number, id: number) => {
  let s = trial * 1_000_003 + id + 1;
  return Float32Array.from({ length: dims }, () => {
    s = (Math.imul(s ^ (s >>> 15), 2246822519) + 0x9e3779b9) | 0;
    return (s >>> 0) / 2 ** 32 - 0.5;
  });
};
for (let round = 0; ; round++) {
  const batch = Array.from({ length: 1 + (round % 50) }, () => n++);
  await index.upsert(
    batch.map((i) => ({ tenantId: "t", id: `${trial}-${i}`, vector: vectorOf(Number(trial), i) })),
  );
  process.stdout.write(`${batch.map((i) => `ACK ${trial}-${i}`).join("\n")}\n`);
  if (round % 7 === 3) {
    const victim = `${trial}-${batch[0]}`;
    // Announced first: a remove in flight at the kill may or may not have landed.
    process.stdout.write(`REMOVING ${victim}\n`);
    await index.remove("t", [victim]);
    process.stdout.write(`DEL ${victim}\n`);
  }
  if (round % 40 === 39) await index.save();
}
