/**
 * The OpenAPI 3.1 document (API-1), built from the same route definitions the server registers
 * (schemas converted with zod's JSON Schema output). Routes whose capability is not built yet
 * carry `x-kura-not-implemented: true`, a 501 response and a note in their description.
 */
import { z } from "zod";
import { openApiPath, type RouteSpec } from "./route.js";

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

function parameters(spec: RouteSpec): Json[] {
  const out: Json[] = [];
  const add = (schema: z.ZodType | undefined, where: "path" | "query") => {
    if (!schema) return;
    const s = jsonSchema(schema, "input");
    const props = (s.properties ?? {}) as Record<string, Json>;
    const required = new Set((s.required as string[] | undefined) ?? []);
    for (const [name, prop] of Object.entries(props)) {
      const { description, ...rest } = prop;
      out.push({
        name,
        in: where,
        required: where === "path" || required.has(name),
        schema: rest,
        ...(description ? { description } : {}),
      });
    }
  };
  add(spec.params, "path");
  add(spec.query, "query");
  return out;
}

const COMMON_ERRORS: Record<string, Json> = {
  "400": {
    description: "Invalid request",
    content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } },
  },
};

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
    const responses: Record<string, Json> = {};
    for (const [status, r] of Object.entries(spec.responses)) {
      const content = r.raw
        ? { [r.raw]: { schema: { type: "string", format: "binary" } } }
        : status === "204" || status === "304" || spec.method === "HEAD"
          ? undefined
          : Number(status) >= 400
            ? { "application/json": { schema: { $ref: "#/components/schemas/Error" } } }
            : {
                "application/json": {
                  schema: envelope(r.schema ? jsonSchema(r.schema, "output") : undefined),
                },
              };
      responses[status] = {
        description: r.description,
        ...(content ? { content } : {}),
        ...(r.headers
          ? {
              headers: Object.fromEntries(
                Object.entries(r.headers).map(([h, d]) => [
                  h,
                  { description: d, schema: { type: "string" } },
                ]),
              ),
            }
          : {}),
      };
    }
    if (spec.notImplemented !== undefined) {
      responses["501"] = {
        description: `Not implemented yet (error_code NOT_IMPLEMENTED): ${spec.notImplemented}`,
        content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } },
      };
    }
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
      security: auth ? [{ bearer: [] }] : [],
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
      responses: {
        ...(spec.params || spec.query || spec.body ? COMMON_ERRORS : {}),
        ...(spec.params && !responses["404"]
          ? {
              "404": {
                description:
                  "Nothing of that name for the tenant (error_code says what: MESSAGE_NOT_FOUND, …)",
                content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } },
              },
            }
          : {}),
        ...responses,
        ...(auth
          ? {
              "401": {
                description: "Missing, invalid or expired token",
                content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } },
              },
              "403": {
                description: "Token and subdomain name different tenants",
                content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } },
              },
            }
          : {}),
        default: {
          description: "Error",
          content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } },
        },
      },
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
      },
      schemas: { Error: ERROR_SCHEMA },
    },
    paths,
  };
}
