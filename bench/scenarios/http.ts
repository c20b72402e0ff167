/**
 * HTTP appends: `POST /v1/chats/{id}/messages` against `kura serve` (a child process on
 * embedded defaults, SQLite + fs, its default `info` request log going to /dev/null), beside
 *   - a bare `node:http` server (another child) that reads the same JSON body, parses it,
 *     checks role and content and answers 201 with an envelope of the same fields — the limit of
 *     Node's HTTP stack on this machine;
 *   - Fastify's hello-world taking the same POST with a JSON body (logger off) — the limit of
 *     the framework `kura serve` is built on.
 * Ratios are against bare node:http. Then message gets (hot: served from the server's cache)
 * against the bare server answering a GET with a JSON document.
 *
 * The load generator is autocannon (its own HTTP/1.1 client on raw keep-alive sockets, 64
 * connections, no pipelining) in this process; each server is its own process, so on a
 * two-core machine the server under load has a core to itself and the client the other.
 * Servers run in alternating rounds (Kura, bare, Fastify, …) and each keeps its best round, so
 * a burst of load from elsewhere on the machine does not decide a ratio.
 *
 * `KURA_BENCH_CPU_PROF=<dir>` starts `kura serve` with `--cpu-prof` into that directory (the
 * profile is written when the server exits at the end of the scenario).
 * Targets (SPEC §5): ≥ 5,000 appends/s, p99 ≤ 25 ms, ≥ 0.25× bare node:http.
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

/** Bare node:http: read the body, JSON.parse, check the two fields, answer 201 with an envelope. */
const BARE = `
import { createServer } from "node:http";
import { randomUUID } from "node:crypto";
const fail = (res, status) => { res.writeHead(status, { "content-type": "application/json" }); res.end('{"success":false}'); };
const send = (res, status, data) => {
  const now = new Date().toISOString();
  const out = JSON.stringify({ success: true, data, timestamp: now, request_id: randomUUID() });
  res.writeHead(status, { "content-type": "application/json; charset=utf-8", "content-length": Buffer.byteLength(out) });
  res.end(out);
};
const server = createServer((req, res) => {
  if (req.method === "GET") return send(res, 200, { id: req.url.slice(req.url.lastIndexOf("/") + 1), content: "a benchmark message" });
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    let body;
    try { body = JSON.parse(Buffer.concat(chunks).toString("utf8")); } catch { return fail(res, 400); }
    if (typeof body !== "object" || body === null || typeof body.role !== "string" || typeof body.content !== "string") return fail(res, 400);
    const now = Date.now();
    send(res, 201, {
      id: randomUUID(), chat_id: req.url.split("/")[3], role: body.role, preview: body.content.slice(0, 200),
      content_type: "text/plain", size_bytes: Buffer.byteLength(body.content), version: 1,
      created_at: now, updated_at: now, expires_at: null, metadata: {},
    });
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, "127.0.0.1", () => process.stderr.write("listening on http://127.0.0.1:" + server.address().port + "\\n"));
`;

