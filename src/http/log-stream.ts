/**
 * Where `kura serve`'s JSON log goes by default: standard output, with the lines logged during
 * one turn of the event loop written together in one `write` (a request line per request would
 * otherwise be a system call per request). On Linux, writes to stdout are synchronous for files,
 * pipes and terminals, so a batch is out when its `setImmediate` runs; whatever is pending when
 * the process exits is written by an `exit` listener. Order is kept: one buffer, one writer.
 */
import type { Writable } from "node:stream";

export interface LogStream {
  write(line: string): void;
  /** Write what is pending now. */
  flush(callback?: (err?: Error) => void): void;
}

class BatchedStream implements LogStream {
  private pending = "";
  private scheduled = false;

  constructor(private readonly out: Writable) {}

  write(line: string): void {
    this.pending += line;
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.drain);
    }
  }

  flush(callback?: (err?: Error) => void): void {
    this.drain();
    callback?.();
  }

  readonly drain = (): void => {
    this.scheduled = false;
    if (this.pending === "") return;
    const data = this.pending;
    this.pending = "";
    this.out.write(data);
  };
}

let stdout: BatchedStream | undefined;

/** The shared batched stream over `process.stdout` (one per process, flushed at exit). */
export function batchedStdout(): LogStream {
  if (!stdout) {
    stdout = new BatchedStream(process.stdout);
    process.once("exit", stdout.drain);
  }
  return stdout;
}
