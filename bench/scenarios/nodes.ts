/**
 * Several nodes (SPEC DIST-1, ADR 0039): 1, 2 and 3 `kura serve` processes on loopback over one
 * PostgreSQL database (a schema per run), one S3 store (radosgw when installed, else s3rver) and
 * one Redis prefix, each node with its own embedded search index. The same HTTP load goes round
 * robin through the nodes: acknowledged appends from 32 callers, then every message read four
 * times, each read through the next node. Reported per node count: appends/s (ratio to
 * one node), the CPU all nodes spent per append (every node indexes every message: the per-node
 * cost), and the hot message cache's hit ratio (hits are checked against the catalog row).
 * On a 2-core machine more nodes mean more processes on the same cores: this measures the
 * overhead of a node, not a speedup. Skipped (with a line) without PostgreSQL or Redis.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { join, resolve } from "node:path";
import { S3Client } from "@aws-sdk/client-s3";
import { mintToken } from "../../src/http/auth.js";
import { createBucket } from "../../test/conformance/s3-harness.js";
import { postgresForTests } from "../../test/support/servers/postgres.js";
import {
  RADOSGW_ACCESS_KEY,
  RADOSGW_SECRET_KEY,
  radosgwProblem,
  startRadosgw,
} from "../../test/support/servers/radosgw.js";
import { dropPrefix, REDIS_URL, redisProblem } from "../../test/support/servers/redis.js";
import { S3RVER_ACCESS_KEY, S3RVER_SECRET_KEY, startS3rver } from "../../test/support/servers/s3rver.js";
import { type BenchContext, ratioOf, type Scenario, throughput } from "../lib.js";

const MAIN = resolve(import.meta.dirname, "../../src/cli/main.ts");
const TSX = createRequire(import.meta.url).resolve("tsx");
const SECRET = "bench-nodes-secret-0123456789abcdef0123";
const CONCURRENCY = 32;
/** Reads of each message, spread over the nodes. */
const READS = 4;

interface Served {
  proc: ChildProcess;
  base: string;
}

