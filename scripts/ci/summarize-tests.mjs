// Prints the closing test line ("N passed, N failed, N skipped") and the coverage summary.
// The test pyramid of seed 004 asks 95 / 90 / 80 % line coverage for unit / integration / e2e;
// this prints what the whole suite reaches, without gaming it.
import { existsSync, readFileSync } from "node:fs";

const [resultsPath, coveragePath] = process.argv.slice(2);
const results = JSON.parse(readFileSync(resultsPath, "utf8"));
const passed = results.numPassedTests ?? 0;
const failed = results.numFailedTests ?? 0;
const skipped = (results.numPendingTests ?? 0) + (results.numTodoTests ?? 0);
if (coveragePath && existsSync(coveragePath)) {
  const total = JSON.parse(readFileSync(coveragePath, "utf8")).total;
  const pct = (k) => `${total[k].pct}%`;
  console.log(
    `coverage (all tiers together): lines ${pct("lines")}, statements ${pct("statements")}, functions ${pct("functions")}, branches ${pct("branches")} — seed 004 pyramid targets: unit 95 %, integration 90 %, e2e 80 %`,
  );
}
console.log(`tests: ${passed} passed, ${failed} failed, ${skipped} skipped`);
if (failed > 0 || passed === 0) process.exit(1);
