/**
 * `server.tls` on the real `kura serve` process (SEC-2): HTTPS only on the port, mTLS with
 * `client_auth: require`, certificate reload on SIGHUP, and startup errors naming the file.
 * Certificates are made for each run with the `openssl` CLI (a throwaway CA, server and client
 * certificates for 127.0.0.1/localhost); nothing is mocked.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import { createRequire } from "node:module";
import { connect as netConnect } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { connect as tlsConnect } from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { resolveConfig } from "../../src/config/index.js";
import { mintToken } from "../../src/http/auth.js";
import { backendAvailable } from "../support/backends.js";

const MAIN = resolve(import.meta.dirname, "../../src/cli/main.ts");
const TSX = createRequire(import.meta.url).resolve("tsx");
const cleanEnv = { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "" };
const SECRET = "tls-test-secret-0123456789abcdef";

const opensslProblem = (() => {
  const r = spawnSync("openssl", ["version"], { encoding: "utf8" });
  return r.status === 0
    ? undefined
    : "the openssl CLI is not installed: no certificates can be made for the TLS tests";
})();
const canRun = backendAvailable("tls (openssl CLI)", opensslProblem);

function openssl(dir: string, args: string[]): void {
  const r = spawnSync("openssl", args, { cwd: dir, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`openssl ${args.join(" ")} failed: ${r.stderr}`);
}

/** A CA, and certificates it signs: `name.pem`/`name.key` in `dir`, with the given serial. */
function makeCa(dir: string, name: string): void {
  openssl(dir, [
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
    "-keyout",
    `${name}.key`,
    "-out",
    `${name}.pem`,
    "-days",
    "2",
    "-subj",
    `/CN=${name}`,
  ]);
}

async function makeCert(
  dir: string,
  o: { name: string; ca: string; serial: string; usage: "serverAuth" | "clientAuth" },
): Promise<void> {
  const ext = `${o.name}.ext`;
  await writeFile(
    join(dir, ext),
    o.usage === "serverAuth"
      ? "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n"
      : "extendedKeyUsage=clientAuth\n",
  );
  openssl(dir, [
    "req",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
    "-keyout",
    `${o.name}.key`,
    "-out",
    `${o.name}.csr`,
    "-subj",
    `/CN=${o.name}`,
  ]);
  openssl(dir, [
    "x509",
    "-req",
    "-in",
    `${o.name}.csr`,
    "-CA",
    `${o.ca}.pem`,
    "-CAkey",
    `${o.ca}.key`,
    "-set_serial",
    `0x${o.serial}`,
    "-days",
    "2",
    "-extfile",
    ext,
    "-out",
    `${o.name}.pem`,
  ]);
}

interface Served {
  child: ChildProcess;
  url: string;
  port: number;
  stdout: () => string;
  stderr: () => string;
}

function yaml(dataDir: string, tls: Record<string, string>): string {
  const lines = Object.entries(tls).map(([k, v]) => `    ${k}: ${JSON.stringify(v)}`);
  return [
    `data_dir: ${JSON.stringify(dataDir)}`,
    "auth:",
    `  jwt_secret: ${SECRET}`,
    "server:",
    "  port: 0",
    "  tls:",
    ...lines,
    "",
  ].join("\n");
}

function startServe(cwd: string, configFile: string): Promise<Served> {
  const child = spawn(
    process.execPath,
    ["--import", TSX, MAIN, "serve", "--config", configFile, "--jobs-interval", "0"],
    { cwd, env: cleanEnv },
  );
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (c) => {
    stdout += c;
  });
  return new Promise<Served>((resolveServed, reject) => {
    const timer = setTimeout(() => reject(new Error(`no listening line: ${stderr}`)), 60_000);
    child.stderr?.on("data", (c) => {
      stderr += c;
      const m = /listening on (\S+)/.exec(stderr);
      if (m && stderr.includes("API docs")) {
        clearTimeout(timer);
        const url = m[1] as string;
        resolveServed({
          child,
          url,
          port: Number(new URL(url).port),
          stdout: () => stdout,
          stderr: () => stderr,
        });
      }
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`exited ${code}: ${stderr}`));
    });
  });
}

interface Reply {
  status: number;
  body: string;
  serial: string;
  reusedSocket: boolean;
}