async function serve(config: string, cwd: string, id: string): Promise<Served> {
  const proc = spawn(process.execPath, ["--import", TSX, MAIN, "serve", "--port", "0"], {
    cwd,
    env: {
      PATH: process.env.PATH ?? "",
      HOME: process.env.HOME ?? "",
      KURA_CONFIG: config,
      KURA_NODE__ID: id,
      KURA_LOG_LEVEL: "warn",
    },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  return new Promise((done, fail) => {
    const timer = setTimeout(() => fail(new Error(`node ${id} did not start: ${stderr}`)), 120_000);
    proc.stderr?.on("data", (c: Buffer) => {
      stderr += c.toString();
      const port = /listening on http:\/\/[^:\s]+:(\d+)/.exec(stderr)?.[1];
      if (port) {
        clearTimeout(timer);
        done({ proc, base: `http://127.0.0.1:${port}` });
      }
    });
    proc.on("exit", (code) => fail(new Error(`node ${id} exited ${code}: ${stderr}`)));
  });
}

async function stop(node: Served): Promise<void> {
  if (node.proc.exitCode !== null) return;
  const exited = new Promise((r) => node.proc.on("exit", r));
  node.proc.kill("SIGTERM");
  await exited;
}

/** A gauge or counter of a node's `/metrics`, summed over its label sets. */
async function metric(node: Served, name: string): Promise<number> {
  const text = await (await fetch(`${node.base}/metrics`)).text();
  let sum = 0;
  for (const line of text.split("\n")) {
    if (line.startsWith(`${name} `) || line.startsWith(`${name}{`)) sum += Number(line.split(" ").at(-1));
  }
  return sum;
}

export const nodes: Scenario = {
  name: "nodes",
  async run(ctx: BenchContext) {
    const db = await postgresForTests();
    const redis = await redisProblem();
    if ("problem" in db || redis) {
      ctx.log(`skipped: ${"problem" in db ? db.problem : redis}`);
      return;
    }
    const rgw = radosgwProblem() === undefined;
    const server = rgw ? await startRadosgw() : await startS3rver();
    const keys = rgw
      ? { id: RADOSGW_ACCESS_KEY, secret: RADOSGW_SECRET_KEY }
      : { id: S3RVER_ACCESS_KEY, secret: S3RVER_SECRET_KEY };
    const s3 = new S3Client({
      endpoint: server.endpoint,
      region: "us-east-1",
      forcePathStyle: true,
      credentials: { accessKeyId: keys.id, secretAccessKey: keys.secret },
    });
    const bucket = await createBucket(s3, "bench-nodes");
    const prefix = `kura-bench-nodes-${randomBytes(4).toString("hex")}:`;
    const token = await mintToken({ secret: SECRET, tenant: "bench", ttlSeconds: 3600 });
    const total = ctx.quick ? 600 : 3000;
    const store = rgw ? "radosgw" : "s3rver";
    let base: { appends: number; cpu: number } | undefined;
    try {
      for (const count of [1, 2, 3]) {
        const dir = join(ctx.dir, `n${count}`);
        await mkdir(dir, { recursive: true });
        const config = join(dir, "kura.yaml");
        await writeFile(
          config,
          [
            `data_dir: ${dir}`,
            `database: { backend: postgres, url: "${db.url}", schema: bench_nodes_${count} }`,
            "storage:",
            "  backend: s3",
            "  options:",
            `    { bucket: ${bucket}, endpoint: "${server.endpoint}", force_path_style: true, region: us-east-1, credentials: static, access_key_id: ${keys.id}, secret_access_key: ${keys.secret}, prefix: n${count} }`,
            `kv: { backend: redis, url: "${REDIS_URL}", key_prefix: "${prefix}${count}:" }`,
            "node: { allow_local_vectors: true }",
            `auth: { jwt_secret: ${SECRET} }`,
            "",
          ].join("\n"),
        );
        const served: Served[] = [];
        try {
          for (let i = 0; i < count; i++) {
            await mkdir(join(dir, `node-${i}`), { recursive: true });
            // Each node its own data directory: its own search index.
            const own = join(dir, `node-${i}.yaml`);
            const text = await readFile(config, "utf8");
            await writeFile(own, text.replace(`data_dir: ${dir}`, `data_dir: ${join(dir, `node-${i}`)}`));
            served.push(await serve(own, dir, `bench-${count}-${i}`));
          }
          const cpuBefore = await Promise.all(served.map((n) => metric(n, "kura_process_cpu_seconds_total")));
          const ids: string[] = new Array(total);
          const appends = await throughput(total, CONCURRENCY, async (i) => {
            const node = served[i % count] as Served;
            const res = await fetch(`${node.base}/v1/chats/c${i % 64}/messages`, {
              method: "POST",
              headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
              body: JSON.stringify({ role: "user", content: `message ${i} about lanterns and harbors` }),
            });
            const body = (await res.json()) as { data?: { id: string } };
            if (res.status !== 201 || !body.data) throw new Error(`append answered ${res.status}`);
            if (i < total) ids[i] = body.data.id;
          });
          // Let the projectors finish indexing what was appended (part of each append's cost).
          await new Promise((r) => setTimeout(r, 2000));
          const cpuAfter = await Promise.all(served.map((n) => metric(n, "kura_process_cpu_seconds_total")));
          const cpu = (cpuAfter.reduce((a, b) => a + b, 0) - cpuBefore.reduce((a, b) => a + b, 0)) / total;
          // Reads: each message four times, the k-th read through node (k + its index) mod count.
          const hitsBefore = await Promise.all(served.map((n) => metric(n, "kura_hot_message_cache_hits")));
          const missesBefore = await Promise.all(
            served.map((n) => metric(n, "kura_hot_message_cache_misses")),
          );
          const present = ids.filter((id) => id !== undefined);
          await throughput(
            present.length * READS,
            CONCURRENCY,
            async (j) => {
              const m = j % present.length;
              const id = present[m] as string;
              const node = served[(m + Math.floor(j / present.length)) % count] as Served;
              await (
                await fetch(`${node.base}/v1/messages/${id}`, {
                  headers: { authorization: `Bearer ${token}` },
                })
              ).text();
            },
            0,
          );
          const hits =
            (await Promise.all(served.map((n) => metric(n, "kura_hot_message_cache_hits")))).reduce(
              (a, b) => a + b,
              0,
            ) - hitsBefore.reduce((a, b) => a + b, 0);
          const misses =
            (await Promise.all(served.map((n) => metric(n, "kura_hot_message_cache_misses")))).reduce(
              (a, b) => a + b,
              0,
            ) - missesBefore.reduce((a, b) => a + b, 0);
          base ??= { appends, cpu };
          ctx.log(
            `${count} node(s), ${store}: ${appends.toFixed(0)} appends/s, ${(cpu * 1000).toFixed(2)} ms CPU per append (all nodes), hot-cache hit ratio ${(hits / Math.max(1, hits + misses)).toFixed(2)}`,
          );
          ctx.record({
            scenario: "nodes",
            metric: `appends/s, ${count} node(s) over PostgreSQL + ${store} + Redis`,
            value: appends,
            unit: "msg/s",
            baseline: "1 node",
            baseline_value: base.appends,
            ratio: ratioOf(appends, base.appends),
          });
          ctx.record({
            scenario: "nodes",
            metric: `CPU per append, all ${count} node(s) (each indexes every message)`,
            value: cpu * 1000,
            unit: "ms",
            baseline: "1 node",
            baseline_value: base.cpu * 1000,
            ratio: ratioOf(cpu, base.cpu, false),
          });
          ctx.record({
            scenario: "nodes",
            metric: `hot-cache hit ratio, ${count} node(s), each message read ${READS} times round robin`,
            value: hits / Math.max(1, hits + misses),
            unit: "ratio",
            baseline: null,
            baseline_value: null,
          });
        } finally {
          for (const n of served) await stop(n);
        }
      }
    } finally {
      s3.destroy();
      await server.destroy();
      await dropPrefix(prefix).catch(() => undefined);
      await db.destroy();
    }
  },
};
