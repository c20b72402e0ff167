/**
 * Storage quotas under concurrent writes (TEN-3): many writes racing near `max_objects` and
 * `max_storage_bytes` each pass the check made before writing (they all read the same usage),
 * and the check the commit makes again lets through only what fits. Through a real
 * `kura serve` on SQLite + fs and on PostgreSQL + fs: usage never ends above a limit, each
 * refused write is 507 QUOTA_EXCEEDED, and it leaves no object, usage or body behind.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mintToken } from "../../src/http/auth.js";
import { postgresForTests } from "../support/servers/postgres.js";
import { errorCode, type Harness, SECRET, startServer } from "./harness.js";

const pg = await postgresForTests();
if ("problem" in pg) throw new Error(pg.problem);

const BODY = 100;

describe.each([
  ["sqlite", {}],
  ["postgres", { database: { backend: "postgres", url: pg.url } }],
] as const)("storage quotas under racing writes on %s", (_name, database) => {
  let h: Harness;
  let admin: string;

  beforeAll(async () => {
    h = await startServer({ config: { ...database } });
    admin = await mintToken({ secret: SECRET, admin: true, ttlSeconds: 600 });
  });
  afterAll(async () => {
    await h?.close();
  });

  const blobsOf = async (tenant: string) => {
    const keys: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await h.kura.store.list(`${tenant}/`, cursor ? { cursor } : {});
      keys.push(...page.items.map((i) => i.key));
      cursor = page.cursor;
    } while (cursor);
    return keys;
  };

  const register = async (tenant_id: string, limits: Record<string, number>) => {
    const r = await h.call("POST", "/v1/admin/tenants", { token: admin, json: { tenant_id, limits } });
    expect(r.status, r.text).toBe(201);
    return h.token(tenant_id);
  };

  /** Fires `n` new-object uploads at once; returns the statuses by key. */
  const race = async (token: string, n: number, tag: string) =>
    Promise.all(
      Array.from({ length: n }, async (_, i) => {
        const key = `${tag}-${i}`;
        const r = await h.call("PUT", `/v1/objects/${key}`, { token, body: "r".repeat(BODY) });
        if (r.status !== 200) {
          expect(r.status, r.text).toBe(507);
          expect(errorCode(r)).toBe("QUOTA_EXCEEDED");
        }
        return { key, status: r.status };
      }),
    );

  /** Usage, listing and blob store agree, and stay within the limits. */
  const checkHeld = async (
    tenant: string,
    token: string,
    stored: string[],
    limits: { bytes: number; objects: number },
  ) => {
    const usage = (await h.call("GET", "/v1/usage", { token })).json.data;
    expect(usage.objects).toBeLessThanOrEqual(limits.objects);
    expect(usage.bytes).toBeLessThanOrEqual(limits.bytes);
    const listed = (await h.call("GET", "/v1/objects?limit=1000", { token })).json.data.items.map(
      (o: { key: string }) => o.key,
    );
    expect(listed.sort()).toEqual([...stored].sort());
    expect(usage.objects).toBe(stored.length);
    expect(usage.bytes).toBe(stored.length * BODY);
    expect((await blobsOf(tenant)).length).toBe(stored.length);
  };

  it("max_objects: of 40 racing uploads only those that fit are stored", { timeout: 60_000 }, async () => {
    const tenant = `race-objects-${_name}`;
    const token = await register(tenant, { max_objects: 12 });
    const first = await race(token, 4, "warm");
    expect(first.every((r) => r.status === 200)).toBe(true);
    const results = await race(token, 40, "burst");
    const ok = results.filter((r) => r.status === 200).map((r) => r.key);
    expect(ok.length).toBe(8);
    await checkHeld(tenant, token, [...first.map((r) => r.key), ...ok], { objects: 12, bytes: Infinity });
  });

  it("max_storage_bytes: of 40 racing uploads only those that fit are stored", {
    timeout: 60_000,
  }, async () => {
    const tenant = `race-bytes-${_name}`;
    const token = await register(tenant, { max_storage_bytes: 10 * BODY + BODY / 2 });
    const results = await race(token, 40, "burst");
    const ok = results.filter((r) => r.status === 200).map((r) => r.key);
    expect(ok.length).toBe(10);
    await checkHeld(tenant, token, ok, { objects: Infinity, bytes: 10 * BODY + BODY / 2 });
    // Still refused after the race, and a write that frees room lets the next one in.
    const more = await h.call("PUT", "/v1/objects/more", { token, body: "m".repeat(BODY) });
    expect(more.status).toBe(507);
    expect((await h.call("DELETE", `/v1/objects/${ok[0]}`, { token })).status).toBe(204);
    expect((await h.call("PUT", "/v1/objects/more", { token, body: "m".repeat(BODY) })).status).toBe(200);
  });
});

afterAll(async () => {
  if (!("problem" in pg)) await pg.destroy();
});
