/**
 * Operational routes (API-1, API-5): liveness, readiness (every plane reachable, disks not full),
 * Prometheus metrics, the OpenAPI document and its reference page (`/docs`, with the files it
 * loads). None needs a token.
 */
import { z } from "zod";
import { type ErrorCode, KuraError } from "../../core/errors.js";
import type { Health } from "../../engine/health.js";
import { docsRoutes } from "../docs-page.js";
import { type RouteSpec, SENT } from "../route.js";
import type { HttpDeps } from "./deps.js";

const TAG = "system";
/** Each plane's check gets this long; they run at once, so readyz answers within about this. */
const READY_TIMEOUT_MS = 2000;

/** The error `/readyz` answers with: every plane that is not ready, by name and reason. */
function notReadyError(health: Health): KuraError {
  const problems = Object.entries(health.planes).flatMap(([plane, s]) =>
    s.ok ? [] : [{ plane, code: s.code, reason: s.reason }],
  );
  const text = problems
    .map((p) => (p.code === "STORAGE_FULL" ? `${p.plane} storage full` : `${p.plane}: ${p.reason}`))
    .join("; ");
  // One unreachable plane keeps its own code (CATALOG_UNAVAILABLE, KV_UNAVAILABLE, …).
  const first = problems[0];
  const code =
    problems.length === 1 && first && /_UNAVAILABLE$/.test(first.code)
      ? (first.code as ErrorCode)
      : "NOT_READY";
  return new KuraError(code, `not ready: ${text}`, {
    kind: "Unavailable",
    operation: "readyz",
    context: { problems },
  });
}

export function systemRoutes(deps: HttpDeps, openapi: () => Record<string, unknown>): RouteSpec[] {
  const healthz: RouteSpec = {
    method: "GET",
    path: "/healthz",
    operationId: "healthz",
    summary: "Liveness: the process is up",
    tag: TAG,
    auth: false,
    responses: { 200: { description: "Up", schema: z.object({ status: z.literal("ok") }) } },
    handler: async () => ({ data: { status: "ok" } }),
  };

  const readyz: RouteSpec = {
    method: "GET",
    path: "/readyz",
    operationId: "readyz",
    summary: "Readiness: every plane (blob, catalog, KV, search, vectors) answers and has room to write",
    tag: TAG,
    auth: false,
    responses: {
      200: {
        description: "Ready",
        schema: z.object({
          status: z.literal("ready"),
          catalog: z.literal("ok"),
          blob_store: z.literal("ok"),
          kv: z.literal("ok"),
          search: z.enum(["ok", "degraded"]),
          vectors: z.literal("ok"),
          temp_bytes: z
            .number()
            .int()
            .optional()
            .describe(
              "Bytes in the fs blob stores' temp files: uploads in progress, or cut and not yet swept",
            ),
        }),
      },
      503: {
        description:
          "A plane does not answer within its check's timeout, or its disk is full: the message names " +
          "each such plane and why (`not ready: kv: …; catalog storage full`), `details` lists them " +
          "as `{plane, code, reason}`. One unreachable plane keeps its own code (CATALOG_UNAVAILABLE, " +
          "KV_UNAVAILABLE, …); otherwise NOT_READY.",
      },
    },
    handler: async () => {
      const health = await deps.kura.health({ timeoutMs: READY_TIMEOUT_MS });
      if (!health.ready) throw notReadyError(health);
      const search =
        health.planes.search.ok && health.planes.search.detail === "degraded" ? "degraded" : "ok";
      return {
        data: {
          status: "ready",
          catalog: "ok",
          blob_store: "ok",
          kv: "ok",
          search,
          vectors: "ok",
          ...(health.tempBytes === undefined ? {} : { temp_bytes: health.tempBytes }),
        },
      };
    },
  };

  const metrics: RouteSpec = {
    method: "GET",
    path: "/metrics",
    operationId: "metrics",
    summary: "Prometheus metrics (text exposition format)",
    tag: TAG,
    auth: false,
    responses: { 200: { description: "Metrics", raw: "text/plain" } },
    handler: async ({ reply }) => {
      reply.header("content-type", deps.metrics.contentType).send(await deps.metrics.render());
      return SENT;
    },
  };

  const openapiJson: RouteSpec = {
    method: "GET",
    path: "/openapi.json",
    operationId: "openapi",
    summary: "This API's OpenAPI 3.1 document",
    tag: TAG,
    auth: false,
    responses: { 200: { description: "The document", raw: "application/json" } },
    handler: async ({ reply }) => {
      reply.header("content-type", "application/json; charset=utf-8").send(JSON.stringify(openapi()));
      return SENT;
    },
  };

  return [healthz, readyz, metrics, openapiJson, ...docsRoutes(TAG)];
}
