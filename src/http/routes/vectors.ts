/**
 * Vector collections over HTTP (VEC-1): `PUT /v1/vectors/{collection}` `{dims, metric}` creates
 * one, `PUT|DELETE /v1/vectors/{collection}/{id}` stores or removes a vector with optional filter
 * fields, `POST /v1/vectors/{collection}:query` returns the nearest, smallest distance first.
 * `GET /v1/vectors` lists the tenant's collections, `GET /v1/vectors/{collection}` shows one with
 * its vector count, `DELETE /v1/vectors/{collection}` drops it with all its vectors.
 */
import { z } from "zod";
import { KuraError } from "../../core/errors.js";
import type { VectorCollection } from "../../domains/vectors.js";
import type { VectorFilter } from "../../ports/vector-index.js";
import { actionSuffix, type RouteSpec } from "../route.js";
import { cursorSchema, idSchema, limitSchema } from "../schemas.js";

const TAG = "vectors";
const collectionParams = z.object({ collection: idSchema });
const itemParams = z.object({ collection: idSchema, id: idSchema });
type CollectionParams = z.infer<typeof collectionParams>;
type ItemParams = z.infer<typeof itemParams>;

const collectionSchema = z.object({
  name: z.string(),
  dims: z.number().int(),
  metric: z.enum(["l2", "cosine", "ip"]),
  created_at: z.string(),
});

const createBody = z
  .object({
    dims: z.number().int().min(1).max(65_536),
    metric: z.enum(["l2", "cosine", "ip"]).optional().describe("Default l2"),
  })
  .strict();

const filterFields = {
  user_id: idSchema.optional(),
  chat_id: idSchema.optional(),
  category: z.string().min(1).max(64).optional(),
};

const putBody = z.object({ vector: z.array(z.number()).min(1).max(65_536), ...filterFields }).strict();

const queryBody = z
  .object({
    vector: z.array(z.number()).min(1).max(65_536),
    k: z.number().int().min(1).max(1000).optional().describe("How many results (default 10)"),
    filter: z.object(filterFields).strict().optional(),
    mode: z.enum(["fast", "balanced", "accurate"]).optional(),
  })
  .strict();

const hitSchema = z.object({
  id: z.string(),
  distance: z.number().describe("Smaller is nearer"),
  user_id: z.string().optional(),
  chat_id: z.string().optional(),
  category: z.string().optional(),
});

const toFilter = (f: { user_id?: string; chat_id?: string; category?: string }): VectorFilter => ({
  ...(f.user_id !== undefined ? { userId: f.user_id } : {}),
  ...(f.chat_id !== undefined ? { chatId: f.chat_id } : {}),
  ...(f.category !== undefined ? { category: f.category } : {}),
});

function collectionJson(c: VectorCollection) {
  return { name: c.name, dims: c.dimensions, metric: c.metric, created_at: c.created_at };
}

