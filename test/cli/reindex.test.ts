/**
 * `kura reindex` (SRCH-4): after the search index is lost, the command rebuilds it from the
 * catalog's messages (not the outbox, which is pruned: OUT-1) and search finds everything again.
 */
import { spawnSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Kura } from "../../src/kura.js";

const MAIN = resolve(import.meta.dirname, "../../src/cli/main.ts");
const TSX = createRequire(import.meta.url).resolve("tsx");

describe("kura reindex", () => {
  let cwd: string;
  beforeAll(async () => {
    cwd = await mkdtemp(join(tmpdir(), "kura-reindex-"));
  });
  afterAll(async () => {
    await rm(cwd, { recursive: true, force: true });
  });

  it("rebuilds a lost index from the catalog, with the outbox pruned to nothing", {
    timeout: 60_000,
  }, async () => {
    const config = { data_dir: join(cwd, "data"), outbox: { retention_hours: 0 } };
    let kura = await Kura.open(config);
    const t = kura.tenant("acme");
    await t.messages.append("c", { role: "user", content: "明日の会議は東京で" });
    await t.messages.append("c", { role: "user", content: "rain in Osaka" });
    const gone = await t.messages.append("c", { role: "user", content: "東京 deleted" });
    await t.messages.delete(gone.id);
    await kura.pumpOutbox();
    await kura.runJobs();
    expect(await kura.catalog.readOutbox(undefined, 10)).toEqual([]);
    await kura.close();
    await rm(join(cwd, "data", "search.db"), { force: true });
    await rm(join(cwd, "data", "search.db-wal"), { force: true });
    await rm(join(cwd, "data", "search.db-shm"), { force: true });

    kura = await Kura.open(config);
    expect((await kura.tenant("acme").search("東京")).hits).toEqual([]);
    await kura.close();

    const run = spawnSync(process.execPath, ["--import", TSX, MAIN, "reindex", "--json"], {
      cwd,
      env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "" },
      encoding: "utf8",
    });
    expect(run.status, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ messages: 2 }); // the live ones

    kura = await Kura.open(config);
    try {
      const hits = (await kura.tenant("acme").search("東京")).hits;
      expect(hits).toHaveLength(1);
      expect(hits[0]?.chatId).toBe("c");
    } finally {
      await kura.close();
    }
  });

  it("--vectors embeds every message again; without message embeddings it fails with a clear code", {
    timeout: 60_000,
  }, async () => {
    const dataDir = join(cwd, "vec");
    const vector = { dimensions: 64, metric: "cosine", embed_messages: true };
    let kura = await Kura.open({ data_dir: dataDir, vector, outbox: { retention_hours: 0 } });
    const t = kura.tenant("acme");
    const a = await t.messages.append("c", { role: "user", content: "quarterly budget review" });
    await t.messages.append("c", { role: "user", content: "weekend hiking trip" });
    await kura.pumpOutbox();
    await kura.runJobs();
    expect(await kura.catalog.readOutbox(undefined, 10)).toEqual([]);
    await kura.close();
    await rm(join(dataDir, "vectors", "messages"), { recursive: true, force: true });

    const env = {
      PATH: process.env.PATH ?? "",
      HOME: process.env.HOME ?? "",
      KURA_DATA_DIR: dataDir,
      KURA_VECTOR__DIMENSIONS: "64",
      KURA_VECTOR__METRIC: "cosine",
    };
    const off = spawnSync(process.execPath, ["--import", TSX, MAIN, "reindex", "--vectors"], {
      cwd,
      env,
      encoding: "utf8",
    });
    expect(off.status).not.toBe(0);
    expect(off.stderr).toContain("VECTOR_SEARCH_DISABLED");
    const run = spawnSync(process.execPath, ["--import", TSX, MAIN, "reindex", "--vectors", "--json"], {
      cwd,
      env: { ...env, KURA_VECTOR__EMBED_MESSAGES: "true" },
      encoding: "utf8",
    });
    expect(run.status, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ messages: 2 });
    kura = await Kura.open({ data_dir: dataDir, vector });
    try {
      expect(await kura.vectors.messages?.index.count("acme")).toBe(2);
      const hits = (await kura.tenant("acme").search("budget review", { mode: "vector", limit: 1 })).hits;
      expect(hits.map((h) => h.id)).toEqual([a.id]);
    } finally {
      await kura.close();
    }
  });
});
