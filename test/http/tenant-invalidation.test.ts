/**
 * A tenant change made through one node holds on every node within a second (TEN-2, ADR 0029):
 * two real `kura serve` processes on the same configuration (one data directory: the SQLite
 * catalog file, the blob and KV directories), the admin changing a tenant through node 1 while
 * the tenant calls node 2, whose cached record must give way to the registry version.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mintToken } from "../../src/http/auth.js";

const MAIN = resolve(import.meta.dirname, "../../src/cli/main.ts");
const TSX = createRequire(import.meta.url).resolve("tsx");
const SECRET = "invalidation-test-secret-0123456789abcdef";

interface Node {
  proc: ChildProcess;
  base: string;
}

async function until(check: () => boolean, what: string, boundMs = 90_000): Promise<void> {
  const start = Date.now();
  while (!check()) {
    if (Date.now() - start > boundMs) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function serve(cwd: string): Promise<Node> {
  const proc = spawn(process.execPath, ["--import", TSX, MAIN, "serve", "--port", "0"], {
    cwd,
    env: {
      PATH: process.env.PATH ?? "",
      HOME: process.env.HOME ?? "",
      KURA_AUTH__JWT_SECRET: SECRET,
      KURA_LOG_LEVEL: "warn",
    },
  });
  let stderr = "";
  proc.stderr?.on("data", (c) => {
    stderr += c;
  });
  proc.stdout?.resume();
  await until(
    () => /listening on http:\/\/\S+/.test(stderr) || proc.exitCode !== null,
    `start-up of kura serve in ${cwd}`,
  );
  const port = /listening on http:\/\/[^:\s]+:(\d+)/.exec(stderr)?.[1];
  if (!port) throw new Error(`kura serve did not start: ${stderr.slice(0, 2000)}`);
  return { proc, base: `http://127.0.0.1:${port}` };
}

async function call(
  node: Node,
  method: string,
  path: string,
  token: string,
  json?: unknown,
): Promise<{ status: number; code: string | undefined }> {
  const res = await fetch(node.base + path, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(json === undefined ? {} : { "content-type": "application/json" }),
    },
    ...(json === undefined ? {} : { body: JSON.stringify(json) }),
  });
  const body = (await res.json().catch(() => undefined)) as { error_code?: string } | undefined;
  return { status: res.status, code: body?.error_code };
}

/**
 * Calls `probe` until it answers `status` (and `code`), and returns how long that took after
 * the change was acknowledged; fails after 5 s.
 */
async function heldWithin(
  probe: () => Promise<{ status: number; code: string | undefined }>,
  status: number,
  code?: string,
): Promise<number> {
  const start = Date.now();
  for (;;) {
    const r = await probe();
    if (r.status === status && (code === undefined || r.code === code)) return Date.now() - start;
    if (Date.now() - start > 5000) throw new Error(`still ${r.status} ${r.code ?? ""} after 5 s`);
    await new Promise((done) => setTimeout(done, 25));
  }
}

describe("tenant changes across two kura serve processes", () => {
  let cwd: string;
  const nodes: Node[] = [];
  let admin: string;
  let token: string;

  beforeAll(async () => {
    cwd = await mkdtemp(join(tmpdir(), "kura-nodes-"));
    // One after the other: the first creates the catalog and runs its migrations.
    nodes.push(await serve(cwd));
    nodes.push(await serve(cwd));
    admin = await mintToken({ secret: SECRET, admin: true, ttlSeconds: 600 });
    token = await mintToken({ secret: SECRET, tenant: "acme", ttlSeconds: 600 });
  }, 180_000);

  afterAll(async () => {
    for (const { proc } of nodes) {
      if (proc.exitCode === null && proc.signalCode === null) {
        const exited = new Promise((done) => proc.on("exit", done));
        proc.kill("SIGKILL");
        await exited;
      }
    }
    if (cwd) await rm(cwd, { recursive: true, force: true });
  });

  it("suspension, reactivation and a lowered limit made on node 1 hold on node 2 within a second", {
    timeout: 120_000,
  }, async () => {
    const [one, two] = nodes as [Node, Node];
    expect((await call(one, "POST", "/v1/admin/tenants", admin, { tenant_id: "acme" })).status).toBe(201);
    const usage = () => call(two, "GET", "/v1/usage", token);
    // Node 2 now holds acme's record in its cache (active).
    expect((await usage()).status).toBe(200);
    expect((await usage()).status).toBe(200);

    expect((await call(one, "PATCH", "/v1/admin/tenants/acme", admin, { status: "suspended" })).status).toBe(
      200,
    );
    expect(await heldWithin(usage, 403, "TENANT_SUSPENDED")).toBeLessThan(1000);

    expect((await call(one, "PATCH", "/v1/admin/tenants/acme", admin, { status: "active" })).status).toBe(
      200,
    );
    expect(await heldWithin(usage, 200)).toBeLessThan(1000);

    const post = () =>
      call(two, "POST", "/v1/chats/c1/messages", token, { role: "user", content: "x".repeat(200) });
    expect((await post()).status).toBe(201);
    const lowered = await call(one, "PATCH", "/v1/admin/tenants/acme", admin, {
      limits: { max_message_bytes: 100 },
    });
    expect(lowered.status).toBe(200);
    expect(await heldWithin(post, 413, "PAYLOAD_TOO_LARGE")).toBeLessThan(1000);
  });
});