function call(
  port: number,
  path: string,
  o: {
    ca: Buffer;
    cert?: Buffer;
    key?: Buffer;
    method?: string;
    headers?: Record<string, string>;
    body?: string;
    agent?: HttpsAgent;
  },
): Promise<Reply> {
  return new Promise((resolveReply, reject) => {
    const req = httpsRequest(
      {
        host: "127.0.0.1",
        port,
        path,
        method: o.method ?? "GET",
        headers: o.headers,
        ca: o.ca,
        ...(o.cert && o.key ? { cert: o.cert, key: o.key } : {}),
        agent: o.agent ?? false,
      },
      (res) => {
        const socket = res.socket as import("node:tls").TLSSocket;
        const serial = socket.getPeerCertificate().serialNumber;
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (c) => {
          body += c;
        });
        res.on("end", () =>
          resolveReply({ status: res.statusCode ?? 0, body, serial, reusedSocket: req.reusedSocket }),
        );
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(o.body);
  });
}

/** The serial number of the certificate a new TLS connection is shown. */
function peerSerial(port: number, ca: Buffer): Promise<string> {
  return new Promise((resolveSerial, reject) => {
    const socket = tlsConnect({ host: "127.0.0.1", port, ca }, () => {
      const serial = socket.getPeerCertificate().serialNumber;
      socket.end();
      resolveSerial(serial);
    });
    socket.on("error", reject);
  });
}

/** What a plain-HTTP request to `port` receives before the connection ends. */
function plainHttp(port: number): Promise<string> {
  return new Promise((resolveText) => {
    const chunks: Buffer[] = [];
    const socket = netConnect({ host: "127.0.0.1", port }, () => {
      socket.write("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    });
    socket.setTimeout(10_000, () => socket.destroy());
    socket.on("data", (c: Buffer) => chunks.push(c));
    socket.on("error", () => {});
    socket.on("close", () => resolveText(Buffer.concat(chunks).toString("latin1")));
  });
}

async function until(what: string, check: () => boolean | Promise<boolean>, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function exitOf(cwd: string, configFile: string): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolveExit) => {
    const child = spawn(process.execPath, ["--import", TSX, MAIN, "serve", "--config", configFile], {
      cwd,
      env: cleanEnv,
    });
    let stderr = "";
    child.stderr?.on("data", (c) => {
      stderr += c;
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolveExit({ code, stderr });
    });
  });
}

describe("server.tls settings", () => {
  it("client_auth require or optional needs ca_file; paths resolve against the working directory", async () => {
    await expect(
      resolveConfig({ server: { tls: { cert_file: "c.pem", key_file: "k.pem", client_auth: "require" } } }),
    ).rejects.toMatchObject({
      code: "CONFIG_INVALID",
      message: expect.stringContaining("server.tls.ca_file"),
    });
    const config = await resolveConfig(
      { server: { tls: { cert_file: "c.pem", key_file: "k.pem" } } },
      { cwd: "/srv/kura" },
    );
    expect(config.server.tls).toEqual({
      cert_file: "/srv/kura/c.pem",
      key_file: "/srv/kura/k.pem",
      ca_file: null,
      client_auth: "none",
    });
    expect((await resolveConfig({})).server.tls).toBeNull();
  });
});

describe.skipIf(!canRun)("kura serve with server.tls", () => {
  let dir: string;
  let ca: Buffer;
  let clientCert: Buffer;
  let clientKey: Buffer;
  let strangerCert: Buffer;
  let strangerKey: Buffer;
  let plain: Served;
  let mutual: Served;
  let optional: Served;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "kura-tls-"));
    makeCa(dir, "ca");
    makeCa(dir, "other-ca");
    await makeCert(dir, { name: "server", ca: "ca", serial: "1001", usage: "serverAuth" });
    await makeCert(dir, { name: "server-new", ca: "ca", serial: "2002", usage: "serverAuth" });
    await makeCert(dir, { name: "client", ca: "ca", serial: "3003", usage: "clientAuth" });
    await makeCert(dir, { name: "stranger", ca: "other-ca", serial: "4004", usage: "clientAuth" });
    ca = await readFile(join(dir, "ca.pem"));
    clientCert = await readFile(join(dir, "client.pem"));
    clientKey = await readFile(join(dir, "client.key"));
    strangerCert = await readFile(join(dir, "stranger.pem"));
    strangerKey = await readFile(join(dir, "stranger.key"));
    // The first server's files get replaced by the reload test: its own copies.
    await writeFile(join(dir, "live.pem"), await readFile(join(dir, "server.pem")));
    await writeFile(join(dir, "live.key"), await readFile(join(dir, "server.key")));
    await writeFile(
      join(dir, "one-way.yaml"),
      yaml("data-1", { cert_file: "live.pem", key_file: "live.key" }),
    );
    await writeFile(
      join(dir, "mutual.yaml"),
      yaml("data-2", {
        cert_file: "server.pem",
        key_file: "server.key",
        ca_file: "ca.pem",
        client_auth: "require",
      }),
    );
    await writeFile(
      join(dir, "optional.yaml"),
      yaml("data-4", {
        cert_file: "server.pem",
        key_file: "server.key",
        ca_file: "ca.pem",
        client_auth: "optional",
      }),
    );
    [plain, mutual, optional] = await Promise.all([
      startServe(dir, "one-way.yaml"),
      startServe(dir, "mutual.yaml"),
      startServe(dir, "optional.yaml"),
    ]);
  }, 120_000);

  afterAll(async () => {
    for (const s of [plain, mutual, optional]) if (s && s.child.exitCode === null) s.child.kill("SIGKILL");
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("serves HTTPS: health, an authenticated append, and presigned URLs on https://", async () => {
    expect(plain.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const health = await call(plain.port, "/healthz", { ca });
    expect(health.status).toBe(200);
    expect(health.serial).toBe("1001");
    expect((await call(plain.port, "/readyz", { ca })).status).toBe(200);

    const token = await mintToken({ secret: SECRET, tenant: "acme", ttlSeconds: 600 });
    const auth = { authorization: `Bearer ${token}`, "content-type": "application/json" };
    const append = await call(plain.port, "/v1/chats/c1/messages", {
      ca,
      method: "POST",
      headers: auth,
      body: JSON.stringify({ role: "user", content: "over TLS" }),
    });
    expect(append.status).toBe(201);

    const presign = await call(plain.port, "/v1/objects:presign", {
      ca,
      method: "POST",
      headers: auth,
      body: JSON.stringify({ key: "notes/a.txt", method: "PUT" }),
    });
    expect(presign.status).toBe(200);
    const url = new URL(JSON.parse(presign.body).data.url as string);
    expect(url.origin).toBe(plain.url);
    const put = await call(plain.port, url.pathname + url.search, { ca, method: "PUT", body: "hello" });
    expect(put.status).toBeLessThan(300);

    const openapi = JSON.parse((await call(plain.port, "/openapi.json", { ca })).body);
    expect(JSON.stringify(openapi.servers)).toContain(plain.url);
  });

  it("does not answer plain HTTP on the TLS port", async () => {
    const received = await plainHttp(plain.port);
    expect(received).not.toContain("HTTP/");
    // The server is unharmed.
    expect((await call(plain.port, "/healthz", { ca })).status).toBe(200);
  });

  it("client_auth require: refuses a client without a certificate the CA signed", async () => {
    await expect(call(mutual.port, "/healthz", { ca })).rejects.toThrow();
    await expect(
      call(mutual.port, "/healthz", { ca, cert: strangerCert, key: strangerKey }),
    ).rejects.toThrow();
    const ok = await call(mutual.port, "/healthz", { ca, cert: clientCert, key: clientKey });
    expect(ok.status).toBe(200);
    expect(mutual.child.exitCode).toBeNull();
  });

  it("client_auth optional: asks for a certificate but serves clients without one", async () => {
    expect((await call(optional.port, "/healthz", { ca })).status).toBe(200);
    expect((await call(optional.port, "/healthz", { ca, cert: clientCert, key: clientKey })).status).toBe(
      200,
    );
  });

  it("SIGHUP reloads the certificate for new connections, keeping open ones and the process", async () => {
    const agent = new HttpsAgent({ keepAlive: true, maxSockets: 1, ca });
    try {
      const before = await call(plain.port, "/healthz", { ca, agent });
      expect(before.serial).toBe("1001");

      await writeFile(join(dir, "live.key"), await readFile(join(dir, "server-new.key")));
      await writeFile(join(dir, "live.pem"), await readFile(join(dir, "server-new.pem")));
      plain.child.kill("SIGHUP");
      await until("the reload", () => plain.stdout().includes("TLS certificate reloaded"));
      expect(await peerSerial(plain.port, ca)).toBe("2002");

      // The keep-alive connection opened before the reload still works, on its old certificate.
      const after = await call(plain.port, "/healthz", { ca, agent });
      expect(after).toMatchObject({ status: 200, reusedSocket: true, serial: "1001" });
      expect(plain.child.exitCode).toBeNull();
    } finally {
      agent.destroy();
    }
  });

  it("SIGHUP with a broken certificate file keeps serving the previous one", async () => {
    await until("the first reload", () => plain.stdout().includes("TLS certificate reloaded"));
    await writeFile(join(dir, "live.pem"), "-----BEGIN CERTIFICATE-----\nnot a certificate\n");
    plain.child.kill("SIGHUP");
    await until("the failed reload", () => plain.stdout().includes("TLS reload failed"));
    expect(plain.stdout()).toContain("server.tls.cert_file");
    expect(plain.child.exitCode).toBeNull();
    expect(await peerSerial(plain.port, ca)).toBe("2002");
    expect((await call(plain.port, "/healthz", { ca })).status).toBe(200);
  });

  it("refuses to start on unreadable files or a key that is not the certificate's, naming each file", async () => {
    await writeFile(
      join(dir, "broken.yaml"),
      yaml("data-3", {
        cert_file: "server.pem",
        key_file: "client.key",
        ca_file: "missing-ca.pem",
        client_auth: "require",
      }),
    );
    const r = await exitOf(dir, "broken.yaml");
    expect(r.code).toBe(78);
    expect(r.stderr).toContain("CONFIG_INVALID");
    expect(r.stderr).toContain("server.tls.ca_file");
    expect(r.stderr).toContain(join(dir, "missing-ca.pem"));
    expect(r.stderr).toContain("server.tls.key_file");
    expect(r.stderr).toContain(join(dir, "client.key"));
    expect(r.stderr).not.toMatch(/\n\s+at /);
  }, 60_000);
});
