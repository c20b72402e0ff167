/**
 * Ceph radosgw (a real S3 implementation: SigV4, conditional PUT, multipart) for the S3 suite,
 * started by `scripts/test-servers/radosgw-start.sh` in a directory under `.cache/radosgw/`:
 * one monitor, one in-memory OSD and radosgw, about 12 s to start and ~400 MB of RAM.
 *
 * Every run records its owner (this process) in `<dir>.owner` beside its directory; a later run
 * kills the daemons of runs whose owner died without cleaning up, so crashed test runs leave
 * nothing running.
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { promisify } from "node:util";
import { freePort } from "./net.js";

const run = promisify(execFile);

export const RADOSGW_ACCESS_KEY = "CEPHAK";
export const RADOSGW_SECRET_KEY = "CEPHSK";
/** The key id radosgw's test KMS knows (configured in radosgw-start.sh). */
export const RADOSGW_KMS_KEY_ID = "kura-test-key";

const ROOT = resolve(import.meta.dirname, "../../..");
const START_SCRIPT = resolve(ROOT, "scripts/test-servers/radosgw-start.sh");
const RUNS_DIR = resolve(ROOT, ".cache/radosgw");
const DAEMONS = ["rgw", "osd", "mon"] as const;

/** Why radosgw cannot run here, or undefined when it can. */
export function radosgwProblem(): string | undefined {
  const path = (process.env.PATH ?? "").split(":");
  const has = (bin: string) => path.some((dir) => dir && existsSync(resolve(dir, bin)));
  const missing = ["radosgw", "ceph-mon", "ceph-osd", "radosgw-admin"].filter((b) => !has(b));
  return missing.length
    ? `radosgw not installed (scripts/test-servers/install-radosgw.sh); missing ${missing.join(", ")}`
    : undefined;
}

export interface RadosgwServer {
  readonly endpoint: string;
  readonly dir: string;
  /** Kill only radosgw (the cluster and its data stay). */
  stopGateway(): Promise<void>;
  /** Start radosgw again on the same port. */
  startGateway(): Promise<void>;
  /** SIGSTOP / SIGCONT the gateway: requests hang instead of failing. */
  pauseGateway(): Promise<void>;
  resumeGateway(): Promise<void>;
  /** The attributes radosgw stores for an object (`radosgw-admin object stat`), as strings. */
  objectAttributes(bucket: string, key: string): Promise<Record<string, string>>;
  /** Kill every daemon and remove the directory. */
  destroy(): Promise<void>;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function readPid(file: string): number | undefined {
  try {
    const pid = Number(readFileSync(file, "utf8").trim());
    return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

async function killAndWait(pid: number): Promise<void> {
  if (!alive(pid)) return;
  try {
    process.kill(pid, "SIGCONT"); // a paused gateway would not act on SIGTERM
    process.kill(pid, "SIGTERM");
  } catch {
    return;
  }
  const deadline = Date.now() + 10_000;
  while (alive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  if (alive(pid)) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // gone meanwhile
    }
  }
}

async function killDaemons(dir: string, which: readonly string[] = DAEMONS): Promise<void> {
  for (const name of which) {
    const pid = readPid(resolve(dir, "run", `${name}.pid`));
    if (pid !== undefined) await killAndWait(pid);
  }
}

function signalGateway(dir: string, signal: NodeJS.Signals): void {
  const pid = readPid(resolve(dir, "run", "rgw.pid"));
  if (pid === undefined) throw new Error(`no radosgw pid in ${dir}`);
  process.kill(pid, signal);
}

async function remove(dir: string): Promise<void> {
  await killDaemons(dir);
  rmSync(dir, { recursive: true, force: true });
  rmSync(`${dir}.owner`, { force: true });
}

/** Kill and remove runs whose owning process is gone. */
async function sweepAbandonedRuns(): Promise<void> {
  if (!existsSync(RUNS_DIR)) return;
  for (const name of readdirSync(RUNS_DIR)) {
    if (name.endsWith(".owner")) continue;
    const dir = resolve(RUNS_DIR, name);
    const owner = readPid(`${dir}.owner`);
    if (owner !== undefined && alive(owner)) continue;
    await remove(dir);
  }
}

/** Two consecutive free ports (the monitor's msgr2 port and its msgr1 port). */
async function freePortPair(): Promise<number> {
  for (let i = 0; i < 20; i++) {
    const port = await freePort();
    if (port < 65535 && (await isFree(port + 1))) return port;
  }
  throw new Error("no two consecutive free ports found for the Ceph monitor");
}

async function isFree(port: number): Promise<boolean> {
  const { createServer } = await import("node:net");
  return new Promise((resolvePromise) => {
    const server = createServer();
    server.once("error", () => resolvePromise(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolvePromise(true)));
  });
}

export async function startRadosgw(): Promise<RadosgwServer> {
  await sweepAbandonedRuns();
  const dir = resolve(RUNS_DIR, `run-${process.pid}-${randomBytes(3).toString("hex")}`);
  mkdirSync(RUNS_DIR, { recursive: true });
  writeFileSync(`${dir}.owner`, String(process.pid));
  const rgwPort = await freePort();
  const monPort = await freePortPair();
  const script = async (...args: string[]) => {
    try {
      await run("bash", [START_SCRIPT, ...args], { timeout: 120_000 });
    } catch (e) {
      const err = e as { stderr?: string; stdout?: string };
      throw new Error(`radosgw-start.sh ${args.join(" ")} failed: ${err.stderr ?? ""}${err.stdout ?? ""}`, {
        cause: e,
      });
    }
  };
  try {
    await script(dir, String(rgwPort), String(monPort));
  } catch (e) {
    await remove(dir);
    throw e;
  }
  return {
    endpoint: `http://127.0.0.1:${rgwPort}`,
    dir,
    stopGateway: () => killDaemons(dir, ["rgw"]),
    startGateway: () => script("--rgw-only", dir, String(rgwPort)),
    pauseGateway: async () => signalGateway(dir, "SIGSTOP"),
    resumeGateway: async () => signalGateway(dir, "SIGCONT"),
    objectAttributes: async (bucket, key) => {
      const { stdout } = await run(
        "radosgw-admin",
        ["-c", resolve(dir, "ceph.conf"), "object", "stat", "--bucket", bucket, "--object", key],
        { timeout: 30_000 },
      );
      const attrs = (JSON.parse(stdout) as { attrs?: Record<string, unknown> }).attrs ?? {};
      return Object.fromEntries(Object.entries(attrs).map(([k, v]) => [k, String(v).replaceAll("\0", "")]));
    },
    destroy: () => remove(dir),
  };
}
