/**
 * azurite (Microsoft's Azure Storage emulator, a devDependency) as a child process on a free
 * port, for the azure suite. It checks Shared Key and SAS signatures, SAS expiry and
 * conditional headers, so presigned URLs and conditional creates are really tested.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import { freePort, waitForHttp } from "./net.js";

/** azurite's well-known development account. */
export const AZURITE_ACCOUNT = "devstoreaccount1";
export const AZURITE_KEY =
  "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/** Temporary server directories live under the repository's `.cache/` (git-ignored). */
export const TMP_ROOT = resolve(import.meta.dirname, "../../../.cache/tmp");

const AZURITE_BIN = resolve(import.meta.dirname, "../../../node_modules/.bin/azurite-blob");

export interface AzuriteServer {
  /** Blob service URL including the account, e.g. `http://127.0.0.1:PORT/devstoreaccount1`. */
  readonly endpoint: string;
  readonly port: number;
  readonly dir: string;
  /** Stop the process (SIGTERM, so it saves its state); data stays in `dir`. */
  stop(): Promise<void>;
  /** Start again on the same port and directory. */
  start(): Promise<void>;
  /** Stop and remove the data directory. */
  destroy(): Promise<void>;
}

/** Why azurite cannot run here, or undefined when it can. */
export function azuriteProblem(): string | undefined {
  return existsSync(AZURITE_BIN) ? undefined : "node_modules/.bin/azurite-blob not found (npm install)";
}

/** A fresh directory under `.cache/tmp`. */
export function tempDir(tag: string): string {
  mkdirSync(TMP_ROOT, { recursive: true });
  return mkdtempSync(join(TMP_ROOT, `${tag}-`));
}

/** A random Azure-valid container (or bucket) name. */
export function randomContainerName(tag: string): string {
  return `kura-${tag}-${randomBytes(6).toString("hex")}`;
}

/** Stop a child process: SIGTERM, then SIGKILL after `graceMs`. */
export async function stopChild(child: ChildProcess | undefined, graceMs = 5000): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  await new Promise<void>((done) => {
    child.once("exit", () => done());
    child.kill("SIGTERM");
    setTimeout(() => child.kill("SIGKILL"), graceMs).unref();
  });
}

export async function startAzurite(): Promise<AzuriteServer> {
  const dir = tempDir("azurite");
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  let child: ChildProcess | undefined;
  let output = "";

  const start = async () => {
    output = "";
    child = spawn(
      AZURITE_BIN,
      [
        "--blobHost",
        "127.0.0.1",
        "--blobPort",
        String(port),
        "--location",
        dir,
        // The SDK speaks a newer API version than azurite announces.
        "--skipApiVersionCheck",
        "--disableTelemetry",
        "--loose",
        "--silent",
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    const collect = (d: Buffer) => {
      output = (output + d.toString()).slice(-4000);
    };
    child.stdout?.on("data", collect);
    child.stderr?.on("data", collect);
    const exited = new Promise<never>((_, fail) =>
      child?.once("exit", (code) => fail(new Error(`azurite exited with ${code}: ${output}`))),
    );
    exited.catch(() => undefined);
    await Promise.race([waitForHttp(base, 20_000, "azurite"), exited]);
  };

  const stop = async () => {
    const c = child;
    child = undefined;
    await stopChild(c);
  };

  await start();
  return {
    endpoint: `${base}/${AZURITE_ACCOUNT}`,
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
