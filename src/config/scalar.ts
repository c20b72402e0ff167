/**
 * Text from environment variables and URI query strings carries no type, so it is read the
 * same way everywhere: `true`/`false` become booleans, decimal numbers become numbers, and
 * everything else stays a string.
 */
// No leading zeros: `007` is more likely a name than a number.
const NUMBER = /^[+-]?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?$/;

export function parseScalar(text: string): string | number | boolean {
  const trimmed = text.trim();
  if (trimmed === "true") return true;
  if (trimmed === "false") return false;
  if (NUMBER.test(trimmed)) {
    const n = Number(trimmed);
    // Digits beyond double precision (long ids) stay text rather than silently change.
    if (Number.isFinite(n) && (!Number.isInteger(n) || Number.isSafeInteger(n))) return n;
  }
  return text;
}
