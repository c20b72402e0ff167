/**
 * Blob-plane limits as a client meets them: the caller's object key gets BLOB-7's 1,024 bytes
 * whatever the tenant id, with one message from the library and over HTTP; session paths and
 * KV keys state the limit that really applies; temp bytes of uploads in progress show in
 * /metrics; a full disk answers 507 STORAGE_FULL with Retry-After and DELETE still works.
 */
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { isKuraError } from "../../src/core/errors.js";
import { mountTmpfs, tmpfsAvailable } from "../support/tmpfs.js";
import { errorCode, type Harness, readJson, startServer } from "./harness.js";

/** The longest tenant id IDS-1 allows. */
const LONG_TENANT = `t${"x".repeat(127)}`;
/** `k/` + 511 two-byte characters: exactly 1,024 bytes of UTF-8. */
const KEY_1024 = `k/${"é".repeat(511)}`;
const KEY_1025 = `${KEY_1024}a`;
const KEY_MESSAGE = "invalid object key: key must be at most 1024 bytes of UTF-8";

const encodeKey = (key: string) => key.split("/").map(encodeURIComponent).join("/");

async function failure(p: Promise<unknown>) {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  if (!isKuraError(e)) throw new Error(`expected a KuraError, got ${String(e)}`);
  return e;
}

describe("object key limits and blob metrics over HTTP", () => {
  let h: Harness;
  let token: string;

  beforeAll(async () => {
    h = await startServer();
    token = await h.token(LONG_TENANT);
  });
  afterAll(async () => h?.close());

  it("gives the caller 1,024 bytes of key whatever the tenant id's length (library)", async () => {
    expect(Buffer.byteLength(KEY_1024)).toBe(1024);
    const objects = h.kura.tenant(LONG_TENANT).objects;
    await objects.put(KEY_1024, Buffer.from("at the limit"));
    expect((await objects.getBuffer(KEY_1024)).data.toString()).toBe("at the limit");
    expect((await objects.list({ prefix: "k/" })).items.map((i) => i.key)).toEqual([KEY_1024]);
    await objects.put(KEY_1024, Buffer.from("replaced"));
    expect((await objects.getBuffer(KEY_1024)).data.toString()).toBe("replaced");
    await objects.delete(KEY_1024);
    await expect(objects.head(KEY_1024)).rejects.toMatchObject({ code: "OBJECT_NOT_FOUND" });

    const e = await failure(objects.put(KEY_1025, Buffer.from("x")));
    expect(e.code).toBe("KEY_INVALID");
    expect(e.message).toBe(KEY_MESSAGE);
    // The same message for every tenant and every operation.
    const short = await failure(h.kura.tenant("a").objects.head(KEY_1025));
    expect(short.message).toBe(KEY_MESSAGE);
  });

  it("gives the caller 1,024 bytes of key over HTTP, with the same message beyond", async () => {
    const put = await h.call("PUT", `/v1/objects/${encodeKey(KEY_1024)}`, {
      token,
      body: "over http",
      headers: { "content-type": "text/plain" },
    });
    expect(put.status).toBeLessThan(300);
    const got = await h.call("GET", `/v1/objects/${encodeKey(KEY_1024)}`, { token });
    expect(got.status).toBe(200);
    expect(got.text).toBe("over http");

    const tooLong = await h.call("PUT", `/v1/objects/${encodeKey(KEY_1025)}`, {
      token,
      body: "x",
      headers: { "content-type": "text/plain" },
    });
    expect(tooLong.status).toBe(400);
    expect(errorCode(tooLong)).toBe("KEY_INVALID");
    expect(tooLong.json.error).toBe(KEY_MESSAGE);
  });

  it("states the real limit of session file paths and KV keys", async () => {
    const tenant = h.kura.tenant(LONG_TENANT);
    const sessionId = `s${"y".repeat(127)}`;
    // `{tenant}/sessions/{session}/` takes 128 + 10 + 128 + 1 = 267 bytes of the 1,024.
    const room = 1024 - 267;
    await tenant.sessions.putFile(sessionId, "p".repeat(room), Buffer.from("fits"));
    const path = await failure(tenant.sessions.putFile(sessionId, "p".repeat(room + 1), Buffer.from("x")));
    expect(path.code).toBe("SESSION_PATH_INVALID");
    expect(path.message).toContain(`at most ${room} bytes`);

    const kv = tenant.kv("prefs");
    const kvScope = Buffer.byteLength(`${LONG_TENANT}:kv:prefs:`);
    await kv.set("q".repeat(1024 - kvScope), 1);
    const key = await failure(kv.set("q".repeat(1024 - kvScope + 1), 1));
    expect(key.code).toBe("KV_KEY_INVALID");
    expect(key.message).toContain(`at most ${1024 - kvScope} bytes`);
  });

  it("shows the temp bytes of an upload in progress in /metrics", async () => {
    const tempBytes = async () => {
      const text = await (await fetch(`${h.base}/metrics`)).text();
      const line = text.split("\n").find((l) => l.startsWith('kura_blob_temp_bytes{store="primary"}'));
      return line === undefined ? undefined : Number(line.split(" ").at(-1));
    };
    expect(await tempBytes()).toBe(0);
    let send: (bytes: Uint8Array | null) => void = () => undefined;
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        send = (bytes) => (bytes ? controller.enqueue(bytes) : controller.close());
      },
    });
    const upload = fetch(`${h.base}/v1/objects/slow/upload.bin`, {
      method: "PUT",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/octet-stream" },
      body,
      duplex: "half",
    } as RequestInit);
    send(randomBytes(512 * 1024));
    await vi.waitFor(async () => expect(await tempBytes()).toBeGreaterThanOrEqual(256 * 1024), {
      timeout: 10_000,
    });
    // Readiness reports them too.
    const ready = await fetch(`${h.base}/readyz`);
    expect(((await ready.json()) as { data: { temp_bytes: number } }).data.temp_bytes).toBeGreaterThanOrEqual(
      256 * 1024,
    );
    send(null);
    expect((await upload).status).toBeLessThan(300);
    expect(await tempBytes()).toBe(0);
  });
});

