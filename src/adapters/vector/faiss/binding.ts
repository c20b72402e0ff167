/**
 * The part of `faiss-node` (0.5.1, built against the system's libfaiss) the faiss adapter uses,
 * described structurally: the module is not a dependency of Kura. It is loaded at runtime, only
 * when `vector.backend: faiss` is configured, from `vector.module_path` or else as `faiss-node`.
 *
 * The binding takes plain arrays (a typed array is refused), labels added vectors
 * `ntotal .. ntotal + n − 1` (no ids of one's own) and sets no search parameters: `setNprobe`
 * is the one method Kura's build (`scripts/test-servers/install-faiss.sh`) adds to it.
 */
import { createRequire } from "node:module";
import { KuraError } from "../../../core/errors.js";

export interface FaissSearchResult {
  distances: number[];
  /** −1 where fewer than k results were found. */
  labels: number[];
}

export interface FaissIndex {
  ntotal(): number;
  isTrained(): boolean;
  add(x: number[]): void;
  train(x: number[]): void;
  search(x: number[], k: number): FaissSearchResult;
  toBuffer(): Buffer;
  /** Inverted lists searched per query (FAISS's ParameterSpace `nprobe`). */
  setNprobe?(n: number): void;
}

export interface FaissModule {
  Index: {
    fromFactory(dimensions: number, descriptor: string, metric?: number): FaissIndex;
    fromBuffer(buffer: Buffer): FaissIndex;
  };
}

/** FAISS's `MetricType` values. */
export const METRIC_INNER_PRODUCT = 0;
export const METRIC_L2 = 1;

export const HOW_TO_INSTALL =
  "build faiss-node 0.5.1 against libfaiss-dev (scripts/test-servers/install-faiss.sh does) and point " +
  "vector.module_path (KURA_VECTOR__MODULE_PATH) at its directory";

const loaded = new Map<string, FaissModule>();

/**
 * The faiss-node module at `modulePath` (a directory or file), or `faiss-node` as Node resolves
 * it from Kura's own directory. Absent or unloadable: `VECTOR_UNAVAILABLE` saying how to install it.
 */
export function loadFaiss(modulePath: string | undefined): FaissModule {
  const name = modulePath ?? "faiss-node";
  const cached = loaded.get(name);
  if (cached) return cached;
  let module: FaissModule;
  try {
    module = createRequire(import.meta.url)(name) as FaissModule;
  } catch (cause) {
    throw new KuraError(
      "VECTOR_UNAVAILABLE",
      `vector.backend faiss: the faiss-node module (${name}) cannot be loaded: ${HOW_TO_INSTALL}`,
      { operation: "vector.open", cause },
    );
  }
  if (typeof module?.Index?.fromFactory !== "function" || typeof module.Index.fromBuffer !== "function")
    throw new KuraError(
      "VECTOR_UNAVAILABLE",
      `vector.backend faiss: ${name} is not faiss-node (no Index.fromFactory): ${HOW_TO_INSTALL}`,
      { operation: "vector.open" },
    );
  loaded.set(name, module);
  return module;
}
