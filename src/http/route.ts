/**
 * One typed definition per route: path, schemas (zod) for params, query and body, responses,
 * and the handler. `registerRoute` turns it into a Fastify route that authenticates, validates
 * and wraps the result in the envelope; `openapi.ts` turns the same definitions into the
 * OpenAPI document, so the two cannot drift apart.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { z } from "zod";
import { KuraError } from "../core/errors.js";
import type { TenantScope } from "../domains/tenant.js";
import type { Principal } from "./auth.js";
import { success } from "./envelope.js";
import { bodyTimeoutOf } from "./timeouts.js";

export type HttpMethod = "GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE" | "OPTIONS";

/** A request or response header as the document describes it (a bare string: its description). */
export interface HeaderSpec {
  description: string;
  /** JSON Schema of the value; default a string. */
  schema?: Record<string, unknown>;
}

export interface ResponseSpec {
  description: string;
  /** Schema of `data` inside the success envelope. */
  schema?: z.ZodType;
  /** A raw (not enveloped) body of this media type: streams, /metrics, /openapi.json. */
  raw?: string;
  /** Headers the route sends with this status (`ETag`, `Content-Range`, …), by name. */
  headers?: Record<string, string | HeaderSpec>;
}

export interface RouteContext<P, Q, B> {
  req: FastifyRequest;
  reply: FastifyReply;
  params: P;
  query: Q;
  body: B;
  /** The authenticated principal (routes with `auth: false` have none). */
  principal: Principal;
  /** The tenant the principal acts for (admin routes have none). */
  tenant: TenantScope;
}

/** A handler either returns what goes in the envelope or sends the reply itself and returns SENT. */
export const SENT = Symbol("sent");
export type RouteResult = { status?: number; data: unknown } | typeof SENT;

export interface RouteSpec<P = unknown, Q = unknown, B = unknown> {
  method: HttpMethod;
  /** OpenAPI-style path: `{name}` for a segment, `{name...}` for the rest of the path. */
  path: string;
  /**
   * The Fastify URL when `path` cannot be expressed in its router (a parameter followed by
   * `:action` in one segment); `mapParams` then splits the raw parameters.
   */
  url?: string;
  mapParams?: (raw: Record<string, string>) => Record<string, string>;
  operationId: string;
  summary: string;
  tag: string;
  description?: string;
  /**
   * Bearer-token (or API key) authentication and a tenant; default true. `admin`: the admin
   * identity (`kura token --admin`) and no tenant.
   */
  auth?: boolean | "admin";
  params?: z.ZodType<P>;
  query?: z.ZodType<Q>;
  body?: z.ZodType<B>;
  /**
   * Request headers the handler reads (`If-Match`, `Range`, …), by name: documented as header
   * parameters. `Authorization`, `Content-Type` and the body's framing need no entry.
   */
  headers?: Record<string, string | HeaderSpec>;
  /** The request body is read as a stream by the handler (objects, streamed messages). */
  rawBody?: { contentType: string; description: string };
  /** Largest JSON body accepted, in bytes. */
  bodyLimit?: number;
  responses: Record<number, ResponseSpec>;
  /** Set for routes whose capability is not built yet: they answer 501 NOT_IMPLEMENTED. */
  notImplemented?: string;
  handler?: (ctx: RouteContext<P, Q, B>) => Promise<RouteResult>;
}

/** Attached to each request by the auth hook. */
declare module "fastify" {
  interface FastifyRequest {
    principal: Principal | undefined;
    tenantScope: TenantScope | undefined;
  }
  interface FastifyContextConfig {
    auth?: boolean | "admin";
    /** The route reads its body as a stream (uploads): no whole-body time limit applies. */
    streamedBody?: boolean;
    /** The route's path as the API documents it (`/v1/users/{user_id}/memories:search`): metrics label. */
    template?: string;
  }
}

export interface RegisterOptions {
  /** Check every success response against its schema (tests). */
  validateResponses?: boolean;
  /**
   * Told, after each response, its status, the request headers the handler read and the
   * response headers sent, to compare with the route's documentation (tests).
   */
  audit?: (spec: RouteSpec, use: RouteUse) => void;
}

