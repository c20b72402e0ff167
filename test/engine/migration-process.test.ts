/**
 * Online migration as operators run it, in real processes: a `kura serve` killed with SIGKILL
 * mid-migration under an append load, started again on the same config, resumes and finishes,
 * and a Kura on the target config alone reads every acknowledged message; `kura migrate --to`
 * drives a migration to done and names the config to start with. Both move fs bodies to another
 * fs directory, and the SIGKILL run also to radosgw (S3).
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { S3Client } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mintToken } from "../../src/http/auth.js";
import { Kura } from "../../src/kura.js";
import { loadConfig } from "../../src/open/config.js";
import { createBucket, emptyAndDeleteBucket } from "../conformance/s3-harness.js";
import { backendAvailable } from "../support/backends.js";
import {
  RADOSGW_ACCESS_KEY,
  RADOSGW_SECRET_KEY,
  type RadosgwServer,
  radosgwProblem,
  startRadosgw,
} from "../support/servers/radosgw.js";

const MAIN = resolve(import.meta.dirname, "../../src/cli/main.ts");
const TSX = createRequire(import.meta.url).resolve("tsx");
const SECRET = "migration-test-secret-0123456789abcdef";

function yaml(dataDir: string, blobs?: string): string {
  return [
    `data_dir: ${dataDir}`,
    "auth:",
    `  jwt_secret: ${SECRET}`,
    ...(blobs ? ["storage:", "  backend: fs", "  options:", `    base_path: ${blobs}`] : []),
    "",
  ].join("\n");
}

interface Served {
  child: ChildProcess;
  url: string;
}

function serve(config: string, cwd: string): Promise<Served> {
  const env = { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", KURA_CONFIG: config };
  const child = spawn(process.execPath, ["--import", TSX, MAIN, "serve", "--port", "0"], { cwd, env });
  let stderr = "";
  return new Promise((resolveServed, reject) => {
    const timer = setTimeout(() => reject(new Error(`no listening line: ${stderr}`)), 60_000);
    child.stderr?.on("data", (c) => {
      stderr += c;
      const m = /listening on (http:\/\/\S+)/.exec(stderr);
      if (m && stderr.includes("API docs")) {
        clearTimeout(timer);
        resolveServed({ child, url: m[1] as string });
      }
    });
    child.on("exit", (code) => reject(new Error(`exited ${code}: ${stderr}`)));
  });
}

/**
 * A `kura serve` on `dir/name` migrating to `storage`, killed with SIGKILL mid-copy under
 * appends, started again: the migration resumes and finishes, and a Kura on the target alone
 * reads every acknowledged message.
 */
