import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll } from "vitest";
import { usearchVectorIndex as definition } from "../../src/adapters/vector/usearch/index.js";
import type { VectorIndexOptions } from "../../src/ports/vector-index.js";
import { vectorIndexConformance } from "./vector-index.suite.js";

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});
let n = 0;
/** An index of a fresh set of the definition's indexes; `name` fixed to reopen the same one. */
const opener =
  (options: Record<string, unknown>, name?: string) =>
  async ({ dimensions, metric }: VectorIndexOptions) =>
    (await definition.create(definition.parseOptions(options))).open({
      name: name ?? `i${++n}`,
      dimensions,
      metric,
    });

for (const quantization of ["f32", "f16"]) {
  vectorIndexConformance(`usearch ${quantization}`, {
    open: opener({ quantization }),
    persistent: () => {
      const dir = mkdtempSync(join(tmpdir(), "kura-usearch-"));
      dirs.push(dir);
      return { open: opener({ quantization, dir }, "reopened") };
    },
    plane: async () => {
      const dir = mkdtempSync(join(tmpdir(), "kura-usearch-"));
      dirs.push(dir);
      return {
        indexes: await definition.create(definition.parseOptions({ quantization, dir })),
        persistent: true,
      };
    },
    recallFloor: 0.9,
    distanceTolerance: quantization === "f32" ? 1e-4 : 1e-3,
  });
}
