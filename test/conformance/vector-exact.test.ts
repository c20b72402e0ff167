import { openExactVectorIndex } from "../../src/adapters/vector/exact/index.js";
import { vectorIndexConformance } from "./vector-index.suite.js";

vectorIndexConformance("exact", {
  open: async (options) => openExactVectorIndex(options),
  recallFloor: 1,
});
