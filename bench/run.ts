/**
 * `npm run bench [-- --quick] [-- --only=name,name]`: runs the scenarios, prints a table and
 * writes bench-results.json (SPEC §4c). Scenarios read options of their own from the arguments
 * (`vectors`: `--quantizations=f16,i8`, `--no-sweep`).
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type BenchResult, formatTable, type Scenario } from "./lib.js";
import { backup } from "./scenarios/backup.js";
import { blobFs } from "./scenarios/blob-fs.js";
import { blobS3 } from "./scenarios/blob-s3.js";
import { encryption } from "./scenarios/encryption.js";
import { fts } from "./scenarios/fts.js";
import { http } from "./scenarios/http.js";
import { kv } from "./scenarios/kv.js";
import { messages } from "./scenarios/messages.js";
import { messagesPgS3 } from "./scenarios/messages-pg-s3.js";
import { messagesReads } from "./scenarios/messages-reads.js";
import { nodes } from "./scenarios/nodes.js";
import { s3Endpoint } from "./scenarios/s3-endpoint.js";
import { vectors } from "./scenarios/vectors.js";

const SCENARIOS: Scenario[] = [
  blobFs,
  blobS3,
  messages,
  messagesReads,
  messagesPgS3,
  nodes,
  kv,
  http,
  fts,
  vectors,
  backup,
  s3Endpoint,
  encryption,
];

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const quick = args.includes("--quick");
  const onlyArg = args.find((a) => a.startsWith("--only="))?.slice("--only=".length);
  const only = onlyArg ? new Set(onlyArg.split(",")) : undefined;
  const results: BenchResult[] = [];
  const dir = await mkdtemp(join(process.env.KURA_BENCH_DIR ?? tmpdir(), "kura-bench-"));
  const started = performance.now();
  try {
    for (const scenario of SCENARIOS) {
      if (only && !only.has(scenario.name)) continue;
      process.stdout.write(`▶ ${scenario.name}${quick ? " (quick)" : ""}\n`);
      const scenarioDir = join(dir, scenario.name);
      await scenario.run({
        quick,
        args,
        dir: scenarioDir,
        record: (r) => results.push({ ...r, ratio: r.ratio ?? null }),
        log: (line) => process.stdout.write(`  ${line}\n`),
      });
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  process.stdout.write(`\n${formatTable(results)}\n\n`);
  await writeFile("bench-results.json", `${JSON.stringify(results, null, 2)}\n`);
  process.stdout.write(
    `wrote bench-results.json (${results.length} results) in ${((performance.now() - started) / 1000).toFixed(1)} s\n`,
  );
}

main().catch((e: unknown) => {
  process.stderr.write(`bench failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
