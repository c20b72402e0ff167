/**
 * `vector.backend: pgvector` chosen by configuration: Kura reaches a PostgreSQL server with
 * pgvector over the wire protocol (PGlite + pgvector behind pglite-socket, see
 * test/support/servers/pgvector.ts) through `pg`, for memories, message embeddings and tenant
 * collections — the same calls as the embedded backend — and the data outlives a restart.
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Kura } from "../../src/kura.js";
import { type TestKuraFactory, testKura } from "../support/kura.js";
import { type PgvectorServer, startPgvectorServer } from "../support/servers/pgvector.js";

describe("pgvector selected by configuration", () => {
  let server: PgvectorServer;
  let factory: TestKuraFactory;
  let kura: Kura;
  const config = () => ({
    vector: {
      backend: "pgvector",
      url: server.url,
      schema: "kura_vec",
      max_connections: 1,
      dimensions: 64,
      metric: "cosine",
      embed_messages: true,
    },
  });

  beforeAll(async () => {
    server = await startPgvectorServer();
    factory = await testKura("sqlite");
    kura = await factory.open({ config: config() });
  }, 60_000);
  afterAll(async () => {
    await kura?.close();
    await factory?.cleanup();
    await server?.stop();
  });

  it("memories, message search and collections live in tables of the configured schema", async () => {
    const t = kura.tenant("acme");
    const m = await t.memories.put("alice", { content: "Alice likes green tea in the morning" });
    await t.memories.put("alice", { content: "The project deadline is in March" });
    await t.memories.put("bob", { content: "Bob likes green tea too" });
    const found = await t.memories.search("alice", { query: "green tea", k: 1 });
    expect(found.map((h) => h.memory.memoryId)).toEqual([m.memoryId]);

    const a = await t.messages.append("c1", { role: "user", content: "quarterly budget review meeting" });
    await t.messages.append("c1", { role: "user", content: "weekend hiking photos" });
    await kura.pumpOutbox();
    // Embedded by the projection worker over its own connection; queried over this thread's.
    expect(kura.vectorProjection).toBe("worker");
    const r = await t.search("budget review", { mode: "vector", limit: 1 });
    expect(r.backend).toBe("pgvector");
    expect(r.hits.map((h) => h.id)).toEqual([a.id]);
    const hybrid = await t.search("budget review", { mode: "hybrid", limit: 1 });
    expect(hybrid.backend).toBe("sqlite-fts+pgvector");
    expect(hybrid.hits[0]?.id).toBe(a.id);

    await t.vectors.create("docs", { dimensions: 3, metric: "l2" });
    await t.vectors.put("docs", "x", [1, 0, 0]);
    await t.vectors.put("docs", "y", [0, 1, 0]);
    expect((await t.vectors.query("docs", { vector: [0.9, 0, 0], k: 1 })).map((h) => h.id)).toEqual(["x"]);

    const client = new pg.Client({ connectionString: server.url });
    await client.connect();
    try {
      const tables = (
        await client.query<{ table_name: string }>(
          "select table_name from information_schema.tables where table_schema = 'kura_vec' order by 1",
        )
      ).rows.map((row) => row.table_name);
      expect(tables).toEqual(expect.arrayContaining(["kura_vectors_memories", "kura_vectors_messages"]));
      expect(tables.some((name) => name.startsWith("kura_vc_"))).toBe(true);
    } finally {
      await client.end();
    }
  });

  it("survives a restart, and dropping a collection drops its table", async () => {
    await kura.close();
    kura = await factory.open({ config: config() });
    const t = kura.tenant("acme");
    expect((await t.memories.search("alice", { query: "deadline March", k: 1 }))[0]?.memory.content).toBe(
      "The project deadline is in March",
    );
    expect(await t.vectors.count("docs")).toBe(2);
    expect(await t.vectors.drop("docs")).toBe(true);
    const client = new pg.Client({ connectionString: server.url });
    await client.connect();
    try {
      const { rows } = await client.query(
        "select 1 from information_schema.tables where table_schema = 'kura_vec' and table_name like 'kura_vc_%'",
      );
      expect(rows).toEqual([]);
    } finally {
      await client.end();
    }
  });
});
