/**
 * `buildServer(kura, options)`: the Fastify instance of `kura serve` (docs/http.md; API-1…5).
 * Transport only — every route calls the library; this file wires the cross-cutting parts:
 * request ids, authentication and tenant resolution, the envelope, the one error mapping,
 * metrics, logging with secrets redacted, CORS and graceful shutdown.
 */
import { randomUUID } from "node:crypto";
import type { Server as HttpsServer, ServerOptions as HttpsServerOptions } from "node:https";
import { Server as TlsServer } from "node:tls";
import cors from "@fastify/cors";
import Fastify, {
  type FastifyHttpsOptions,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  type FastifyServerOptions,
  LogController,
} from "fastify";
import { type KuraConfig, listenUrl } from "../config/index.js";
import { KuraError } from "../core/errors.js";
import type { TenantScope } from "../domains/tenant.js";
import { isApiKeySecret } from "../domains/tenants.js";
import type { Kura } from "../kura.js";
import { Authenticator, type AuthOptions, type Principal } from "./auth.js";
import { consoleRoutes } from "./console-page.js";
import { failure, REQUEST_ID_HEADER, requestIdOf } from "./envelope.js";
import { retryAfterOf, statusOf, toHttpError } from "./errors.js";
import { registerBodyParsers } from "./json-body.js";
import { redactUrl, withLogRedaction } from "./log-redaction.js";
import { batchedStdout } from "./log-stream.js";
import { blobTempBytesOf, HttpMetrics, type MetricsOptions } from "./metrics.js";
import { buildOpenApi, undocumentedUse } from "./openapi.js";
import { type RegisterOptions, type RouteSpec, registerRoute } from "./route.js";
import { adminRoutes } from "./routes/admin.js";
import { adminAuditRoutes } from "./routes/admin-audit.js";
import { adminFsckRoutes } from "./routes/admin-fsck.js";
import { adminKeyRoutes } from "./routes/admin-keys.js";
import { adminLifecycleRoutes } from "./routes/admin-lifecycle.js";
import { adminMigrationRoutes } from "./routes/admin-migrations.js";
import { dashboardRoutes } from "./routes/dashboard.js";
import type { HttpDeps } from "./routes/deps.js";
import { kvRoutes } from "./routes/kv.js";
import { legalHoldRoutes } from "./routes/legal-holds.js";
import { mailRoutes } from "./routes/mail.js";
import { messageRoutes } from "./routes/messages.js";
import { objectRoutes } from "./routes/objects.js";
import { presignedRoutes } from "./routes/presigned.js";
import { searchRoutes } from "./routes/search.js";
import { sessionRoutes } from "./routes/sessions.js";
import { systemRoutes } from "./routes/system.js";
import { tenantRoutes } from "./routes/tenant.js";
import { unimplementedRoutes } from "./routes/unimplemented.js";
import { TUS_REQUEST_HEADERS, TUS_RESPONSE_HEADERS, uploadRoutes } from "./routes/uploads.js";
import { installTimeouts, serverTimeoutOptions } from "./timeouts.js";
import type { TlsServerOptions } from "./tls.js";

export const API_VERSION = "0.1.0";

export interface ServerOptions {
  /** Defaults to the config Kura was opened with. */
  config?: KuraConfig;
  /** The HS256 secret in use (configured or generated); default `config.auth.jwt_secret`. */
  jwtSecret?: string | undefined;
  /** Overrides of the auth settings the config gives (JWKS cache and cooldown, clock). */
  auth?: Partial<AuthOptions>;
  /** Fastify/pino logger options; default: JSON logs at `info`. `false` disables logging. */
  logger?: FastifyServerOptions["logger"];
  metrics?: MetricsOptions;
  clock?: () => number;
  /** Check success responses against their documented schemas (tests). */
  validateResponses?: boolean;
  /**
   * Told of every status, request header and response header a route uses that its operation
   * in the OpenAPI document does not declare (tests).
   */
  onUndocumented?: (problem: string) => void;
  /** Close the Kura instance when the server closes; default false. */
  closeKura?: boolean;
  /** Body limit of JSON routes without their own; default 1 MiB. */
  bodyLimit?: number;
  /**
   * Serve HTTPS only (`server.tls`, read by `readTlsOptions` in tls.ts); default plain HTTP.
   * The certificate can be replaced later with `app.server.setSecureContext` (`reloadTls`).
   */
  https?: TlsServerOptions;
}