/** What a route did while answering one request. */
export interface RouteUse {
  status: number;
  /** Request headers the handler read, lower case. */
  requestHeaders: ReadonlySet<string>;
  /** Response headers sent, lower case. */
  responseHeaders: readonly string[];
}

/** While the handler runs, `req.headers` notes every header it reads (for `audit`). */
function watchHeaderReads(req: FastifyRequest): { read: Set<string>; stop(): void } {
  const read = new Set<string>();
  const headers = req.headers;
  const watched = new Proxy(headers, {
    get(target, name, receiver) {
      if (typeof name === "string") read.add(name.toLowerCase());
      return Reflect.get(target, name, receiver);
    },
  });
  Object.defineProperty(req, "headers", { configurable: true, get: () => watched });
  return { read, stop: () => delete (req as { headers?: unknown }).headers };
}

/** `/v1/chats/{chat_id}/messages:batch` → `/v1/chats/:chat_id/messages::batch`; `{key...}` → `*`. */
export function fastifyPath(path: string): string {
  return path
    .replaceAll(":", "::")
    .replace(/\{([A-Za-z]+)\.\.\.\}/g, "*")
    .replace(/\{([A-Za-z_]+)\}/g, ":$1");
}

function wildcardName(path: string): string | undefined {
  return /\{([A-Za-z]+)\.\.\.\}/.exec(path)?.[1];
}

/** A path segment that is an unexpanded template (`{key}`, `{key...}`): a client bug, never a name. */
const PLACEHOLDER = /(^|\/)\{[A-Za-z_][A-Za-z0-9_]*(\.\.\.)?\}($|\/)/;

/** The OpenAPI path of a route: `{name...}` (the rest of the path, `/` included) is `{name}` there. */
export function openApiPath(path: string): string {
  return path.replace(/\{([A-Za-z]+)\.\.\.\}/g, "{$1}");
}

function valueAt(value: unknown, path: readonly PropertyKey[]): unknown {
  let v = value;
  for (const key of path) {
    if (v === null || typeof v !== "object") return undefined;
    v = (v as Record<PropertyKey, unknown>)[key];
  }
  return v;
}

function kindOf(v: unknown): string {
  return v === null ? "null" : Array.isArray(v) ? "array" : typeof v;
}

/** Zod's message, made specific where it is vague ("Invalid input" of a union or a missing field). */
function describeIssue(issue: z.core.$ZodIssue, value: unknown): string {
  if (value === undefined && (issue.code === "invalid_type" || issue.code === "invalid_union"))
    return "required";
  if (issue.code === "invalid_union") {
    const expected = new Set<string>();
    for (const option of issue.errors) {
      for (const i of option)
        if (i.code === "invalid_type" && i.path.length === 0) expected.add(String(i.expected));
    }
    if (expected.size > 0) return `expected ${[...expected].join(" or ")}, received ${kindOf(value)}`;
  }
  return issue.message;
}

export function parseInput<T>(schema: z.ZodType<T> | undefined, value: unknown, where: string): T {
  if (!schema) return undefined as T;
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const problems = result.error.issues.slice(0, 20).map((issue) => ({
    path: [where, ...issue.path.map(String)].join("."),
    message: describeIssue(issue, valueAt(value, issue.path)),
  }));
  const first = problems[0];
  throw new KuraError("REQUEST_INVALID", first ? `${first.path}: ${first.message}` : `invalid ${where}`, {
    operation: "http.validate",
    context: { problems },
  });
}

