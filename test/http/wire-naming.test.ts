/**
 * The naming rule of the wire (docs/http.md, "Naming"): every name the served OpenAPI document
 * gives to a JSON property, a query parameter or a path parameter is snake_case (header
 * parameters are named by HTTP and left out). Names Kura does not choose are listed in ALLOWED
 * with the reason; a deprecated alias kept for one release is listed in DEPRECATED and must be
 * declared `deprecated: true` in the document.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Harness, startServer } from "./harness.js";

const SNAKE = /^[a-z][a-z0-9]*(_[a-z0-9]+)*$/;

/** Names outside Kura's control: `where` (see `walk`) → reason. */
const ALLOWED: Record<string, string> = {};

/** Deprecated aliases still accepted for one release, each declared `deprecated: true`. */
const DEPRECATED: Record<string, string> = {
  "GET /v1/search query chatId": "the earlier name of chat_id",
};

type Json = Record<string, unknown>;

interface Name {
  where: string;
  name: string;
  deprecated: boolean;
}

/** Every property name of a JSON Schema, however deeply nested. */
function schemaNames(schema: unknown, where: string, out: Name[]): void {
  if (schema === null || typeof schema !== "object") return;
  if (Array.isArray(schema)) {
    for (const s of schema) schemaNames(s, where, out);
    return;
  }
  const s = schema as Json;
  for (const [name, sub] of Object.entries((s.properties ?? {}) as Record<string, Json>)) {
    out.push({ where: `${where} ${name}`, name, deprecated: sub?.deprecated === true });
    schemaNames(sub, `${where}.${name}`, out);
  }
  for (const key of ["items", "prefixItems", "anyOf", "oneOf", "allOf", "not", "additionalProperties"])
    schemaNames(s[key], where, out);
  for (const key of ["$defs", "definitions", "patternProperties"])
    for (const sub of Object.values((s[key] ?? {}) as Record<string, unknown>)) schemaNames(sub, where, out);
}

/** Every name the document gives to a property or a parameter, with where it is. */
function documentNames(doc: Json): Name[] {
  const out: Name[] = [];
  for (const [path, methods] of Object.entries(doc.paths as Record<string, Record<string, Json>>)) {
    for (const [method, operation] of Object.entries(methods)) {
      const at = `${method.toUpperCase()} ${path}`;
      for (const p of (operation.parameters ?? []) as Json[]) {
        // Header names (`If-Match`, `Range`) are HTTP's, not Kura's.
        if (p.in !== "query" && p.in !== "path") continue;
        // Deprecated on the parameter itself, where generated clients look for it.
        out.push({
          where: `${at} ${String(p.in)} ${String(p.name)}`,
          name: String(p.name),
          deprecated: p.deprecated === true,
        });
      }
      const body = (operation.requestBody as Json | undefined)?.content as Record<string, Json> | undefined;
      for (const [type, media] of Object.entries(body ?? {}))
        schemaNames(media.schema, `${at} body(${type})`, out);
      for (const [status, response] of Object.entries((operation.responses ?? {}) as Record<string, Json>)) {
        const content = (response.content ?? {}) as Record<string, Json>;
        for (const [type, media] of Object.entries(content))
          schemaNames(media.schema, `${at} ${status}(${type})`, out);
      }
    }
  }
  const components = ((doc.components as Json | undefined)?.schemas ?? {}) as Record<string, unknown>;
  for (const [name, schema] of Object.entries(components))
    schemaNames(schema, `#/components/schemas/${name}`, out);
  return out;
}

describe("the OpenAPI document names everything in snake_case", () => {
  let h: Harness;
  let names: Name[];

  beforeAll(async () => {
    h = await startServer();
    const r = await h.call("GET", "/openapi.json");
    expect(r.status).toBe(200);
    names = documentNames(r.json);
  });
  afterAll(async () => h?.close());

  it("finds the names it checks (bodies, responses, query and path parameters)", () => {
    const where = names.map((n) => n.where);
    expect(where).toContain("POST /v1/users/{user_id}/memories path user_id");
    expect(where).toContain("GET /v1/chats/{chat_id}/messages query include");
    expect(where).toContain("POST /v1/users/{user_id}/memories body(application/json) memory_id");
    expect(where.some((w) => w.startsWith("GET /v1/vectors/{collection} 200(application/json) "))).toBe(true);
    expect(names.length).toBeGreaterThan(200);
  });

  it("every property and parameter name is snake_case, or allowed with a reason", () => {
    const wrong = names.filter(
      (n) => !SNAKE.test(n.name) && !(n.where in ALLOWED) && !(n.where in DEPRECATED),
    );
    expect(wrong.map((n) => n.where)).toEqual([]);
  });

  it("the change feed's payloads and the audit log's details name Kura's fields in snake_case", async () => {
    const token = await h.token("acme");
    const appended = await h.call("POST", "/v1/chats/chat-1/messages", {
      token,
      json: { role: "user", content: "hello", metadata: { camelCase: 1 } },
    });
    expect(appended.status).toBe(201);
    expect(appended.json.data.metadata).toEqual({ camelCase: 1 });
    const id = appended.json.data.id as string;
    expect((await h.call("PATCH", `/v1/messages/${id}`, { token, json: { content: "edited" } })).status).toBe(
      200,
    );
    const feed = await h.call("GET", "/v1/changes", { token });
    const payloads = feed.json.data.items.map((e: { payload: Json }) => e.payload) as Json[];
    expect(payloads[0]).toMatchObject({ chat_id: "chat-1", version: 1, role: "user" });
    const audit = await h.call("GET", "/v1/audit", { token });
    const details = audit.json.data.items.map((e: { details: Json }) => e.details) as Json[];
    expect(details).toContainEqual(expect.objectContaining({ chat_id: "chat-1" }));
    const keys = [...payloads, ...details].flatMap((o) => Object.keys(o));
    expect(keys.length).toBeGreaterThan(3);
    expect(keys.filter((k) => !SNAKE.test(k))).toEqual([]);
  });

  it("every listed exception is still in the document, and every alias is declared deprecated", () => {
    const byWhere = new Map(names.map((n) => [n.where, n]));
    for (const where of Object.keys(ALLOWED)) expect(byWhere.has(where), where).toBe(true);
    for (const where of Object.keys(DEPRECATED)) expect(byWhere.get(where)?.deprecated, where).toBe(true);
  });
});
