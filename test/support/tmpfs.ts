/**
 * A small tmpfs for real disk-full tests. Mounting needs root (or CAP_SYS_ADMIN); where it is
 * not permitted the tests are skipped with the reason, and fail in CI (backendAvailable).
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { backendAvailable } from "./backends.js";

let probed: string | undefined | null = null;

/** Why a tmpfs cannot be mounted here, or undefined when it can (tried once per process). */
function tmpfsProblem(): string | undefined {
  if (probed !== null) return probed;
  const dir = mkdtempSync(join(tmpdir(), "kura-tmpfs-probe-"));
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", dir], { stdio: "pipe" });
    execFileSync("umount", [dir], { stdio: "pipe" });
    probed = undefined;
  } catch (e) {
    probed = `cannot mount a tmpfs (disk-full tests need root): ${(e as Error).message.split("\n")[0]}`;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return probed;
}

/** Whether disk-full tests can run; records the skip (or throws in CI) like other backends. */
export function tmpfsAvailable(name: string): boolean {
  return backendAvailable(name, tmpfsProblem());
}

/** Mount a fresh tmpfs of `size` (e.g. `4m`) on a new directory; `unmount` removes it. */
export function mountTmpfs(size: string): { dir: string; unmount(): void } {
  const dir = mkdtempSync(join(tmpdir(), "kura-full-"));
  execFileSync("mount", ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", dir], { stdio: "pipe" });
  return {
    dir,
    unmount: () => {
      execFileSync("umount", [dir], { stdio: "pipe" });
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
