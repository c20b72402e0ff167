/**
 * The firebase-tools Cloud Storage emulator (`scripts/test-servers/gcs-emulator.cjs`) as a
 * child process on a free port, for the gcs suite. firebase-tools is installed outside the
 * package by `scripts/test-servers/install-firebase.sh` into `SERVER_CACHE/firebase`.
 *
 * What it does not do (see docs/adr/0005-azure-gcs-adapters.md): it checks no signatures,
 * ignores `ifGenerationMatch`, has no route for PUT through a signed URL, and finalises a
 * resumable upload on its first PUT (so only single-request sessions work).
 */
import { type ChildProcess, fork } from "node:child_process";
import { existsSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import { SERVER_CACHE } from "../backends.js";
import { stopChild, tempDir } from "./azurite.js";
import { freePort, waitForHttp } from "./net.js";

const SCRIPT = resolve(import.meta.dirname, "../../../scripts/test-servers/gcs-emulator.cjs");
export const FIREBASE_DIR = join(SERVER_CACHE, "firebase");

export interface GcsEmulator {
  /** JSON API endpoint, `http://127.0.0.1:PORT`. */
  readonly endpoint: string;
  readonly port: number;
  readonly dir: string;
  /** Close the listener and all connections (clients get "connection refused"); data stays. */
  stop(): Promise<void>;
  /** Listen on the same port again. */
  start(): Promise<void>;
  /** End the process and remove its directory. */
  destroy(): Promise<void>;
}

/** Why the emulator cannot run here, or undefined when it can. */
export function gcsEmulatorProblem(): string | undefined {
  return existsSync(join(FIREBASE_DIR, "node_modules/firebase-tools/package.json"))
    ? undefined
    : "firebase-tools not installed (scripts/test-servers/install-firebase.sh)";
}

type Reply = { ok?: string; error?: string };

export async function startGcsEmulator(): Promise<GcsEmulator> {
  const dir = tempDir("gcs-emulator");
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  let output = "";
  const child: ChildProcess = fork(SCRIPT, [], {
    env: {
      ...process.env,
      PORT: String(port),
      HOST: "127.0.0.1",
      KURA_FIREBASE_DIR: FIREBASE_DIR,
      // The emulator keeps its blob files under the OS temp dir: give it its own.
      TMPDIR: dir,
      METADATA_SERVER_DETECTION: "none",
    },
    stdio: ["ignore", "pipe", "pipe", "ipc"],
  });
  const collect = (d: Buffer) => {
    output = (output + d.toString()).slice(-4000);
  };
  child.stdout?.on("data", collect);
  child.stderr?.on("data", collect);

  const command = (cmd: "stop" | "start") =>
    new Promise<void>((done, fail) => {
      const onMessage = (msg: Reply) => {
        if (msg.ok !== cmd && msg.error === undefined) return;
        child.off("message", onMessage);
        if (msg.error !== undefined) fail(new Error(`gcs emulator ${cmd} failed: ${msg.error}`));
        else done();
      };
      child.on("message", onMessage);
      child.send({ cmd });
    });

  const exited = new Promise<never>((_, fail) =>
    child.once("exit", (code) => fail(new Error(`gcs emulator exited with ${code}: ${output}`))),
  );
  exited.catch(() => undefined);
  try {
    await Promise.race([waitForHttp(endpoint, 30_000, "gcs emulator"), exited]);
  } catch (e) {
    await stopChild(child);
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }

  return {
    endpoint,
    port,
    dir,
    stop: () => command("stop"),
    start: async () => {
      await command("start");
      await waitForHttp(endpoint, 10_000, "gcs emulator");
    },
    destroy: async () => {
      await stopChild(child);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
