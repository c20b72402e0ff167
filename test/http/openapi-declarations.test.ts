/**
 * The OpenAPI document declares what the routes really do: the request headers they read, the
 * statuses they answer and the response headers they send. Every server the HTTP tests start
 * (`harness.ts`) reports whatever a route did that its operation does not declare, and fails
 * on close; here the check itself is checked, and a few declarations are read back.
 */
import Fastify from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { undocumentedUse } from "../../src/http/openapi.js";
import { type RouteSpec, registerRoute, SENT } from "../../src/http/route.js";
import { type Harness, startServer } from "./harness.js";

describe("the check of what a route does against its operation", () => {
  const spec: RouteSpec<{ id: string }> = {
    method: "GET",
    path: "/t/{id}",
    operationId: "t",
    summary: "t",
    tag: "t",
    auth: false,
    params: z.object({ id: z.string() }),
    headers: { "If-Match": "declared" },
    responses: { 200: { description: "ok", headers: { ETag: "declared" } } },
    handler: async ({ req, reply, params }) => {
      if (params.id === "read") void req.headers["if-unmodified-since"];
      if (params.id === "status") reply.code(412);
      if (params.id === "header") reply.header("content-range", "bytes */1");
      void req.headers["if-match"];
      reply.header("etag", '"1"').send("x");
      return SENT;
    },
  };

  const problemsOf = async (id: string) => {
    const problems: string[] = [];
    const app = Fastify();
    registerRoute(app, spec, {
      audit: (s, use) => {
        problems.push(...undocumentedUse(s, use));
      },
    });
    await app.inject({ method: "GET", url: `/t/${id}` });
    await app.close();
    return problems;
  };

  it("passes a route that does only what it declares", async () => {
    expect(await problemsOf("ok")).toEqual([]);
  });

  it("reports a request header read but not declared", async () => {
    expect(await problemsOf("read")).toEqual([
      "GET /t/{id} reads the request header if-unmodified-since, which its operation does not declare",
    ]);
  });

  it("reports a status answered but not declared (transport statuses are the default's)", async () => {
    expect(await problemsOf("status")).toEqual([
      "GET /t/{id} answered 412, which its operation does not declare",
    ]);
    expect(
      undocumentedUse(spec as RouteSpec, {
        status: 503,
        requestHeaders: new Set(),
        responseHeaders: ["retry-after"],
      }),
    ).toEqual([]);
  });

  it("reports a response header sent but not declared for its status", async () => {
    expect(await problemsOf("header")).toEqual([
      "GET /t/{id} sent content-range with 200, which its operation does not declare",
    ]);
  });
});

describe("what the document declares", () => {
  let h: Harness;
  // biome-ignore lint/suspicious/noExplicitAny: the document is read field by field
  let doc: any;
  beforeAll(async () => {
    h = await startServer();
    doc = (await h.call("GET", "/openapi.json")).json;
  });
  afterAll(async () => h?.close());

  const headerParams = (path: string, method: string) =>
    (doc.paths[path][method].parameters as { name: string; in: string }[])
      .filter((p) => p.in === "header")
      .map((p) => p.name)
      .sort();

  it("served bodies: conditional and range headers, 206/304/412/416 with their headers", () => {
    const served = [
      "If-Match",
      "If-Modified-Since",
      "If-None-Match",
      "If-Range",
      "If-Unmodified-Since",
      "Range",
    ];
    for (const path of [
      "/v1/objects/{key}",
      "/v1/presigned/{key}",
      "/v1/sessions/{session_id}/files/{path}",
    ]) {
      const path2 = Object.keys(doc.paths).find(
        (p) => p.replace(/\{[^}]+\}/g, "{}") === path.replace(/\{[^}]+\}/g, "{}"),
      );
      expect(path2, path).toBeDefined();
      const get = doc.paths[path2 as string].get;
      expect(headerParams(path2 as string, "get"), path).toEqual(served);
      expect(Object.keys(get.responses)).toEqual(expect.arrayContaining(["200", "206", "304", "412", "416"]));
      expect(Object.keys(get.responses["200"].headers)).toEqual(
        expect.arrayContaining(["ETag", "Last-Modified", "Accept-Ranges"]),
      );
      expect(Object.keys(get.responses["206"].headers)).toContain("Content-Range");
      expect(Object.keys(get.responses["416"].headers)).toContain("Content-Range");
      expect(get.responses["304"].content).toBeUndefined();
    }
    expect(headerParams("/v1/objects/{key}", "head")).toEqual([
      "If-Match",
      "If-Modified-Since",
      "If-None-Match",
      "If-Unmodified-Since",
    ]);
  });

  it("writes: If-Match / If-None-Match where they are read, 412 and the ETag", () => {
    expect(headerParams("/v1/objects/{key}", "put")).toEqual(["If-Match", "If-None-Match"]);
    // If-Match is served now (no 501): a mismatch or a missing object is 412.
    const putStatuses = Object.keys(doc.paths["/v1/objects/{key}"].put.responses);
    expect(putStatuses).toEqual(expect.arrayContaining(["412"]));
    expect(putStatuses).not.toContain("501");
    for (const method of ["put", "delete"]) {
      expect(headerParams("/v1/kv/{namespace}/{key}", method)).toEqual(["If-Match", "If-None-Match"]);
      expect(doc.paths["/v1/kv/{namespace}/{key}"][method].responses["412"]).toBeDefined();
    }
    expect(Object.keys(doc.paths["/v1/kv/{namespace}/{key}"].get.responses["200"].headers)).toEqual(["ETag"]);
  });

  it("Retry-After on the errors that carry it", () => {
    const readyz = doc.paths["/readyz"].get.responses;
    expect(readyz["503"].headers["Retry-After"]).toEqual({ $ref: "#/components/headers/RetryAfter" });
    expect(readyz.default.headers["Retry-After"]).toBeDefined();
    expect(doc.components.headers.RetryAfter.schema).toEqual({ type: "integer", minimum: 1 });
  });
});
