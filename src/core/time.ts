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

/** `1h`, `30m`, `45s`, `2d`, `500ms` or `0` as milliseconds; INVALID_ARGUMENT otherwise. */
export function parseDurationMs(text: string, operation: string): number {
  const m = /^(\d+)(ms|s|m|h|d)?$/.exec(text.trim());
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
  const n = m ? Number(m[1]) : Number.NaN;
  if (!m || (m[2] === undefined && n !== 0))
    throw new KuraError(
      "INVALID_ARGUMENT",
      `a duration looks like 1h, 30m, 45s, 2d, 500ms or 0, not "${text.slice(0, 20)}"`,
      { operation },
    );
  const ms = n * unit[(m[2] ?? "ms") as keyof typeof unit];
  if (!Number.isSafeInteger(ms))
    throw new KuraError("INVALID_ARGUMENT", "the duration is too long", { operation });
  return ms;
}
