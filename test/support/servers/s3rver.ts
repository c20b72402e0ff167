/**
 * s3rver (an S3 emulator on the local filesystem) as a child process on a free port, for the
 * fast S3 suite. It checks no signatures, ignores conditional PUTs and serves suffix ranges
 * wrongly: good for speed, not for proof (radosgw is the proof).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { freePort, waitForHttp } from "./net.js";

export const S3RVER_ACCESS_KEY = "S3RVER";
export const S3RVER_SECRET_KEY = "S3RVER";
/** `S3RVER_DEBUG=1` echoes the server's own log to stderr (when a test needs explaining). */
const ECHO_OUTPUT = process.env.S3RVER_DEBUG === "1";

export interface S3rverServer {
  readonly endpoint: string;
  readonly port: number;
  readonly dir: string;
  /** Kill the process; data stays in `dir`. */
  stop(): Promise<void>;
  /** Start again on the same port and directory. */
  start(): Promise<void>;
  /** Stop and remove the data directory. */
  destroy(): Promise<void>;
}

function s3rverBin(): string {
  const require = createRequire(import.meta.url);
  return join(dirname(require.resolve("s3rver/package.json")), "bin", "s3rver.js");
}

export async function startS3rver(): Promise<S3rverServer> {
  const dir = mkdtempSync(join(tmpdir(), "kura-s3rver-"));
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  let child: ChildProcess | undefined;
  let output = "";

  const start = async () => {
    output = "";
    child = spawn(
      process.execPath,
      [s3rverBin(), "--no-vhost-buckets", "-s", "-d", dir, "-a", "127.0.0.1", "-p", String(port)],
      {
        // Without the legacy provider, s3rver's ListObjectsV2 continuation tokens fail (500).
        env: { ...process.env, NODE_OPTIONS: "--openssl-legacy-provider" },
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    child.stdout?.on("data", (d: Buffer) => {
      output = (output + d.toString()).slice(-4000);
      if (ECHO_OUTPUT) process.stderr.write(d);
    });
    child.stderr?.on("data", (d: Buffer) => {
      output = (output + d.toString()).slice(-4000);
      if (ECHO_OUTPUT) process.stderr.write(d);
    });
    const exited = new Promise<never>((_, reject) =>
      child?.once("exit", (code) => reject(new Error(`s3rver exited with ${code}: ${output}`))),
    );
    exited.catch(() => undefined);
    await Promise.race([waitForHttp(endpoint, 15_000, "s3rver"), exited]);
  };

  const stop = async () => {
    const c = child;
    child = undefined;
    if (!c || c.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      c.once("exit", () => resolve());
      c.kill("SIGTERM");
      setTimeout(() => c.kill("SIGKILL"), 3000).unref();
    });
  };

  await start();
  return {
    endpoint,
    port,
    dir,
    stop,
    start,
    destroy: async () => {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
