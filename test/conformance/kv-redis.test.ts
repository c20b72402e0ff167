import { spawn, spawnSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { describe, expect, it } from "vitest";
import { globEscape, redisKvStore } from "../../src/adapters/kv/redis/index.js";
import { isKuraError } from "../../src/core/errors.js";
import { Kura } from "../../src/kura.js";
import type { KvStore } from "../../src/ports/kv-store.js";
import { backendAvailable } from "../support/backends.js";
import { expectKuraError, kvStoreConformance } from "./kv-store.suite.js";

const URL = "redis://127.0.0.1:6379/0";

async function problem(): Promise<string | undefined> {
  const probe = new Redis(URL, {
    lazyConnect: true,
    connectTimeout: 1000,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  probe.on("error", () => undefined);
  try {
    await probe.connect();
    await probe.ping();
    return undefined;
  } catch (e) {
    return `no Redis at 127.0.0.1:6379: ${e instanceof Error ? e.message : String(e)}`;
  } finally {
    probe.disconnect();
  }
}

/** Delete every key under `prefix` (SCAN + DEL, never KEYS). */
async function dropPrefix(prefix: string): Promise<number> {
  const admin = new Redis(URL);
  let cursor = "0";
  let deleted = 0;
  do {
    const [next, keys] = await admin.scan(cursor, "MATCH", `${globEscape(prefix)}*`, "COUNT", 1000);
    cursor = next;
    if (keys.length > 0) deleted += await admin.del(...keys);
  } while (cursor !== "0");
  admin.disconnect();
  return deleted;
}

const available = backendAvailable("kv-redis", await problem());

kvStoreConformance(
  "redis",
  async () => {
    const prefix = `kura-test-${randomUUID().slice(0, 8)}:`;
    const store = await redisKvStore.create(
      redisKvStore.parseOptions({ url: URL, key_prefix: prefix, max_value_bytes: 256 * 1024 }),
    );
    return {
      store,
      ttlMs: 1000,
      advance: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
      cleanup: async () => {
        await store.close();
        await dropPrefix(prefix);
      },
    };
  },
  { skip: !available },
);

describe.skipIf(!available)("redis adapter: start-up checks and failures", () => {
  const hasServerBinary = spawnSync("redis-server", ["--version"]).status === 0;

  it.skipIf(!hasServerBinary)("warns at start unless maxmemory-policy is noeviction", async () => {
    const port = 20_000 + Math.floor(Math.random() * 20_000);
    const server = spawn(
      "redis-server",
      [
        "--port",
        String(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--maxmemory-policy",
        "allkeys-lru",
      ],
      { stdio: "ignore" },
    );
    try {
      const url = `redis://127.0.0.1:${port}/0`;
      let store: KvStore | undefined;
      for (let i = 0; i < 50 && !store; i++) {
        try {
          const warnings: string[] = [];
          store = await redisKvStore.create(redisKvStore.parseOptions({ url, connect_timeout_ms: 500 }), {
            warn: (m) => warnings.push(m),
          });
          expect(warnings).toHaveLength(1);
          expect(warnings[0]).toMatch(/allkeys-lru.*noeviction/);
        } catch (e) {
          if (!isKuraError(e) || e.code !== "KV_UNAVAILABLE") throw e;
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      expect(store).toBeDefined();
      await store?.close();
      // The shared server is configured right: no warning there.
      const quiet: string[] = [];
      const ok = await redisKvStore.create(redisKvStore.parseOptions({ url: URL }), {
        warn: (m) => quiet.push(m),
      });
      expect(quiet).toEqual([]);
      await ok.close();
    } finally {
      server.kill("SIGTERM");
    }
  });

  it("two clients writing one scope: versions keep growing, values read back whoever stamped them", async () => {
    const prefix = `kura-test-${randomUUID().slice(0, 8)}:`;
    const open = () => redisKvStore.create(redisKvStore.parseOptions({ url: URL, key_prefix: prefix }));
    const [a, b] = await Promise.all([open(), open()]);
    try {
      let last = 0;
      for (let round = 0; round < 6; round++) {
        // Each client predicts the scope's counter from its own writes; the other one (and incr)
        // moves it behind its back, so predictions go stale and the script restamps.
        for (const store of round % 3 === 2 ? [a, a, b] : [a, b]) {
          const results = await Promise.all([
            store.setMany(Array.from({ length: 5 }, (_, i) => ({ key: `t:k${i}`, value: { round, i } }))),
            store.setMany(Array.from({ length: 5 }, (_, i) => ({ key: `t:j${i}`, value: [round, i] }))),
            store.set("t:single", round),
          ]);
          const versions = [
            ...(results[0] as { version: number }[]),
            ...(results[1] as { version: number }[]),
            results[2] as { version: number },
          ].map((r) => r.version);
          for (const v of versions) expect(v).toBeGreaterThan(last);
          expect(new Set(versions).size).toBe(versions.length);
          last = Math.max(...versions);
          if (round === 3) last = (await store.incr("t:count")).version;
        }
        const entries = await Promise.all([a.getEntry("t:k4"), b.getEntry("t:j0"), a.getEntry("t:single")]);
        expect(entries.map((e) => e?.value)).toEqual([{ round, i: 4 }, [round, 0], round]);
        for (const e of entries) expect(e?.version).toBeLessThanOrEqual(last);
      }
    } finally {
      await a.close();
      await b.close();
      await dropPrefix(prefix);
    }
  });

  it("a server that cannot be reached fails with KV_UNAVAILABLE (retryable)", async () => {
    const err = await expectKuraError(
      redisKvStore.create(
        redisKvStore.parseOptions({ url: "redis://127.0.0.1:1/0", connect_timeout_ms: 300 }),
      ),
      "KV_UNAVAILABLE",
    );
    expect(err.retryable).toBe(true);
  });

  it("Kura on kv: redis keeps session metadata in Redis under the key prefix", async () => {
    const prefix = `kura-test-${randomUUID().slice(0, 8)}:`;
    const dir = await mkdtemp(join(tmpdir(), "kura-redis-kv-"));
    const kura = await Kura.open({ data_dir: dir, kv: { backend: "redis", url: URL, key_prefix: prefix } });
    try {
      await kura.tenant("acme").sessions.setMeta("s1", "lang", "ja");
      expect(await kura.tenant("acme").sessions.getMeta("s1", "lang")).toBe("ja");
      const admin = new Redis(URL);
      const ttl = await admin.pttl(`${prefix}acme:session:s1:meta:lang`);
      admin.disconnect();
      expect(ttl).toBeGreaterThan(86_000_000);
      expect(ttl).toBeLessThanOrEqual(86_400_000);
    } finally {
      await kura.close();
      await dropPrefix(prefix);
      await rm(dir, { recursive: true, force: true });
    }
  });
});
