/**
 * HTTP: `kura serve` (a child process, embedded defaults: SQLite + fs) driven by autocannon on
 * loopback with 64 connections — message appends and gets — beside Fastify's bare hello-world
 * (another child, same machine) as the limit of the framework and the load generator.
 * Target (SPEC §5): ≥ 5,000 appends/s, p99 ≤ 25 ms.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { join, resolve } from "node:path";
import { mintToken } from "../../src/http/auth.js";
import { type BenchContext, ratioOf, type Scenario } from "../lib.js";

/** The part of autocannon's programmatic API used here (the package ships no types). */
interface AutocannonRequest {
  method?: string;
  path?: string;
  headers?: Record<string, string>;
  body?: string;
  setupRequest?: (req: AutocannonRequest) => AutocannonRequest;
}
interface AutocannonOptions {
  url: string;
  duration: number;
  connections?: number;
  pipelining?: number;
  requests?: AutocannonRequest[];
}
interface AutocannonResult {
  requests: { average: number };
  latency: { p50: number; p99: number };
  errors: number;
  timeouts: number;
  non2xx: number;
}
const autocannon = createRequire(import.meta.url)("autocannon") as (
  o: AutocannonOptions,
) => Promise<AutocannonResult>;

const CONNECTIONS = 64;
const SECRET = "bench-secret-0123456789abcdef0123456789";
const ROOT = resolve(import.meta.dirname, "../..");

const HELLO = `
import Fastify from "fastify";
const app = Fastify({ logger: false });
app.get("/", async () => ({ hello: "world" }));
await app.listen({ host: "127.0.0.1", port: 0 });
process.stderr.write("listening on http://127.0.0.1:" + app.server.address().port + "\\n");
`;

/** Start a child and resolve with the URL it prints as `listening on http://…`. */
function startChild(
  args: string[],
  cwd: string,
  env: NodeJS.ProcessEnv = {},
): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, args, {
    cwd,
    env: { ...process.env, ...env },
    stdio: ["ignore", "ignore", "pipe"],
  });
  return new Promise((resolvePromise, reject) => {
    let err = "";
    const timer = setTimeout(() => reject(new Error(`child did not start: ${err.slice(-2000)}`)), 60_000);
    child.stderr?.on("data", (c: Buffer) => {
      err += c.toString();
      const m = /listening on (http:\/\/[^\s]+)/.exec(err);
      if (m) {
        clearTimeout(timer);
        resolvePromise({ url: m[1] as string, child });
      }
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`child exited with ${code}: ${err.slice(-2000)}`));
    });
  });
}

function stop(child: ChildProcess): Promise<void> {
  return new Promise((r) => {
    if (child.exitCode !== null) return r();
    child.once("exit", () => r());
    child.kill("SIGTERM");
  });
}

interface Load {
  rps: number;
  p99: number;
  p50: number;
  errors: number;
  non2xx: number;
}

async function load(opts: AutocannonOptions): Promise<Load> {
  const result = await autocannon({ connections: CONNECTIONS, pipelining: 1, ...opts });
  return {
    rps: result.requests.average,
    p99: result.latency.p99,
    p50: result.latency.p50,
    errors: result.errors + result.timeouts,
    non2xx: result.non2xx,
  };
}

export const http: Scenario = {
  name: "http",
  async run(ctx: BenchContext) {
    const duration = ctx.quick ? 4 : 15;
    // The server's first ~4 s of appends run at a fraction of the steady rate (JIT, the first
    // directories of each chat, SQLite's first pages): not what is measured.
    const warmup = 5;
    await mkdir(ctx.dir, { recursive: true });

    // The limit: Fastify's bare hello-world, same machine, same load generator.
    const hello = await startChild(["--input-type=module", "-e", HELLO], ROOT);
    await load({ url: hello.url, duration: 1 });
    const limit = await load({ url: hello.url, duration });
    await stop(hello.child);
    ctx.log(`hello-world: ${Math.round(limit.rps)} req/s, p99 ${limit.p99} ms`);

    // kura serve on embedded defaults in its own process.
    const config = join(ctx.dir, "kura.yaml");
    await writeFile(
      config,
      `data_dir: ${JSON.stringify(join(ctx.dir, "data"))}\nauth: { jwt_secret: ${JSON.stringify(SECRET)} }\n`,
    );
    const tsx = createRequire(import.meta.url).resolve("tsx");
    const server = await startChild(
      ["--import", tsx, join(ROOT, "src/cli/main.ts"), "serve", "--config", config, "--port", "0"],
      ctx.dir,
      { KURA_LOG_LEVEL: "warn" },
    );
    try {
      const token = await mintToken({ secret: SECRET, tenant: "bench", ttlSeconds: 3600 });
      const headers = { authorization: `Bearer ${token}`, "content-type": "application/json" };
      const body = JSON.stringify({
        role: "user",
        content: `a benchmark message: ${"the quick brown fox jumps over the lazy dog ".repeat(6)}`,
      });
      let n = 0;
      const appendRequest = {
        method: "POST" as const,
        headers,
        body,
        setupRequest: (req: AutocannonRequest) => ({ ...req, path: `/v1/chats/chat-${n++ % 64}/messages` }),
      };
      await load({ url: server.url, duration: warmup, requests: [appendRequest] });
      const append = await load({ url: server.url, duration, requests: [appendRequest] });
      ctx.log(
        `append: ${Math.round(append.rps)} req/s, p99 ${append.p99} ms (errors ${append.errors}, non-2xx ${append.non2xx})`,
      );

      // Gets of messages stored above (hot: the server's cache holds them).
      const page = await fetch(`${server.url}/v1/chats/chat-1/messages?limit=1000`, { headers });
      const ids = ((await page.json()) as { data: { items: { id: string }[] } }).data.items.map((m) => m.id);
      let g = 0;
      const getRequest = {
        method: "GET" as const,
        headers: { authorization: headers.authorization },
        setupRequest: (req: AutocannonRequest) => ({ ...req, path: `/v1/messages/${ids[g++ % ids.length]}` }),
      };
      await load({ url: server.url, duration: 1, requests: [getRequest] });
      const get = await load({ url: server.url, duration, requests: [getRequest] });
      ctx.log(
        `get: ${Math.round(get.rps)} req/s, p99 ${get.p99} ms (errors ${get.errors}, non-2xx ${get.non2xx})`,
      );

      const s = `http (kura serve, ${CONNECTIONS} connections)`;
      const row = (metric: string, value: number, unit: string, base: number, higherIsBetter: boolean) =>
        ctx.record({
          scenario: s,
          metric,
          value,
          unit,
          baseline: "fastify hello-world",
          baseline_value: base,
          ratio: ratioOf(value, base, higherIsBetter),
        });
      row("append", append.rps, "req/s", limit.rps, true);
      row("append p99", append.p99, "ms", limit.p99, false);
      row("get", get.rps, "req/s", limit.rps, true);
      row("get p99", get.p99, "ms", limit.p99, false);
      if (append.errors + append.non2xx + get.errors + get.non2xx > 0) {
        ctx.log(
          `warning: ${append.errors + get.errors} errors, ${append.non2xx + get.non2xx} non-2xx responses`,
        );
      }
    } finally {
      await stop(server.child);
    }
  },
};
