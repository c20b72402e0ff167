/**
 * Transport timeouts: no client can hold a connection, or a request, open forever.
 *
 * - **Request bodies** (`server.body_timeout_ms`, every route, JSON and streamed alike): the
 *   body is read through a `BodyGuard` that fails when no chunk arrives for `body_timeout_ms`
 *   while the server is waiting for one. The limit is per idle period, not per transfer: an
 *   upload that keeps moving is never cut, however long it takes; time the server spends not
 *   reading (backpressure from the blob store) is not counted. A timed-out request gets 408
 *   `REQUEST_TIMEOUT` with `Connection: close`, and its handler sees an error instead of the end
 *   of the body, so nothing is written (objects, session files and streamed messages are stored
 *   only when their body ends cleanly).
 * - **Request headers**: Node's `headersTimeout` = `body_timeout_ms` (the request line and headers
 *   must arrive within it once they start). Node's `requestTimeout` (a limit on the WHOLE request,
 *   body included) is off, because it would cut long uploads; the body guard bounds bodies instead.
 * - **Idle connections** (`server.idle_timeout_ms`): keep-alive connections are closed after this
 *   long between requests; a connection on which nothing moves for this long is closed unless a
 *   handler is still working on its request (a slow search is not idle; a client that stopped
 *   reading its response is).
 *
 * - **Buffered bodies** (JSON, every route that parses its body; `server.buffered_body_timeout_ms`):
 *   the whole body must arrive within this long, so a client trickling one byte just inside every
 *   idle period cannot hold a request open. Streamed bodies (object and session-file uploads,
 *   `messages:stream`) have no whole-transfer limit — long uploads are legitimate — and are bounded
 *   per idle period and by their `Content-Length` / size limits.
 */
