/**
 * How wide the usearch index searches and re-ranks: the graph degree, the candidates each mode
 * asks for, how many of them are re-ranked by exact distance, and which in-memory copy of the
 * vectors re-ranking reads (measurements in ADR 0013).
 */
import type { VectorMode } from "../../../ports/vector-index.js";
import type { Quantization } from "../item-store.js";

/**
 * The in-memory copy re-ranking reads: `f16` (IEEE half), `bf16` (the upper half of the f32) or
 * `none` (each candidate's f32 vector read from LMDB).
 */
export type RerankCopy = "f16" | "bf16" | "none";

/**
 * The copy kept unless `rerankCopy` says otherwise: `f16` for an `i8` graph (re-ranking reads all
 * its candidates; ADR 0013), none for `f16` (its graph already ranks at 16 bits and re-ranks 20
 * exact vectors) and `f32` (nothing is re-ranked).
 */
export function defaultRerankCopy(quantization: Quantization): RerankCopy {
  return quantization === "i8" ? "f16" : "none";
}

/** HNSW graph degree unless `connectivity` says otherwise (ADR 0013). */
export const DEFAULT_CONNECTIVITY = 32;

/**
 * The first number of candidates a mode asks the graph for (measured on 100k × 768 with
 * connectivity 32: `fast` recall@10 0.986–0.987 for f32/f16/i8, `balanced` 0.999; ADR 0013).
 */
export function candidates(
  mode: Exclude<VectorMode, "accurate">,
  k: number,
  _quantization: Quantization,
): number {
  if (mode === "fast") return Math.max(k, 64);
  return Math.max(4 * k, 128);
}

/**
 * How many candidates, in the graph's order, are re-ranked by their exact f32 distance. An `f16`
 * graph ranks nearly as f32 does (its components keep 11 significant bits): re-ranking its first
 * max(2k, 16) gives the recall of re-ranking all 64 (100k × 768: 0.9870 both). An `i8` graph's own
 * order is too coarse (recall@10 0.78): all its candidates are re-ranked.
 */
export function rerankWidth(quantization: Quantization, k: number, found: number): number {
  if (quantization === "f16") return Math.min(found, Math.max(2 * k, 16));
  return found;
}
