/**
 * Runs a crash-test child (a TypeScript script, through tsx) until it is killed: the child prints
 * `READY` when it starts working, then one line per acknowledged operation; `killAfterMs` after
 * `READY` it gets SIGKILL. Every stdout line goes to `onLine`. Rejects if the child exits on its
 * own (its stderr tail in the message).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { resolve } from "node:path";

const tsx = resolve(import.meta.dirname, "../../node_modules/tsx/dist/esm/index.mjs");

export function runUntilKilled(
  script: string,
  args: readonly string[],
  killAfterMs: number,
  onLine: (line: string) => void,
): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    const child: ChildProcess = spawn(process.execPath, ["--import", tsx, script, ...args], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let buffer = "";
    let stderr = "";
    let timer: NodeJS.Timeout | undefined;
    child.stdout?.on("data", (chunk: Buffer) => {
      buffer += chunk.toString();
      const lines = buffer.split("\n");
      buffer = lines.pop() ?? "";
      for (const line of lines) {
        if (line === "READY" && !timer) timer = setTimeout(() => child.kill("SIGKILL"), killAfterMs);
        onLine(line);
      }
    });
    child.stderr?.on("data", (c: Buffer) => {
      stderr += c.toString();
    });
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      if (signal === "SIGKILL") resolvePromise();
      else reject(new Error(`${script} exited on its own (code ${code}): ${stderr.slice(-2000)}`));
    });
  });
}