/** Headers whose values are secrets: never logged. */
const REDACT_PATHS = [
  "req.headers.authorization",
  "req.headers.cookie",
  "req.headers['x-api-key']",
  'res.headers["set-cookie"]',
];

export { redactUrl };

export function defaultLoggerOptions(level = "info"): Record<string, unknown> {
  return withLogRedaction({
    level,
    redact: { paths: REDACT_PATHS, censor: "[redacted]" },
  });
}

/**
 * The logger Fastify gets: options (ours or the caller's) always with credential redaction
 * (`log-redaction.ts`); a ready logger instance or `false` as given.
 */
function loggerOf(logger: ServerOptions["logger"]): ServerOptions["logger"] {
  if (logger === undefined) return toStdout(defaultLoggerOptions());
  if (typeof logger !== "object" || logger === null) return logger;
  if (typeof (logger as { info?: unknown }).info === "function") return logger;
  return toStdout(withLogRedaction(logger));
}

/** Options that name no destination log to stdout in batches of one event-loop turn (log-stream.ts). */
function toStdout<T extends object>(options: T): T {
  const o = options as { stream?: unknown; file?: unknown };
  return o.stream !== undefined || o.file !== undefined ? options : { ...options, stream: batchedStdout() };
}

/** Response headers kept when an error replaces a half-prepared response. */
const KEEP_ON_ERROR = new Set([REQUEST_ID_HEADER, "connection", "vary", "tus-resumable", "tus-version"]);

