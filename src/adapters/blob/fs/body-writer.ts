/**
 * The body writer: a worker thread that creates batches of small files with synchronous calls
 * (open O_EXCL, writev, close), for `putMany` of fresh keys.
 *
 * Why a thread of its own: a file created through the thread pool costs three hops (open, write,
 * close), each waking a pool thread and the event loop again; on a machine with few cores those
 * wake-ups and the main thread's share of each call cost several times the file creation itself
 * (docs/benchmarks.md, "Messages"). Here the main thread hashes the bodies and encodes their
 * footers, copies the batch into one buffer and hands it over (transferred, not copied), and
 * the worker creates the files one after another while the event loop goes on — with the
 * catalog commit of an earlier batch, for one.
 *
 * All or nothing: when a file cannot be created or written, the worker removes the files of the
 * batch it created before it answers with the error.
 *
 * The worker's code is plain JavaScript evaluated by the Worker (no module to resolve, the same
 * from the sources and from the build).
 */
import { Worker } from "node:worker_threads";

/** A batch as the worker receives it: file `i` is `data[offsets[i] … offsets[i + 1])` of its hand-off. */
interface Job {
  id: number;
  paths: string[];
  offsets: number[];
}

/** What one message to the worker carries: the batches of one event-loop turn, their bytes in one buffer. */
interface HandOff {
  jobs: Job[];
  data: ArrayBuffer;
}

interface Queued {
  job: Job;
  chunks: readonly (readonly Uint8Array[])[];
}

type Reply =
  | { id: number; ok: true }
  | { id: number; ok: false; index: number; code?: string; message: string };

const WORKER_SOURCE = `
const { parentPort } = require("node:worker_threads");
const { openSync, writeSync, closeSync, unlinkSync, constants } = require("node:fs");
const FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL;
function run(job, bytes) {
  let created = 0;
  let index = 0;
  try {
    for (; index < job.paths.length; index++) {
      const fd = openSync(job.paths[index], FLAGS, 0o644);
      created = index + 1;
      try {
        let at = job.offsets[index];
        const end = job.offsets[index + 1];
        while (at < end) at += writeSync(fd, bytes, at, end - at);
      } finally {
        closeSync(fd);
      }
    }
    return { id: job.id, ok: true };
  } catch (e) {
    for (let i = 0; i < created; i++) {
      try { unlinkSync(job.paths[i]); } catch {}
    }
    return { id: job.id, ok: false, index, code: e && e.code, message: String(e && e.message) };
  }
}
parentPort.on("message", (hand) => {
  const bytes = new Uint8Array(hand.data);
  parentPort.postMessage(hand.jobs.map((job) => run(job, bytes)));
});
`;

/** A failure of one file of a batch (every file of it is gone again). */
export class BodyWriteError extends Error {
  constructor(
    readonly index: number,
    readonly code: string | undefined,
    message: string,
  ) {
    super(message);
  }
}

interface Waiting {
  resolve: () => void;
  reject: (e: Error) => void;
}

export class BodyWriter {
  private worker: Worker | undefined;
  private readonly waiting = new Map<number, Waiting>();
  private queued: Queued[] = [];
  /** Hand-offs sent and not answered: the worker keeps the process alive only while there are some. */
  private busy = 0;
  private nextId = 1;
  /** `close` calls waiting for the batches in flight. */
  private readonly idle: (() => void)[] = [];

  /**
   * Create `paths[i]` with `chunks[i]` (its body and footer) for every i; resolves once every
   * file exists, rejects with {@link BodyWriteError} after removing those it created.
   */
  write(paths: string[], chunks: readonly (readonly Uint8Array[])[]): Promise<void> {
    const id = this.nextId++;
    return new Promise<void>((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      // Batches of one event-loop turn (concurrent single appends) go to the worker together.
      if (this.queued.length === 0) setImmediate(this.flush);
      this.queued.push({ job: { id, paths, offsets: [] }, chunks });
    });
  }

  private readonly flush = (): void => {
    const queued = this.queued;
    this.queued = [];
    let total = 0;
    for (const q of queued) for (const parts of q.chunks) for (const p of parts) total += p.length;
    const data = new Uint8Array(new ArrayBuffer(total));
    let at = 0;
    for (const { job, chunks } of queued) {
      const offsets = job.offsets;
      for (const parts of chunks) {
        offsets.push(at);
        for (const p of parts) {
          data.set(p, at);
          at += p.length;
        }
      }
      offsets.push(at);
    }
    let worker: Worker;
    try {
      worker = this.start();
    } catch (e) {
      for (const { job } of queued) this.settle(job.id, e as Error);
      return;
    }
    if (!this.busy++) worker.ref();
    const handOff: HandOff = { jobs: queued.map((q) => q.job), data: data.buffer };
    worker.postMessage(handOff, [data.buffer]);
  };

  private settle(id: number, error?: Error): void {
    const w = this.waiting.get(id);
    if (!w) return;
    this.waiting.delete(id);
    if (error) w.reject(error);
    else w.resolve();
    if (this.waiting.size === 0) for (const done of this.idle.splice(0)) done();
  }

  private start(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(WORKER_SOURCE, { eval: true });
    worker.unref();
    worker.on("message", (replies: Reply[]) => {
      if (--this.busy === 0) worker.unref();
      for (const r of replies)
        this.settle(r.id, r.ok ? undefined : new BodyWriteError(r.index, r.code, r.message));
    });
    const gone = (e: Error) => {
      if (this.worker !== worker) return;
      this.worker = undefined;
      this.busy = 0;
      // A batch the worker had not answered may be partly written: its files stay for GC (their
      // keys are fresh, no row points at them). Batches still queued go to the next worker.
      const queued = new Set(this.queued.map((q) => q.job.id));
      for (const id of [...this.waiting.keys()]) if (!queued.has(id)) this.settle(id, e);
    };
    worker.on("error", gone);
    worker.on("exit", (code) => gone(new Error(`the body writer stopped (exit code ${code})`)));
    this.worker = worker;
    return worker;
  }

  /** Stops the worker once every batch handed to this writer is answered. */
  async close(): Promise<void> {
    if (this.waiting.size > 0) await new Promise<void>((done) => this.idle.push(done));
    const worker = this.worker;
    this.worker = undefined;
    if (worker) await worker.terminate();
  }
}
