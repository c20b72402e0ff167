/**
 * A node-postgres client whose connection dies emits an 'error' event; without a listener that
 * ends the process (`pg_ctl -m immediate` under load did). `src/adapters/pg.ts` makes every
 * pool and client with listeners attached; this test keeps every other file from making its own.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";

const SRC = resolve(import.meta.dirname, "../../src");
const HELPER = "adapters/pg.ts";

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith(".ts") ? [join(dir, e.name)] : [],
  );
}

describe("pg pools and clients", () => {
  it("are only made by src/adapters/pg.ts", () => {
    const offenders = files(SRC)
      .filter((f) => relative(SRC, f) !== HELPER)
      .filter((f) => /new\s+(pg\.)?(Pool|Client)\s*\(/.test(readFileSync(f, "utf8")))
      .filter((f) => /from\s+"pg"|import\("pg"\)/.test(readFileSync(f, "utf8")))
      .map((f) => relative(SRC, f));
    expect(offenders).toEqual([]);
  });
});
