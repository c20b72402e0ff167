/**
 * How commands print: `--json` writes one JSON document (snake_case, as the HTTP API answers);
 * otherwise aligned text tables, for people.
 */

/** Writes `value` as one line of JSON. */
export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

/** Writes `rows` under `headers`, each column as wide as its widest cell; `(none)` when empty. */
export function printTable(headers: readonly string[], rows: readonly (readonly string[])[]): void {
  if (rows.length === 0) {
    process.stdout.write("(none)\n");
    return;
  }
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join("  ")
      .trimEnd();
  process.stdout.write(`${[line(headers), ...rows.map(line)].join("\n")}\n`);
}

/** `name: value` lines, names aligned. */
export function printFields(fields: readonly (readonly [string, string])[]): void {
  const width = Math.max(...fields.map(([name]) => name.length));
  process.stdout.write(
    `${fields.map(([name, value]) => `${`${name}:`.padEnd(width + 1)} ${value}`).join("\n")}\n`,
  );
}

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];

/** 1536 → `1.5 KiB`. */
export function formatBytes(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${UNITS[unit]}`;
}
