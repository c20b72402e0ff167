/**
 * Prints one loud line listing the backend suites that were skipped because their server is
 * not installed on this machine (outside CI; in CI a missing server fails its suite).
 */
import { mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { SKIP_DIR } from "./backends.js";

export function setup(): void {
  rmSync(SKIP_DIR, { recursive: true, force: true });
  mkdirSync(SKIP_DIR, { recursive: true });
}

export function teardown(): void {
  let files: string[] = [];
  try {
    files = readdirSync(SKIP_DIR);
  } catch {
    return;
  }
  const skipped = files.map(
    (f) => JSON.parse(readFileSync(`${SKIP_DIR}/${f}`, "utf8")) as { name: string; reason: string },
  );
  if (skipped.length === 0) return;
  const list = skipped.map((s) => `${s.name} (${s.reason})`).join("; ");
  process.stdout.write(
    `\n!!!! SKIPPED ${skipped.length} BACKEND SUITE(S) — server not installed here: ${list}. Run .ci/run (CI=true) to install and run them all. !!!!\n\n`,
  );
}
