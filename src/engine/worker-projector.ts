/**
 * A message projector that runs in a worker thread (issue: nothing but the write protocol on
 * the request's event loop). The outbox dispatcher on the main thread still reads the outbox,
 * orders delivery and saves the cursor; what costs CPU — loading each message's row and body,
 * tokenizing, writing the index — happens in `src/projection-worker.ts` on its own connections.
 *
 * The worker is started on first use and again after it dies; a delivery that was in flight
 * when it died fails, so the dispatcher keeps the cursor and delivers the events again
 * (projectors are idempotent). `close` lets the worker finish and close its planes.
 */
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import { Worker } from "node:worker_threads";
import { ERROR_CODES, type ErrorCode, KuraError } from "../core/errors.js";
import type { OutboxRecord } from "../ports/catalog.js";
import type { MessageProjector } from "./outbox.js";
import { type MessageKey, messageKeys } from "./projection.js";

/** Messages sent to the worker. */
export type ToWorker = { type: "apply"; id: number; keys: MessageKey[] } | { type: "close" };
/** Messages the worker sends back. */
export type FromWorker =
  | { type: "ready" }
  | { type: "failed"; error: SerializedError }
  | { type: "done"; id: number; error?: SerializedError }
  | { type: "closed" };

export interface SerializedError {
  code?: string;
  message: string;
  context?: Record<string, unknown>;
}

export function serializeError(e: unknown): SerializedError {
  if (e instanceof KuraError) return { code: e.code, message: e.message, context: { ...e.context } };
  return { message: e instanceof Error ? e.message : String(e) };
}

function deserializeError(e: SerializedError, operation: string): KuraError {
  const code: ErrorCode =
    e.code !== undefined && Object.hasOwn(ERROR_CODES, e.code) ? (e.code as ErrorCode) : "SEARCH_UNAVAILABLE";
  return new KuraError(code, e.message, { operation, ...(e.context ? { context: e.context } : {}) });
}

/** tsx's API module, found from here (a worker's eval code resolves from the working directory). */
function tsxApi(): string {
  const dir = dirname(createRequire(import.meta.url).resolve("tsx/package.json"));
  return pathToFileURL(join(dir, "dist", "esm", "api", "index.mjs")).href;
}

interface Pending {
  resolve: () => void;
  reject: (e: KuraError) => void;
}

export class WorkerProjector implements MessageProjector {
  private worker: Promise<Worker> | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private closed = false;

  constructor(
    readonly name: string,
    /** The worker's module and what it needs to open its planes (structured-cloneable). */
    private readonly entry: URL,
    private readonly workerData: unknown,
  ) {}

  handle(events: readonly OutboxRecord[]): Promise<void> {
    return this.apply(messageKeys(events));
  }

  async apply(messages: readonly MessageKey[]): Promise<void> {
    if (messages.length === 0) return;
    if (this.closed)
      throw new KuraError("SEARCH_UNAVAILABLE", "the projection worker is closed", { operation: this.name });
    const worker = await this.start();
    const id = this.nextId++;
    await new Promise<void>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      worker.postMessage({ type: "apply", id, keys: [...messages] } satisfies ToWorker);
    });
  }

  /** Start the worker (once; again after it died) and wait until its planes are open. */
  private start(): Promise<Worker> {
    this.worker ??= new Promise<Worker>((resolve, reject) => {
      // From TypeScript sources (tests, bench) the worker module is .ts: load it through tsx.
      const worker = this.entry.pathname.endsWith(".ts")
        ? new Worker(
            `import(${JSON.stringify(tsxApi())}).then((m) => m.tsImport(${JSON.stringify(this.entry.href)}, ${JSON.stringify(import.meta.url)}))`,
            { eval: true, workerData: this.workerData },
          )
        : new Worker(this.entry, { workerData: this.workerData });
      let ready = false;
      worker.on("message", (m: FromWorker) => {
        if (m.type === "ready") {
          ready = true;
          resolve(worker);
        } else if (m.type === "failed") {
          reject(deserializeError(m.error, `${this.name}.worker`));
        } else if (m.type === "done") {
          const p = this.pending.get(m.id);
          this.pending.delete(m.id);
          if (m.error) p?.reject(deserializeError(m.error, this.name));
          else p?.resolve();
        }
      });
      const died = (reason: string) => {
        this.worker = undefined;
        const error = new KuraError("SEARCH_UNAVAILABLE", `the projection worker stopped: ${reason}`, {
          operation: this.name,
        });
        if (!ready) reject(error);
        for (const p of this.pending.values()) p.reject(error);
        this.pending.clear();
      };
      worker.on("error", (e) => died(e.message));
      worker.on("exit", (code) => died(`exit code ${code}`));
    });
    // A failed start is retried on the next delivery.
    this.worker.catch(() => {
      this.worker = undefined;
    });
    return this.worker;
  }

  /** Stop the worker at once, as if it had crashed (tests); the next delivery starts another. */
  async terminate(): Promise<void> {
    const worker = await this.worker?.catch(() => undefined);
    await worker?.terminate();
  }

  /** Let in-flight deliveries finish, close the worker's planes and stop it. */
  async close(): Promise<void> {
    this.closed = true;
    const started = this.worker;
    if (!started) return;
    const worker = await started.catch(() => undefined);
    if (!worker) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => void worker.terminate().then(() => resolve()), 10_000);
      worker.once("exit", () => {
        clearTimeout(timer);
        resolve();
      });
      worker.postMessage({ type: "close" } satisfies ToWorker);
    });
  }
}
