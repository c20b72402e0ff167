/**
 * The OpenAPI 3.1 document (API-1), built from the same route definitions the server registers
 * (schemas converted with zod's JSON Schema output). Routes whose capability is not built yet
 * carry `x-kura-not-implemented: true`, a 501 response and a note in their description.
 */
import { z } from "zod";
import { type HeaderSpec, openApiPath, type RouteSpec, type RouteUse } from "./route.js";

type Json = Record<string, unknown>;

function jsonSchema(schema: z.ZodType, io: "input" | "output"): Json {
  const out = z.toJSONSchema(schema, { io, unrepresentable: "any" }) as Json;
  delete out.$schema;
  return out;
}

const ERROR_SCHEMA: Json = {
  type: "object",
  required: ["success", "error", "error_code", "timestamp", "request_id"],
  properties: {
    success: { const: false },
    error: { type: "string", description: "What went wrong, for people." },
    error_code: { type: "string", description: "Stable code; see docs/errors.md." },
    timestamp: { type: "string", format: "date-time" },
    request_id: { type: "string" },
    details: {
      type: "array",
      description: "Field-level problems of a rejected request.",
      items: { type: "object", properties: { path: { type: "string" }, message: { type: "string" } } },
    },
  },
};

function envelope(data: Json | undefined): Json {
  return {
    type: "object",
    required: ["success", "data", "timestamp", "request_id"],
    properties: {
      success: { const: true },
      data: data ?? {},
      timestamp: { type: "string", format: "date-time" },
      request_id: { type: "string" },
    },
  };
}

function headerObject(h: string | HeaderSpec): Json {
  const spec = typeof h === "string" ? { description: h } : h;
  return { description: spec.description, schema: spec.schema ?? { type: "string" } };
}

function parameters(spec: RouteSpec): Json[] {
  const out: Json[] = [];
  const add = (schema: z.ZodType | undefined, where: "path" | "query") => {
    if (!schema) return;
    const s = jsonSchema(schema, "input");
    const props = (s.properties ?? {}) as Record<string, Json>;
    const required = new Set((s.required as string[] | undefined) ?? []);
    for (const [name, prop] of Object.entries(props)) {
      // `deprecated` belongs to the parameter (generated clients mark it there), not its schema.
      const { description, deprecated, ...rest } = prop;
      out.push({
        name,
        in: where,
        required: where === "path" || required.has(name),
        schema: rest,
        ...(description ? { description } : {}),
        ...(deprecated === true ? { deprecated: true } : {}),
      });
    }
  };
  add(spec.params, "path");
  add(spec.query, "query");
  for (const [name, h] of Object.entries(spec.headers ?? {})) {
    out.push({ name, in: "header", required: false, ...headerObject(h) });
  }
  return out;
}

const ERROR_CONTENT = { "application/json": { schema: { $ref: "#/components/schemas/Error" } } };
const RETRY_AFTER = { "Retry-After": { $ref: "#/components/headers/RetryAfter" } };

/**
 * Statuses any route may answer, whatever it does, documented once by every operation's
 * `default` response: a stalled (408) or oversized (413) body, an unsupported media type (415),
 * rate limiting (429), oversized headers (431), a server fault (500), an unavailable backend
 * or a server shutting down (503), a full disk or quota (507). Any other status a route
 * answers is declared on the route.
 */
export const TRANSPORT_STATUSES: ReadonlySet<number> = new Set([408, 413, 415, 429, 431, 500, 503, 507]);

/** Statuses whose errors say when to retry (`Retry-After`). */
const RETRY_STATUSES = new Set(["429", "503", "507"]);

