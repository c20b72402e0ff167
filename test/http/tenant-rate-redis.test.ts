/**
 * `max_requests_per_second` across nodes (TEN-3): with the KV plane on Redis, the tenant's token
 * bucket lives in Redis (an atomic script), so two Kura servers sharing it hold the combined
 * rate, not twice it. Real Redis on 127.0.0.1:6379 under a key prefix of this test's own.
 */
import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dropPrefix, REDIS_URL, redisProblem } from "../support/servers/redis.js";
import { errorCode, type Harness, startServer } from "./harness.js";

const RATE = 10;
const prefix = `kura-test-rate-${randomBytes(4).toString("hex")}:`;

describe("the request rate of a tenant on two servers sharing Redis", async () => {
  const problem = await redisProblem();
  if (problem) throw new Error(problem);
  const nodes: Harness[] = [];

  beforeAll(async () => {
    const config = {
      kv: { backend: "redis", url: REDIS_URL, key_prefix: prefix },
      tiers: { free: { limits: { max_requests_per_second: RATE } } },
    };
    // Each server its own data directory (catalog, blobs): only Redis is shared.
    nodes.push(await startServer({ config }), await startServer({ config }));
  });

  afterAll(async () => {
    for (const h of nodes) await h.close();
    await dropPrefix(prefix);
  });

  it("refuses past the combined rate, with Retry-After, whichever node is called", async () => {
    const [one, two] = nodes as [Harness, Harness];
    const token = await one.token("busy");
    // Register the tenant on both nodes first (a request each); the bucket then refills.
    await Promise.all([one.call("GET", "/v1/usage", { token }), two.call("GET", "/v1/usage", { token })]);
    await new Promise((r) => setTimeout(r, 1200));

    const started = Date.now();
    const results = await Promise.all(
      Array.from({ length: 4 * RATE }, (_, i) =>
        (i % 2 === 0 ? one : two).call("GET", "/v1/usage", { token }),
      ),
    );
    const elapsedS = (Date.now() - started) / 1000;
    const ok = results.filter((r) => r.status === 200);
    const limited = results.filter((r) => r.status === 429);
    expect(ok.length + limited.length).toBe(results.length);
    // A full bucket plus what refilled meanwhile: per-node buckets would let through twice the burst.
    expect(ok.length).toBeLessThanOrEqual(RATE + Math.ceil(RATE * elapsedS));
    expect(ok.length).toBeGreaterThanOrEqual(RATE);
    if (elapsedS < 0.9) expect(ok.length).toBeLessThan(2 * RATE);
    for (const r of limited) {
      expect(errorCode(r)).toBe("RATE_LIMITED");
      expect(Number(r.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    }
    // Both nodes refused some: the bucket is one.
    expect(limited.some((r) => results.indexOf(r) % 2 === 0)).toBe(true);
    expect(limited.some((r) => results.indexOf(r) % 2 === 1)).toBe(true);

    // The bucket is a key of Redis under this store's prefix, and it refills: a second later
    // the tenant is served again.
    const redis = new Redis(REDIS_URL);
    try {
      expect(await redis.exists(`${prefix}\u0000bucket\u0000busy`)).toBe(1);
    } finally {
      redis.disconnect();
    }
    await new Promise((r) => setTimeout(r, 1100));
    expect((await two.call("GET", "/v1/usage", { token })).status).toBe(200);
  });
});
