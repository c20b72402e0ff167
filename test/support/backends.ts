/**
 * Backend availability for integration suites. Outside CI a suite whose server is not
 * installed is skipped and recorded (global-setup prints one summary line); with CI=true a
 * missing server fails the suite instead.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";

export const SKIP_DIR = resolve(import.meta.dirname, "../../.cache/test-skips");
export const IN_CI = process.env.CI === "true" || process.env.CI === "1";
/** Where `.ci/run` (scripts/test-servers/install.sh) installs heavy test servers. */
export const SERVER_CACHE =
  process.env.KURA_TEST_SERVER_CACHE ?? resolve(import.meta.dirname, "../../.cache/test-servers");

/**
 * Returns true when the suite may run. When `problem` is a string the server is missing:
 * in CI that throws; elsewhere the skip is recorded and false is returned.
 */
export function backendAvailable(name: string, problem: string | undefined): boolean {
  if (problem === undefined) return true;
  if (IN_CI) throw new Error(`backend suite ${name} cannot run in CI: ${problem}`);
  mkdirSync(SKIP_DIR, { recursive: true });
  writeFileSync(
    `${SKIP_DIR}/${name.replace(/[^a-z0-9-]/gi, "_")}.json`,
    JSON.stringify({ name, reason: problem }),
  );
  return false;
}
