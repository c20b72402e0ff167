/**
 * A message projector that runs in a worker thread: nothing but the write protocol on the
 * request's event loop. The outbox dispatcher on the main thread still reads the outbox, orders
 * delivery and saves the cursor; what costs CPU — loading each message's row and body,
 * tokenizing or embedding, writing the index — happens in `src/projection-worker.ts` on its own
 * connections. Besides deliveries, the main thread may call the worker's index (`call`): the
 * message-embedding index, when only one thread may hold it, is owned by its worker and queried
 * through it (`WorkerVectorIndex` in `engine/vectors.ts`).
 *
 * The worker is started on first use and again after it dies; a delivery or call that was in
 * flight when it died fails, so the dispatcher keeps the cursor and delivers the events again
 * (projectors are idempotent). `close` lets the worker finish and close its planes.
 */
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import { Worker } from "node:worker_threads";
import { ERROR_CODES, type ErrorCode, type ErrorKind, KuraError } from "../core/errors.js";
import type { OutboxRecord } from "../ports/catalog.js";
import { mailKeys } from "./mail-documents.js";
import type { MessageProjector } from "./outbox.js";
import { type MessageKey, messageKeys } from "./projection.js";

/**
 * Messages sent to the worker: deliveries (`apply`), calls of its index (`call`: a method and
 * structured-cloneable arguments), and `close`.
 */
export type ToWorker =
  | { type: "apply"; id: number; keys: MessageKey[]; mail?: MessageKey[] }
  | { type: "call"; id: number; method: string; args: unknown[] }
  | { type: "close" };
/** Messages the worker sends back: `done` answers an `apply` or a `call` (with its value). */
export type FromWorker =
  | { type: "ready" }
  | { type: "failed"; error: SerializedError }
  | { type: "done"; id: number; value?: unknown; error?: SerializedError }
  | { type: "closed" };

export interface SerializedError {
  code?: string;
  message: string;
  kind?: string;
  operation?: string;
  context?: Record<string, unknown>;
}

export function serializeError(e: unknown): SerializedError {
  if (e instanceof KuraError)
    return {
      code: e.code,
      message: e.message,
      kind: e.kind,
      ...(e.operation !== undefined ? { operation: e.operation } : {}),
      context: { ...e.context },
    };
  return { message: e instanceof Error ? e.message : String(e) };
}

/** The worker's error as the main thread throws it: the same code, kind, operation and context. */
function deserializeError(e: SerializedError, operation: string, fallback: ErrorCode): KuraError {
  const known = e.code !== undefined && Object.hasOwn(ERROR_CODES, e.code);
  const code: ErrorCode = known ? (e.code as ErrorCode) : fallback;
  return new KuraError(code, e.message, {
    operation: e.operation ?? operation,
    ...(known && e.kind !== undefined ? { kind: e.kind as ErrorKind } : {}),
    ...(e.context ? { context: e.context } : {}),
  });
}

/** tsx's API module, found from here (a worker's eval code resolves from the working directory). */
function tsxApi(): string {
  const dir = dirname(createRequire(import.meta.url).resolve("tsx/package.json"));
  return pathToFileURL(join(dir, "dist", "esm", "api", "index.mjs")).href;
}

interface Pending {
  resolve: (value: unknown) => void;
  reject: (e: KuraError) => void;
}

/** A started worker and what was sent to it and not answered yet. */
interface Live {
  worker: Worker;
  pending: Map<number, Pending>;
}

export interface WorkerProjectorOptions {
  /** The code of failures of the worker itself (it stopped, could not start, is closed). */
  unavailable?: ErrorCode;
  /** Called when a worker replaces one that had started (its in-memory state is new). */
  onRestart?: () => void;
}

export class WorkerProjector implements MessageProjector {
  private worker: Promise<Live> | undefined;
  private nextId = 1;
  private closed = false;
  /** Workers that became ready so far. */
  private started = 0;
  private readonly unavailable: ErrorCode;

  constructor(
    readonly name: string,
    /** The worker's module and what it needs to open its planes (structured-cloneable). */
    private readonly entry: URL,
    private readonly workerData: unknown,
    private readonly options: WorkerProjectorOptions = {},
  ) {
    this.unavailable = options.unavailable ?? "SEARCH_UNAVAILABLE";
  }