describe("object uploads over HTTP time out per idle period (storage.timeouts.idle_ms)", () => {
  let h: Harness;
  let token: string;

  beforeAll(async () => {
    h = await startServer({ config: { storage: { timeouts: { idle_ms: 200 } } } });
    token = await h.token("acme");
  });
  afterAll(async () => h?.close());

  /** A request body the test feeds chunk by chunk. */
  function feed() {
    let controller: ReadableStreamDefaultController<Uint8Array> | undefined;
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        controller = c;
      },
    });
    return {
      body,
      send: (bytes: Uint8Array) => controller?.enqueue(bytes),
      end: () => controller?.close(),
    };
  }
  const put = (key: string, body: ReadableStream<Uint8Array>) =>
    fetch(`${h.base}/v1/objects/${key}`, {
      method: "PUT",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/octet-stream" },
      body,
      duplex: "half",
    } as RequestInit);

  it("stores an upload slower in total than the idle limit while its bytes keep coming", async () => {
    const f = feed();
    const response = put("slow/steady.bin", f.body);
    // 12 chunks 50 ms apart: about 600 ms in all, three times the idle limit.
    for (let i = 0; i < 12; i++) {
      await new Promise((r) => setTimeout(r, 50));
      f.send(randomBytes(64 * 1024));
    }
    f.end();
    expect((await response).status).toBeLessThan(300);
    expect((await h.kura.tenant("acme").objects.head("slow/steady.bin")).size).toBe(12 * 64 * 1024);
  });

  it("answers a stalled upload 503 OPERATION_TIMEOUT and keeps nothing", async () => {
    const f = feed();
    const response = put("slow/stalled.bin", f.body);
    f.send(randomBytes(64 * 1024));
    const r = await response;
    expect(r.status).toBe(503);
    expect((await readJson(r)).error_code).toBe("OPERATION_TIMEOUT");
    await expect(h.kura.tenant("acme").objects.head("slow/stalled.bin")).rejects.toMatchObject({
      code: "OBJECT_NOT_FOUND",
    });
    expect(await h.kura.store.stats?.()).toEqual({ tempFiles: 0, tempBytes: 0 });
    f.end();
  });
});

/** A 4 MiB tmpfs as the blob directory (needs root; skipped with the reason otherwise, failed in CI). */
describe.skipIf(!tmpfsAvailable("tmpfs (http disk full)"))("a full blob disk over HTTP", () => {
  let h: Harness;
  let token: string;
  let disk: ReturnType<typeof mountTmpfs> | undefined;

  beforeAll(async () => {
    disk = mountTmpfs("4m");
    h = await startServer({ config: { storage: { backend: "fs", options: { base_path: disk.dir } } } });
    token = await h.token("acme");
  });
  afterAll(async () => {
    await h?.close();
    disk?.unmount();
  });

  it("answers 507 STORAGE_FULL with Retry-After, keeps nothing, and still deletes", async () => {
    const small = await h.call("PUT", "/v1/objects/keep/one", {
      token,
      body: randomBytes(512 * 1024),
      headers: { "content-type": "application/octet-stream" },
    });
    expect(small.status).toBeLessThan(300);
    const big = await h.call("PUT", "/v1/objects/big/one", {
      token,
      body: randomBytes(6 * 1024 * 1024),
      headers: { "content-type": "application/octet-stream" },
    });
    expect(big.status).toBe(507);
    expect(errorCode(big)).toBe("STORAGE_FULL");
    expect(Number(big.headers.get("retry-after"))).toBeGreaterThan(0);
    expect((await h.call("GET", "/v1/objects/big/one", { token })).status).toBe(404);
    expect(await h.kura.store.stats?.()).toEqual({ tempFiles: 0, tempBytes: 0 });
    const removed = await h.call("DELETE", "/v1/objects/keep/one", { token });
    expect(removed.status).toBeLessThan(300);
    expect((await h.call("GET", "/v1/objects/keep/one", { token })).status).toBe(404);
  });
});