import type { ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { Readable } from "node:stream";
import type { FastifyInstance, FastifyRequest, FastifyServerOptions } from "fastify";
import { KuraError } from "../core/errors.js";

export interface TransportTimeouts {
  /** Longest wait for the next body chunk (and for the headers), in ms. */
  bodyTimeoutMs: number;
  /**
   * Longest time to receive a whole buffered body (JSON and other parsed bodies, which are small
   * and size-limited), in ms, however steadily it trickles. Streamed bodies (uploads, streamed
   * appends) have no such limit: they are bounded per idle period only.
   */
  bufferedBodyTimeoutMs: number;
  /** Longest idle period of a connection with no request being worked on, in ms. */
  idleTimeoutMs: number;
}

/** The Fastify (and Node `http.Server`) options that implement the timeouts. */
export function serverTimeoutOptions(t: TransportTimeouts): Partial<FastifyServerOptions> {
  return {
    keepAliveTimeout: t.idleTimeoutMs,
    connectionTimeout: t.idleTimeoutMs,
    requestTimeout: 0,
    http: {
      headersTimeout: t.bodyTimeoutMs,
      requestTimeout: 0,
      // How often Node checks headersTimeout; its default (30 s) would let small timeouts slip.
      connectionsCheckingInterval: Math.max(50, Math.min(30_000, Math.floor(t.bodyTimeoutMs / 4))),
    },
  } as Partial<FastifyServerOptions>;
}

/** The guarded body stream of each request that has one. */
const bodies = new WeakMap<FastifyRequest, BodyGuard>();

/** The request body to read: the guarded stream (raw-body routes must read this, not `req.raw`). */
export function requestBody(req: FastifyRequest): Readable {
  return bodies.get(req) ?? req.raw;
}

/** The REQUEST_TIMEOUT error when this request's body timed out, else undefined. */
export function bodyTimeoutOf(req: FastifyRequest): KuraError | undefined {
  return bodies.get(req)?.timeout;
}

function hasBody(req: FastifyRequest): boolean {
  if (req.headers["transfer-encoding"] !== undefined) return true;
  const length = Number(req.headers["content-length"] ?? 0);
  return Number.isFinite(length) && length > 0;
}

/**
 * A request body that fails with REQUEST_TIMEOUT when `ms` pass without a chunk while it is
 * being read. It reads its source only when its consumer asks (so the timer never runs while
 * the consumer is busy), and leaves the source un-destroyed on failure so a 408 can still be sent.
 */
export class BodyGuard extends Readable {
  timeout: KuraError | undefined;
  private timer: NodeJS.Timeout | undefined;
  private armed = false;
  private attached = false;

  private deadline: NodeJS.Timeout | undefined;

  constructor(
    private readonly source: Readable,
    private readonly ms: number,
    /** A limit on the whole body, counted from the first read (buffered bodies only). */
    private readonly totalMs?: number,
  ) {
    super();
    // A consumer that gave up on the body (a 413 part-way, a handler that failed) has removed
    // its listeners: a later failure of the guard must not become an uncaught exception.
    this.on("error", () => {});
  }

  override _read(): void {
    if (!this.attached) {
      this.attached = true;
      if (this.totalMs !== undefined) this.deadline = setTimeout(this.tooSlow, this.totalMs);
      this.source.on("data", this.onData);
      this.source.on("end", this.onEnd);
      this.source.on("error", this.onError);
      this.source.on("close", this.onClose);
    }
    this.arm();
    this.source.resume();
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    this.disarm();
    clearTimeout(this.deadline);
    this.detach();
    callback(err);
  }

  private arm(): void {
    if (this.armed) return;
    this.armed = true;
    if (this.timer) this.timer.refresh();
    else this.timer = setTimeout(this.expire, this.ms);
  }

  private disarm(): void {
    this.armed = false;
    if (this.timer) clearTimeout(this.timer);
  }

  private detach(): void {
    this.source.off("data", this.onData);
    this.source.off("end", this.onEnd);
    this.source.off("error", this.onError);
    this.source.off("close", this.onClose);
    this.source.pause();
  }

  private readonly onData = (chunk: Buffer): void => {
    if (this.armed) this.timer?.refresh();
    if (!this.push(chunk)) {
      this.source.pause();
      this.disarm();
    }
  };

  private readonly onEnd = (): void => {
    this.disarm();
    clearTimeout(this.deadline);
    this.detach();
    this.push(null);
  };

  private readonly onError = (e: Error): void => {
    this.destroy(e);
  };

  private readonly onClose = (): void => {
    // Closed without an end: the client went away mid-body.
    if (!this.readableEnded && !this.destroyed) {
      this.destroy(
        new KuraError("OPERATION_ABORTED", "the client closed the connection before the body ended", {
          operation: "http.body",
        }),
      );
    }
  };

  private readonly tooSlow = (): void => {
    this.armed = false;
    this.timeout = new KuraError(
      "REQUEST_TIMEOUT",
      `the request body did not arrive whole within ${this.totalMs} ms (server.buffered_body_timeout_ms); nothing was written`,
      { operation: "http.body", context: { timeoutMs: this.totalMs } },
    );
    this.destroy(this.timeout);
  };

  private readonly expire = (): void => {
    this.armed = false;
    this.timeout = new KuraError(
      "REQUEST_TIMEOUT",
      `no request body bytes arrived for ${this.ms} ms (server.body_timeout_ms); nothing was written`,
      { operation: "http.body", context: { timeoutMs: this.ms } },
    );
    this.destroy(this.timeout);
  };
}

/**
 * Installs the body guard and the idle-connection rule on `app`. Call before routes and
 * plugins are registered, so every route (raw-body scopes included) inherits the hooks.
 */
export function installTimeouts(app: FastifyInstance, t: TransportTimeouts): void {
  app.addHook("preParsing", (req, _reply, payload, done) => {
    if (!hasBody(req)) return done(null, payload);
    const streamed = req.routeOptions.config?.streamedBody === true;
    const guard = new BodyGuard(payload, t.bodyTimeoutMs, streamed ? undefined : t.bufferedBodyTimeoutMs);
    // Once the response is over, nobody reads the body any more: the response's close
    // listener (onRequest below) stops its timer.
    bodies.set(req, guard);
    done(null, guard);
  });

  // The response of the request a handler is working on, per connection.
  const working = new Map<Socket, ServerResponse>();
  app.addHook("onRequest", (req, reply, done) => {
    const socket = req.raw.socket;
    // Node drops the socket timeout while a keep-alive connection serves its next request.
    socket.setTimeout(t.idleTimeoutMs);
    const res = reply.raw;
    working.set(socket, res);
    res.once("close", () => {
      if (working.get(socket) === res) working.delete(socket);
      const guard = bodies.get(req);
      if (guard && !guard.readableEnded) guard.destroy();
    });
    done();
  });
  // With a listener here Node no longer destroys timed-out sockets itself: decide per socket.
  // Idle = no request, or a response that stopped moving (the client is not reading it). A
  // handler still working on its answer is not idle, and a body still arriving has its own guard.
  app.server.on("timeout", (socket: Socket) => {
    const res = working.get(socket);
    if (res && !res.headersSent) return;
    socket.destroy();
  });
}
