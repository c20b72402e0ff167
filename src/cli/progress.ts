/**
 * Progress of a long command (CLI-1): a cli-progress bar on stderr when it is a terminal, plain
 * lines otherwise (a phase's first report, then at most one every 2 s), nothing with `--json`
 * off a terminal. Used by `kura backup`, `kura restore` and `kura fsck`.
 */
import { SingleBar } from "cli-progress";

export interface Reporter<P> {
  report(p: P): void;
  stop(): void;
}

export interface ProgressOptions<P> {
  /** With `--json`: no plain lines (stdout carries the document; a terminal still gets a bar). */
  json: boolean;
  /** What follows the count, e.g. bytes written or "checked". */
  describe: (p: P) => string;
  /** The count a phase ends at, when known; otherwise the bar counts up to what was done. */
  total?: (p: P) => number | undefined;
}

export function progressReporter<P extends { phase: string; done: number }>(
  command: string,
  options: ProgressOptions<P>,
): Reporter<P> {
  const { describe, total } = options;
  if (process.stderr.isTTY) {
    const bar = new SingleBar(
      {
        format: `${command} {phase} [{bar}] {value}/{total} {detail}`,
        stream: process.stderr,
        hideCursor: true,
      },
      undefined,
    );
    let started = false;
    return {
      report: (p) => {
        const end = total?.(p) ?? Math.max(p.done, 1);
        if (!started) {
          bar.start(end, p.done, { phase: p.phase, detail: describe(p) });
          started = true;
        }
        bar.setTotal(end);
        bar.update(p.done, { phase: p.phase, detail: describe(p) });
      },
      stop: () => {
        if (started) bar.stop();
      },
    };
  }
  if (options.json) return { report: () => undefined, stop: () => undefined };
  let phase = "";
  let last = 0;
  return {
    report: (p) => {
      const now = Date.now();
      if (p.phase === phase && now - last < 2000) return;
      phase = p.phase;
      last = now;
      process.stderr.write(`${command}: ${p.phase}: ${p.done} ${describe(p)}\n`);
    },
    stop: () => undefined,
  };
}