/** The `responses` of a route's operation: what it declares, plus what every route of its kind answers. */
function responsesOf(spec: RouteSpec): Record<string, Json> {
  const own: Record<string, Json> = {};
  for (const [status, r] of Object.entries(spec.responses)) {
    const content = r.raw
      ? { [r.raw]: { schema: { type: "string", format: "binary" } } }
      : status === "204" || status === "304" || spec.method === "HEAD"
        ? undefined
        : Number(status) >= 400
          ? ERROR_CONTENT
          : {
              "application/json": { schema: envelope(r.schema ? jsonSchema(r.schema, "output") : undefined) },
            };
    const headers = {
      ...Object.fromEntries(Object.entries(r.headers ?? {}).map(([h, d]) => [h, headerObject(d)])),
      ...(RETRY_STATUSES.has(status) ? RETRY_AFTER : {}),
    };
    own[status] = {
      description: r.description,
      ...(content ? { content } : {}),
      ...(Object.keys(headers).length > 0 ? { headers } : {}),
    };
  }
  if (spec.notImplemented !== undefined) {
    own["501"] = {
      description: `Not implemented yet (error_code NOT_IMPLEMENTED): ${spec.notImplemented}`,
      content: ERROR_CONTENT,
    };
  }
  const auth = spec.auth !== false;
  return {
    "400": {
      description: "Invalid request (error_code says what: REQUEST_INVALID, …)",
      content: ERROR_CONTENT,
    },
    ...(spec.params && !own["404"]
      ? {
          "404": {
            description: "Nothing of that name for the tenant (error_code says what: MESSAGE_NOT_FOUND, …)",
            content: ERROR_CONTENT,
          },
        }
      : {}),
    // With encryption at rest, a shredded tenant's data answers 410 to every tenant route (SEC-2).
    ...(auth && spec.auth !== "admin"
      ? {
          "410": {
            description:
              "The tenant's data keys were destroyed: its data can never be read (TENANT_KEYS_DESTROYED)",
            content: ERROR_CONTENT,
          },
        }
      : {}),
    ...own,
    ...(auth
      ? {
          "401": { description: "Missing, invalid or expired token", content: ERROR_CONTENT },
          "403": {
            description:
              spec.auth === "admin"
                ? "Not the admin: a tenant's token or API key (ADMIN_REQUIRED); or the tenant is being deleted and cannot change (TENANT_DELETING)"
                : "Token and subdomain name different tenants (TENANT_MISMATCH), the tenant is suspended (TENANT_SUSPENDED), being deleted (TENANT_DELETING) or not registered (TENANT_UNKNOWN), an admin token (ADMIN_REQUIRED), or an API key without the scope (SCOPE_DENIED)",
            content: ERROR_CONTENT,
          },
        }
      : {}),
    default: {
      description: `Error. Any route may answer ${[...TRANSPORT_STATUSES].join(", ")}; Retry-After comes with errors a retry may cure.`,
      content: ERROR_CONTENT,
      headers: RETRY_AFTER,
    },
  };
}

/**
 * Request headers a route may read without declaring them: the security scheme's
 * `Authorization`, the body's `Content-Type` (its media type) and framing, and `Host`.
 */
const UNDECLARED_REQUEST_HEADERS = new Set([
  "authorization",
  "content-type",
  "content-length",
  "transfer-encoding",
  "host",
  "connection",
]);

/** Response headers the document must declare where a route sends them. */
export const DECLARED_RESPONSE_HEADERS = [
  "etag",
  "last-modified",
  "accept-ranges",
  "content-range",
  "content-disposition",
  "retry-after",
] as const;

const documented = new WeakMap<RouteSpec, { responses: Record<string, Json>; headers: Set<string> }>();

/**
 * What `use` did that the route's operation in the document does not declare: a status that is
 * neither declared nor a transport status (`TRANSPORT_STATUSES`), a request header read but
 * not a parameter, a response header (`DECLARED_RESPONSE_HEADERS`) sent but not declared for
 * that status. Empty when the document tells the truth.
 */
export function undocumentedUse(spec: RouteSpec, use: RouteUse): string[] {
  let doc = documented.get(spec);
  if (!doc) {
    doc = {
      responses: responsesOf(spec),
      headers: new Set(Object.keys(spec.headers ?? {}).map((h) => h.toLowerCase())),
    };
    documented.set(spec, doc);
  }
  const where = `${spec.method} ${openApiPath(spec.path)}`;
  const problems: string[] = [];
  const response =
    doc.responses[String(use.status)] ??
    (TRANSPORT_STATUSES.has(use.status) ? doc.responses.default : undefined);
  if (!response) problems.push(`${where} answered ${use.status}, which its operation does not declare`);
  for (const h of use.requestHeaders) {
    if (!UNDECLARED_REQUEST_HEADERS.has(h) && !doc.headers.has(h))
      problems.push(`${where} reads the request header ${h}, which its operation does not declare`);
  }
  const declared = new Set(Object.keys((response?.headers ?? {}) as Json).map((h) => h.toLowerCase()));
  for (const h of use.responseHeaders) {
    if ((DECLARED_RESPONSE_HEADERS as readonly string[]).includes(h) && response && !declared.has(h))
      problems.push(`${where} sent ${h} with ${use.status}, which its operation does not declare`);
  }
  return problems;
}

