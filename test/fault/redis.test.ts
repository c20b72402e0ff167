/**
 * A private Redis under `kura serve` (KV plane), frozen with SIGSTOP and killed: KV requests
 * answer 503 (OPERATION_TIMEOUT frozen, KV_UNAVAILABLE killed) with Retry-After instead of
 * hanging, `/readyz` answers 503 naming the kv plane (bounded by its check timeout, not by
 * Redis), and both recover without a restart once Redis is back (SIGCONT; a new server on the
 * same port).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { backendAvailable } from "../support/backends.js";
import {
  eventually,
  type PrivateRedis,
  redisProblem,
  type ServeChild,
  startPrivateRedis,
  startServe,
  token,
} from "./support.js";

const runs = backendAvailable("fault-redis", redisProblem());

describe.runIf(runs)("fault: Redis frozen and killed under kura serve", () => {
  let redis: PrivateRedis;
  let serve: ServeChild;
  let dir: string;
  let auth: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "kura-fault-redis-serve-"));
    redis = await startPrivateRedis();
    serve = await startServe({ data_dir: join(dir, "data"), kv: { backend: "redis", url: redis.url } }, dir);
    auth = `Bearer ${await token("acme")}`;
  }, 120_000);

  afterAll(async () => {
    await serve?.stop();
    redis?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const put = async (key: string, value: unknown) => {
    const r = await fetch(`${serve.url}/v1/kv/ns/${key}`, {
      method: "PUT",
      headers: { authorization: auth, "content-type": "application/json" },
      body: JSON.stringify(value),
      signal: AbortSignal.timeout(30_000),
    });
    const body = (await r.json()) as { error_code?: string };
    return { status: r.status, code: body.error_code, retryAfter: r.headers.get("retry-after") };
  };
  const readyz = async () => {
    const r = await fetch(`${serve.url}/readyz`, { signal: AbortSignal.timeout(30_000) });
    return { status: r.status, body: (await r.json()) as { error?: string; details?: { plane: string }[] } };
  };

  it("frozen (SIGSTOP): KV requests time out into 503, readyz 503 names kv; SIGCONT recovers", {
    timeout: 60_000,
  }, async () => {
    expect((await put("a", { n: 1 })).status).toBe(200);
    expect((await readyz()).status).toBe(200);
    redis.signal("SIGSTOP");
    try {
      const [during, ready] = await Promise.all([put("b", { n: 2 }), readyz()]);
      expect(during.status).toBe(503);
      // The write's command timed out (its outcome unknown): OPERATION_TIMEOUT, not repeated.
      expect(during.code).toBe("OPERATION_TIMEOUT");
      expect(during.retryAfter).toBeTruthy();
      expect(ready.status).toBe(503);
      expect(ready.body.error).toMatch(/not ready: kv: /);
      expect(ready.body.details?.map((d) => d.plane)).toEqual(["kv"]);
      expect(serve.alive(), serve.output()).toBe(true);
    } finally {
      redis.signal("SIGCONT");
    }
    expect(await eventually(async () => (await put("c", { n: 3 })).status === 200, 50, 200)).toBe(true);
    expect((await readyz()).status).toBe(200);
  });

  it("killed: 503 KV_UNAVAILABLE + Retry-After; a restarted Redis is used again", {
    timeout: 60_000,
  }, async () => {
    redis.signal("SIGKILL");
    const during = await put("d", { n: 4 });
    expect(during.status).toBe(503);
    expect(during.code).toBe("KV_UNAVAILABLE");
    expect(during.retryAfter).toBeTruthy();
    const ready = await readyz();
    expect(ready.status).toBe(503);
    expect(ready.body.error).toMatch(/kv/);
    expect(serve.alive(), serve.output()).toBe(true);
    await redis.start();
    expect(await eventually(async () => (await put("e", { n: 5 })).status === 200, 50, 200)).toBe(true);
    expect((await readyz()).status).toBe(200);
  });
});
