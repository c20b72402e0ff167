import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { errorCode, type Harness, startServer } from "./harness.js";

describe("vector collections over HTTP (VEC-1)", () => {
  let h: Harness;
  let acme: string;
  let other: string;

  beforeAll(async () => {
    h = await startServer();
    acme = await h.token("acme");
    other = await h.token("other");
  });
  afterAll(async () => h?.close());

  it("creates a collection, stores, queries with filters and deletes vectors, per tenant", async () => {
    const created = await h.call("PUT", "/v1/vectors/docs", {
      token: acme,
      json: { dimensions: 3, metric: "l2" },
    });
    expect(created.status).toBe(201);
    expect(created.json.data).toMatchObject({ name: "docs", dimensions: 3, metric: "l2" });
    expect(
      (await h.call("PUT", "/v1/vectors/docs", { token: acme, json: { dimensions: 3, metric: "l2" } }))
        .status,
    ).toBe(200);
    const conflict = await h.call("PUT", "/v1/vectors/docs", { token: acme, json: { dimensions: 4 } });
    expect(conflict.status).toBe(409);
    expect(errorCode(conflict)).toBe("VECTOR_COLLECTION_CONFLICT");

    for (const [id, vector, category] of [
      ["a", [0, 0, 0], "x"],
      ["b", [1, 0, 0], "y"],
      ["c", [2, 0, 0], "x"],
    ] as const) {
      const r = await h.call("PUT", `/v1/vectors/docs/${id}`, { token: acme, json: { vector, category } });
      expect(r.status).toBe(200);
    }
    const q = await h.call("POST", "/v1/vectors/docs:query", {
      token: acme,
      json: { vector: [0.1, 0, 0], k: 2 },
    });
    expect(q.status).toBe(200);
    expect(q.json.data.items.map((i: { id: string }) => i.id)).toEqual(["a", "b"]);
    expect(q.json.data.items[0].distance).toBeCloseTo(0.01, 4);
    const filtered = await h.call("POST", "/v1/vectors/docs:query", {
      token: acme,
      json: { vector: [1, 0, 0], k: 5, filter: { category: "x" }, mode: "accurate" },
    });
    expect(filtered.json.data.items.map((i: { id: string }) => i.id).sort()).toEqual(["a", "c"]);

    expect((await h.call("DELETE", "/v1/vectors/docs/a", { token: acme })).status).toBe(200);
    const after = await h.call("POST", "/v1/vectors/docs:query", {
      token: acme,
      json: { vector: [0, 0, 0], k: 1 },
    });
    expect(after.json.data.items.map((i: { id: string }) => i.id)).toEqual(["b"]);

    const elsewhere = await h.call("POST", "/v1/vectors/docs:query", {
      token: other,
      json: { vector: [0, 0, 0] },
    });
    expect(elsewhere.status).toBe(404);
    expect(errorCode(elsewhere)).toBe("VECTOR_COLLECTION_NOT_FOUND");
  });

  it("lists, shows and drops collections; a dropped collection's vectors are gone", async () => {
    for (const name of ["zeta", "alpha"])
      expect(
        (
          await h.call("PUT", `/v1/vectors/${name}`, {
            token: acme,
            json: { dimensions: 2, metric: "cosine" },
          })
        ).status,
      ).toBe(201);
    await h.call("PUT", "/v1/vectors/alpha/v1", { token: acme, json: { vector: [1, 0] } });
    await h.call("PUT", "/v1/vectors/alpha/v2", { token: acme, json: { vector: [0, 1] } });
    const list = await h.call("GET", "/v1/vectors", { token: acme });
    expect(list.status).toBe(200);
    const names = list.json.data.items.map((c: { name: string }) => c.name);
    expect(names).toEqual([...names].sort());
    expect(names).toEqual(expect.arrayContaining(["alpha", "zeta"]));
    const page = await h.call("GET", "/v1/vectors?limit=1", { token: acme });
    expect(page.json.data.items).toHaveLength(1);
    expect(page.json.data.next_cursor).toEqual(expect.any(String));
    expect((await h.call("GET", "/v1/vectors", { token: other })).json.data.items).toEqual([]);
    const shown = await h.call("GET", "/v1/vectors/alpha", { token: acme });
    expect(shown.json.data).toMatchObject({ name: "alpha", dimensions: 2, metric: "cosine", count: 2 });
    expect((await h.call("DELETE", "/v1/vectors/alpha", { token: other })).status).toBe(404);
    expect((await h.call("DELETE", "/v1/vectors/alpha", { token: acme })).status).toBe(200);
    expect((await h.call("GET", "/v1/vectors/alpha", { token: acme })).status).toBe(404);
    const again = await h.call("DELETE", "/v1/vectors/alpha", { token: acme });
    expect(again.status).toBe(404);
    expect(errorCode(again)).toBe("VECTOR_COLLECTION_NOT_FOUND");
    // Re-created with the same name, it starts empty.
    await h.call("PUT", "/v1/vectors/alpha", { token: acme, json: { dimensions: 2, metric: "cosine" } });
    const empty = await h.call("POST", "/v1/vectors/alpha:query", { token: acme, json: { vector: [1, 0] } });
    expect(empty.json.data.items).toEqual([]);
  });

  it("takes dimensions, and dims (its deprecated earlier name) for one more release; answers both", async () => {
    const created = await h.call("PUT", "/v1/vectors/named", { token: acme, json: { dimensions: 4 } });
    expect(created.status).toBe(201);
    expect(created.json.data).toEqual({
      name: "named",
      dimensions: 4,
      dims: 4,
      metric: "l2",
      created_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
    });
    const old = await h.call("PUT", "/v1/vectors/legacy", { token: acme, json: { dims: 3, metric: "ip" } });
    expect(old.status).toBe(201);
    expect(old.json.data).toMatchObject({ name: "legacy", dimensions: 3, dims: 3, metric: "ip" });
    const same = await h.call("PUT", "/v1/vectors/legacy", {
      token: acme,
      json: { dims: 3, dimensions: 3, metric: "ip" },
    });
    expect(same.status).toBe(200);
    const shown = await h.call("GET", "/v1/vectors/legacy", { token: acme });
    expect(shown.json.data).toMatchObject({ dimensions: 3, dims: 3, count: 0 });
    const listed = await h.call("GET", "/v1/vectors", { token: acme });
    expect(listed.json.data.items.find((c: { name: string }) => c.name === "legacy")).toMatchObject({
      dimensions: 3,
      dims: 3,
    });

    const both = await h.call("PUT", "/v1/vectors/both", { token: acme, json: { dims: 3, dimensions: 4 } });
    expect(both.status).toBe(400);
    expect(errorCode(both)).toBe("REQUEST_INVALID");
    expect(both.json.error).toContain("body.dims");
    const neither = await h.call("PUT", "/v1/vectors/neither", { token: acme, json: { metric: "l2" } });
    expect(neither.status).toBe(400);
    expect(neither.json.error).toBe("body.dimensions: required");
    expect((await h.call("GET", "/v1/vectors/both", { token: acme })).status).toBe(404);

    const doc = (await h.call("GET", "/openapi.json")).json;
    const create = doc.paths["/v1/vectors/{collection}"].put;
    const request = create.requestBody.content["application/json"].schema.properties;
    expect(request.dimensions.deprecated).toBeUndefined();
    expect(request.dims.deprecated).toBe(true);
    const answer = create.responses["201"].content["application/json"].schema.properties.data.properties;
    expect(answer.dimensions.deprecated).toBeUndefined();
    expect(answer.dims.deprecated).toBe(true);
  });

  it("answers 400 on vectors of the wrong length", async () => {
    await h.call("PUT", "/v1/vectors/small", { token: acme, json: { dimensions: 2 } });
    const r = await h.call("PUT", "/v1/vectors/small/v1", { token: acme, json: { vector: [1, 2, 3] } });
    expect(r.status).toBe(400);
    expect(errorCode(r)).toBe("VECTOR_DIMENSIONS_MISMATCH");
    expect((await h.call("POST", "/v1/vectors/small:query", { json: { vector: [1, 2] } })).status).toBe(401);
  });
});
