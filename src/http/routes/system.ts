/**
 * Operational routes (API-1, API-5): liveness, readiness (catalog and blob store reachable),
 * Prometheus metrics, the OpenAPI document and its docs page. None needs a token.
 */
import { z } from "zod";
import { isKuraError, KuraError } from "../../core/errors.js";
import { DOCS_PAGE } from "../docs-page.js";
import { type RouteSpec, SENT } from "../route.js";
import type { HttpDeps } from "./deps.js";

const TAG = "system";
const READY_TIMEOUT_MS = 2000;
/** A key no one writes: `exists` on it proves the blob store answers. */
const READY_PROBE_KEY = "~kura-readyz/probe";

function withTimeout<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new KuraError("OPERATION_TIMEOUT", `${what} did not answer within ${READY_TIMEOUT_MS} ms`, {
            operation: "readyz",
          }),
        ),
      READY_TIMEOUT_MS,
    );
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
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
    summary: "Readiness: the catalog and the blob store answer",
    tag: TAG,
    auth: false,
    responses: {
      200: {
        description: "Ready",
        schema: z.object({
          status: z.literal("ready"),
          catalog: z.literal("ok"),
          blob_store: z.literal("ok"),
        }),
      },
      503: {
        description:
          "A plane does not answer (CATALOG_UNAVAILABLE, BLOB_BACKEND_UNAVAILABLE, OPERATION_TIMEOUT)",
      },
    },
    handler: async () => {
      const probe = async (
        what: string,
        fn: () => Promise<unknown>,
        code: "CATALOG_UNAVAILABLE" | "BLOB_BACKEND_UNAVAILABLE",
      ) => {
        try {
          await withTimeout(fn(), what);
        } catch (e) {
          if (isKuraError(e, "Unavailable")) throw e;
          throw new KuraError(code, `${what} is not reachable`, { operation: "readyz", cause: e });
        }
      };
      await probe("the catalog", () => deps.kura.catalog.ping(), "CATALOG_UNAVAILABLE");
      await probe(
        "the blob store",
        () => deps.kura.store.exists(READY_PROBE_KEY),
        "BLOB_BACKEND_UNAVAILABLE",
      );
      return { data: { status: "ready", catalog: "ok", blob_store: "ok" } };
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

  const docs: RouteSpec = {
    method: "GET",
    path: "/docs",
    operationId: "docs",
    summary: "A page listing every route of the OpenAPI document",
    tag: TAG,
    auth: false,
    responses: { 200: { description: "HTML", raw: "text/html" } },
    handler: async ({ reply }) => {
      reply.header("content-type", "text/html; charset=utf-8").send(DOCS_PAGE);
      return SENT;
    },
  };

  return [healthz, readyz, metrics, openapiJson, docs];
}
