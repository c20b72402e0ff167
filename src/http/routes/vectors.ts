/**
 * Vector collections over HTTP (VEC-1): `PUT /v1/vectors/{collection}` `{dimensions, metric}`
 * creates one, `PUT|DELETE /v1/vectors/{collection}/{id}` stores or removes a vector with
 * optional filter fields, `POST /v1/vectors/{collection}:query` returns the nearest, smallest
 * distance first. `GET /v1/vectors` lists the tenant's collections, `GET /v1/vectors/{collection}`
 * shows one with its vector count, `DELETE /v1/vectors/{collection}` drops it with all its
 * vectors. `dims`, the earlier name of `dimensions`, is still accepted and answered for one
 * release, declared deprecated (docs/http.md, "Naming").
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
  dimensions: z.number().int(),
  dims: z.number().int().meta({
    deprecated: true,
    description: "Deprecated: the same as dimensions, answered for one more release",
  }),
  metric: z.enum(["l2", "cosine", "ip"]),
  created_at: z.string(),
});

const dimensionsSchema = z.number().int().min(1).max(65_536);

const createBody = z
  .object({
    dimensions: dimensionsSchema.optional().describe("How many numbers each vector holds (required)"),
    dims: dimensionsSchema
      .optional()
      .meta({ deprecated: true, description: "Deprecated: the earlier name of dimensions, still accepted" }),
    metric: z.enum(["l2", "cosine", "ip"]).optional().describe("Default l2"),
  })
  .strict()
  .refine((b) => b.dimensions !== undefined || b.dims !== undefined, {
    message: "required",
    path: ["dimensions"],
  })
  .refine((b) => b.dimensions === undefined || b.dims === undefined || b.dimensions === b.dims, {
    message: "dims (the deprecated name of dimensions) differs from dimensions",
    path: ["dims"],
  });

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

function collectionJson(c: VectorCollection): z.infer<typeof collectionSchema> {
  return {
    name: c.name,
    dimensions: c.dimensions,
    dims: c.dimensions,
    metric: c.metric,
    created_at: c.createdAt,
  };
}

export function vectorRoutes(): RouteSpec[] {
  const create: RouteSpec<CollectionParams, unknown, z.infer<typeof createBody>> = {
    method: "PUT",
    path: "/v1/vectors/{collection}",
    operationId: "createCollection",
    summary: "Create a vector collection {dimensions, metric}",
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
        dimensions: (body.dimensions ?? body.dims) as number,
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