/** Fastify's hello-world, taking a POST with a JSON body. */
const FASTIFY = `
import Fastify from "fastify";
const app = Fastify({ logger: false });
app.post("/v1/chats/:chatId/messages", async (req, reply) => {
  reply.code(201);
  return { hello: "world", chat_id: req.params.chatId, role: req.body.role };
});
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

/** The best of two rounds: highest rate, lowest latencies, errors added up. */
function better(a: Load | undefined, b: Load): Load {
  if (!a) return b;
  return {
    rps: Math.max(a.rps, b.rps),
    p50: Math.min(a.p50, b.p50),
    p99: Math.min(a.p99, b.p99),
    errors: a.errors + b.errors,
    non2xx: a.non2xx + b.non2xx,
  };
}

const show = (l: Load) =>
  `${Math.round(l.rps)}/s p50 ${l.p50} ms p99 ${l.p99} ms${l.errors + l.non2xx > 0 ? ` (errors ${l.errors}, non-2xx ${l.non2xx})` : ""}`;

export const http: Scenario = {
  name: "http",
  async run(ctx: BenchContext) {
    const duration = ctx.quick ? 4 : 10;
    const rounds = ctx.quick ? 2 : 3;
    await mkdir(ctx.dir, { recursive: true });

    const config = join(ctx.dir, "kura.yaml");
    await writeFile(
      config,
      `data_dir: ${JSON.stringify(join(ctx.dir, "data"))}\nauth: { jwt_secret: ${JSON.stringify(SECRET)} }\n`,
    );
    const tsx = createRequire(import.meta.url).resolve("tsx");
    const profDir = process.env.KURA_BENCH_CPU_PROF;
    const kuraArgs = [
      ...(profDir ? ["--cpu-prof", "--cpu-prof-dir", resolve(profDir)] : []),
      "--import",
      tsx,
      join(ROOT, "src/cli/main.ts"),
      "serve",
      "--config",
      config,
      "--port",
      "0",
    ];
    const kura = await startChild(kuraArgs, ctx.dir, { KURA_LOG_LEVEL: "info" });
    const bare = await startChild(["--input-type=module", "-e", BARE], ROOT);
    const fastify = await startChild(["--input-type=module", "-e", FASTIFY], ROOT);
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
      const append = (url: string, seconds: number) =>
        load({ url, duration: seconds, requests: [appendRequest] });

      // Warm-up: the server's first seconds of appends run at a fraction of the steady rate
      // (JIT, the first directories of each chat, SQLite's first pages): not what is measured.
      await append(kura.url, 5);
      await append(bare.url, 2);
      await append(fastify.url, 2);

      let kuraAppend: Load | undefined;
      let bareAppend: Load | undefined;
      let fastifyAppend: Load | undefined;
      for (let round = 0; round < rounds; round++) {
        const k = await append(kura.url, duration);
        const b = await append(bare.url, duration);
        const f = await append(fastify.url, duration);
        ctx.log(`round ${round + 1}: append kura ${show(k)}; node:http ${show(b)}; fastify ${show(f)}`);
        kuraAppend = better(kuraAppend, k);
        bareAppend = better(bareAppend, b);
        fastifyAppend = better(fastifyAppend, f);
      }
      const ka = kuraAppend as Load;
      const ba = bareAppend as Load;
      const fa = fastifyAppend as Load;

      // Gets of messages stored above (hot: the server's cache holds them).
      const page = await fetch(`${kura.url}/v1/chats/chat-1/messages?limit=1000`, { headers });
      const ids = ((await page.json()) as { data: { items: { id: string }[] } }).data.items.map((m) => m.id);
      let g = 0;
      const getRequest = {
        method: "GET" as const,
        headers: { authorization: headers.authorization },
        setupRequest: (req: AutocannonRequest) => ({ ...req, path: `/v1/messages/${ids[g++ % ids.length]}` }),
      };
      const get = (url: string) => load({ url, duration, requests: [getRequest] });
      await load({ url: kura.url, duration: 1, requests: [getRequest] });
      const kg = await get(kura.url);
      const bg = await get(bare.url);
      ctx.log(`get: kura ${show(kg)}; node:http ${show(bg)}`);

      const s = `http (${CONNECTIONS} connections)`;
      const base = "bare node:http";
      const row = (metric: string, value: number, unit: string, baseValue: number, higherIsBetter: boolean) =>
        ctx.record({
          scenario: s,
          metric,
          value,
          unit,
          baseline: base,
          baseline_value: baseValue,
          ratio: ratioOf(value, baseValue, higherIsBetter),
        });
      row("kura serve append", ka.rps, "req/s", ba.rps, true);
      row("kura serve append p50", ka.p50, "ms", ba.p50, false);
      row("kura serve append p99", ka.p99, "ms", ba.p99, false);
      row("fastify hello-world POST", fa.rps, "req/s", ba.rps, true);
      row("fastify hello-world POST p99", fa.p99, "ms", ba.p99, false);
      row("kura serve get (hot)", kg.rps, "req/s", bg.rps, true);
      row("kura serve get p99", kg.p99, "ms", bg.p99, false);
      const met = (ok: boolean) => (ok ? "met" : "NOT met");
      const ratio = ratioOf(ka.rps, ba.rps);
      ctx.log(
        `targets: append ≥ 5,000/s, p99 ≤ 25 ms, ≥ 0.25× node:http: ${Math.round(ka.rps)}/s, p99 ${ka.p99} ms, ` +
          `${ratio.toFixed(2)}× — ${met(ka.rps >= 5_000 && ka.p99 <= 25 && ratio >= 0.25)}` +
          ` (fastify hello-world ${ratioOf(fa.rps, ba.rps).toFixed(2)}× node:http)`,
      );
      const failed = ka.errors + ka.non2xx + kg.errors + kg.non2xx;
      if (failed > 0) ctx.log(`warning: kura serve answered ${failed} requests with errors or non-2xx`);
    } finally {
      await Promise.all([stop(kura.child), stop(bare.child), stop(fastify.child)]);
    }
  },
};
