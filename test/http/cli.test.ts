/**
 * `kura serve` and `kura token` as a user runs them: a child process in an empty directory, no
 * config at all, no KURA_* environment.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtemp, rm, stat } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const MAIN = resolve(import.meta.dirname, "../../src/cli/main.ts");
const TSX = createRequire(import.meta.url).resolve("tsx");
const cleanEnv = { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "" };

describe("kura serve with no config", () => {
  let cwd: string;
  let child: ChildProcess;
  let url = "";
  let stderr = "";
  let stdout = "";

  beforeAll(async () => {
    cwd = await mkdtemp(join(tmpdir(), "kura-serve-"));
    child = spawn(process.execPath, ["--import", TSX, MAIN, "serve", "--port", "0"], { cwd, env: cleanEnv });
    child.stdout?.on("data", (c) => {
      stdout += c;
    });
    url = await new Promise<string>((resolveUrl, reject) => {
      const timer = setTimeout(() => reject(new Error(`no listening line: ${stderr}`)), 60_000);
      child.stderr?.on("data", (c) => {
        stderr += c;
        const m = /listening on (http:\/\/\S+)/.exec(stderr);
        // The start-up message ends with the docs line.
        if (m && stderr.includes("API docs")) {
          clearTimeout(timer);
          resolveUrl(m[1] as string);
        }
      });
      child.on("exit", (code) => reject(new Error(`exited ${code}: ${stderr}`)));
    });
  }, 90_000);

  afterAll(async () => {
    if (child.exitCode === null) child.kill("SIGKILL");
    await rm(cwd, { recursive: true, force: true });
  });

  it("starts on embedded defaults, generates a 0600 JWT secret and says how to get a token", async () => {
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(stderr).toContain("generated a JWT secret");
    expect(stderr).toContain("kura token --tenant");
    const st = await stat(join(cwd, "data", "jwt-secret"));
    expect(st.mode & 0o777).toBe(0o600);
    const ready = await fetch(`${url}/readyz`);
    expect(ready.status).toBe(200);
  });

  it("accepts a token from `kura token`, which prints only the token", async () => {
    const r = spawnSync(
      process.execPath,
      ["--import", TSX, MAIN, "token", "--tenant", "demo", "--user", "u1", "--ttl", "10m"],
      {
        cwd,
        env: cleanEnv,
        encoding: "utf8",
      },
    );
    expect(r.status).toBe(0);
    const token = r.stdout.trim();
    expect(token).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
    expect(r.stdout).toBe(`${token}\n`);
    const auth = { authorization: `Bearer ${token}` };
    const append = await fetch(`${url}/v1/chats/hello/messages`, {
      method: "POST",
      headers: { ...auth, "content-type": "application/json" },
      body: JSON.stringify({ role: "user", content: "こんにちは" }),
    });
    expect(append.status).toBe(201);
    const history = await fetch(`${url}/v1/chats/hello/messages?include=content`, { headers: auth });
    const page = (await history.json()) as { data: { items: { content: string }[] } };
    expect(page.data.items.map((m) => m.content)).toEqual(["こんにちは"]);
    const bad = spawnSync(process.execPath, ["--import", TSX, MAIN, "token", "--tenant", "../x"], {
      cwd,
      env: cleanEnv,
      encoding: "utf8",
    });
    expect(bad.status).not.toBe(0);
    expect(bad.stdout).toBe("");
    // The JSON log never holds the token.
    await new Promise((r) => setTimeout(r, 100));
    expect(stdout).not.toContain(token);
    for (const line of stdout.trim().split("\n")) expect(() => JSON.parse(line)).not.toThrow();
  });

  it("presigns URLs and documents itself at the port it listens on, not the default one", async () => {
    const r = spawnSync(process.execPath, ["--import", TSX, MAIN, "token", "--tenant", "demo"], {
      cwd,
      env: cleanEnv,
      encoding: "utf8",
    });
    const auth = { authorization: `Bearer ${r.stdout.trim()}` };
    const put = await fetch(`${url}/v1/objects/shared/note.txt`, {
      method: "PUT",
      headers: { ...auth, "content-type": "text/plain" },
      body: "shared without a token",
    });
    expect(put.status).toBe(200);
    const presign = async (method: "GET" | "PUT", key: string) => {
      const res = await fetch(`${url}/v1/objects:presign`, {
        method: "POST",
        headers: { ...auth, "content-type": "application/json" },
        body: JSON.stringify({ key, method }),
      });
      expect(res.status).toBe(200);
      return ((await res.json()) as { data: { url: string } }).data.url;
    };
    const get = await presign("GET", "shared/note.txt");
    expect(get.startsWith(`${url}/v1/presigned/`), get).toBe(true);
    expect(await (await fetch(get)).text()).toBe("shared without a token");
    const upload = await presign("PUT", "shared/upload.txt");
    expect(upload.startsWith(`${url}/v1/presigned/`), upload).toBe(true);
    expect((await fetch(upload, { method: "PUT", body: "uploaded" })).status).toBe(200);

    const doc = (await (await fetch(`${url}/openapi.json`)).json()) as { servers: { url: string }[] };
    expect(doc.servers.map((s) => s.url)).toEqual(["/", url]);
  });

  const kura = (...args: string[]) =>
    spawnSync(process.execPath, ["--import", TSX, MAIN, ...args], { cwd, env: cleanEnv, encoding: "utf8" });

  it("answers usage errors with exit 64 and one clear line, never a stack trace", { timeout: 60_000 }, () => {
    const cases: [string[], RegExp][] = [
      [["token"], /required option '-t, --tenant/],
      [["token", "--tenant", "demo", "--bogus"], /unknown option '--bogus'/],
      [["bogus-command"], /unknown command/],
      [["serve", "--port", "abc"], /--port must be an integer from 0 to 65535, not "abc"/],
      [["serve", "--log-level", "loud"], /--log-level must be one of .*not "loud"/],
      [["serve", "--s3-port", "abc"], /--s3-port must be an integer from 0 to 65535, not "abc"/],
    ];
    for (const [args, message] of cases) {
      const r = kura(...args);
      expect(r.status, `${args.join(" ")}: ${r.stderr}`).toBe(64);
      expect(r.stderr).toMatch(message);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
  });

  it("says the port is in use instead of printing a stack trace (ADDRESS_UNAVAILABLE, exit 78)", {
    timeout: 60_000,
  }, () => {
    const r = kura("serve", "--port", new URL(url).port);
    expect(r.status, r.stderr).toBe(78);
    expect(r.stderr).toContain("ADDRESS_UNAVAILABLE");
    expect(r.stderr).toContain("in use");
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it("says the S3 port is in use the same way (ADDRESS_UNAVAILABLE, exit 78)", { timeout: 60_000 }, () => {
    const r = kura("serve", "--port", "0", "--s3-port", new URL(url).port);
    expect(r.status, r.stderr).toBe(78);
    expect(r.stderr).toContain("ADDRESS_UNAVAILABLE");
    expect(r.stderr).toContain("in use");
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it("prints the effective configuration as YAML, or JSON with --json, secrets redacted", {
    timeout: 60_000,
  }, () => {
    const yaml = kura("config");
    expect(yaml.status, yaml.stderr).toBe(0);
    expect(yaml.stdout).toMatch(/^data_dir: /m);
    const json = kura("config", "--json");
    expect(json.status, json.stderr).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({ server: { port: 8787 } });
  });

  const reindex = () =>
    spawnSync(process.execPath, ["--import", TSX, MAIN, "reindex", "--json"], {
      cwd,
      env: cleanEnv,
      encoding: "utf8",
    });

  it("refuses `kura reindex` while the server runs (SERVER_RUNNING, exit 75)", { timeout: 60_000 }, () => {
    const r = reindex();
    expect(r.status, r.stderr).toBe(75);
    expect(r.stderr).toContain("SERVER_RUNNING");
    expect(r.stdout).toBe("");
  });

  it("shuts down gracefully on SIGTERM (exit code 0), after which reindex runs", {
    timeout: 60_000,
  }, async () => {
    const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
    child.kill("SIGTERM");
    expect(await exited).toBe(0);
    const r = reindex();
    expect(r.status, r.stderr).toBe(0);
    // The one message appended above is read back from the catalog and indexed again.
    expect(JSON.parse(r.stdout)).toMatchObject({ messages: 1 });
  });
});
