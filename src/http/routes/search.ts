/**
 * Full-text search over HTTP (SRCH-1…4): `GET /v1/search?q=…` and `POST /v1/search`. Mode
 * `fulltext` (the default) is served by `tenant.search()`; `vector` and `hybrid` answer 501
 * NOT_IMPLEMENTED until the vector indexes exist. A degraded result (index unavailable, catalog
 * scan instead, SRCH-3) is still 200, with `degraded: true`. The memories (`./memories.ts`) and
 * vector collection (`./vectors.ts`) routes are registered with these.
 */
import { z } from "zod";
import { KuraError } from "../../core/errors.js";
import type { SearchOptions, SearchResult } from "../../engine/search.js";
import type { RouteSpec } from "../route.js";
import { cursorSchema, idSchema, limitSchema } from "../schemas.js";
import { memoryRoutes } from "./memories.js";
import { vectorRoutes } from "./vectors.js";

const TAG = "search";
const MAX_LIMIT = 100;

const time = z
  .union([
    z
      .string()
      .regex(/^\d{1,15}$/)
      .transform(Number),
    z.string().max(64),
  ])
  .optional();

const modeSchema = z
  .enum(["fulltext", "vector", "hybrid"])
  .optional()
  .describe("fulltext (default); vector and hybrid are not built yet (501)");

const getQuery = z
  .object({
    q: z.string().min(1).max(1000).describe("Words to find (any language; CJK words of any length)"),
    chatId: idSchema.optional(),
    role: z.string().max(32).optional(),
    since: time.describe("ISO time or epoch ms: messages created at or after"),
    until: time.describe("ISO time or epoch ms: messages created before"),
    limit: limitSchema(MAX_LIMIT),
    cursor: cursorSchema,
    mode: modeSchema,
  })
  .strict();

const postBody = z
  .object({
    q: z.string().min(1).max(1000),
    k: z.number().int().min(1).max(MAX_LIMIT).optional().describe("How many results (default 20)"),
    filter: z
      .object({
        chat_id: idSchema.optional(),
        role: z.string().max(32).optional(),
        since: z.union([z.string().max(64), z.number().int()]).optional(),
        until: z.union([z.string().max(64), z.number().int()]).optional(),
      })
      .strict()
      .optional(),
    cursor: z.string().max(2048).optional(),
    mode: modeSchema,
  })
  .strict();

const hitSchema = z.object({
  id: z.string(),
  chat_id: z.string(),
  role: z.string(),
  created_at: z.string(),
  score: z.number(),
  snippet: z.string(),
  highlights: z.array(z.tuple([z.number().int(), z.number().int()])).describe("[start, end) in snippet"),
});

const resultSchema = z.object({
  items: z.array(hitSchema),
  next_cursor: z.string().nullable(),
  degraded: z.boolean().describe("true: the index was unavailable and the catalog was scanned (SRCH-3)"),
  backend: z.string(),
});

function resultJson(r: SearchResult) {
  return {
    items: r.hits.map((h) => ({
      id: h.id,
      chat_id: h.chatId,
      role: h.role,
      created_at: h.createdAt,
      score: h.score,
      snippet: h.snippet,
      highlights: h.highlights,
    })),
    next_cursor: r.cursor ?? null,
    degraded: r.degraded,
    backend: r.backend,
  };
}

function fulltextOnly(mode: string | undefined, operation: string): void {
  if (mode !== undefined && mode !== "fulltext")
    throw new KuraError("NOT_IMPLEMENTED", `search mode ${mode}: vector search (VEC-4) is not built yet`, {
      operation,
    });
}

const defined = <T extends object>(o: T) =>
  Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;

export function searchRoutes(): RouteSpec[] {
  const get: RouteSpec<unknown, z.infer<typeof getQuery>, unknown> = {
    method: "GET",
    path: "/v1/search",
    operationId: "search",
    summary: "Search messages (fulltext; vector and hybrid answer 501)",
    tag: TAG,
    query: getQuery,
    responses: { 200: { description: "Ranked hits with highlighted snippets", schema: resultSchema } },
    handler: async ({ tenant, query }) => {
      fulltextOnly(query.mode, "search");
      const options: SearchOptions = defined({
        chatId: query.chatId,
        role: query.role,
        since: query.since,
        until: query.until,
        limit: query.limit,
        cursor: query.cursor,
      });
      return { status: 200, data: resultJson(await tenant.search(query.q, options)) };
    },
  };
  const post: RouteSpec<unknown, unknown, z.infer<typeof postBody>> = {
    method: "POST",
    path: "/v1/search",
    operationId: "searchPost",
    summary: "Search with a query (fulltext; vector and hybrid answer 501)",
    tag: TAG,
    body: postBody,
    responses: { 200: { description: "Ranked hits with highlighted snippets", schema: resultSchema } },
    handler: async ({ tenant, body }) => {
      fulltextOnly(body.mode, "searchPost");
      const options: SearchOptions = defined({
        chatId: body.filter?.chat_id,
        role: body.filter?.role,
        since: body.filter?.since,
        until: body.filter?.until,
        limit: body.k,
        cursor: body.cursor,
      });
      return { status: 200, data: resultJson(await tenant.search(body.q, options)) };
    },
  };
  // Memory search (MEM-1) and vector collections (VEC-1) are served beside full-text search.
  return [get, post, ...memoryRoutes(), ...vectorRoutes()] as RouteSpec[];
}