async function killMidMigration(
  dir: string,
  name: string,
  storage: Record<string, unknown>,
  children: ChildProcess[],
) {
  const data = join(dir, name);
  const source = join(dir, `${name}.yaml`);
  await writeFile(source, yaml(data));
  const admin = await mintToken({ secret: SECRET, admin: true, user: "root", ttlSeconds: 600 });
  const token = await mintToken({ secret: SECRET, tenant: "acme", ttlSeconds: 600 });
  const call = async (url: string, method: string, path: string, body?: unknown, auth = token) => {
    const r = await fetch(`${url}${path}`, {
      method,
      headers: { authorization: `Bearer ${auth}`, ...(body ? { "content-type": "application/json" } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    return { status: r.status, json: (await r.json()) as { data: Record<string, unknown> } };
  };

  let server = await serve(source, dir);
  children.push(server.child);
  const acked = new Map<string, string>();
  for (let b = 0; b < 4; b++) {
    const messages = Array.from({ length: 500 }, (_, i) => ({ role: "user", content: `batch ${b} ${i}` }));
    const r = await call(server.url, "POST", `/v1/chats/c${b}/messages:batch`, { messages });
    expect(r.status).toBe(201);
    (r.json.data.items as { id: string }[]).forEach((m, i) => {
      acked.set(m.id, `batch ${b} ${i}`);
    });
  }
  const started = await call(server.url, "POST", "/v1/admin/migrations", { target: { storage } }, admin);
  expect(started.status).toBe(202);
  const id = started.json.data.id as string;
  // Appends acknowledged while dual-writing, then the kill, mid-copy.
  for (let i = 0; i < 20; i++) {
    const r = await call(server.url, "POST", "/v1/chats/load/messages", {
      role: "user",
      content: `load ${i}`,
    });
    expect(r.status).toBe(201);
    acked.set(r.json.data.id as string, `load ${i}`);
  }
  const before = await call(server.url, "GET", `/v1/admin/migrations/${id}`, undefined, admin);
  server.child.kill("SIGKILL");
  await new Promise((r) => server.child.once("exit", r));
  // Killed before the copy of 2 000 bodies could finish.
  expect(["dual_write", "copying"]).toContain(before.json.data.state);

  server = await serve(source, dir);
  children.push(server.child);
  for (let i = 0; i < 20; i++) {
    const r = await call(server.url, "POST", "/v1/chats/load/messages", {
      role: "user",
      content: `after ${i}`,
    });
    expect(r.status).toBe(201);
    acked.set(r.json.data.id as string, `after ${i}`);
  }
  let state = "";
  const deadline = Date.now() + 60_000;
  while (state !== "done" && Date.now() < deadline) {
    const got = await call(server.url, "GET", `/v1/admin/migrations/${id}`, undefined, admin);
    state = got.json.data.state as string;
    expect(state).not.toBe("failed");
    await new Promise((r) => setTimeout(r, 50));
  }
  expect(state).toBe("done");
  server.child.kill("SIGTERM");
  await new Promise((r) => server.child.once("exit", r));

  const target = await Kura.open(
    { data_dir: data, auth: { jwt_secret: SECRET }, storage },
    { projectors: "inline" },
  );
  try {
    for (const [mid, content] of acked)
      expect((await target.tenant("acme").messages.get(mid)).content).toBe(content);
  } finally {
    await target.close();
  }
}

describe("online migration in real processes", () => {
  let dir: string;
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "kura-migration-proc-"));
  });
  afterAll(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
    await rm(dir, { recursive: true, force: true });
  });

  it("a kura serve killed with SIGKILL mid-migration resumes it when started again; the target alone has everything", async () => {
    await killMidMigration(
      dir,
      "served",
      { backend: "fs", options: { base_path: join(dir, "served-target") } },
      children,
    );
  }, 240_000);

  it("kura migrate --to TARGET.yaml runs the migration to done and names the config to start with", async () => {
    const data = join(dir, "cli");
    const source = join(dir, "cli.yaml");
    const targetFile = join(dir, "cli-target.yaml");
    await writeFile(source, yaml(data));
    await writeFile(targetFile, yaml(data, join(dir, "cli-target")));
    const kura = await Kura.open(await loadConfig({ file: source, env: {} }), { projectors: "inline" });
    const ids: string[] = [];
    try {
      for (let i = 0; i < 50; i++)
        ids.push((await kura.tenant("acme").messages.append("c", { role: "user", content: `m${i}` })).id);
    } finally {
      await kura.close();
    }
    const env = { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "" };
    const run = (...args: string[]) =>
      spawnSync(process.execPath, ["--import", TSX, MAIN, ...args], { cwd: dir, env, encoding: "utf8" });
    const same = run("migrate", "-c", source, "--to", source);
    expect(same.status, same.stderr).not.toBe(0);
    expect(same.stderr).toContain("nothing to migrate");

    const r = run("migrate", "-c", source, "--to", targetFile, "--json");
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { state: string; config_file: string; progress: { listed: number } };
    expect(out.state).toBe("done");
    expect(out.config_file).toBe(targetFile);
    expect(out.progress.listed).toBeGreaterThanOrEqual(50);

    const target = await Kura.open(await loadConfig({ file: targetFile, env: {} }), { projectors: "inline" });
    try {
      for (const mid of ids) expect((await target.tenant("acme").messages.get(mid)).id).toBe(mid);
    } finally {
      await target.close();
    }
  }, 120_000);
});

const rgwAvailable = backendAvailable("s3-radosgw", radosgwProblem());

describe.skipIf(!rgwAvailable)("online migration to radosgw in real processes", () => {
  let dir: string;
  let rgw: RadosgwServer;
  let s3: S3Client;
  let bucket: string;
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "kura-migration-proc-s3-"));
    rgw = await startRadosgw();
    s3 = new S3Client({
      endpoint: rgw.endpoint,
      region: "us-east-1",
      forcePathStyle: true,
      credentials: { accessKeyId: RADOSGW_ACCESS_KEY, secretAccessKey: RADOSGW_SECRET_KEY },
    });
    bucket = await createBucket(s3, "migration-proc");
  }, 300_000);
  afterAll(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
    if (bucket) await emptyAndDeleteBucket(s3, bucket).catch(() => undefined);
    s3?.destroy();
    await rgw?.destroy();
    await rm(dir, { recursive: true, force: true });
  });

  it("fs → radosgw: a kura serve killed with SIGKILL mid-migration resumes it; the target alone has everything", async () => {
    await killMidMigration(
      dir,
      "served-s3",
      {
        backend: "s3",
        options: {
          bucket,
          endpoint: rgw.endpoint,
          force_path_style: true,
          region: "us-east-1",
          credentials: "static",
          access_key_id: RADOSGW_ACCESS_KEY,
          secret_access_key: RADOSGW_SECRET_KEY,
        },
      },
      children,
    );
  }, 300_000);
});
