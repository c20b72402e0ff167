import { exactVectorIndex as definition } from "../../src/adapters/vector/exact/index.js";
import { vectorIndexConformance } from "./vector-index.suite.js";

const indexes = await definition.create(definition.parseOptions({}));
let n = 0;

vectorIndexConformance("exact", {
  open: ({ dimensions, metric }) => indexes.open({ name: `i${++n}`, dimensions, metric }),
  plane: async () => ({ indexes: await definition.create(definition.parseOptions({})), persistent: false }),
  recallFloor: 1,
});
