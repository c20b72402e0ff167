/**
 * Search over HTTP (SRCH-1…4, VEC-4): `GET /v1/search?q=…` and `POST /v1/search`, served by
 * `tenant.search()`. Mode `fulltext` (the default) ranks by the full-text index; `vector` and
 * `hybrid` (reciprocal rank fusion of both) need `vector.embed_messages` and otherwise answer 501
 * VECTOR_SEARCH_DISABLED; `POST` with `vector` searches by a given embedding (mode `vector`).
 * A degraded result (index unavailable, catalog scan instead, SRCH-3) is still 200, with
 * `degraded: true`. The memories (`./memories.ts`) and
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
  .describe("fulltext (default); vector and hybrid need vector.embed_messages (else 501)");

const consistentSchema = z
  .enum(["true", "false"])
  .transform((v) => v === "true")
  .optional()
  .describe(
    "true: read your writes — wait (up to 5 s) until the index has every message committed before " +
      "the request; 503 OPERATION_TIMEOUT if it cannot catch up",
  );

const getQuery = z
  .object({
    q: z.string().min(1).max(1000).describe("Words to find (any language; CJK words of any length)"),
    chat_id: idSchema.optional().describe("Only this chat's messages"),
    chatId: idSchema
      .optional()
      .meta({ deprecated: true, description: "Deprecated: the earlier name of chat_id, still accepted" }),
    role: z.string().max(32).optional(),
    since: time.describe("ISO time or epoch ms: messages created at or after"),
    until: time.describe("ISO time or epoch ms: messages created before"),
    limit: limitSchema(MAX_LIMIT),
    cursor: cursorSchema,
    mode: modeSchema,
    consistent: consistentSchema,
    scope: z
      .enum(["messages", "mail", "memories"])
      .optional()
      .describe(
        "messages (default); mail: full-text over the tenant's mail (subject, addresses, text body); " +
          "memories: memory text by similarity (the embedder's)",
      ),
    mailbox_id: idSchema.optional().describe("scope mail: only this mailbox"),
    user_id: idSchema.optional().describe("scope memories: only this user's memories"),
  })
  .strict()
  .refine((q) => q.chat_id === undefined || q.chatId === undefined || q.chat_id === q.chatId, {
    message: "chatId (the deprecated name of chat_id) differs from chat_id",
    path: ["chatId"],
  });

const postBody = z
  .object({
    q: z.string().min(1).max(1000).optional().describe("Text to find; required unless vector is given"),
    vector: z
      .array(z.number())
      .min(1)
      .max(65_536)
      .optional()
      .describe("Search by this embedding (mode vector; dimensions of vector.dimensions)"),
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
    consistent: z
      .boolean()
      .optional()
      .describe("true: read your writes (wait up to 5 s for the index to have every committed message)"),
  })
  .strict();

const hitSchema = z.object({
  id: z.string(),
  chat_id: z.string(),
  role: z.string(),
  created_at: z.string(),
  score: z.number(),
  snippet: z
    .string()
    .describe(
      "Text around the first match; for a hit only the vector half of vector or hybrid found, the message's preview",
    ),
  highlights: z
    .array(z.tuple([z.number().int(), z.number().int()]))
    .describe(
      "[start, end) in snippet of each query word; for a hit only the vector half found, those its preview " +
        "holds (often none: a message can be near in meaning without sharing a word)",
    ),
});

const addressSchema = z.object({ name: z.string(), address: z.string() });
const mailHitSchema = z.object({
  id: z.string(),
  mailbox_id: z.string(),
  subject: z.string().nullable(),
  from: addressSchema.nullable(),
  received_at: z.string(),
  score: z.number(),
  snippet: z.string(),
  highlights: z.array(z.tuple([z.number().int(), z.number().int()])),
});
const memoryHitSchema = z.object({
  id: z.string().describe("{user_id}/{memory_id}"),
  user_id: z.string(),
  memory_id: z.string(),
  content: z.string(),
  category: z.string().nullable(),
  distance: z.number(),
});

const resultSchema = z.object({
  scope: z.enum(["messages", "mail", "memories"]).optional(),
  items: z.array(z.union([hitSchema, mailHitSchema, memoryHitSchema])),
  next_cursor: z.string().nullable(),
  degraded: z.boolean().describe("true: the index was unavailable and the catalog was scanned (SRCH-3)"),
  backend: z.string(),
  mode: z.enum(["fulltext", "vector", "hybrid"]),
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
    mode: r.mode,
  };
}

const SEARCH_RESPONSES = {
  200: { description: "Ranked hits with highlighted snippets", schema: resultSchema },
  501: { description: "mode vector or hybrid without vector.embed_messages (VECTOR_SEARCH_DISABLED)" },
};

const defined = <T extends object>(o: T) =>
  Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;

export function searchRoutes(): RouteSpec[] {
  const get: RouteSpec<unknown, z.infer<typeof getQuery>, unknown> = {
    method: "GET",
    path: "/v1/search",
    operationId: "search",
    summary: "Search messages (fulltext, vector or hybrid)",
    tag: TAG,
    query: getQuery,
    responses: SEARCH_RESPONSES,
    handler: async ({ tenant, query }) => {
      if (query.scope === "mail") {
        const r = await tenant.searchMail(
          query.q,
          defined({
            mailboxId: query.mailbox_id,
            limit: query.limit,
            cursor: query.cursor,
            consistent: query.consistent,
          }),
        );
        const items = r.hits.map((h) => ({
          id: h.id,
          mailbox_id: h.mailboxId,
          subject: h.subject,
          from: h.from,
          received_at: h.receivedAt,
          score: h.score,
          snippet: h.snippet,
          highlights: h.highlights,
        }));
        const data = {
          scope: "mail",
          items,
          next_cursor: r.cursor ?? null,
          degraded: r.degraded,
          backend: r.backend,
        };
        return { status: 200, data: { ...data, mode: "fulltext" } };
      }
      if (query.scope === "memories") {
        const hits = await tenant.memories.searchText(
          query.q,
          defined({ userId: query.user_id, k: query.limit }),
        );
        const items = hits.map((h) => ({
          id: `${h.memory.userId}/${h.memory.memoryId}`,
          user_id: h.memory.userId,
          memory_id: h.memory.memoryId,
          content: h.memory.content,
          category: h.memory.category ?? null,
          distance: h.distance,
        }));
        const data = { scope: "memories", items, next_cursor: null, degraded: false, backend: "vector" };
        return { status: 200, data: { ...data, mode: "vector" } };
      }
      const options: SearchOptions = defined({
        mode: query.mode,
        chatId: query.chat_id ?? query.chatId,
        role: query.role,
        since: query.since,
        until: query.until,
        limit: query.limit,
        cursor: query.cursor,
        consistent: query.consistent,
      });
      return { status: 200, data: resultJson(await tenant.search(query.q, options)) };
    },
  };
  const post: RouteSpec<unknown, unknown, z.infer<typeof postBody>> = {
    method: "POST",
    path: "/v1/search",
    operationId: "searchPost",
    summary: "Search with a query body (fulltext, vector or hybrid; or by a vector)",
    tag: TAG,
    body: postBody,
    responses: SEARCH_RESPONSES,
    handler: async ({ tenant, body }) => {
      if (body.q === undefined && body.vector === undefined)
        throw new KuraError("REQUEST_INVALID", "give q, vector or both", { operation: "searchPost" });
      const options: SearchOptions = defined({
        mode: body.mode ?? (body.vector !== undefined ? "vector" : undefined),
        vector: body.vector,
        chatId: body.filter?.chat_id,
        role: body.filter?.role,
        since: body.filter?.since,
        until: body.filter?.until,
        limit: body.k,
        cursor: body.cursor,
        consistent: body.consistent,
      });
      return { status: 200, data: resultJson(await tenant.search(body.q ?? "", options)) };
    },
  };
  // Memory search (MEM-1) and vector collections (VEC-1) are served beside full-text search.
  return [get, post, ...memoryRoutes(), ...vectorRoutes()] as RouteSpec[];
}