export function vectorRoutes(): RouteSpec[] {
  const create: RouteSpec<CollectionParams, unknown, z.infer<typeof createBody>> = {
    method: "PUT",
    path: "/v1/vectors/{collection}",
    operationId: "createCollection",
    summary: "Create a vector collection {dims, metric}",
    tag: TAG,
    params: collectionParams,
    body: createBody,
    responses: {
      200: { description: "It existed with the same definition", schema: collectionSchema },
      201: { description: "Created", schema: collectionSchema },
      409: { description: "It exists with another definition (VECTOR_COLLECTION_CONFLICT)" },
    },
    handler: async ({ tenant, params, body }) => {
      const { collection, created } = await tenant.vectors.create(params.collection, {
        dimensions: body.dims,
        metric: body.metric ?? "l2",
      });
      return { status: created ? 201 : 200, data: collectionJson(collection) };
    },
  };
  const put: RouteSpec<ItemParams, unknown, z.infer<typeof putBody>> = {
    method: "PUT",
    path: "/v1/vectors/{collection}/{id}",
    operationId: "putVector",
    summary: "Store a vector",
    tag: TAG,
    params: itemParams,
    body: putBody,
    responses: {
      200: { description: "Stored (replacing any earlier one)", schema: z.object({ id: z.string() }) },
    },
    handler: async ({ tenant, params, body }) => {
      await tenant.vectors.put(params.collection, params.id, body.vector, toFilter(body));
      return { status: 200, data: { id: params.id } };
    },
  };
  const del: RouteSpec<ItemParams, unknown, unknown> = {
    method: "DELETE",
    path: "/v1/vectors/{collection}/{id}",
    operationId: "deleteVector",
    summary: "Delete a vector",
    tag: TAG,
    params: itemParams,
    responses: {
      200: { description: "Gone (also when it was absent)", schema: z.object({ id: z.string() }) },
    },
    handler: async ({ tenant, params }) => {
      await tenant.vectors.delete(params.collection, params.id);
      return { status: 200, data: { id: params.id } };
    },
  };
  const query: RouteSpec<CollectionParams, unknown, z.infer<typeof queryBody>> = {
    method: "POST",
    path: "/v1/vectors/{collection}:query",
    url: "/v1/vectors/:collectionAction",
    mapParams: actionSuffix("collectionAction", "query", "collection"),
    operationId: "queryVectors",
    summary: "Nearest neighbours",
    tag: TAG,
    params: collectionParams,
    body: queryBody,
    responses: { 200: { description: "Nearest first", schema: z.object({ items: z.array(hitSchema) }) } },
    handler: async ({ tenant, params, body }) => {
      const hits = await tenant.vectors.query(params.collection, {
        vector: body.vector,
        ...(body.k !== undefined ? { k: body.k } : {}),
        ...(body.filter ? { filter: toFilter(body.filter) } : {}),
        ...(body.mode ? { mode: body.mode } : {}),
      });
      const items = hits.map((h) => ({
        id: h.id,
        distance: h.distance,
        ...(h.userId !== undefined ? { user_id: h.userId } : {}),
        ...(h.chatId !== undefined ? { chat_id: h.chatId } : {}),
        ...(h.category !== undefined ? { category: h.category } : {}),
      }));
      return { status: 200, data: { items } };
    },
  };
  const list: RouteSpec<unknown, { cursor?: string; limit?: number }, unknown> = {
    method: "GET",
    path: "/v1/vectors",
    operationId: "listCollections",
    summary: "The tenant's vector collections, in name order",
    tag: TAG,
    query: z.object({ cursor: cursorSchema, limit: limitSchema(1000) }).strict(),
    responses: {
      200: {
        description: "A page of collections",
        schema: z.object({ items: z.array(collectionSchema), next_cursor: z.string().nullable() }),
      },
    },
    handler: async ({ tenant, query }) => {
      const page = await tenant.vectors.list({
        ...(query.cursor !== undefined ? { cursor: query.cursor } : {}),
        ...(query.limit !== undefined ? { limit: query.limit } : {}),
      });
      return {
        status: 200,
        data: { items: page.items.map(collectionJson), next_cursor: page.cursor ?? null },
      };
    },
  };
  const show: RouteSpec<CollectionParams, unknown, unknown> = {
    method: "GET",
    path: "/v1/vectors/{collection}",
    operationId: "getCollection",
    summary: "A vector collection's definition and how many vectors it holds",
    tag: TAG,
    params: collectionParams,
    responses: {
      200: { description: "The collection", schema: collectionSchema.extend({ count: z.number().int() }) },
    },
    handler: async ({ tenant, params }) => {
      const collection = await tenant.vectors.get(params.collection);
      const count = await tenant.vectors.count(params.collection);
      return { status: 200, data: { ...collectionJson(collection), count } };
    },
  };
  const drop: RouteSpec<CollectionParams, unknown, unknown> = {
    method: "DELETE",
    path: "/v1/vectors/{collection}",
    operationId: "dropCollection",
    summary: "Drop a vector collection and every vector in it",
    tag: TAG,
    params: collectionParams,
    responses: { 200: { description: "Dropped", schema: z.object({ name: z.string() }) } },
    handler: async ({ tenant, params }) => {
      if (!(await tenant.vectors.drop(params.collection)))
        throw new KuraError("VECTOR_COLLECTION_NOT_FOUND", `no vector collection ${params.collection}`, {
          operation: "dropCollection",
          context: { collection: params.collection },
        });
      return { status: 200, data: { name: params.collection } };
    },
  };
  return [create, list, show, drop, put, del, query] as RouteSpec[];
}
