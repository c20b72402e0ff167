/**
 * The search, vector and embedder registries: every backend the configuration accepts has a
 * definition declaring its capabilities, an unknown name is `CONFIG_INVALID` at the config path,
 * each adapter checks its own options, and the composition root gives each adapter what its
 * capabilities say it uses.
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { EMBEDDERS, embedderDefinition } from "../../src/adapters/embedder/registry.js";
import { SEARCH_INDEX_BACKENDS, searchIndexDefinition } from "../../src/adapters/search/registry.js";
import { VECTOR_INDEX_BACKENDS, vectorIndexDefinition } from "../../src/adapters/vector/registry.js";
import { EMBEDDER_BACKENDS, SEARCH_BACKENDS, VECTOR_BACKENDS } from "../../src/config/schema.js";
import { isKuraError } from "../../src/core/errors.js";
import { resolveConfig } from "../../src/open/config.js";
import { openSearchIndex } from "../../src/open/search.js";
import { createEmbedder, openVectorIndexes } from "../../src/open/vectors.js";

type Problem = { path: string; message: string };

/** The problems of a `CONFIG_INVALID`, or a failure if `fn` did not throw one. */
async function problemsOf(fn: () => unknown): Promise<Problem[]> {
  try {
    await fn();
  } catch (e) {
    if (!isKuraError(e) || e.code !== "CONFIG_INVALID") throw e;
    return e.context.problems as Problem[];
  }
  throw new Error("expected CONFIG_INVALID");
}

const PLANES = [
  {
    plane: "search",
    lookup: searchIndexDefinition,
    names: SEARCH_INDEX_BACKENDS,
    configured: SEARCH_BACKENDS,
    capabilities: ["catalogDatabase", "multiProcess", "remote"],
  },
  {
    plane: "vector",
    lookup: vectorIndexDefinition,
    names: VECTOR_INDEX_BACKENDS,
    configured: VECTOR_BACKENDS,
    capabilities: ["persistent", "quantization", "remote", "shared"],
  },
  {
    plane: "embedder",
    lookup: embedderDefinition,
    names: EMBEDDERS,
    configured: EMBEDDER_BACKENDS,
    capabilities: ["network"],
  },
] as const;

describe.each(PLANES)("the $plane registry", ({ plane, lookup, names, configured, capabilities }) => {
  it("has a definition for every backend the configuration accepts", () => {
    for (const name of configured) expect(names).toContain(name);
  });

  it("declares every capability of the port, as booleans, for every definition", async () => {
    for (const name of names) {
      const definition = await lookup(name);
      expect(names).toContain(definition.scheme);
      expect(Object.keys(definition.capabilities).sort()).toEqual([...capabilities]);
      for (const value of Object.values(definition.capabilities)) expect(value).toBeTypeOf("boolean");
    }
  });

  it("refuses an unknown name with CONFIG_INVALID at the backend's config path", async () => {
    const problems = await problemsOf(() => lookup("nope"));
    expect(problems).toEqual([
      { path: `${plane}.backend`, message: expect.stringContaining(names.join(", ")) },
    ]);
  });
});

