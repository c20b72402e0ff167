import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ERROR_CODES } from "../../src/core/errors.js";

// docs/requirements.md is where a requirement id cited in the code resolves: every id the
// sources cite has a row there, and every path and error code the page names exists.

const root = new URL("../../", import.meta.url).pathname;
const doc = readFileSync(join(root, "docs/requirements.md"), "utf8");
const ID =
  /\b(?:API|BLOB|CAT|CFG|CONS|DIST|DUR|IDS|KV|LIFE|MAIL|MEM|MSG|OBS|OUT|SEC|SESS|SRCH|TEN|VEC)-\d+\b/g;

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? sources(path) : path.endsWith(".ts") ? [path] : [];
  });
}

describe("docs/requirements.md", () => {
  const rows = new Map<string, string>();
  for (const m of doc.matchAll(/^\| ([A-Z]+-\d+) \|(.*)$/gm)) rows.set(m[1]!, m[2]!);

  it("has a row for every requirement id the sources cite", () => {
    const cited = new Map<string, string>();
    for (const file of sources(join(root, "src")))
      for (const m of readFileSync(file, "utf8").matchAll(ID)) cited.set(m[0], file.slice(root.length));
    expect(cited.size).toBeGreaterThan(20);
    for (const [id, file] of cited)
      expect(rows.has(id), `${file} cites ${id}, which docs/requirements.md lacks`).toBe(true);
  });

  it("gives each row a meaning, places and a status", () => {
    for (const [id, row] of rows) {
      const cells = row.split(" | ").map((c) => c.replace(/\|\s*$/, "").trim());
      expect(cells.length, `${id}: meaning, places, tests, status`).toBe(4);
      expect(cells[0]!.length, `${id}: what it means`).toBeGreaterThan(20);
      expect(cells[3], `${id}: status`).toMatch(/^(done|partial|not yet)\b/);
      if (/^(done|partial)/.test(cells[3]!))
        expect(cells[2], `${id}: a done requirement names its tests`).toMatch(/`test\//);
    }
  });

  it("names only paths that exist", () => {
    const paths = [...doc.matchAll(/`((?:src|test|bench|docs)\/[^`]*)`/g)].map((m) => m[1]!.split(" ")[0]!);
    expect(paths.length).toBeGreaterThan(50);
    for (const path of paths)
      expect(existsSync(join(root, path)), `docs/requirements.md names missing ${path}`).toBe(true);
  });

  it("names only error codes that exist", () => {
    for (const m of doc.matchAll(/`([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)`/g))
      expect(Object.keys(ERROR_CODES), `docs/requirements.md names unknown code ${m[1]}`).toContain(m[1]);
  });
});
