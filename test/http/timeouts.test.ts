/**
 * Transport timeouts against the real server with raw sockets: a request body that stops
 * arriving gets 408 REQUEST_TIMEOUT and writes nothing (JSON routes, the streamed append, object
 * uploads), an upload that keeps moving is never cut, and idle connections are closed.
 * Timeouts are small and configured; the tests wait for the server to act, never time it.
 */
import { connect, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Harness, startServer } from "./harness.js";

let h: Harness;
let token: string;
let port: number;

const BODY_TIMEOUT_MS = 1000;
// Longer than the body timeout, as by default: request headers that stall get their 408 first.
const IDLE_TIMEOUT_MS = 2000;
// Shorter than the steady upload below takes in total: that one is streamed and never cut.
const BUFFERED_BODY_TIMEOUT_MS = 1500;

beforeAll(async () => {
  h = await startServer({
    config: {
      server: {
        body_timeout_ms: BODY_TIMEOUT_MS,
        buffered_body_timeout_ms: BUFFERED_BODY_TIMEOUT_MS,
        idle_timeout_ms: IDLE_TIMEOUT_MS,
      },
    },
  });
  token = await h.token("acme");
  port = Number(new URL(h.base).port);
});
afterAll(async () => h?.close());

interface Exchange {
  socket: Socket;
  /** What the server has sent so far. */
  received: () => string;
  /** Everything the server sent, once it closed the connection. */
  closed: Promise<string>;
}

/** Opens a connection and writes `head` (and nothing else) to it. */
function open(head = ""): Promise<Exchange> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1", () => {
      let received = "";
      socket.on("data", (c) => {
        received += c.toString("utf8");
      });
      const closed = new Promise<string>((done) => socket.on("close", () => done(received)));
      socket.on("error", () => {});
      if (head) socket.write(head);
      resolve({ socket, received: () => received, closed });
    });
    socket.once("error", reject);
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(check: () => boolean, what: string): Promise<void> {
  for (let waited = 0; !check(); waited += 20) {
    if (waited > 60_000) throw new Error(`gave up waiting for ${what}`);
    await sleep(20);
  }
}

function requestHead(method: string, path: string, headers: Record<string, string | number>): string {
  const lines = [`${method} ${path} HTTP/1.1`, "Host: 127.0.0.1", `Authorization: Bearer ${token}`];
  for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
  return `${lines.join("\r\n")}\r\n\r\n`;
}

function parse(raw: string): { status: number; headers: string; body: string } {
  const at = raw.indexOf("\r\n\r\n");
  const headers = raw.slice(0, at);
  return { status: Number(headers.slice(9, 12)), headers: headers.toLowerCase(), body: raw.slice(at + 4) };
}