describe("definitions", () => {
  it("name the embedded defaults by their own schemes", async () => {
    expect((await searchIndexDefinition("embedded")).scheme).toBe("sqlite-fts");
    expect((await vectorIndexDefinition("embedded")).scheme).toBe("usearch");
  });

  it("declare what the engine decides by", async () => {
    const caps = async (lookup: (s: string) => Promise<{ capabilities: object }>, name: string) =>
      (await lookup(name)).capabilities;
    expect(await caps(searchIndexDefinition, "sqlite-fts")).toEqual({
      catalogDatabase: false,
      multiProcess: false,
      remote: false,
    });
    expect(await caps(searchIndexDefinition, "postgres")).toEqual({
      catalogDatabase: true,
      multiProcess: true,
      remote: true,
    });
    expect(await caps(vectorIndexDefinition, "usearch")).toEqual({
      shared: false,
      persistent: true,
      quantization: true,
      remote: false,
    });
    expect(await caps(vectorIndexDefinition, "exact")).toEqual({
      shared: false,
      persistent: false,
      quantization: false,
      remote: false,
    });
    expect(await caps(vectorIndexDefinition, "pgvector")).toEqual({
      shared: true,
      persistent: true,
      quantization: false,
      remote: true,
    });
    expect(await caps(embedderDefinition, "hashing")).toEqual({ network: false });
    expect(await caps(embedderDefinition, "openai")).toEqual({ network: true });
  });

  const lookups: Record<string, (scheme: string) => Promise<{ parseOptions(raw: unknown): unknown }>> = {
    search: searchIndexDefinition,
    vector: vectorIndexDefinition,
    embedder: embedderDefinition,
  };
  it.each([
    ["search", "sqlite-fts", { rank_window: 0, extra: 1 }, ["extra", "path", "rank_window"]],
    ["search", "postgres", { url: "mysql://h/db", max_connections: 0 }, ["max_connections", "schema", "url"]],
    ["vector", "usearch", { quantization: "i4", mode: "slow", dir: "" }, ["dir", "mode", "quantization"]],
    ["vector", "exact", { mode: "fast", dir: "/tmp/x" }, ["dir"]],
    ["vector", "pgvector", { schema: "a-b", max_connections: 0 }, ["max_connections", "schema", "url"]],
    ["embedder", "hashing", { dimensions: 0 }, ["dimensions"]],
    ["embedder", "openai", { url: "ftp://h", dimensions: 4, batch_size: 0 }, ["batch_size", "model", "url"]],
  ] as const)("%s %s reports every bad option at its path", async (plane, name, raw, keys) => {
    const definition = await (lookups[plane] as (typeof lookups)[string])(name);
    const problems = await problemsOf(() => definition.parseOptions(raw));
    expect(problems.map((p) => p.path).sort()).toEqual(keys.map((key) => `${plane}.${key}`));
  });

  it("fill in the documented defaults", async () => {
    expect((await vectorIndexDefinition("usearch")).parseOptions({})).toEqual({
      quantization: "f32",
      mode: "balanced",
    });
    expect((await vectorIndexDefinition("pgvector")).parseOptions({ url: "postgres://h/db" })).toEqual({
      url: "postgres://h/db",
      schema: null,
      max_connections: 4,
      statement_timeout_ms: 30_000,
      lock_timeout_ms: 0,
      mode: "balanced",
    });
    expect(
      (await embedderDefinition("openai")).parseOptions({ url: "https://h/v1", model: "m", dimensions: 8 }),
    ).toEqual({
      url: "https://h/v1",
      api_key: null,
      model: "m",
      dimensions: 8,
      request_dimensions: false,
      batch_size: 96,
      retries: 3,
      backoff_ms: 250,
      timeout_ms: 30_000,
    });
  });
});

describe("the composition root", () => {
  const dirs: string[] = [];
  afterAll(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });
  const configOf = (input: Record<string, unknown>) => {
    const dir = mkdtempSync(join(tmpdir(), "kura-planes-"));
    dirs.push(dir);
    return resolveConfig({ data_dir: dir, ...input }, { cwd: dir });
  };

  it("puts a local index's file and directories under data_dir", async () => {
    const config = await configOf({ vector: { backend: "embedded", quantization: "f16" } });
    const search = await openSearchIndex(config);
    expect(search.backend).toBe("sqlite-fts");
    await search.close();
    expect(existsSync(join(config.data_dir, "search.db"))).toBe(true);
    const indexes = await openVectorIndexes(config);
    const index = await indexes.open({ name: "memories", dimensions: 4, metric: "l2" });
    expect(index.backend).toBe("usearch");
    await index.close();
    await indexes.close();
    expect(existsSync(join(config.data_dir, "vectors", "memories", "items"))).toBe(true);
  });

  it("keeps local indexes in memory beside an in-memory catalog", async () => {
    const config = await configOf({ database: { backend: "sqlite", path: ":memory:" }, vector: "exact" });
    const search = await openSearchIndex(config);
    await search.close();
    expect(existsSync(join(config.data_dir, "search.db"))).toBe(false);
    const indexes = await openVectorIndexes(config);
    expect((await indexes.open({ name: "memories", dimensions: 2, metric: "ip" })).backend).toBe("exact");
  });

  it("gives a network embedder the embedder section and vector.dimensions", async () => {
    const config = await configOf({
      vector: { dimensions: 12 },
      embedder: { backend: "openai", url: "http://127.0.0.1:9/v1", model: "m" },
    });
    const embedder = await createEmbedder(config);
    expect([embedder.name, embedder.dimensions]).toEqual(["openai", 12]);
    const local = await createEmbedder(await configOf({ vector: { dimensions: 5 } }));
    expect([local.name, local.dimensions]).toEqual(["hashing", 5]);
  });
});
