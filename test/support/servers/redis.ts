/**
 * Redis for tests: the shared local server on 127.0.0.1:6379 (database 0) of the kv suites, each
 * test under its own key prefix, dropped afterwards; and private `redis-server`s (a free port, no
 * persistence) that a test may configure, stop, freeze and kill (`startPrivateRedis`).
 */
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { Redis } from "ioredis";
import { globEscape } from "../../../src/adapters/kv/redis/index.js";
import { freePort } from "./net.js";

export const REDIS_URL = "redis://127.0.0.1:6379/0";

/** Why Redis cannot be reached, or undefined when it answers. */
export async function redisProblem(): Promise<string | undefined> {
  const probe = new Redis(REDIS_URL, {
    lazyConnect: true,
    connectTimeout: 1000,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  probe.on("error", () => undefined);
  try {
    await probe.connect();
    await probe.ping();
    return undefined;
  } catch (e) {
    return `no Redis at 127.0.0.1:6379: ${e instanceof Error ? e.message : String(e)}`;
  } finally {
    probe.disconnect();
  }
}

/** Delete every key under `prefix` (SCAN + DEL, never KEYS). */
export async function dropPrefix(prefix: string): Promise<number> {
  const admin = new Redis(REDIS_URL);
  let cursor = "0";
  let deleted = 0;
  do {
    const [next, keys] = await admin.scan(cursor, "MATCH", `${globEscape(prefix)}*`, "COUNT", 1000);
    cursor = next;
    if (keys.length > 0) deleted += await admin.del(...keys);
  } while (cursor !== "0");
  admin.disconnect();
  return deleted;
}

// --- private servers ----------------------------------------------------------------------------

/** Why no private `redis-server` can be started, or undefined when it is installed. */
export function redisServerProblem(): string | undefined {
  const r = spawnSync("redis-server", ["--version"], { encoding: "utf8" });
  return r.status === 0 ? undefined : "redis-server not installed";
}

export interface PrivateRedis {
  url: string;
  pid(): number;
  /** Start it (again, after a kill) on the same port; resolves once it answers PING. */
  start(): Promise<void>;
  signal(sig: NodeJS.Signals): void;
  destroy(): void;
}

/**
 * A `redis-server` of the caller's own, daemonized on a free port with no persistence, started
 * and answering PING. `args` are further server options (`["--maxmemory-policy", "allkeys-lru"]`).
 */
export async function startPrivateRedis(args: readonly string[] = []): Promise<PrivateRedis> {
  const dir = mkdtempSync(join(tmpdir(), "kura-redis-"));
  const port = await freePort();
  const pidfile = join(dir, "redis.pid");
  const pid = () => Number(readFileSync(pidfile, "utf8").trim());
  const answers = () =>
    existsSync(pidfile) &&
    spawnSync("redis-cli", ["-p", String(port), "ping"], { encoding: "utf8" }).stdout.includes("PONG");
  const start = async () => {
    rmSync(pidfile, { force: true });
    execFileSync("redis-server", [
      "--port",
      String(port),
      "--bind",
      "127.0.0.1",
      "--save",
      "",
      "--appendonly",
      "no",
      "--daemonize",
      "yes",
      "--pidfile",
      pidfile,
      "--dir",
      dir,
      "--logfile",
      join(dir, "log"),
      ...args,
    ]);
    for (let i = 0; i < 100 && !answers(); i++) await sleep(50);
    if (!answers()) throw new Error(`private redis on ${port} did not start`);
  };
  await start();
  return {
    url: `redis://127.0.0.1:${port}`,
    pid,
    start,
    signal: (sig) => process.kill(pid(), sig),
    destroy: () => {
      try {
        process.kill(pid(), "SIGCONT");
        process.kill(pid(), "SIGKILL");
      } catch {
        // gone
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
