/**
 * Graceful shutdown of the real `kura serve` process (API-5): on SIGTERM with an idle keep-alive
 * client and a stalled request in flight, idle connections close, a request arriving on an open
 * connection gets 503 SERVER_SHUTTING_DOWN, the stalled request is cut at
 * server.shutdown_timeout_ms, and the process exits. Bounds are generous; nothing is timed.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createRequire } from "node:module";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { mintToken } from "../../src/http/auth.js";

const MAIN = resolve(import.meta.dirname, "../../src/cli/main.ts");
const TSX = createRequire(import.meta.url).resolve("tsx");
const SECRET = "shutdown-test-secret-0123456789abcdef";

interface Conn {
  socket: Socket;
  received: () => string;
  closed: Promise<string>;
}

function open(port: number): Promise<Conn> {
  return new Promise((resolveConn, reject) => {
    const socket = connect(port, "127.0.0.1", () => {
      let received = "";
      socket.on("data", (c) => {
        received += c.toString("utf8");
      });
      socket.on("error", () => {});
      const closed = new Promise<string>((done) => socket.on("close", () => done(received)));
      resolveConn({ socket, received: () => received, closed });
    });
    socket.once("error", reject);
  });
}

async function until(check: () => boolean, what: string, boundMs = 60_000): Promise<void> {
  const start = Date.now();
  while (!check()) {
    if (Date.now() - start > boundMs) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe("kura serve on SIGTERM", () => {
  let cwd: string;
  let child: ChildProcess | undefined;

  afterAll(async () => {
    if (child && child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    if (cwd) await rm(cwd, { recursive: true, force: true });
  });

  it("drains: idle connections close, late requests get 503, stalled ones are cut, the process exits", {
    timeout: 180_000,
  }, async () => {
    cwd = await mkdtemp(join(tmpdir(), "kura-shutdown-"));
    const proc = spawn(process.execPath, ["--import", TSX, MAIN, "serve", "--port", "0"], {
      cwd,
      env: {
        PATH: process.env.PATH ?? "",
        HOME: process.env.HOME ?? "",
        KURA_AUTH__JWT_SECRET: SECRET,
        KURA_SERVER__SHUTDOWN_TIMEOUT_MS: "2000",
        KURA_LOG_LEVEL: "warn",
      },
    });
    child = proc;
    let stderr = "";
    proc.stderr?.on("data", (c) => {
      stderr += c;
    });
    proc.stdout?.resume();
    const exited = new Promise<number | null>((done) => proc.on("exit", (code) => done(code)));
    await until(() => /listening on http:\/\/\S+/.test(stderr) && stderr.includes("API docs"), "start-up");
    const port = Number(/listening on http:\/\/[^:]+:(\d+)/.exec(stderr)?.[1]);
    const token = await mintToken({ secret: SECRET, tenant: "acme", ttlSeconds: 600 });

    // An idle keep-alive client: one request answered, then nothing.
    const idle = await open(port);
    idle.socket.write("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    await until(() => idle.received().includes("\r\n\r\n{"), "the keep-alive response");
    expect(idle.received()).toMatch(/^HTTP\/1\.1 200/);

    // A stalled request: headers and part of the body, then nothing.
    const stalled = await open(port);
    stalled.socket.write(
      `POST /v1/chats/drain/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\n` +
        'Content-Type: application/json\r\nContent-Length: 200\r\n\r\n{"role":"user",',
    );

    // A connection in the middle of its next request's headers (so not idle).
    const late = await open(port);
    late.socket.write("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    // Let the server see both before the signal.
    await new Promise((r) => setTimeout(r, 300));

    proc.kill("SIGTERM");
    // The idle keep-alive connection is closed by the drain itself.
    await idle.closed;
    // The request that arrives now, on an open connection, is refused with 503.
    late.socket.write("\r\n");
    const lateRaw = await late.closed;
    expect(lateRaw).toMatch(/^HTTP\/1\.1 503/);
    const head = lateRaw.slice(0, lateRaw.indexOf("\r\n\r\n")).toLowerCase();
    expect(head).toContain("connection: close");
    expect(head).toMatch(/retry-after: \d+/);
    expect(JSON.parse(lateRaw.slice(lateRaw.indexOf("\r\n\r\n") + 4)).error_code).toBe(
      "SERVER_SHUTTING_DOWN",
    );

    // The stalled request does not keep the process alive: its connection is cut at the deadline.
    await stalled.closed;
    expect(await exited).toBe(0);
    expect(stderr).toContain("SIGTERM");
  });
});