describe("request body timeouts (server.body_timeout_ms)", { timeout: 30_000 }, () => {
  it("answers 408 REQUEST_TIMEOUT when a JSON body stops arriving, and stores nothing", async () => {
    const ex = await open(
      requestHead("POST", "/v1/chats/slow-json/messages", {
        "Content-Type": "application/json",
        "Content-Length": 200,
      }),
    );
    // One byte, then another a little later: a trickle that then stops for good.
    ex.socket.write('{"role":');
    await sleep(BODY_TIMEOUT_MS / 4);
    ex.socket.write('"');
    const r = parse(await ex.closed);
    expect(r.status).toBe(408);
    expect(r.headers).toContain("connection: close");
    expect(JSON.parse(r.body).error_code).toBe("REQUEST_TIMEOUT");
    const history = await h.call("GET", "/v1/chats/slow-json/messages", { token });
    expect(history.status === 404 || history.json.data.items.length === 0).toBe(true);
  });

  it("answers 408 to a JSON body that trickles in, never idle long, but never whole in time", async () => {
    const ex = await open(
      requestHead("POST", "/v1/chats/trickle-json/messages", {
        "Content-Type": "application/json",
        "Content-Length": 200,
      }),
    );
    // One byte every quarter of the idle limit: the idle limit alone would wait forever.
    let open_ = true;
    void ex.closed.then(() => {
      open_ = false;
    });
    for (let i = 0; i < 200 && open_; i++) {
      ex.socket.write(" ");
      await sleep(BODY_TIMEOUT_MS / 4);
    }
    expect(open_).toBe(false);
    const r = parse(await ex.closed);
    expect(r.status).toBe(408);
    expect(JSON.parse(r.body).error_code).toBe("REQUEST_TIMEOUT");
    const history = await h.call("GET", "/v1/chats/trickle-json/messages", { token });
    expect(history.status).toBe(404);
  });

  it("answers 408 when a KV put body stalls", async () => {
    const ex = await open(
      requestHead("PUT", "/v1/kv/ns/slow", { "Content-Type": "application/json", "Content-Length": 50 }),
    );
    ex.socket.write('{"a":');
    const r = parse(await ex.closed);
    expect(r.status).toBe(408);
    expect((await h.call("GET", "/v1/kv/ns/slow", { token })).status).toBe(404);
  });

  it("answers 408 to an idle messages:stream and stores no part of the message", async () => {
    const ex = await open(
      requestHead("POST", "/v1/chats/slow-stream/messages:stream", {
        "Content-Type": "text/plain",
        "Transfer-Encoding": "chunked",
      }),
    );
    ex.socket.write("5\r\nhello\r\n");
    await sleep(BODY_TIMEOUT_MS / 4);
    ex.socket.write("6\r\n world\r\n");
    const r = parse(await ex.closed);
    expect(r.status).toBe(408);
    expect(JSON.parse(r.body).error_code).toBe("REQUEST_TIMEOUT");
    const history = await h.call("GET", "/v1/chats/slow-stream/messages", { token });
    expect(history.status === 404 || history.json.data.items.length === 0).toBe(true);
  });

  it("answers 408 to a stalled object upload and leaves no object", async () => {
    const ex = await open(
      requestHead("PUT", "/v1/objects/slow/upload.bin", {
        "Content-Type": "application/octet-stream",
        "Content-Length": 100_000,
      }),
    );
    ex.socket.write(Buffer.alloc(10_000, 1));
    const r = parse(await ex.closed);
    expect(r.status).toBe(408);
    expect(JSON.parse(r.body).error_code).toBe("REQUEST_TIMEOUT");
    expect((await h.call("GET", "/v1/objects/slow/upload.bin", { token })).status).toBe(404);
  });

  it("survives a body refused part-way (413) whose client then goes quiet", async () => {
    const ex = await open(
      requestHead("POST", "/v1/messages:batchGet", {
        "Content-Type": "application/json",
        "Transfer-Encoding": "chunked",
      }),
    );
    const chunk = Buffer.alloc(64 * 1024, 0x20);
    for (let i = 0; i < 6; i++) ex.socket.write(`${chunk.length.toString(16)}\r\n${chunk}\r\n`);
    await until(() => ex.received().length > 0, "the 413");
    expect(parse(ex.received()).status).toBe(413);
    // Past the body timeout: the refused body's guard must not fail anything later.
    await sleep(BODY_TIMEOUT_MS * 2);
    ex.socket.destroy();
    await sleep(BODY_TIMEOUT_MS / 2);
    expect((await h.call("GET", "/healthz")).status).toBe(200);
  });

  it("does not cut an upload that keeps making progress, however long it takes in total", async () => {
    const chunks = 30;
    const size = 1000;
    const ex = await open(
      requestHead("PUT", "/v1/objects/steady/upload.bin", {
        "Content-Type": "application/octet-stream",
        "Content-Length": chunks * size,
        Connection: "close",
      }),
    );
    // Far longer in total than body_timeout_ms, but never idle for long.
    for (let i = 0; i < chunks; i++) {
      ex.socket.write(Buffer.alloc(size, i));
      await sleep(BODY_TIMEOUT_MS / 10);
    }
    const r = parse(await ex.closed);
    expect(r.status).toBe(200);
    const got = await fetch(`${h.base}/v1/objects/steady/upload.bin`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(Buffer.from(await got.arrayBuffer()).length).toBe(chunks * size);
  });
});

describe("idle connections (server.idle_timeout_ms)", { timeout: 30_000 }, () => {
  it("closes an idle keep-alive connection after its response", async () => {
    const ex = await open("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    const raw = await ex.closed;
    expect(parse(raw).status).toBe(200);
  });

  it("closes a connection that never sends a request", async () => {
    const ex = await open();
    // Node counts the wait for a first request against the headers timeout: a 408, then close.
    const raw = await ex.closed;
    if (raw !== "") expect(parse(raw).status).toBe(408);
  });

  it("closes a connection whose request headers stop arriving", async () => {
    const ex = await open("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    const r = parse(await ex.closed);
    expect(r.status).toBe(408);
    expect(JSON.parse(r.body).error_code).toBe("REQUEST_TIMEOUT");
  });
});
