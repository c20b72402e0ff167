/**
 * `fs` temp files: where a put writes before the rename into place (`~kura/tmp`), the bytes
 * written so far by this process's uploads, and the sweep that removes leftovers of killed
 * writers — never a live upload's.
 */
import { randomUUID } from "node:crypto";
import { readdir, stat, unlink } from "node:fs/promises";
import { join } from "node:path";

export class TempFiles {
  /** Temp files of uploads in progress in this process, with the bytes written so far. */
  private readonly live = new Map<string, number>();
  private sweepTimer: NodeJS.Timeout | undefined;
  private sweeping: Promise<void> | undefined;

  constructor(
    readonly dir: string,
    private readonly graceMs: number,
  ) {}

  /** A new temp file's path, counted as live (0 bytes) until {@link release}. */
  claim(): string {
    const tmp = join(this.dir, `${randomUUID()}.tmp`);
    this.live.set(tmp, 0);
    return tmp;
  }

  /** Bytes written so far to a live temp file. */
  written(tmp: string, bytes: number): void {
    this.live.set(tmp, bytes);
  }

  /** The upload writing `tmp` is over (its file renamed, linked or removed). */
  release(tmp: string): void {
    this.live.delete(tmp);
  }

  /** Sweeps every `everyMs` (0: never) until {@link stop}; the timer keeps no process alive. */
  start(everyMs: number): void {
    if (everyMs <= 0) return;
    this.sweepTimer = setInterval(() => {
      this.sweep().catch(() => undefined);
    }, everyMs);
    this.sweepTimer.unref();
  }

  stop(): void {
    clearInterval(this.sweepTimer);
  }

  /**
   * Remove temp files that no upload of this process is writing and that have not changed for
   * `temp_grace_ms`: leftovers of writers that were killed (a failed or timed-out put removes
   * its own). One sweep at a time.
   */
  sweep(): Promise<void> {
    this.sweeping ??= (async () => {
      try {
        const now = Date.now();
        for (const name of await readdir(this.dir).catch(() => [] as string[])) {
          const path = join(this.dir, name);
          if (this.live.has(path)) continue;
          const st = await stat(path).catch(() => undefined);
          if (st?.isFile() && now - st.mtimeMs >= this.graceMs && !this.live.has(path))
            await unlink(path).catch(() => undefined);
        }
      } finally {
        this.sweeping = undefined;
      }
    })();
    return this.sweeping;
  }

  /** Bytes written so far by this process's uploads in progress (cheap; no I/O). */
  liveBytes(): number {
    let total = 0;
    for (const bytes of this.live.values()) total += bytes;
    return total;
  }

  /** Temp files on disk now (uploads in progress here or elsewhere, and unswept leftovers). */
  async stats(): Promise<{ tempFiles: number; tempBytes: number }> {
    let tempFiles = 0;
    let tempBytes = 0;
    for (const name of await readdir(this.dir).catch(() => [] as string[])) {
      const st = await stat(join(this.dir, name)).catch(() => undefined);
      if (!st?.isFile()) continue;
      tempFiles++;
      tempBytes += st.size;
    }
    return { tempFiles, tempBytes };
  }
}
