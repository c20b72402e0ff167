/**
 * A resumable upload survives `kill -9` of `kura serve` (API-6): a server killed with SIGKILL
 * while a PATCH streams in is started again on the same data directory and port, the upload
 * answers HEAD at the offset of the last request it acknowledged, and tus-js-client finishes it
 * with the same URL; the object reads back byte-identical.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { request } from "node:http";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import * as tus from "tus-js-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mintToken } from "../../src/http/auth.js";
import { freePort } from "../support/servers/net.js";

const MAIN = resolve(import.meta.dirname, "../../src/cli/main.ts");
const TSX = createRequire(import.meta.url).resolve("tsx");
const SECRET = "tus-kill-test-secret-0123456789abcdef";
const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

function serve(config: string, cwd: string, port: number): Promise<ChildProcess> {
  const env = { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", KURA_CONFIG: config };
  const child = spawn(process.execPath, ["--import", TSX, MAIN, "serve", "--port", String(port)], {
    cwd,
    env,
  });
  let stderr = "";
  return new Promise((resolveServed, reject) => {
    const timer = setTimeout(() => reject(new Error(`no listening line: ${stderr}`)), 60_000);
    child.stderr?.on("data", (c) => {
      stderr += c;
      if (/listening on http:\/\/\S+/.test(stderr) && stderr.includes("API docs")) {
        clearTimeout(timer);
        resolveServed(child);
      }
    });
    child.on("exit", (code) => reject(new Error(`exited ${code}: ${stderr}`)));
  });
}

const exited = (child: ChildProcess) =>
  new Promise<void>((r) =>
    child.exitCode !== null || child.signalCode !== null ? r() : child.once("exit", () => r()),
  );

describe("tus upload across kill -9 of kura serve", () => {
  let dir: string;
  const children: ChildProcess[] = [];
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "kura-tus-kill-"));
  });
  afterAll(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
    await rm(dir, { recursive: true, force: true });
  });

  it("resumes with the same URL after the server was killed mid-PATCH; the object is byte-identical", async () => {
    const config = join(dir, "kura.yaml");
    await writeFile(
      config,
      [`data_dir: ${join(dir, "data")}`, "auth:", `  jwt_secret: ${SECRET}`, ""].join("\n"),
    );
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const token = await mintToken({ secret: SECRET, tenant: "acme", ttlSeconds: 600 });
    const auth = { authorization: `Bearer ${token}`, "tus-resumable": "1.0.0" };
    const body = randomBytes(1_500_000);

    let server = await serve(config, dir, port);
    children.push(server);
    // Two chunks acknowledged, through the client as an application runs it.
    const first = new tus.Upload(body, {
      endpoint: `${base}/v1/uploads`,
      headers: { authorization: `Bearer ${token}` },
      metadata: { key: "survivor.bin", filetype: "application/octet-stream" },
      chunkSize: 250_000,
      retryDelays: [],
    });
    await new Promise<void>((resolveTwo, reject) => {
      first.options.onChunkComplete = (_size, accepted) => {
        if (accepted === 500_000) void first.abort().then(() => resolveTwo());
      };
      first.options.onError = reject;
      first.start();
    });
    const url = first.url as string;
    expect(url.startsWith(`${base}/v1/uploads/`)).toBe(true);

    // A third PATCH streams half its bytes; the server is killed while it waits for the rest.
    const inFlight = request(url, {
      method: "PATCH",
      headers: {
        ...auth,
        "upload-offset": "500000",
        "content-type": "application/offset+octet-stream",
        "content-length": "250000",
      },
    });
    inFlight.on("error", () => undefined);
    inFlight.write(body.subarray(500_000, 625_000));
    await new Promise((r) => setTimeout(r, 300));
    server.kill("SIGKILL");
    await exited(server);
    inFlight.destroy();

    server = await serve(config, dir, port);
    children.push(server);
    const head = await fetch(url, { method: "HEAD", headers: auth });
    expect(head.status).toBe(200);
    // The cut-off request was never acknowledged: its bytes are not counted.
    expect(head.headers.get("upload-offset")).toBe("500000");
    const partsDir = join(dir, "data", "blobs", "acme", "uploads", url.split("/").at(-1) as string);
    expect((await readdir(partsDir)).length).toBeGreaterThanOrEqual(2);
    expect((await fetch(`${base}/v1/objects/survivor.bin`, { headers: auth })).status).toBe(404);

    let resumedAt: number | undefined;
    await new Promise<void>((resolveDone, reject) => {
      const second = new tus.Upload(body, {
        uploadUrl: url,
        headers: { authorization: `Bearer ${token}` },
        chunkSize: 250_000,
        retryDelays: [],
        onChunkComplete: (_size, accepted) => {
          resumedAt ??= accepted;
        },
        onSuccess: () => resolveDone(),
        onError: reject,
      });
      second.start();
    });
    expect(resumedAt).toBe(750_000);
    const got = await fetch(`${base}/v1/objects/survivor.bin`, { headers: auth });
    expect(got.status).toBe(200);
    expect(sha(Buffer.from(await got.arrayBuffer()))).toBe(sha(body));

    server.kill("SIGTERM");
    await exited(server);
    // The parts, the killed request's cut-short one included, went with the completion.
    const left = await readdir(join(dir, "data", "blobs", "acme", "uploads"), {
      recursive: true,
      withFileTypes: true,
    }).catch(() => []);
    expect(left.filter((e) => e.isFile()).map((e) => e.name)).toEqual([]);
  }, 180_000);
});
