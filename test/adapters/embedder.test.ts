import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHashingEmbedder } from "../../src/adapters/embedder/hashing/index.js";
import { openAiEmbedder } from "../../src/adapters/embedder/openai/index.js";
import { distance } from "../../src/adapters/vector/common.js";
import { isKuraError } from "../../src/core/errors.js";

const openAi = (options: Record<string, unknown>) =>
  openAiEmbedder.create(openAiEmbedder.parseOptions(options));

describe("hashing embedder", () => {
  const embedder = createHashingEmbedder({ dimensions: 256 });

  it("is deterministic, unit length and of the configured dimensions", async () => {
    const [a, b, empty] = await embedder.embed(["明日の会議は東京で", "明日の会議は東京で", ""]);
    expect(a).toHaveLength(256);
    expect(Array.from(a as Float32Array)).toEqual(Array.from(b as Float32Array));
    const norm = Math.sqrt(Array.from(a as Float32Array).reduce((s, x) => s + x * x, 0));
    expect(norm).toBeCloseTo(1, 5);
    expect(Array.from(empty as Float32Array).every((x) => x === 0)).toBe(true);
    expect(await embedder.embed([])).toEqual([]);
  });

  it("puts texts that share words nearer than unrelated texts (lexical, not semantic)", async () => {
    const [q, near, far, synonym] = await embedder.embed([
      "quarterly report review",
      "please review the quarterly report before Monday",
      "京都の紅葉はとても綺麗でした",
      "automobile",
    ]);
    const d = (x?: Float32Array, y?: Float32Array) =>
      distance("cosine", x as Float32Array, y as Float32Array);
    expect(d(q, near)).toBeLessThan(d(q, far));
    const [car] = await embedder.embed(["car"]);
    expect(d(car, synonym)).toBeGreaterThan(0.9);
    const [ja1, ja2] = await embedder.embed(["東京の会議", "会議は東京駅の近くで"]);
    expect(d(ja1, ja2)).toBeLessThan(d(ja1, far));
  });
});

describe("openai-compatible embedder (against a local HTTP server)", () => {
  let server: Server;
  let baseUrl = "";
  const requests: Array<{ auth: string | undefined; body: { model: string; input: string[] } }> = [];
  let failNext = 0;
  let failStatus = 503;

  beforeAll(async () => {
    server = createServer((req, res) => {
      let raw = "";
      req.on("data", (c) => {
        raw += c;
      });
      req.on("end", () => {
        const body = JSON.parse(raw) as { model: string; input: string[] };
        requests.push({ auth: req.headers.authorization, body });
        if (failNext > 0) {
          failNext--;
          res.writeHead(failStatus, { "content-type": "application/json" }).end('{"error":"busy"}');
          return;
        }
        if (body.model === "bad-model") {
          res.writeHead(404, { "content-type": "application/json" }).end('{"error":"no such model"}');
          return;
        }
        const dims = body.model === "short" ? 3 : 4;
        // Answer out of order, as the API allows: clients must place rows by `index`.
        const data = body.input
          .map((text, index) => ({
            index,
            embedding: Array.from({ length: dims }, (_, d) => text.length + d),
          }))
          .reverse();
        res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ data }));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it("is what Kura uses when config.embedder says openai (memories embedded through it)", async () => {
    const { mkdtemp, rm } = await import("node:fs/promises");
    const { tmpdir } = await import("node:os");
    const { join } = await import("node:path");
    const { Kura } = await import("../../src/kura.js");
    const dir = await mkdtemp(join(tmpdir(), "kura-embedder-"));
    requests.length = 0;
    const kura = await Kura.open({
      data_dir: dir,
      vector: { dimensions: 4, metric: "l2" },
      embedder: { backend: "openai", url: baseUrl, api_key: "sk-config", model: "m", batch_size: 8 },
    });
    try {
      const m = kura.tenant("acme").memories;
      await m.put("u", { content: "abc" });
      await m.put("u", { content: "abcdefgh" });
      expect(requests.map((r) => r.body.input)).toEqual([["abc"], ["abcdefgh"]]);
      expect(requests[0]?.auth).toBe("Bearer sk-config");
      // The server's embedding is [len, len+1, …]: a 7-character query is nearest the 8-character memory.
      const hits = await m.search("u", { query: "1234567", k: 1 });
      expect(hits[0]?.memory.content).toBe("abcdefgh");
    } finally {
      await kura.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("batches, sends the key, and places vectors by index", async () => {
    requests.length = 0;
    const embedder = await openAi({
      url: baseUrl,
      api_key: "sk-test",
      model: "m",
      dimensions: 4,
      batch_size: 2,
    });
    const out = await embedder.embed(["a", "bb", "ccc", "dddd", "eeeee"]);
    expect(requests).toHaveLength(3);
    expect(requests.map((r) => r.body.input)).toEqual([["a", "bb"], ["ccc", "dddd"], ["eeeee"]]);
    expect(requests[0]?.auth).toBe("Bearer sk-test");
    expect(out.map((v) => v[0])).toEqual([1, 2, 3, 4, 5]);
    expect(Array.from(out[2] as Float32Array)).toEqual([3, 4, 5, 6]);
  });

  it("retries 503 and 429, then gives up with EMBEDDER_UNAVAILABLE", async () => {
    const embedder = await openAi({ url: baseUrl, model: "m", dimensions: 4, retries: 2, backoff_ms: 5 });
    requests.length = 0;
    failNext = 2;
    failStatus = 429;
    expect(await embedder.embed(["x"])).toHaveLength(1);
    expect(requests).toHaveLength(3);
    failNext = 3;
    failStatus = 503;
    await expect(embedder.embed(["x"])).rejects.toSatisfy(
      (e: unknown) => isKuraError(e) && e.code === "EMBEDDER_UNAVAILABLE" && e.retryable,
    );
    failNext = 0;
  });

  it("fails at once on a refusal, and on vectors of the wrong length", async () => {
    requests.length = 0;
    const bad = await openAi({ url: baseUrl, model: "bad-model", dimensions: 4, retries: 3, backoff_ms: 5 });
    await expect(bad.embed(["x"])).rejects.toSatisfy(
      (e: unknown) => isKuraError(e) && e.code === "EMBEDDER_FAILED",
    );
    expect(requests).toHaveLength(1);
    const short = await openAi({ url: baseUrl, model: "short", dimensions: 4 });
    await expect(short.embed(["x"])).rejects.toSatisfy(
      (e: unknown) => isKuraError(e) && e.code === "VECTOR_DIMENSIONS_MISMATCH",
    );
  });

  it("an unreachable service is EMBEDDER_UNAVAILABLE after retries", async () => {
    const embedder = await openAi({
      url: "http://127.0.0.1:9/v1",
      model: "m",
      dimensions: 4,
      retries: 1,
      backoff_ms: 5,
    });
    await expect(embedder.embed(["x"])).rejects.toSatisfy(
      (e: unknown) => isKuraError(e) && e.code === "EMBEDDER_UNAVAILABLE",
    );
  });
});
