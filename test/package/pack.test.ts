/**
 * What `npm pack` ships: the compiled library with its types, the CLI, the docs — and nothing
 * else (no tests, benchmarks, local data, caches or source maps of files that no longer exist).
 */
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { describe, expect, it } from "vitest";

const root = join(import.meta.dirname, "../..");

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? sourceFiles(path) : path.endsWith(".ts") ? [path] : [];
  });
}

describe("the npm package", () => {
  it("ships dist (JavaScript + types for every source file), docs and the README, nothing else", () => {
    if (!existsSync(join(root, "dist/index.js"))) execFileSync("npm", ["run", "build"], { cwd: root });
    const out = execFileSync("npm", ["pack", "--dry-run", "--json", "--ignore-scripts"], {
      cwd: root,
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
    });
    const [pack] = JSON.parse(out) as [{ files: { path: string }[] }];
    const files = new Set(pack.files.map((f) => f.path));
    for (const path of files) {
      expect(path, path).toMatch(
        /^(dist\/console\/(index\.html|assets\/[\w.-]+\.(js|css|svg|woff2))|dist\/.+\.(js|d\.ts|js\.map|d\.ts\.map)|docs\/.+\.md|README\.md|package\.json|LICENSE)$/,
      );
    }
    // Every source module is there, compiled, with its declarations; nothing compiled from a
    // source that no longer exists (a stale dist would ship it).
    const modules = sourceFiles(join(root, "src")).map((p) =>
      relative(join(root, "src"), p).replace(/\.ts$/, ""),
    );
    for (const m of modules) {
      expect(files.has(`dist/${m}.js`), `dist/${m}.js`).toBe(true);
      expect(files.has(`dist/${m}.d.ts`), `dist/${m}.d.ts`).toBe(true);
    }
    const compiled = [...files]
      // The console's bundle is built by Vite from console/, not compiled from src/.
      .filter((p) => p.endsWith(".js") && !p.startsWith("dist/console/"))
      .map((p) => p.slice("dist/".length, -".js".length));
    expect(compiled.filter((m) => !modules.includes(m))).toEqual([]);
    for (const entry of ["dist/index.js", "dist/index.d.ts", "dist/cli/main.js", "docs/errors.md"]) {
      expect(files.has(entry), entry).toBe(true);
    }
  });

  it("declares ESM with types, the kura bin and the Node versions it supports", async () => {
    const pkg = (await import("../../package.json", { with: { type: "json" } })).default as Record<
      string,
      unknown
    >;
    expect(pkg.type).toBe("module");
    expect(pkg.exports).toMatchObject({ ".": { types: "./dist/index.d.ts", import: "./dist/index.js" } });
    expect(pkg.bin).toEqual({ kura: "./dist/cli/main.js" });
    expect(pkg.engines).toEqual({ node: ">=20" });
  });
});