  handle(events: readonly OutboxRecord[]): Promise<void> {
    // Mail documents go to the search worker too (`mail.*` events; the worker's projector
    // ignores them unless it keeps mail).
    const mail = mailKeys(events);
    if (mail.length > 0) return this.deliver(messageKeys(events), mail);
    return this.apply(messageKeys(events));
  }

  /** Mail messages for the worker's projector (`SearchProjector.applyMail`). */
  applyMail(mail: readonly MessageKey[]): Promise<void> {
    return this.deliver([], mail);
  }

  private async deliver(messages: readonly MessageKey[], mail: readonly MessageKey[]): Promise<void> {
    if (messages.length === 0 && mail.length === 0) return;
    await this.send((id) => ({ type: "apply", id, keys: [...messages], mail: [...mail] }));
  }

  async apply(messages: readonly MessageKey[]): Promise<void> {
    if (messages.length === 0) return;
    await this.send((id) => ({ type: "apply", id, keys: [...messages] }));
  }

  /** Call a method of the worker's index; its arguments and result cross by structured clone. */
  call(method: string, args: unknown[]): Promise<unknown> {
    return this.send((id) => ({ type: "call", id, method, args }));
  }

  private async send(message: (id: number) => ToWorker): Promise<unknown> {
    if (this.closed)
      throw new KuraError(this.unavailable, "the projection worker is closed", { operation: this.name });
    const { worker, pending } = await this.start();
    const id = this.nextId++;
    return new Promise<unknown>((resolve, reject) => {
      pending.set(id, { resolve, reject });
      worker.postMessage(message(id));
    });
  }

  /** Start the worker (once; again after it died) and wait until its planes are open. */
  private start(): Promise<Live> {
    if (this.worker) return this.worker;
    const started = new Promise<Live>((resolve, reject) => {
      // From TypeScript sources (tests, bench) the worker module is .ts: load it through tsx.
      // Evaluated code gets globals `__dirname` (".") and `__filename`, which ES modules would
      // take for their own (usearch looks for its native build from `__dirname`): remove them.
      const worker = this.entry.pathname.endsWith(".ts")
        ? new Worker(
            `delete globalThis.__dirname; delete globalThis.__filename; import(${JSON.stringify(tsxApi())}).then((m) => m.tsImport(${JSON.stringify(this.entry.href)}, ${JSON.stringify(import.meta.url)}))`,
            { eval: true, workerData: this.workerData },
          )
        : new Worker(this.entry, { workerData: this.workerData });
      const live: Live = { worker, pending: new Map() };
      let ready = false;
      let gone = false;
      worker.on("message", (m: FromWorker) => {
        if (m.type === "ready") {
          ready = true;
          resolve(live);
          if (this.started++ > 0) this.options.onRestart?.();
        } else if (m.type === "failed") {
          reject(deserializeError(m.error, `${this.name}.worker`, this.unavailable));
        } else if (m.type === "done") {
          const p = live.pending.get(m.id);
          live.pending.delete(m.id);
          if (m.error) p?.reject(deserializeError(m.error, this.name, this.unavailable));
          else p?.resolve(m.value);
        }
      });
      const died = (reason: string) => {
        if (gone) return;
        gone = true;
        if (this.worker === started) this.worker = undefined;
        const error = new KuraError(this.unavailable, `the projection worker stopped: ${reason}`, {
          operation: this.name,
        });
        if (!ready) reject(error);
        for (const p of live.pending.values()) p.reject(error);
        live.pending.clear();
      };
      worker.on("error", (e) => died(e.message));
      worker.on("exit", (code) => died(`exit code ${code}`));
    });
    this.worker = started;
    // A failed start is retried on the next delivery.
    started.catch(() => {
      if (this.worker === started) this.worker = undefined;
    });
    return started;
  }

  /** Stop the worker at once, as if it had crashed (tests); the next delivery starts another. */
  async terminate(): Promise<void> {
    const live = await this.worker?.catch(() => undefined);
    await live?.worker.terminate();
  }

  /** Let in-flight deliveries finish, close the worker's planes and stop it. */
  async close(): Promise<void> {
    this.closed = true;
    const started = this.worker;
    if (!started) return;
    const live = await started.catch(() => undefined);
    if (!live) return;
    const { worker } = live;
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
