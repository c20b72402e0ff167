/**
 * What the redis adapter does beyond the port's contract: its start-up checks, two clients on the
 * same keys, the upgrade from per-tenant counters, an unreachable server, Kura on `kv: redis`.
 */
import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { pack } from "msgpackr";
import { describe, expect, it } from "vitest";
import { redisKvStore } from "../../src/adapters/kv/redis/index.js";
import { Kura } from "../../src/kura.js";
import type { KvStore } from "../../src/ports/kv-store.js";
import { expectKuraError } from "../conformance/kv-store.suite.js";
import { backendAvailable } from "../support/backends.js";
import {
  EARLIER_RELEASE,
  expectUpgradedVersions,
  expectUpgradePeriodKept,
  expectUpgradePeriodOver,
} from "../support/kv-upgrade.js";
import {
  dropPrefix,
  redisProblem,
  redisServerProblem,
  startPrivateRedis,
  REDIS_URL as URL,
} from "../support/servers/redis.js";

const available = backendAvailable("kv-redis", await redisProblem());

describe.skipIf(!available)("redis adapter: start-up checks and failures", () => {
  it.skipIf(redisServerProblem() !== undefined)(
    "warns at start unless maxmemory-policy is noeviction",
    async () => {
      const server = await startPrivateRedis(["--maxmemory-policy", "allkeys-lru"]);
      try {
        const warnings: string[] = [];
        const store = await redisKvStore.create(
          redisKvStore.parseOptions({ url: server.url, connect_timeout_ms: 500 }),
          { warn: (m) => warnings.push(m) },
        );
        expect(warnings).toHaveLength(1);
        expect(warnings[0]).toMatch(/allkeys-lru.*noeviction/);
        await store.close();
        // The shared server is configured right: no warning there.
        const quiet: string[] = [];
        const ok = await redisKvStore.create(redisKvStore.parseOptions({ url: URL }), {
          warn: (m) => quiet.push(m),
        });
        expect(quiet).toEqual([]);
        await ok.close();
      } finally {
        server.destroy();
      }
    },
  );

  it("two clients writing the same keys: each key counts every write of both, once", async () => {
    const prefix = `kura-test-${randomUUID().slice(0, 8)}:`;
    const open = () => redisKvStore.create(redisKvStore.parseOptions({ url: URL, key_prefix: prefix }));
    const [a, b] = await Promise.all([open(), open()]);
    try {
      const seen = new Map<string, number[]>();
      const note = (key: string, version: number) => seen.set(key, [...(seen.get(key) ?? []), version]);
      for (let round = 0; round < 6; round++) {
        const writes = [a, b, round % 2 === 0 ? a : b].flatMap((store) => [
          store.setMany(Array.from({ length: 5 }, (_, i) => ({ key: `t:k${i}`, value: { round, i } }))),
          store.set("t:single", round),
          store.set("t:ttl", round, { ttlMs: 60_000 }),
        ]);
        const results = await Promise.all(writes);
        for (let w = 0; w < results.length; w += 3) {
          for (const [i, r] of (results[w] as { version: number }[]).entries()) note(`t:k${i}`, r.version);
          note("t:single", (results[w + 1] as { version: number }).version);
          note("t:ttl", (results[w + 2] as { version: number }).version);
        }
        note("t:count", (await (round % 2 === 0 ? a : b).incr("t:count")).version);
      }
      for (const [key, versions] of seen) {
        const sorted = [...versions].sort((x, y) => x - y);
        expect(sorted, key).toEqual(Array.from({ length: versions.length }, (_, i) => i + 1));
        expect((await b.getEntry(key))?.version, key).toBe(versions.length);
      }
    } finally {
      await a.close();
      await b.close();
      await dropPrefix(prefix);
    }
  });

  it("upgrade from per-tenant counters: values keep their versions and count on; a key without one starts above its tenant's old counter for one retention period", async () => {
    const prefix = `kura-test-${randomUUID().slice(0, 8)}:`;
    // The earlier release's layout, written with ioredis directly: `{16 hex digits of version}`
    // and the frame (`m` + MessagePack, `n` + a decimal counter); its counters per scope.
    const admin = new Redis(URL);
    const stored = (version: number, frame: Buffer) =>
      Buffer.concat([Buffer.from(version.toString(16).padStart(16, "0"), "latin1"), frame]);
    const retention = 1500;
    const open = () =>
      redisKvStore.create(
        redisKvStore.parseOptions({ url: URL, key_prefix: prefix, tombstone_retention_ms: retention }),
      );
    let store: KvStore | undefined;
    try {
      for (const r of EARLIER_RELEASE.records) {
        const frame =
          "counter" in r ? Buffer.from(`n${r.counter}`) : Buffer.concat([Buffer.from("m"), pack(r.value)]);
        await admin.set(`${prefix}${r.key}`, stored(r.version, frame));
      }
      for (const c of EARLIER_RELEASE.counters)
        await admin.set(`${prefix}\u0000version\u0000${c.scope}`, String(c.version));
      await admin.set(`${prefix}\u0000version`, String(EARLIER_RELEASE.storeWide));

      store = await open();
      await expectUpgradedVersions(store);
      // A reconnect within the upgrade period keeps it.
      await store.close();
      store = await open();
      await expectUpgradePeriodKept(store);
      await store.close();
      // Once it is over, new keys start at 1.
      await new Promise((r) => setTimeout(r, retention + 200));
      store = await open();
      await expectUpgradePeriodOver(store);
    } finally {
      await store?.close();
      admin.disconnect();
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
