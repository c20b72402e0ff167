/**
 * Vector checks shared by the vector adapters and the embedders: a vector is a fixed number of
 * finite numbers.
 */
import { KuraError } from "./errors.js";

/** Checks one vector and returns it as a `Float32Array`. */
export function checkVector(
  vector: Float32Array | readonly number[],
  dimensions: number,
  operation: string,
): Float32Array {
  if (vector.length !== dimensions)
    throw new KuraError(
      "VECTOR_DIMENSIONS_MISMATCH",
      `vector has ${vector.length} dimensions, the index has ${dimensions}`,
      { operation, context: { got: vector.length, expected: dimensions } },
    );
  const out = vector instanceof Float32Array ? vector : Float32Array.from(vector);
  for (let i = 0; i < out.length; i++)
    if (!Number.isFinite(out[i]))
      throw new KuraError("VECTOR_INVALID", `vector component ${i} is not a finite number`, {
        operation,
        context: { index: i },
      });
  return out;
}
