/**
 * The S3 endpoint (API-7) driven by the clients people already have: Debian's AWS CLI
 * (`s3 mb/cp/ls/sync/rm/presign`, the `s3api` multipart calls) and rclone (`sync`, `check`),
 * against `kura serve --s3-port` in its own process, with a tenant API key as the credentials
 * (environment variables; HOME, AWS_CONFIG_FILE and RCLONE_CONFIG in a temp directory).
 * Skipped outside CI when /usr/bin/aws or /usr/bin/rclone is missing
 * (scripts/test-servers/install-s3-clients.sh installs them).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mintToken } from "../../src/http/auth.js";
import { backendAvailable } from "../support/backends.js";

const ROOT = resolve(import.meta.dirname, "../..");
const MAIN = join(ROOT, "src/cli/main.ts");
const TSX = createRequire(import.meta.url).resolve("tsx");
const AWS = "/usr/bin/aws";
const RCLONE = "/usr/bin/rclone";
const missing = [AWS, RCLONE].filter((p) => !existsSync(p));
const available = backendAvailable(
  "s3-clients",
  missing.length > 0
    ? `${missing.join(", ")} not installed (scripts/test-servers/install-s3-clients.sh)`
    : undefined,
);

let dir: string;
let server: ChildProcess | undefined;
let endpoint: string;
let api: string;
let env: Record<string, string>;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(command: string, args: string[], extra: Record<string, string> = {}): Promise<Run> {
  return new Promise((done, reject) => {
    const child = spawn(command, args, { cwd: dir, env: { ...env, ...extra } });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c) => {
      stdout += c;
    });
    child.stderr.on("data", (c) => {
      stderr += c;
    });
    child.on("error", reject);
    child.on("close", (code) => done({ code, stdout, stderr }));
  });
}

async function ok(command: string, args: string[]): Promise<string> {
  const r = await run(command, args);
  if (r.code !== 0) throw new Error(`${command} ${args.join(" ")} exited ${r.code}: ${r.stderr}${r.stdout}`);
  return r.stdout;
}

const aws = (...args: string[]) => ok(AWS, ["--endpoint-url", endpoint, ...args]);
const rclone = (...args: string[]) => ok("/usr/bin/env", ["-u", "AWS_CA_BUNDLE", RCLONE, ...args]);
const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

async function startServe(): Promise<void> {
  const child = spawn(process.execPath, ["--import", TSX, MAIN, "serve", "--port", "0", "--s3-port", "0"], {
    cwd: dir,
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: dir, KURA_LOG_LEVEL: "warn" },
  });
  server = child;
  let stderr = "";
  await new Promise<void>((ready, reject) => {
    const timer = setTimeout(() => reject(new Error(`kura serve did not start: ${stderr}`)), 60_000);
    child.stdout?.resume();
    child.stderr?.on("data", (c) => {
      stderr += c;
      const s3 = /S3 endpoint:\s+(http:\/\/\S+)/.exec(stderr);
      const http = /listening on (http:\/\/\S+)/.exec(stderr);
      if (s3 && http) {
        endpoint = s3[1] as string;
        api = http[1] as string;
        clearTimeout(timer);
        ready();
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`kura serve exited ${code}: ${stderr}`));
    });
  });
}

/** A tenant and an API key through the admin API, with a token from the secret kura serve generated. */
async function apiKey(tenant: string): Promise<{ keyId: string; secret: string }> {
  const secret = (await readFile(join(dir, "data", "jwt-secret"), "utf8")).trim();
  const admin = await mintToken({ secret, admin: true, ttlSeconds: 600 });
  const call = async (path: string, body: unknown) => {
    const r = await fetch(api + path, {
      method: "POST",
      headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    const json = (await r.json()) as { data: Record<string, string> };
    if (!r.ok) throw new Error(`${path}: ${r.status} ${JSON.stringify(json)}`);
    return json.data;
  };
  await call("/v1/admin/tenants", { tenant_id: tenant });
  const key = await call(`/v1/admin/tenants/${tenant}/keys`, { scopes: ["read", "write"] });
  return { keyId: key.key_id as string, secret: key.secret as string };
}

describe.skipIf(!available)("S3 endpoint with the AWS CLI and rclone", () => {
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "kura-s3-clients-"));
    await startServe();
    const key = await apiKey("acme");
    env = {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      HOME: dir,
      AWS_CONFIG_FILE: join(dir, "aws-config"),
      AWS_SHARED_CREDENTIALS_FILE: join(dir, "aws-credentials"),
      AWS_ACCESS_KEY_ID: key.keyId,
      AWS_SECRET_ACCESS_KEY: key.secret,
      AWS_DEFAULT_REGION: "us-east-1",
      AWS_PAGER: "",
      RCLONE_CONFIG: join(dir, "rclone.conf"),
      RCLONE_CONFIG_KURA_TYPE: "s3",
      RCLONE_CONFIG_KURA_PROVIDER: "Other",
      RCLONE_CONFIG_KURA_ENV_AUTH: "false",
      RCLONE_CONFIG_KURA_ACCESS_KEY_ID: key.keyId,
      RCLONE_CONFIG_KURA_SECRET_ACCESS_KEY: key.secret,
      RCLONE_CONFIG_KURA_ENDPOINT: "",
      RCLONE_CONFIG_KURA_REGION: "us-east-1",
      RCLONE_CONFIG_KURA_FORCE_PATH_STYLE: "true",
    };
    env.RCLONE_CONFIG_KURA_ENDPOINT = endpoint;
    await writeFile(join(dir, "aws-config"), "[default]\nregion = us-east-1\n");
    await writeFile(join(dir, "rclone.conf"), "");
  }, 120_000);

  afterAll(async () => {
    if (server && server.exitCode === null) {
      const exited = new Promise((r) => server?.once("exit", r));
      server.kill("SIGTERM");
      await exited;
    }
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("aws s3: mb, cp both ways, ls, sync, presign, rm, rb", async () => {
    await aws("s3", "mb", "s3://photos");
    const file = join(dir, "hello.txt");
    await writeFile(file, "hello from the aws cli\n");
    await aws("s3", "cp", file, "s3://photos/greetings/hello.txt");
    expect(await aws("s3", "ls", "s3://photos/greetings/")).toMatch(/23 hello\.txt/);
    expect(await aws("s3", "ls")).toMatch(/photos/);
    await aws("s3", "cp", "s3://photos/greetings/hello.txt", join(dir, "back.txt"));
    expect(await readFile(join(dir, "back.txt"), "utf8")).toBe("hello from the aws cli\n");

    // A large file goes up in parts (the CLI's multipart threshold is 8 MiB).
    const big = randomBytes(9 * 1024 * 1024);
    await writeFile(join(dir, "big.bin"), big);
    await aws("s3", "cp", join(dir, "big.bin"), "s3://photos/big.bin");
    await aws("s3", "cp", "s3://photos/big.bin", join(dir, "big-back.bin"));
    expect(sha(await readFile(join(dir, "big-back.bin")))).toBe(sha(big));

    const tree = join(dir, "tree");
    await mkdir(join(tree, "sub"), { recursive: true });
    await writeFile(join(tree, "a.txt"), "a");
    await writeFile(join(tree, "sub", "b with space+plus.txt"), "b");
    await aws("s3", "sync", tree, "s3://photos/tree");
    const listed = await aws("s3", "ls", "--recursive", "s3://photos/tree/");
    expect(listed).toContain("tree/a.txt");
    expect(listed).toContain("tree/sub/b with space+plus.txt");
    await aws("s3", "sync", "s3://photos/tree", join(dir, "tree-back"));
    expect(await readFile(join(dir, "tree-back", "sub", "b with space+plus.txt"), "utf8")).toBe("b");

    const url = (await aws("s3", "presign", "s3://photos/greetings/hello.txt", "--expires-in", "60")).trim();
    const got = await fetch(url);
    expect(got.status).toBe(200);
    expect(await got.text()).toBe("hello from the aws cli\n");

    await aws("s3", "rm", "--recursive", "s3://photos/");
    expect((await aws("s3", "ls", "s3://photos/")).trim()).toBe("");
    await aws("s3", "rb", "s3://photos");
    expect(await aws("s3", "ls")).not.toMatch(/photos/);
  }, 180_000);

  it("aws s3api: create-multipart-upload, upload-part, list-parts, complete, abort", async () => {
    await aws("s3", "mb", "s3://parts");
    const created = JSON.parse(
      await aws("s3api", "create-multipart-upload", "--bucket", "parts", "--key", "joined.bin"),
    );
    const uploadId = created.UploadId as string;
    const one = randomBytes(5 * 1024 * 1024);
    const two = randomBytes(1000);
    await writeFile(join(dir, "p1"), one);
    await writeFile(join(dir, "p2"), two);
    const etags: string[] = [];
    for (const [n, f] of [
      [1, "p1"],
      [2, "p2"],
    ] as const) {
      const out = JSON.parse(
        await aws(
          "s3api",
          "upload-part",
          "--bucket",
          "parts",
          "--key",
          "joined.bin",
          "--upload-id",
          uploadId,
          "--part-number",
          String(n),
          "--body",
          join(dir, f),
        ),
      );
      etags.push(out.ETag);
    }
    const parts = JSON.parse(
      await aws("s3api", "list-parts", "--bucket", "parts", "--key", "joined.bin", "--upload-id", uploadId),
    );
    expect(parts.Parts.map((p: { PartNumber: number; Size: number }) => [p.PartNumber, p.Size])).toEqual([
      [1, one.length],
      [2, 1000],
    ]);
    await writeFile(
      join(dir, "parts.json"),
      JSON.stringify({ Parts: etags.map((ETag, i) => ({ PartNumber: i + 1, ETag })) }),
    );
    await aws(
      "s3api",
      "complete-multipart-upload",
      "--bucket",
      "parts",
      "--key",
      "joined.bin",
      "--upload-id",
      uploadId,
      "--multipart-upload",
      `file://${join(dir, "parts.json")}`,
    );
    await aws("s3", "cp", "s3://parts/joined.bin", join(dir, "joined.bin"));
    expect(sha(await readFile(join(dir, "joined.bin")))).toBe(sha(Buffer.concat([one, two])));

    const other = JSON.parse(
      await aws("s3api", "create-multipart-upload", "--bucket", "parts", "--key", "dropped"),
    );
    await aws(
      "s3api",
      "abort-multipart-upload",
      "--bucket",
      "parts",
      "--key",
      "dropped",
      "--upload-id",
      other.UploadId,
    );
    const gone = await run(AWS, [
      "--endpoint-url",
      endpoint,
      "s3api",
      "list-parts",
      "--bucket",
      "parts",
      "--key",
      "dropped",
      "--upload-id",
      other.UploadId,
    ]);
    expect(gone.code).not.toBe(0);
    expect(gone.stderr).toContain("NoSuchUpload");
  }, 180_000);

  it("rclone: sync a tree up and back, check finds no differences", async () => {
    const tree = join(dir, "rtree");
    await mkdir(join(tree, "deep", "er"), { recursive: true });
    for (let i = 0; i < 5; i++) await writeFile(join(tree, `f${i}.txt`), `file ${i}`);
    await writeFile(join(tree, "deep", "er", "x.bin"), randomBytes(200_000));
    await rclone("mkdir", "kura:backup");
    await rclone("sync", tree, "kura:backup/rtree");
    await rclone("check", tree, "kura:backup/rtree");
    await rclone("sync", "kura:backup/rtree", join(dir, "rtree-back"));
    await rclone("check", tree, join(dir, "rtree-back"));
    // A change is seen by check, and synced.
    await writeFile(join(tree, "f0.txt"), "changed");
    const differ = await run("/usr/bin/env", [
      "-u",
      "AWS_CA_BUNDLE",
      RCLONE,
      "check",
      tree,
      "kura:backup/rtree",
    ]);
    expect(differ.code).not.toBe(0);
    await rclone("sync", tree, "kura:backup/rtree");
    await rclone("check", tree, "kura:backup/rtree");
  }, 180_000);

  it("a wrong secret sees nothing", async () => {
    const r = await run(AWS, ["--endpoint-url", endpoint, "s3", "ls"], {
      AWS_SECRET_ACCESS_KEY: `${env.AWS_SECRET_ACCESS_KEY?.slice(0, -3)}abc`,
    });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("SignatureDoesNotMatch");
  }, 60_000);
});
