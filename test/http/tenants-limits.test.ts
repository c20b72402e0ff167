/**
 * Tier limits and per-tenant overrides (TEN-3) through a real `kura serve` on SQLite + fs: each
 * limit tripped answers its status and leaves nothing — no object, row, usage or audit entry,
 * no body in the blob store.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mintToken } from "../../src/http/auth.js";
import { errorCode, type Harness, SECRET, startServer } from "./harness.js";

describe("tenant limits", () => {
  let h: Harness;
  let admin: string;
  beforeAll(async () => {
    h = await startServer({
      config: {
        tiers: {
          small: { limits: { max_message_bytes: 100, max_object_bytes: 1000, max_objects: 2 } },
        },
      },
    });
    admin = await mintToken({ secret: SECRET, admin: true, ttlSeconds: 600 });
  });
  afterAll(async () => h?.close());

  const register = async (tenant_id: string, extra: Record<string, unknown> = {}) => {
    const r = await h.call("POST", "/v1/admin/tenants", {
      token: admin,
      json: { tenant_id, tier: "small", ...extra },
    });
    expect(r.status, r.text).toBe(201);
    return h.token(tenant_id);
  };

  /** Everything a refused write could leave behind. */
  const trace = async (tenant: string, token: string) => {
    const blobs: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await h.kura.store.list(`${tenant}/`, cursor ? { cursor } : {});
      blobs.push(...page.items.map((i) => i.key));
      cursor = page.cursor;
    } while (cursor);
    return {
      usage: (await h.call("GET", "/v1/usage", { token })).json.data,
      audit: (await h.call("GET", "/v1/audit?limit=1000", { token })).json.data.items.length,
      objects: (await h.call("GET", "/v1/objects", { token })).json.data.items.length,
      chats: (await h.call("GET", "/v1/chats", { token })).json.data.items.length,
      blobs: blobs.sort(),
    };
  };

  it("refuses a message above the tier's max_message_bytes with 413 PAYLOAD_TOO_LARGE, storing nothing", async () => {
    const token = await register("lim-msg");
    const before = await trace("lim-msg", token);
    const r = await h.call("POST", "/v1/chats/c1/messages", {
      token,
      json: { role: "user", content: "x".repeat(101) },
    });
    expect(r.status, r.text).toBe(413);
    expect(errorCode(r)).toBe("PAYLOAD_TOO_LARGE");
    const batch = await h.call("POST", "/v1/chats/c1/messages:batch", {
      token,
      json: {
        messages: [
          { role: "user", content: "ok" },
          { role: "user", content: "y".repeat(101) },
        ],
      },
    });
    expect(errorCode(batch)).toBe("PAYLOAD_TOO_LARGE");
    expect(await trace("lim-msg", token)).toEqual(before);
    const ok = await h.call("POST", "/v1/chats/c1/messages", {
      token,
      json: { role: "user", content: "x".repeat(100) },
    });
    expect(ok.status, ok.text).toBe(201);
    const id = ok.json.data.id as string;
    const edit = await h.call("PATCH", `/v1/messages/${id}`, { token, json: { content: "z".repeat(101) } });
    expect(errorCode(edit)).toBe("PAYLOAD_TOO_LARGE");
    expect((await h.call("GET", `/v1/messages/${id}`, { token })).json.data.version).toBe(1);
  });

  it("refuses an object above max_object_bytes (413), with a length or streamed without one", async () => {
    const token = await register("lim-obj");
    const before = await trace("lim-obj", token);
    const sized = await h.call("PUT", "/v1/objects/big.bin", { token, body: "b".repeat(1001) });
    expect(sized.status, sized.text).toBe(413);
    expect(errorCode(sized)).toBe("PAYLOAD_TOO_LARGE");
    // Chunked, no Content-Length: cut off once past the limit; what was written is removed.
    const chunks = [new Uint8Array(600).fill(97), new Uint8Array(600).fill(98)];
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        const next = chunks.shift();
        if (next) controller.enqueue(next);
        else controller.close();
      },
    });
    const res = await fetch(`${h.base}/v1/objects/streamed.bin`, {
      method: "PUT",
      headers: { authorization: `Bearer ${token}` },
      body: stream,
      duplex: "half",
    } as RequestInit);
    expect(res.status).toBe(413);
    expect(((await res.json()) as { error_code: string }).error_code).toBe("PAYLOAD_TOO_LARGE");
    expect(await trace("lim-obj", token)).toEqual(before);
    expect((await h.call("PUT", "/v1/objects/fits.bin", { token, body: "f".repeat(1000) })).status).toBe(200);
  });

  it("refuses an object past max_objects and bytes past max_storage_bytes with 507 QUOTA_EXCEEDED", async () => {
    const token = await register("lim-quota", { limits: { max_storage_bytes: 2500 } });
    expect((await h.call("PUT", "/v1/objects/a", { token, body: "a".repeat(900) })).status).toBe(200);
    expect((await h.call("PUT", "/v1/objects/b", { token, body: "b".repeat(900) })).status).toBe(200);
    const before = await trace("lim-quota", token);
    const third = await h.call("PUT", "/v1/objects/c", { token, body: "c" });
    expect(third.status, third.text).toBe(507);
    expect(errorCode(third)).toBe("QUOTA_EXCEEDED");
    expect(third.headers.get("retry-after")).toBeNull();
    // Replacing an object adds none, and only its growth counts.
    expect((await h.call("PUT", "/v1/objects/a", { token, body: "A".repeat(1000) })).status).toBe(200);
    const after = await trace("lim-quota", token);
    expect(after.usage.objects).toBe(2);
    // 1900 bytes of objects stored: a message body of ~700 bytes would pass 2500.
    const big = await h.call("POST", "/v1/chats/c/messages", {
      token,
      json: { role: "user", content: "m".repeat(99) },
    });
    expect(big.status, big.text).toBe(201);
    const used = (await h.call("GET", "/v1/usage", { token })).json.data.bytes as number;
    const stuffed = await h.call("PUT", "/v1/objects/a", { token, body: "s".repeat(2500 - used + 1000 + 1) });
    expect(stuffed.status).toBe(413); // above max_object_bytes first
    const override = await h.call("PATCH", "/v1/admin/tenants/lim-quota", {
      token: admin,
      json: { limits: { max_storage_bytes: used + 10, max_object_bytes: 100_000 } },
    });
    expect(override.json.data.effective_limits).toMatchObject({ max_object_bytes: 100_000, max_objects: 2 });
    const beforeMessage = await trace("lim-quota", token);
    const message = await h.call("POST", "/v1/chats/c/messages", {
      token,
      json: { role: "user", content: "m" },
    });
    expect(errorCode(message)).toBe("QUOTA_EXCEEDED");
    expect(await trace("lim-quota", token)).toEqual(beforeMessage);
    expect(before.objects).toBe(2);
  });

  it("answers 429 RATE_LIMITED with Retry-After past max_requests_per_second", async () => {
    const token = await register("lim-rate", { limits: { max_requests_per_second: 3 } });
    const statuses: number[] = [];
    let limited: Response | undefined;
    let body: { error_code?: string } = {};
    for (let i = 0; i < 6; i++) {
      const r = await fetch(`${h.base}/v1/usage`, { headers: { authorization: `Bearer ${token}` } });
      statuses.push(r.status);
      if (r.status === 429 && !limited) {
        limited = r;
        body = (await r.json()) as { error_code?: string };
      } else await r.text();
    }
    expect(statuses.filter((s) => s === 200).length).toBeGreaterThanOrEqual(3);
    expect(statuses).toContain(429);
    expect(Number(limited?.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    expect(body.error_code).toBe("RATE_LIMITED");
    // Another tenant is not held back.
    expect((await h.call("GET", "/v1/usage", { token: await h.token("neighbour") })).status).toBe(200);
    await new Promise((r) => setTimeout(r, 1100));
    expect((await h.call("GET", "/v1/usage", { token })).status).toBe(200);
  });
});
