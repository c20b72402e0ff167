/**
 * Progress of long commands off a terminal (`src/cli/progress.ts`): a phase's first report is
 * a plain line on stderr, further reports of the same phase at most one every 2 s, none with
 * `--json`. (The bar on a terminal is cli-progress's.)
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import { progressReporter } from "../../src/cli/progress.js";

describe("progressReporter off a terminal", () => {
  afterEach(() => {
    vi.restoreAllMocks();
    vi.useRealTimers();
  });

  const capture = () => {
    const lines: string[] = [];
    vi.spyOn(process.stderr, "write").mockImplementation((chunk: string | Uint8Array) => {
      lines.push(String(chunk));
      return true;
    });
    return lines;
  };

  it("writes a phase's first report, then at most one line every 2 s per phase", () => {
    expect(process.stderr.isTTY).not.toBe(true);
    vi.useFakeTimers({ now: 1_000_000 });
    const lines = capture();
    const progress = progressReporter<{ phase: string; done: number }>("fsck", {
      json: false,
      describe: () => "checked",
    });
    progress.report({ phase: "bodies", done: 1 });
    progress.report({ phase: "bodies", done: 2 });
    vi.setSystemTime(1_002_500);
    progress.report({ phase: "bodies", done: 30 });
    progress.report({ phase: "search", done: 0 });
    progress.stop();
    expect(lines).toEqual([
      "fsck: bodies: 1 checked\n",
      "fsck: bodies: 30 checked\n",
      "fsck: search: 0 checked\n",
    ]);
  });

  it("writes nothing with --json", () => {
    const lines = capture();
    const progress = progressReporter<{ phase: string; done: number }>("backup", {
      json: true,
      describe: () => "",
    });
    progress.report({ phase: "bodies", done: 1 });
    progress.stop();
    expect(lines).toEqual([]);
  });
});
