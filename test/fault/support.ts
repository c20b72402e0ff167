/**
 * What the fault suite shares: private servers it may stop, freeze and kill (never the shared
 * PostgreSQL on 5432 or Redis on 6379), `kura serve` as a child process, and tool checks that
 * skip outside CI and fail in CI (`backendAvailable`).
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process";
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { mintToken } from "../../src/http/auth.js";
import { freePort } from "../support/servers/net.js";

export { freePort };
export const SECRET = "fault-secret-0123456789abcdef0123456789";
const MAIN = resolve(import.meta.dirname, "../../src/cli/main.ts");
const TSX = createRequire(import.meta.url).resolve("tsx");
const IS_ROOT = process.getuid?.() === 0;

export function token(tenant: string): Promise<string> {
  return mintToken({ secret: SECRET, tenant, ttlSeconds: 3600 });
}

/** Poll `check` until it returns true: at most `tries` times, `everyMs` apart. */
export async function eventually(
  check: () => Promise<boolean>,
  tries: number,
  everyMs: number,
): Promise<boolean> {
  for (let i = 0; i < tries; i++) {
    if (await check().catch(() => false)) return true;
    await sleep(everyMs);
  }
  return false;
}

// --- PostgreSQL ---------------------------------------------------------------------------------

/** `initdb` and `pg_ctl` of an installed PostgreSQL (Debian layout or PATH), or why there are none. */
export function postgresBin(): { dir: string } | { problem: string } {
  const base = "/usr/lib/postgresql";
  const versions = existsSync(base)
    ? readdirSync(base)
        .filter((v) => existsSync(join(base, v, "bin", "pg_ctl")))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  if (versions[0]) return { dir: join(base, versions[0], "bin") };
  const which = spawnSync("sh", ["-c", "command -v pg_ctl"], { encoding: "utf8" });
  const found = which.stdout.trim();
  if (which.status === 0 && found) return { dir: found.slice(0, found.lastIndexOf("/")) };
  return { problem: "PostgreSQL server binaries (initdb, pg_ctl) not installed" };
}

export interface PrivatePostgres {
  url: string;
  /** `pg_ctl stop -m <mode>`. */
  stop(mode: "immediate" | "fast"): void;
  start(): void;
  destroy(): void;
}

/** A throwaway cluster in a temp dir on a free port, run as `postgres` when we are root. */
export async function startPrivatePostgres(bin: string): Promise<PrivatePostgres> {
  const dir = mkdtempSync(join(tmpdir(), "kura-fault-pg-"));
  const data = join(dir, "data");
  const port = await freePort();
  const asOwner = (cmd: string, args: string[]) => {
    const full = join(bin, cmd);
    const [file, argv] = IS_ROOT ? ["runuser", ["-u", "postgres", "--", full, ...args]] : [full, args];
    return execFileSync(file, argv, { stdio: ["ignore", "pipe", "pipe"], timeout: 60_000 });
  };
  if (IS_ROOT) {
    const pw = execFileSync("id", ["-u", "postgres"], { encoding: "utf8" }).trim();
    const gr = execFileSync("id", ["-g", "postgres"], { encoding: "utf8" }).trim();
    chownSync(dir, Number(pw), Number(gr));
  }
  asOwner("initdb", ["-D", data, "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"]);
  const opts = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50`;
  const start = () =>
    asOwner("pg_ctl", ["start", "-D", data, "-w", "-t", "60", "-l", join(dir, "log"), "-o", opts]);
  start();
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    stop: (mode) => {
      asOwner("pg_ctl", ["stop", "-D", data, "-m", mode, "-w", "-t", "60"]);
    },
    start,
    destroy: () => {
      try {
        asOwner("pg_ctl", ["stop", "-D", data, "-m", "immediate", "-w", "-t", "30"]);
      } catch {
        // already stopped
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

// --- Redis: private servers (`support/servers/redis.ts`) ---------------------------------------

export {
  type PrivateRedis,
  redisServerProblem as redisProblem,
  startPrivateRedis,
} from "../support/servers/redis.js";

// --- kura serve ---------------------------------------------------------------------------------

export interface ServeChild {
  url: string;
  child: ChildProcess;
  /** Resolves with how the child ended. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  alive(): boolean;
  output(): string;
  stop(): Promise<void>;
}

/** `kura serve --config <yaml>` as a child process on a free port; resolves once it listens. */
export async function startServe(config: Record<string, unknown>, dir: string): Promise<ServeChild> {
  const file = join(dir, `kura-${Date.now()}.json`);
  // JSON is YAML: the config file is written as JSON.
  writeFileSync(file, JSON.stringify({ auth: { jwt_secret: SECRET }, ...config }));
  const child = spawn(
    process.execPath,
    [
      "--import",
      TSX,
      MAIN,
      "serve",
      "--config",
      file,
      "--port",
      "0",
      "--jobs-interval",
      "0",
      "--log-level",
      "warn",
    ],
    {
      env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "" },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let out = "";
  child.stdout?.on("data", (c) => {
    out = (out + c).slice(-20_000);
  });
  let ended = false;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
    child.on("exit", (code, signal) => {
      ended = true;
      r({ code, signal });
    }),
  );
  const url = await new Promise<string>((resolveUrl, reject) => {
    const timer = setTimeout(() => reject(new Error(`kura serve did not start: ${out}`)), 60_000);
    child.stderr?.on("data", (c) => {
      out = (out + c).slice(-20_000);
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolveUrl(m[1] as string);
      }
    });
    void exited.then(({ code }) => {
      clearTimeout(timer);
      reject(new Error(`kura serve exited (${code}) before listening: ${out}`));
    });
  });
  return {
    url,
    child,
    exited,
    alive: () => !ended,
    output: () => out,
    stop: async () => {
      if (ended) return;
      child.kill("SIGKILL");
      await exited;
    },
  };
}