export async function buildServer(kura: Kura, options: ServerOptions = {}): Promise<FastifyInstance> {
  const config = options.config ?? kura.config;
  const clock = options.clock ?? Date.now;
  const metrics = new HttpMetrics({
    cacheStats: () => kura.cacheStats,
    blobTempBytes: () => blobTempBytesOf({ primary: kura.store, sessions: kura.sessionFiles }),
    outboxLag: async () =>
      Object.fromEntries(
        await Promise.all(kura.projectors.map(async (name) => [name, await kura.outboxLag(name)])),
      ),
    jobs: () => kura.jobMetrics(),
    hotMessages: () => kura.hotMessageStats,
    ...options.metrics,
  });
  const authenticator = new Authenticator({
    secret: options.jwtSecret ?? config.auth.jwt_secret ?? undefined,
    jwksUrl: config.auth.jwks_url,
    issuer: config.auth.issuer,
    audience: config.auth.audience,
    baseDomain: config.server.base_domain,
    maxLifetimeSeconds: config.auth.max_token_lifetime_seconds,
    clockToleranceSeconds: config.auth.clock_skew_seconds,
    tenantIssuers: kura.tenants,
    ...options.auth,
  });

  const timeouts = {
    bodyTimeoutMs: config.server.body_timeout_ms,
    bufferedBodyTimeoutMs: config.server.buffered_body_timeout_ms,
    idleTimeoutMs: config.server.idle_timeout_ms,
  };
  const fastifyOptions: FastifyServerOptions = {
    logger: loggerOf(options.logger),
    genReqId: requestIdOf,
    requestIdHeader: false,
    // One log line per request comes from the onResponse hook below, with route and tenant.
    logController: new LogController({ requestIdLogLabel: "request_id", disableRequestLogging: true }),
    bodyLimit: options.bodyLimit ?? 1024 * 1024,
    ...serverTimeoutOptions(timeouts),
    routerOptions: { maxParamLength: 4096 },
    return503OnClosing: false,
    // Errors the router raises before a route exists (bad percent-encoding, oversized params).
    frameworkErrors: (e, req, reply) => {
      const error = toHttpError(e);
      metrics.countError(error.code, statusOf(error));
      (reply as FastifyReply)
        .header(REQUEST_ID_HEADER, req.id)
        .code(statusOf(error))
        .send(failure(req.id, error, clock()));
    },
    clientErrorHandler: (err, socket) => {
      // Malformed HTTP that never became a request (bad framing, oversized headers).
      if (!socket.writable) return socket.destroy();
      const code = (err as { code?: string }).code;
      const status = code === "HPE_HEADER_OVERFLOW" ? 431 : code === "ERR_HTTP_REQUEST_TIMEOUT" ? 408 : 400;
      const error =
        status === 431
          ? new KuraError("REQUEST_TOO_LARGE", "request headers too large", { operation: "http" })
          : status === 408
            ? new KuraError("REQUEST_TIMEOUT", "the request headers did not arrive in time", {
                operation: "http",
              })
            : new KuraError("REQUEST_INVALID", "malformed HTTP request", { operation: "http" });
      const id = randomUUID();
      const body = JSON.stringify(failure(id, error));
      socket.end(
        `HTTP/1.1 ${status} ${status === 431 ? "Request Header Fields Too Large" : status === 408 ? "Request Timeout" : "Bad Request"}\r\n` +
          `Content-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
          `X-Request-Id: ${id}\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n${body}`,
      );
    },
  };
  const app = options.https
    ? // The same instance type either way: routes and hooks do not care which server carries them.
      (Fastify({
        ...fastifyOptions,
        https: httpsServerOptions(fastifyOptions, options.https, timeouts),
      } as unknown as FastifyHttpsOptions<HttpsServer>) as unknown as FastifyInstance)
    : Fastify(fastifyOptions);
  // Backend operations of every plane into the latency histogram, for as long as the server runs.
  const stopObserving = kura.observeOperations((e) => metrics.observeOperation(e));
  app.addHook("onClose", async () => stopObserving());

  // Strict UTF-8, no lone surrogates, bounded depth, no prototype poisoning (json-body.ts).
  registerBodyParsers(app);
  // Body and idle timeouts on every route (timeouts.ts); before any route or scope exists.
  installTimeouts(app, timeouts);

  let closing = false;
  // Tenant scopes are stateless views: reuse them (per tenant and acting subject, which the
  // audit log records) instead of building one per request.
  const scopes = new Map<string, TenantScope>();
  const tenantScope = (principal: Principal): TenantScope => {
    const actor = actorOf(principal);
    const tenantId = principal.tenantId as string;
    const cacheKey = `${tenantId}\u0000${actor}`;
    let scope = scopes.get(cacheKey);
    if (!scope) {
      if (scopes.size >= 10_000) scopes.clear();
      scope = kura.tenant(tenantId, { actor });
      scopes.set(cacheKey, scope);
    }
    return scope;
  };
  app.decorateRequest("principal", undefined);
  app.decorateRequest("tenantScope", undefined);

  const origins = config.server.cors.origins;
  if (origins.length > 0) {
    await app.register(cors, {
      origin: origins.includes("*") ? "*" : [...origins],
      methods: ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
      allowedHeaders: [
        "Authorization",
        "X-API-Key",
        "Content-Type",
        "If-None-Match",
        "If-Match",
        "Range",
        "X-Request-Id",
        ...TUS_REQUEST_HEADERS,
      ],
      exposedHeaders: [
        "X-Request-Id",
        "ETag",
        "Content-Range",
        "Content-Length",
        "Retry-After",
        "Accept-Ranges",
        ...TUS_RESPONSE_HEADERS,
      ],
      maxAge: 600,
    });
  }

  // Hooks in callback style: they run on every request, and a promise per hook costs.
  app.addHook("onRequest", (req, reply, done) => {
    reply.header(REQUEST_ID_HEADER, req.id);
    if (closing) {
      reply.header("connection", "close");
      done(new KuraError("SERVER_SHUTTING_DOWN", "the server is shutting down", { operation: "http" }));
      return;
    }
    const mode = req.routeOptions.config.auth;
    if (!mode) return done();
    // Whatever authentication or tenant resolution throws — synchronously or in the promise —
    // goes to `done` as a KuraError (a falsy thrown value would otherwise read as success), so
    // it reaches the error handler instead of escaping as an unhandled rejection. What is thrown
    // here comes from Kura's own code and backends, never from Fastify's reading of the request:
    // a backend SDK's `statusCode` is not the client's (`handling`).
    const fail = (e: unknown) => done(toHttpError(e, "http.auth", { handling: true }));
    /** Attach the principal; true when done, false when its tenant must be looked up first. */
    const admitted = (principal: Principal): boolean => {
      checkRole(principal, mode);
      checkScope(principal, req);
      req.principal = principal;
      if (principal.tenantId === undefined) return true;
      if (kura.tenants.admitCached(principal.tenantId) === undefined) return false;
      req.tenantScope = tenantScope(principal);
      return true;
    };
    const admitLater = async (principal: Principal) => {
      await kura.tenants.admit(principal.tenantId as string);
      req.tenantScope = tenantScope(principal);
    };
    let apiKey: string | undefined;
    try {
      apiKey = apiKeyOf(req);
    } catch (e) {
      return fail(e);
    }
    if (apiKey !== undefined) {
      // Keys are read from the catalog on every request: a revocation holds at once, on every node.
      kura.tenants
        .authenticateKey(apiKey)
        .then((key) => {
          authenticator.checkHost(key.tenantId, req.hostname);
          const principal: Principal = {
            role: "tenant",
            tenantId: key.tenantId,
            subject: key.keyId,
            claims: {},
            scopes: key.scopes,
          };
          return admitted(principal) ? undefined : admitLater(principal);
        })
        .then(() => done(), fail)
        .catch((e: unknown) => req.log.error({ err: e }, "request pipeline failed after authentication"));
      return;
    }
    let known: Principal | undefined;
    try {
      known = authenticator.cached(req.headers.authorization, req.hostname);
      if (known && admitted(known)) return done();
    } catch (e) {
      return fail(e);
    }
    const pending = known
      ? admitLater(known)
      : authenticator
          .authenticate(req.headers.authorization, req.hostname)
          .then((principal) => (admitted(principal) ? undefined : admitLater(principal)));
    pending
      .then(() => done(), fail)
      .catch((e: unknown) => req.log.error({ err: e }, "request pipeline failed after authentication"));
  });

  // While closing, no connection is kept alive past its response, so close() can finish.
  // Every response, errors included, forbids MIME sniffing: a stored body is never run as
  // something other than the type it was served as.
  app.addHook("onSend", (_req, reply, payload, done) => {
    reply.header("x-content-type-options", "nosniff");
    if (closing) reply.header("connection", "close");
    done(null, payload);
  });

  const logRequests = ["trace", "debug", "info"].includes(app.log.level);
  app.addHook("onResponse", (req, reply, done) => {
    if (closing) app.server.closeIdleConnections();
    const route = req.routeOptions.config?.template ?? req.routeOptions.url ?? "(unmatched)";
    metrics.observeRequest(
      req.method,
      route,
      reply.statusCode,
      reply.elapsedTime / 1000,
      req.principal?.tenantId,
    );
    if (logRequests) {
      req.log.info(
        {
          method: req.method,
          url: redactUrl(req.url),
          route,
          status: reply.statusCode,
          ms: Math.round(reply.elapsedTime * 100) / 100,
          tenant: req.principal?.tenantId,
        },
        "request",
      );
    }
    done();
  });

  // Requests whose handler has started: from then on, an error that is not a KuraError is
  // unexpected (500), whatever `statusCode` it carries (errors.ts).
  const handling = new WeakSet<FastifyRequest>();
  app.addHook("preHandler", (req, _reply, done) => {
    handling.add(req);
    done();
  });

  app.setErrorHandler(async (e: unknown, req: FastifyRequest, reply: FastifyReply) => {
    const error = toHttpError(e, `http ${req.method}`, { handling: handling.has(req) });
    const status = statusOf(error);
    metrics.countError(error.code, status);
    if (status >= 500) req.log.error({ err: e, error_code: error.code }, "request failed");
    else req.log.debug({ error_code: error.code, message: error.message }, "request rejected");
    if (reply.raw.headersSent) {
      // The body is already on its way (a stream that failed mid-way): abort, never end cleanly.
      reply.raw.destroy();
      return reply;
    }
    for (const name of Object.keys(reply.getHeaders())) {
      if (!KEEP_ON_ERROR.has(name) && !name.startsWith("access-control-")) reply.removeHeader(name);
    }
    reply.header(REQUEST_ID_HEADER, req.id);
    const retryAfter = retryAfterOf(error);
    if (retryAfter !== undefined) reply.header("retry-after", String(retryAfter));
    if (error.code === "RANGE_NOT_SATISFIABLE" && typeof error.context.size === "number") {
      reply.header("content-range", `bytes */${error.context.size}`);
    }
    // A request body we did not read to the end: do not try to reuse the connection.
    if (!req.raw.complete) reply.header("connection", "close");
    return reply.code(status).send(failure(req.id, error, clock()));
  });

  app.setNotFoundHandler(async (req, reply) => {
    const error = new KuraError(
      "ROUTE_NOT_FOUND",
      `no route ${req.method} ${redactUrl(req.url).slice(0, 200)}`,
      {
        operation: "http",
      },
    );
    metrics.countError(error.code, 404);
    reply.header(REQUEST_ID_HEADER, req.id);
    return reply.code(404).send(failure(req.id, error, clock()));
  });

  // Where clients reach this server: the configured public URL, else the address it listens
  // on, known once it does (port 0). Never the request's Host, which the client chooses.
  let bound: string | undefined;
  const serverUrl = () => config.server.public_url ?? bound;
  app.addHook("onListen", async () => {
    bound = listeningUrl(app);
    const url = serverUrl();
    if (url !== undefined) kura.setServerUrl(url);
  });
  const deps: HttpDeps = { kura, config, metrics, clock };
  let document: { serverUrl: string | undefined; body: Record<string, unknown> } | undefined;
  const specs: RouteSpec[] = [];
  specs.push(
    ...systemRoutes(deps, () => {
      const url = serverUrl();
      if (!document || document.serverUrl !== url) {
        document = {
          serverUrl: url,
          body: buildOpenApi(specs, {
            version: API_VERSION,
            serverUrl: url,
            configured: config.server.public_url !== null,
          }),
        };
      }
      return document.body;
    }),
    ...messageRoutes(deps),
    ...objectRoutes(deps),
    ...presignedRoutes(deps),
    ...kvRoutes(),
    ...sessionRoutes(),
    ...tenantRoutes(),
    ...searchRoutes(),
    ...adminRoutes(deps),
    ...adminAuditRoutes(deps),
    ...adminLifecycleRoutes(deps),
    ...adminKeyRoutes(deps),
    ...legalHoldRoutes(),
    ...mailRoutes(),
    ...adminFsckRoutes(deps),
    ...adminMigrationRoutes(deps),
    ...uploadRoutes(deps),
    ...dashboardRoutes(deps),
    ...consoleRoutes("console"),
    ...unimplementedRoutes(),
  );

  const onUndocumented = options.onUndocumented;
  const registerOptions: RegisterOptions = {
    validateResponses: options.validateResponses ?? false,
    ...(onUndocumented
      ? {
          audit: (spec, use) => {
            for (const problem of undocumentedUse(spec, use)) onUndocumented(problem);
          },
        }
      : {}),
  };
  for (const spec of specs) if (!spec.rawBody) registerRoute(app, spec, registerOptions);
  // Routes that read their body as a stream: no parser may consume it first.
  await app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser("*", (_req, _payload, done) => done(null));
    for (const spec of specs) if (spec.rawBody) registerRoute(scope, spec, registerOptions);
  });

  // Drain (API-5): from here on, requests that still arrive on open connections get 503
  // SERVER_SHUTTING_DOWN with Connection: close and Retry-After; idle keep-alive connections
  // close at once (and every other one after its response); requests in flight get until
  // server.shutdown_timeout_ms, then their connections are destroyed, so close() always ends.
  app.addHook("preClose", async () => {
    closing = true;
    app.server.closeIdleConnections();
    const deadline = setTimeout(() => app.server.closeAllConnections(), config.server.shutdown_timeout_ms);
    deadline.unref();
    app.server.once("close", () => clearTimeout(deadline));
  });
  if (options.closeKura) app.addHook("onClose", async () => kura.close());
  return app;
}

/**
 * Node's HTTPS server takes the HTTP server's settings (header timeout and its check interval)
 * with the TLS ones; Fastify's `http` options apply to plain HTTP only. A TLS handshake gets
 * as long as request headers do.
 */
function httpsServerOptions(
  base: FastifyServerOptions,
  tls: TlsServerOptions,
  timeouts: { bodyTimeoutMs: number },
): HttpsServerOptions {
  const http = (base as { http?: Record<string, unknown> }).http ?? {};
  return { ...http, handshakeTimeout: timeouts.bodyTimeoutMs, ...tls };
}

/**
 * The URL of the address `app` listens on (`http://127.0.0.1:40123`, `https://…` when it
 * serves TLS; a wildcard address is reached through the loopback one), or undefined while it
 * does not listen.
 */
export function listeningUrl(app: FastifyInstance): string | undefined {
  const address = app.server.address();
  const scheme = (app.server as unknown) instanceof TlsServer ? "https" : "http";
  return typeof address === "object" && address
    ? listenUrl(address.address, address.port, scheme)
    : undefined;
}

/**
 * The API key a request carries: `X-API-Key`, or `Authorization: Bearer kura_…` (a JWT never
 * starts so); undefined for a token or no credential. Both at once is REQUEST_INVALID.
 */
function apiKeyOf(req: FastifyRequest): string | undefined {
  const header = req.headers["x-api-key"];
  const bearer = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(req.headers.authorization ?? "")?.[1];
  const fromBearer = bearer !== undefined && isApiKeySecret(bearer) ? bearer : undefined;
  if (header === undefined) return fromBearer;
  if (req.headers.authorization !== undefined)
    throw new KuraError("REQUEST_INVALID", "send an API key or a bearer token, not both", {
      operation: "http.auth",
    });
  return Array.isArray(header) ? header[0] : header;
}

/** POST routes that only read: a read-only key may call them. */
const READING_POSTS = new Set([
  "/v1/messages:batchGet",
  "/v1/search",
  "/v1/users/{user_id}/memories:search",
  "/v1/vectors/{collection}:query",
]);

/** An API key without the `write` scope may only read (SCOPE_DENIED). Tokens may do everything. */
function checkScope(principal: Principal, req: FastifyRequest): void {
  if (principal.scopes === undefined || principal.scopes.includes("write")) return;
  const reads =
    req.method === "GET" ||
    req.method === "HEAD" ||
    (req.method === "POST" && READING_POSTS.has(req.routeOptions.config.template ?? ""));
  if (reads && principal.scopes.includes("read")) return;
  throw new KuraError(
    "SCOPE_DENIED",
    `the API key may not write: its scopes are ${principal.scopes.join(", ")}`,
    {
      operation: "http.auth",
    },
  );
}

/** Admin routes take the admin only, tenant routes a tenant's principal only (ADMIN_REQUIRED). */
function checkRole(principal: Principal, mode: true | "admin"): void {
  if ((mode === "admin") === (principal.role === "admin")) return;
  throw new KuraError(
    "ADMIN_REQUIRED",
    mode === "admin"
      ? "this is an admin route: use an admin token (kura token --admin)"
      : "an admin token acts for no tenant: use a tenant's token or API key",
    { operation: "http.auth" },
  );
}

/** The audit actor of a request: `key:<key id>`, `user:<sub>` (printable, bounded), or `token` without a sub. */
function actorOf(principal: Principal): string {
  const sub = principal.subject;
  if (principal.scopes !== undefined) return `key:${sub}`;
  if (typeof sub === "string" && /^[\x21-\x7e]{1,190}$/.test(sub)) return `user:${sub}`;
  return "token";
}
