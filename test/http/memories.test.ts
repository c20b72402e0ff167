import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { errorCode, type Harness, startServer } from "./harness.js";

describe("memories over HTTP (MEM-1)", () => {
  let h: Harness;
  let acme: string;
  let other: string;

  beforeAll(async () => {
    h = await startServer();
    acme = await h.token("acme");
    other = await h.token("other");
  });
  afterAll(async () => h?.close());

  it("stores, lists and searches a user's memories by text and by vector, per tenant and user", async () => {
    const put = (token: string, user: string, json: Record<string, unknown>) =>
      h.call("POST", `/v1/users/${user}/memories`, { token, json });
    const a = await put(acme, "alice", { content: "Alice prefers morning meetings", category: "preference" });
    expect(a.status).toBe(201);
    expect(a.json.data).toMatchObject({ user_id: "alice", category: "preference" });
    expect(a.json.data.memory_id).toMatch(/^[0-9a-f-]{36}$/);
    expect(
      (await put(acme, "alice", { memory_id: "m2", content: "東京オフィスの会議室は三階" })).status,
    ).toBe(201);
    expect((await put(acme, "bob", { content: "Bob prefers morning meetings" })).status).toBe(201);
    expect((await put(other, "alice", { content: "morning meetings elsewhere" })).status).toBe(201);

    const list = await h.call("GET", "/v1/users/alice/memories", { token: acme });
    expect(list.status).toBe(200);
    expect(list.json.data.items.map((m: { memory_id: string }) => m.memory_id)).toEqual([
      a.json.data.memory_id,
      "m2",
    ]);
    expect(list.json.data.next_cursor).toBeNull();

    const byText = await h.call("POST", "/v1/users/alice/memories:search", {
      token: acme,
      json: { query: "会議室", k: 1 },
    });
    expect(byText.status).toBe(200);
    expect(byText.json.data.items.map((m: { memory_id: string }) => m.memory_id)).toEqual(["m2"]);
    const all = await h.call("POST", "/v1/users/alice/memories:search", {
      token: acme,
      json: { query: "morning meetings", k: 10 },
    });
    expect(all.json.data.items[0].memory_id).toBe(a.json.data.memory_id);
    expect(all.json.data.items.every((m: { user_id: string }) => m.user_id === "alice")).toBe(true);
    expect(all.json.data.items).toHaveLength(2);

    const dims = h.kura.config.vector.dimensions;
    const vector = Array.from({ length: dims }, (_, i) => (i === 0 ? 1 : 0));
    const byVector = await h.call("POST", "/v1/users/alice/memories:search", {
      token: acme,
      json: { vector, k: 2 },
    });
    expect(byVector.status).toBe(200);
    expect(byVector.json.data.items).toHaveLength(2);
  });

  it("names a memory's fields in snake_case on the wire, whatever the library calls them", async () => {
    const wire = {
      user_id: "carol",
      memory_id: "c1",
      content: "Carol drinks green tea",
      category: "food",
      created_at: expect.any(String),
      updated_at: expect.any(String),
    };
    const put = await h.call("POST", "/v1/users/carol/memories", {
      token: acme,
      json: { memory_id: "c1", content: "Carol drinks green tea", category: "food" },
    });
    expect(put.json.data).toEqual(wire);
    expect((await h.call("GET", "/v1/users/carol/memories", { token: acme })).json.data.items).toEqual([
      wire,
    ]);
    const found = await h.call("POST", "/v1/users/carol/memories:search", {
      token: acme,
      json: { query: "tea", k: 1 },
    });
    expect(found.json.data.items).toEqual([{ ...wire, distance: expect.any(Number) }]);
    const camel = await h.call("POST", "/v1/users/carol/memories", {
      token: acme,
      json: { memoryId: "c2", content: "x" },
    });
    expect(camel.status).toBe(400);
  });

  it("answers 400 on bad input", async () => {
    const both = await h.call("POST", "/v1/users/alice/memories:search", {
      token: acme,
      json: { query: "x", vector: [1] },
    });
    expect(both.status).toBe(400);
    const wrongDims = await h.call("POST", "/v1/users/alice/memories:search", {
      token: acme,
      json: { vector: [1, 2, 3] },
    });
    expect(wrongDims.status).toBe(400);
    expect(errorCode(wrongDims)).toBe("VECTOR_DIMENSIONS_MISMATCH");
    const empty = await h.call("POST", "/v1/users/alice/memories", { token: acme, json: { content: "" } });
    expect(empty.status).toBe(400);
    expect((await h.call("GET", "/v1/users/alice/memories")).status).toBe(401);
  });
});
