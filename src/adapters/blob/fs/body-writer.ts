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

/** A batch as the worker receives it: file `i` is `data[offsets[i] … offsets[i + 1])`. */
interface Job {
  id: number;
  paths: string[];
  offsets: number[];
  data: ArrayBuffer;
}

type Reply =
  | { id: number; ok: true }
  | { id: number; ok: false; index: number; code?: string; message: string };

const WORKER_SOURCE = `
const { parentPort } = require("node:worker_threads");
const { openSync, writeSync, closeSync, unlinkSync, constants } = require("node:fs");
const FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL;
parentPort.on("message", (job) => {
  const bytes = new Uint8Array(job.data);
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
    parentPort.postMessage({ id: job.id, ok: true });
  } catch (e) {
    for (let i = 0; i < created; i++) {
      try { unlinkSync(job.paths[i]); } catch {}
    }
    parentPort.postMessage({ id: job.id, ok: false, index, code: e && e.code, message: String(e && e.message) });
  }
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
  private nextId = 1;

  /**
   * Create `paths[i]` with `chunks[i]` (its body and footer) for every i; resolves once every
   * file exists, rejects with {@link BodyWriteError} after removing those it created.
   */
  write(paths: string[], chunks: readonly (readonly Uint8Array[])[]): Promise<void> {
    let total = 0;
    for (const parts of chunks) for (const p of parts) total += p.length;
    const data = new Uint8Array(new ArrayBuffer(total));
    const offsets = new Array<number>(paths.length + 1);
    let at = 0;
    for (let i = 0; i < chunks.length; i++) {
      offsets[i] = at;
      for (const p of chunks[i] as readonly Uint8Array[]) {
        data.set(p, at);
        at += p.length;
      }
    }
    offsets[paths.length] = at;
    const worker = this.start();
    const id = this.nextId++;
    return new Promise<void>((resolve, reject) => {
      if (this.waiting.size === 0) worker.ref();
      this.waiting.set(id, { resolve, reject });
      const job: Job = { id, paths, offsets, data: data.buffer };
      worker.postMessage(job, [data.buffer]);
    });
  }

  private start(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(WORKER_SOURCE, { eval: true });
    worker.unref();
    worker.on("message", (reply: Reply) => {
      const w = this.waiting.get(reply.id);
      if (!w) return;
      this.waiting.delete(reply.id);
      if (this.waiting.size === 0) worker.unref();
      if (reply.ok) w.resolve();
      else w.reject(new BodyWriteError(reply.index, reply.code, reply.message));
    });
    const gone = (e: Error) => {
      if (this.worker !== worker) return;
      this.worker = undefined;
      // A batch the worker had not answered may be partly written: its files stay for GC (their
      // keys are fresh, no row points at them).
      for (const w of this.waiting.values()) w.reject(e);
      this.waiting.clear();
    };
    worker.on("error", gone);
    worker.on("exit", (code) => gone(new Error(`the body writer stopped (exit code ${code})`)));
    this.worker = worker;
    return worker;
  }

  /** Stops the worker once the batches in flight are answered. */
  async close(): Promise<void> {
    const worker = this.worker;
    if (!worker) return;
    if (this.waiting.size > 0) {
      await Promise.allSettled(
        [...this.waiting.values()].map(
          (w) =>
            new Promise<void>((done) => {
              const { resolve, reject } = w;
              w.resolve = () => {
                resolve();
                done();
              };
              w.reject = (e) => {
                reject(e);
                done();
              };
            }),
        ),
      );
    }
    this.worker = undefined;
    await worker.terminate();
  }
}
