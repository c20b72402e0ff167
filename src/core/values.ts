/**
 * What every stored structured value must be, whichever plane keeps it: well-formed Unicode (no
 * lone UTF-16 surrogates, which UTF-8 cannot encode and encoders would silently replace with
 * U+FFFD) and nested at most {@link MAX_VALUE_DEPTH} levels (deeper values overflow the stack of
 * recursive encoders such as msgpackr and JSON.stringify). Checked iteratively, so hostile depth
 * cannot overflow the check itself.
 */
import { KuraError } from "./errors.js";

export const MAX_VALUE_DEPTH = 64;
/** Values (strings, numbers, objects, …) one stored value may expand to. */
export const MAX_VALUE_NODES = 1_000_000;

/** Throws INVALID_UTF8 or VALUE_TOO_DEEP; `what` names the value in the message ("KV value"). */
export function assertStorableValue(value: unknown, what: string, operation: string): void {
  if (typeof value === "string") {
    if (!value.isWellFormed()) throw notUtf8(what, operation);
    return;
  }
  if (value === null || typeof value !== "object") return;
  const stack: [unknown, number][] = [[value, 1]];
  // Encoders expand shared sub-objects every time they occur, so the check counts them the same
  // way, within a budget: a cycle ends at the depth limit, a DAG of shared arrays at the budget.
  let budget = MAX_VALUE_NODES;
  while (stack.length > 0) {
    const [v, depth] = stack.pop() as [unknown, number];
    if (--budget < 0) {
      throw new KuraError(
        "VALUE_TOO_DEEP",
        `${what} expands to more than ${MAX_VALUE_NODES} nested values (shared or cyclic references)`,
        { operation, context: { maxNodes: MAX_VALUE_NODES } },
      );
    }
    if (typeof v === "string") {
      if (!v.isWellFormed()) throw notUtf8(what, operation);
      continue;
    }
    if (v === null || typeof v !== "object" || ArrayBuffer.isView(v) || v instanceof Date) continue;
    if (depth > MAX_VALUE_DEPTH) {
      throw new KuraError("VALUE_TOO_DEEP", `${what} is nested deeper than ${MAX_VALUE_DEPTH} levels`, {
        operation,
        context: { maxDepth: MAX_VALUE_DEPTH },
      });
    }
    if (v instanceof Map) {
      for (const [k, item] of v) stack.push([k, depth + 1], [item, depth + 1]);
    } else if (Array.isArray(v)) {
      for (const item of v) stack.push([item, depth + 1]);
    } else {
      for (const k of Object.keys(v)) {
        if (!k.isWellFormed()) throw notUtf8(what, operation);
        stack.push([(v as Record<string, unknown>)[k], depth + 1]);
      }
    }
  }
}

function notUtf8(what: string, operation: string): KuraError {
  return new KuraError("INVALID_UTF8", `${what} holds a lone UTF-16 surrogate, which is not valid Unicode`, {
    operation,
  });
}
