/** Times as Kura's APIs accept them: an ISO 8601 string or milliseconds since the epoch. */
import { KuraError } from "./errors.js";

/** Milliseconds since the epoch; `INVALID_ARGUMENT` naming `name` for anything else. */
export function toMs(value: string | number, name: string, operation: string): number {
  const ms = typeof value === "number" ? value : Date.parse(value);
  if (!Number.isFinite(ms))
    throw new KuraError("INVALID_ARGUMENT", `${name} must be an ISO time or milliseconds since the epoch`, {
      operation,
    });
  return ms;
}