/**
 * The document's `servers`. A configured public URL is where clients go. Without one, first `/`
 * (the server the document was fetched from, whatever name or proxy reached it), then the
 * address the server listens on. The request's Host header is never used: the client
 * chooses it, and an absolute URL built from it could send "Try it out" and generated
 * clients, with their tokens, to another host.
 */
function servers(serverUrl: string | undefined, configured: boolean): Json[] {
  if (serverUrl !== undefined && configured) return [{ url: serverUrl, description: "This server" }];
  return [
    { url: "/", description: "The server this document was fetched from" },
    ...(serverUrl !== undefined ? [{ url: serverUrl, description: "Where this server listens" }] : []),
  ];
}

export function buildOpenApi(
  specs: readonly RouteSpec[],
  info: {
    version: string;
    /** Where clients reach the server, when known (configured, or the bound address). */
    serverUrl?: string | undefined;
    /** True when `serverUrl` is the configured public URL. */
    configured?: boolean;
  },
): Json {
  const paths: Record<string, Record<string, Json>> = {};
  for (const spec of specs) {
    const auth = spec.auth !== false;
    const operation: Json = {
      operationId: spec.operationId,
      summary: spec.summary,
      tags: [spec.tag],
      ...(spec.description || spec.notImplemented
        ? {
            description: [
              spec.description,
              spec.notImplemented ? `**Not implemented yet** (501): ${spec.notImplemented}` : "",
            ]
              .filter(Boolean)
              .join("\n\n"),
          }
        : {}),
      ...(spec.notImplemented !== undefined ? { "x-kura-not-implemented": true } : {}),
      security: spec.auth === "admin" ? [{ bearer: [] }] : auth ? [{ bearer: [] }, { apiKey: [] }] : [],
      parameters: parameters(spec),
      ...(spec.body
        ? {
            requestBody: {
              required: true,
              content: { "application/json": { schema: jsonSchema(spec.body, "input") } },
            },
          }
        : spec.rawBody
          ? {
              requestBody: {
                required: true,
                description: spec.rawBody.description,
                content: { [spec.rawBody.contentType]: { schema: { type: "string", format: "binary" } } },
              },
            }
          : {}),
      responses: responsesOf(spec),
    };
    const path = openApiPath(spec.path);
    const methods = paths[path] ?? {};
    methods[spec.method.toLowerCase()] = operation;
    paths[path] = methods;
  }
  return {
    openapi: "3.1.0",
    info: {
      title: "Kura",
      version: info.version,
      license: { name: "Apache-2.0", identifier: "Apache-2.0" },
      description:
        "Kura (蔵): messages, objects, sessions and more over object storage and a catalog database. " +
        "Every JSON response uses the envelope {success, data, timestamp, request_id}; errors " +
        "{success: false, error, error_code, timestamp, request_id}. Streams, HEAD, 204, /metrics " +
        "and /openapi.json are raw. Every response carries X-Request-Id.",
    },
    servers: servers(info.serverUrl, info.configured ?? false),
    components: {
      securitySchemes: {
        bearer: {
          type: "http",
          scheme: "bearer",
          bearerFormat: "JWT",
          description:
            "HS256 (configured or generated secret; `kura token --tenant T`) or RS256/ES256 via JWKS. The tenant comes from the tenant_id claim or the subdomain.",
        },
        apiKey: {
          type: "apiKey",
          in: "header",
          name: "X-API-Key",
          description:
            "A tenant's API key (POST /v1/admin/tenants/{id}/keys), also accepted as Authorization: Bearer <secret>. A key without the write scope may only read.",
        },
      },
      schemas: { Error: ERROR_SCHEMA },
      headers: {
        RetryAfter: {
          description: "Seconds to wait before retrying",
          schema: { type: "integer", minimum: 1 },
        },
      },
    },
    paths,
  };
}
