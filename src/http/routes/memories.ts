/**
 * Memories over HTTP (MEM-1): `POST /v1/users/{user_id}/memories` stores one (embedded with the
 * configured embedder), `GET` lists a user's memories in id order, and
 * `POST /v1/users/{user_id}/memories:search` finds the nearest by `query` text or by `vector`.
 * The wire's snake_case names are mapped to the library's camelCase here.
 */
import { z } from "zod";
import type { Memory } from "../../domains/memories.js";
import type { RouteSpec } from "../route.js";
import { cursorSchema, idSchema, limitSchema } from "../schemas.js";

const TAG = "memories";
const user = z.object({ user_id: idSchema });
type User = z.infer<typeof user>;

const memorySchema = z.object({
  user_id: z.string(),
  memory_id: z.string(),
  content: z.string(),
  category: z.string().nullable(),
  created_at: z.string(),
  updated_at: z.string(),
});

const putBody = z
  .object({
    content: z.string().min(1).max(32_768),
    category: z.string().max(64).nullable().optional(),
    memory_id: idSchema.optional().describe("Default: a new UUIDv7; an existing id is replaced"),
  })
  .strict();

const listQuery = z.object({ limit: limitSchema(1000), cursor: cursorSchema }).strict();

const searchBody = z
  .object({
    query: z.string().min(1).max(32_768).optional(),
    vector: z.array(z.number()).min(1).max(65_536).optional(),
    k: z.number().int().min(1).max(100).optional().describe("How many results (default 10)"),
    category: z.string().max(64).optional(),
    mode: z.enum(["fast", "balanced", "accurate"]).optional(),
  })
  .strict()
  .refine((b) => (b.query === undefined) !== (b.vector === undefined), {
    message: "give exactly one of query and vector",
  });

const memoryJson = (m: Memory): z.infer<typeof memorySchema> => ({
  user_id: m.userId,
  memory_id: m.memoryId,
  content: m.content,
  category: m.category,
  created_at: m.createdAt,
  updated_at: m.updatedAt,
});

export function memoryRoutes(): RouteSpec[] {
  const add: RouteSpec<User, unknown, z.infer<typeof putBody>> = {
    method: "POST",
    path: "/v1/users/{user_id}/memories",
    operationId: "addMemory",
    summary: "Store a memory",
    tag: TAG,
    params: user,
    body: putBody,
    responses: { 201: { description: "The stored memory", schema: memorySchema } },
    handler: async ({ tenant, params, body }) => {
      const memory = await tenant.memories.put(params.user_id, {
        content: body.content,
        ...(body.category !== undefined ? { category: body.category } : {}),
        ...(body.memory_id !== undefined ? { memoryId: body.memory_id } : {}),
      });
      return { status: 201, data: memoryJson(memory) };
    },
  };
  const list: RouteSpec<User, z.infer<typeof listQuery>, unknown> = {
    method: "GET",
    path: "/v1/users/{user_id}/memories",
    operationId: "listMemories",
    summary: "A user's memories",
    tag: TAG,
    params: user,
    query: listQuery,
    responses: {
      200: {
        description: "One page, in id order",
        schema: z.object({ items: z.array(memorySchema), next_cursor: z.string().nullable() }),
      },
    },
    handler: async ({ tenant, params, query }) => {
      const page = await tenant.memories.list(params.user_id, {
        ...(query.limit !== undefined ? { limit: query.limit } : {}),
        ...(query.cursor !== undefined ? { cursor: query.cursor } : {}),
      });
      return { status: 200, data: { items: page.items.map(memoryJson), next_cursor: page.cursor ?? null } };
    },
  };
  const search: RouteSpec<User, unknown, z.infer<typeof searchBody>> = {
    method: "POST",
    path: "/v1/users/{user_id}/memories:search",
    operationId: "searchMemories",
    summary: "Similar memories",
    tag: TAG,
    params: user,
    body: searchBody,
    responses: {
      200: {
        description: "Nearest first",
        schema: z.object({
          items: z.array(memorySchema.extend({ distance: z.number().describe("Smaller is nearer") })),
        }),
      },
    },
    handler: async ({ tenant, params, body }) => {
      const hits = await tenant.memories.search(params.user_id, {
        ...(body.query !== undefined ? { query: body.query } : {}),
        ...(body.vector !== undefined ? { vector: body.vector } : {}),
        ...(body.k !== undefined ? { k: body.k } : {}),
        ...(body.category !== undefined ? { category: body.category } : {}),
        ...(body.mode !== undefined ? { mode: body.mode } : {}),
      });
      return {
        status: 200,
        data: { items: hits.map((h) => ({ ...memoryJson(h.memory), distance: h.distance })) },
      };
    },
  };
  return [add, list, search] as RouteSpec[];
}