export function registerRoute<P, Q, B>(
  app: FastifyInstance,
  spec: RouteSpec<P, Q, B>,
  options: RegisterOptions = {},
): void {
  const wildcard = wildcardName(spec.path);
  const audit = options.audit;
  const headersRead = new WeakMap<FastifyRequest, Set<string>>();
  app.route({
    method: spec.method,
    url: spec.url ?? fastifyPath(spec.path),
    config: {
      auth: spec.auth === "admin" ? "admin" : spec.auth !== false,
      streamedBody: spec.rawBody !== undefined,
      template: openApiPath(spec.path),
      // An OPTIONS route answers plain requests and CORS preflights alike: @fastify/cors adds
      // its headers to a preflight and lets the handler answer, instead of refusing plain ones.
      ...(spec.method === "OPTIONS" ? { cors: { strictPreflight: false, preflightContinue: true } } : {}),
    },
    ...(spec.bodyLimit !== undefined ? { bodyLimit: spec.bodyLimit } : {}),
    ...(audit
      ? {
          onResponse: async (req: FastifyRequest, reply: FastifyReply) => {
            audit(spec as RouteSpec, {
              status: reply.statusCode,
              requestHeaders: headersRead.get(req) ?? new Set(),
              responseHeaders: Object.keys(reply.getHeaders()).map((h) => h.toLowerCase()),
            });
          },
        }
      : {}),
    handler: async (req: FastifyRequest, reply: FastifyReply) => {
      let rawParams = { ...(req.params as Record<string, string>) };
      if (wildcard !== undefined) {
        rawParams[wildcard] = rawParams["*"] ?? "";
        delete rawParams["*"];
        if (PLACEHOLDER.test(rawParams[wildcard] ?? "")) {
          throw new KuraError(
            "REQUEST_INVALID",
            `path: ${wildcard} is an unexpanded template (${(rawParams[wildcard] ?? "").slice(0, 64)}); fill in the value`,
            { operation: spec.operationId },
          );
        }
      }
      if (spec.mapParams) rawParams = spec.mapParams(rawParams);
      if (spec.notImplemented !== undefined || !spec.handler) {
        throw new KuraError(
          "NOT_IMPLEMENTED",
          `${spec.method} ${spec.path}: ${spec.notImplemented ?? "not built yet"}`,
          {
            operation: spec.operationId,
          },
        );
      }
      const params = parseInput(spec.params, rawParams, "path");
      const query = parseInput(spec.query, req.query ?? {}, "query");
      const body = spec.rawBody ? (undefined as B) : parseInput(spec.body, req.body, "body");
      let result: RouteResult;
      const watch = audit ? watchHeaderReads(req) : undefined;
      if (watch) headersRead.set(req, watch.read);
      try {
        result = await spec.handler({
          req,
          reply,
          params,
          query,
          body,
          principal: req.principal as Principal,
          tenant: req.tenantScope as TenantScope,
        });
      } catch (e) {
        // A body that timed out surfaces in the handler as whatever the consumer made of it
        // (an aborted write, a stream error): report it as the timeout it was.
        throw bodyTimeoutOf(req) ?? e;
      } finally {
        watch?.stop();
      }
      if (result === SENT) return reply;
      const status = result.status ?? 200;
      if (options.validateResponses) {
        const schema = spec.responses[status]?.schema;
        if (!spec.responses[status]) throw new Error(`${spec.operationId}: undocumented status ${status}`);
        if (schema) {
          const check = schema.safeParse(result.data);
          if (!check.success)
            throw new Error(
              `${spec.operationId}: response does not match its schema: ${check.error.message}`,
            );
        }
      }
      return reply.code(status).send(success(req.id, result.data));
    },
  });
}

/**
 * For `{param}:action` segments: split `raw[name]` at its last `:` and require `action`,
 * so `POST /v1/messages/{id}:undelete` is served by the Fastify route `/v1/messages/:idAction`.
 */
export function actionSuffix(name: string, action: string, into = name) {
  return (raw: Record<string, string>): Record<string, string> => {
    const value = raw[name] ?? "";
    const at = value.lastIndexOf(":");
    if (at < 0 || value.slice(at + 1) !== action) {
      throw new KuraError("ROUTE_NOT_FOUND", "no route for this method and path", {
        operation: "http.route",
      });
    }
    const { [name]: _, ...rest } = raw;
    return { ...rest, [into]: value.slice(0, at) };
  };
}
