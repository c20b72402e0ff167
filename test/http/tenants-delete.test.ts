/**
 * Tenant deletion (`DELETE /v1/admin/tenants/{id}`) through a real `kura serve` on SQLite + fs +
 * LMDB, with message embeddings on: two tenants with data on every plane, one deleted. Nothing
 * of it is left — no body in the blob stores, no row with its id in any catalog table, no KV
 * key, search document or vector — while its neighbour reads back whole; a deletion stopped
 * halfway resumes when Kura opens again; the id can then be registered again, empty. The same
 * on PostgreSQL + Redis + fs: no row in any table of the database, no Redis key, no body.
 */
import { randomBytes } from "node:crypto";
import { existsSync, readdirSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import type { FastifyInstance } from "fastify";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { ADMIN_AUDIT_STREAM } from "../../src/engine/tenant-deletion.js";
import { mintToken } from "../../src/http/auth.js";
import { buildServer } from "../../src/http/server.js";
import { Kura, type KuraOpenOptions } from "../../src/kura.js";
import { openKvStore } from "../../src/open/kv.js";
import { openSearchIndex } from "../../src/open/search.js";
import { openVectorIndexes } from "../../src/open/vectors.js";
import type { Catalog } from "../../src/ports/catalog.js";
import { postgresForTests } from "../support/servers/postgres.js";
import { dropPrefix, REDIS_URL, redisProblem } from "../support/servers/redis.js";
import { type CallResult, errorCode, SECRET } from "./harness.js";

interface Server {
  kura: Kura;
  app: FastifyInstance;
  call(
    method: string,
    path: string,
    o?: { token?: string; json?: unknown; body?: string },
  ): Promise<CallResult>;
  close(): Promise<void>;
}

const undocumented: string[] = [];

/** `kura serve` over the data in `dir` (kept across restarts). */
async function serve(dir: string, open: KuraOpenOptions = {}, config: object = {}): Promise<Server> {
  const kura = await Kura.open(
    {
      data_dir: dir,
      auth: { jwt_secret: SECRET },
      vector: { embed_messages: true, dimensions: 64 },
      ...config,
    },
    open,
  );
  const app = await buildServer(kura, {
    logger: false,
    validateResponses: true,
    onUndocumented: (p) => {
      if (!undocumented.includes(p)) undocumented.push(p);
    },
  });
  await app.listen({ host: "127.0.0.1", port: 0 });
  const address = app.server.address();
  const base = `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`;
  return {
    kura,
    app,
    call: async (method, path, o = {}) => {
      const headers: Record<string, string> = {};
      if (o.token) headers.authorization = `Bearer ${o.token}`;
      let body = o.body;
      if (o.json !== undefined) {
        headers["content-type"] = "application/json";
        body = JSON.stringify(o.json);
      }
      const res = await fetch(base + path, { method, headers, ...(body !== undefined ? { body } : {}) });
      const text = await res.text();
      let json: unknown;
      try {
        json = text ? JSON.parse(text) : undefined;
      } catch {
        json = undefined;
      }
      return { status: res.status, headers: res.headers, json, text };
    },
    close: async () => {
      await app.close();
      await kura.close();
    },
  };
}

const admin = await mintToken({ secret: SECRET, admin: true, ttlSeconds: 3600 });
const tokenOf = (tenant: string) => mintToken({ secret: SECRET, tenant, ttlSeconds: 3600 });

/** The call succeeded (with `status`, when given). */
async function ok(r: Promise<CallResult>, status?: number): Promise<CallResult> {
  const res = await r;
  if (status === undefined)
    expect(res.status >= 200 && res.status < 300, `${res.status} ${res.text}`).toBe(true);
  else expect(res.status, res.text).toBe(status);
  return res;
}

/** Data on every plane: messages (one edited twice, one deleted), objects, KV, a session with meta and a file, memories, a collection, an API key. */
async function populate(s: Server, tenant: string): Promise<{ messageIds: string[]; token: string }> {
  await ok(
    s.call("POST", "/v1/admin/tenants", {
      token: admin,
      json: { tenant_id: tenant, domains: [`${tenant}.example.com`] },
    }),
  );
  const token = await tokenOf(tenant);
  const messageIds: string[] = [];
  for (const text of ["hello kumquat world", "second kumquat note", "third message"]) {
    const r = await ok(
      s.call("POST", "/v1/chats/c1/messages", {
        token,
        json: { role: "user", content: `${tenant} ${text}` },
      }),
    );
    messageIds.push(r.json.data.id);
  }
  const edited = messageIds[0] as string;
  await ok(s.call("PATCH", `/v1/messages/${edited}`, { token, json: { content: `${tenant} kumquat v2` } }));
  await ok(s.call("PATCH", `/v1/messages/${edited}`, { token, json: { content: `${tenant} kumquat v3` } }));
  await ok(s.call("DELETE", `/v1/messages/${messageIds[2]}`, { token }));
  await ok(s.call("PUT", "/v1/objects/docs/a.txt", { token, body: `${tenant} object body` }));
  await ok(s.call("PUT", "/v1/objects/docs/b.txt", { token, body: "b" }));
  await ok(s.call("PUT", "/v1/kv/prefs/theme", { token, json: { dark: true } }));
  await ok(s.call("PUT", "/v1/sessions/s1/meta/lang", { token, json: "ja" }));
  await ok(s.call("PUT", "/v1/sessions/s1/files/notes/today.txt", { token, body: "session file" }));
  await ok(s.call("POST", "/v1/users/u1/memories", { token, json: { content: `${tenant} likes kumquats` } }));
  await ok(s.call("PUT", "/v1/vectors/col", { token, json: { dimensions: 3, metric: "l2" } }));
  await ok(s.call("PUT", "/v1/vectors/col/v1", { token, json: { vector: [1, 0, 0] } }));
  await ok(s.call("POST", `/v1/admin/tenants/${tenant}/keys`, { token: admin, json: { scopes: ["read"] } }));
  await s.kura.pumpOutbox();
  const found = await ok(s.call("GET", "/v1/search?q=kumquat", { token }));
  expect(found.json.data.items.length).toBeGreaterThan(0);
  return { messageIds, token };
}

/** Every row of the SQLite catalog whose `tenant_id` is `tenant`, by table (every table that has the column). */
function catalogRows(dir: string, tenant: string): Record<string, number> {
  const db = new Database(join(dir, "kura.db"), { readonly: true });
  try {
    const out: Record<string, number> = {};
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as {
      name: string;
    }[];
    for (const { name } of tables) {
      const cols = db.prepare(`PRAGMA table_info("${name}")`).all() as { name: string }[];
      if (!cols.some((c) => c.name === "tenant_id")) continue;
      const n = (
        db.prepare(`SELECT COUNT(*) AS n FROM "${name}" WHERE tenant_id = ?`).get(tenant) as { n: number }
      ).n;
      if (n > 0) out[name] = n;
    }
    return out;
  } finally {
    db.close();
  }
}

/**
 * Files under `dir` (blob stores, session files, vector indexes) within a directory naming
 * `tenant`. Empty directories are not counted: the fs store leaves a deleted key's parents.
 */
function pathsOf(dir: string, tenant: string): string[] {
  const found: string[] = [];
  const walk = (d: string, inside: boolean) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      const named = inside || e.name === tenant;
      if (e.isDirectory()) walk(p, named);
      else if (named) found.push(p);
    }
  };
  if (existsSync(dir)) walk(dir, false);
  return found;
}

async function listAll(s: Server, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for (const store of new Set([s.kura.store, s.kura.sessionFiles])) {
    let cursor: string | undefined;
    do {
      const page = await store.list(prefix, cursor ? { cursor } : {});
      keys.push(...page.items.map((i) => i.key));
      cursor = page.cursor;
    } while (cursor);
  }
  return keys;
}

/** What the other planes hold of `tenant`, read with Kura closed. */
async function planesOf(kura: Kura, tenant: string) {
  const config = kura.config;
  const kv = await openKvStore(config, {});
  const search = await openSearchIndex(config);
  const indexes = await openVectorIndexes(config);
  try {
    const memories = await indexes.open({ name: "memories", dimensions: 64, metric: config.vector.metric });
    const messages = await indexes.open({ name: "messages", dimensions: 64, metric: config.vector.metric });
    const out = {
      kv: (await kv.scan(`${tenant}:`, { limit: 1000 })).items.map((e) => e.key),
      search: await search.count(tenant),
      memories: await memories.count(tenant),
      messages: await messages.count(tenant),
    };
    await memories.close();
    await messages.close();
    return out;
  } finally {
    await indexes.close();
    await search.close();
    await kv.close();
  }
}

async function waitGone(s: Server, tenant: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    await s.kura.tenants.settleDeletions();
    const r = await s.call("GET", `/v1/admin/tenants/${tenant}`, { token: admin });
    if (r.status === 404) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`tenant ${tenant} was not deleted`);
}

/** The neighbour's data, read back whole. */
async function neighbourIntact(s: Server, tenant: string, token: string, messageIds: string[]) {
  const edited = await ok(s.call("GET", `/v1/messages/${messageIds[0]}`, { token }), 200);
  expect(edited.json.data.version).toBe(3);
  const versions = await ok(s.call("GET", `/v1/messages/${messageIds[0]}/versions`, { token }), 200);
  expect(versions.json.data.items.length).toBe(3);
  const history = await ok(s.call("GET", "/v1/chats/c1/messages", { token }), 200);
  expect(history.json.data.items.length).toBe(2);
  expect((await ok(s.call("GET", "/v1/objects/docs/a.txt", { token }), 200)).text).toBe(
    `${tenant} object body`,
  );
  expect((await ok(s.call("GET", "/v1/kv/prefs/theme", { token }), 200)).json.data.value).toEqual({
    dark: true,
  });
  expect((await ok(s.call("GET", "/v1/sessions/s1/meta/lang", { token }), 200)).json.data.value).toBe("ja");
  expect((await ok(s.call("GET", "/v1/sessions/s1/files/notes/today.txt", { token }), 200)).text).toBe(
    "session file",
  );
  const memories = await ok(s.call("GET", "/v1/users/u1/memories", { token }), 200);
  expect(memories.json.data.items.length).toBe(1);
  const mem = await ok(
    s.call("POST", "/v1/users/u1/memories:search", { token, json: { query: "kumquats", k: 5 } }),
    200,
  );
  expect(mem.json.data.items.length).toBe(1);
  const q = await ok(
    s.call("POST", "/v1/vectors/col:query", { token, json: { vector: [1, 0, 0], k: 5 } }),
    200,
  );
  expect(q.json.data.items.map((i: { id: string }) => i.id)).toEqual(["v1"]);
  const found = await ok(s.call("GET", "/v1/search?q=kumquat", { token }), 200);
  expect(found.json.data.items.length).toBe(2);
  const vec = await ok(s.call("GET", "/v1/search?q=kumquat&mode=vector", { token }), 200);
  expect(vec.json.data.items.length).toBeGreaterThan(0);
  const usage = await ok(s.call("GET", "/v1/usage", { token }), 200);
  // Soft-deleted messages are stored until purged, and counted.
  expect(usage.json.data.messages).toBe(3);
  const keys = await ok(s.call("GET", `/v1/admin/tenants/${tenant}/keys`, { token: admin }), 200);
  expect(keys.json.data.items.length).toBe(1);
}

describe("DELETE /v1/admin/tenants/{id}", () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
    expect(undocumented).toEqual([]);
  });

  it("removes the tenant from every plane and leaves its neighbour whole; the id starts empty again", async () => {
    const dir = await mkdtemp(join(tmpdir(), "kura-tdel-"));
    dirs.push(dir);
    let s = await serve(dir);
    const gone = await populate(s, "gone");
    const kept = await populate(s, "kept");
    expect(Object.keys(catalogRows(dir, "gone")).length).toBeGreaterThan(5);
    expect((await listAll(s, "gone/")).length).toBeGreaterThan(5);

    const r = await ok(s.call("DELETE", "/v1/admin/tenants/gone", { token: admin }), 202);
    expect(r.json.data.tenant_id).toBe("gone");
    expect(r.json.data.status).toBe("deleting");
    // A tenant call is refused from now on, reads included; registering the id again is refused.
    const refused = await s.call("GET", "/v1/chats/c1/messages", { token: gone.token });
    if (refused.status !== 200) {
      expect(refused.status).toBe(403);
      expect(errorCode(refused)).toBe("TENANT_DELETING");
    }
    await waitGone(s, "gone");
    const missing = await s.call("GET", "/v1/admin/tenants/gone", { token: admin });
    expect(errorCode(missing)).toBe("TENANT_NOT_FOUND");
    expect(errorCode(await s.call("DELETE", "/v1/admin/tenants/gone", { token: admin }))).toBe(
      "TENANT_NOT_FOUND",
    );

    expect(catalogRows(dir, "gone")).toEqual({});
    expect(await listAll(s, "gone/")).toEqual([]);
    expect(pathsOf(dir, "gone")).toEqual([]);
    // The admin stream keeps the request and the completion.
    const audit = await s.kura.catalog.auditLog(ADMIN_AUDIT_STREAM, { limit: 100 });
    expect(audit.filter((a) => a.target === "gone").map((a) => a.action)).toEqual([
      "tenant.delete",
      "tenant.deleted",
    ]);
    expect(audit.at(-1)?.details.tenant_id).toBe("gone");
    expect(audit.at(-1)?.actor).toMatch(/^admin/);

    await neighbourIntact(s, "kept", kept.token, kept.messageIds);
    const config = s.kura;
    await s.close();
    expect(await planesOf(config, "gone")).toEqual({ kv: [], search: 0, memories: 0, messages: 0 });
    const keptPlanes = await planesOf(config, "kept");
    expect(keptPlanes.kv.length).toBeGreaterThan(3);
    expect(keptPlanes.search).toBe(2);
    expect(keptPlanes.memories).toBe(1);

    // The id may be registered again, and starts empty.
    s = await serve(dir);
    await ok(s.call("POST", "/v1/admin/tenants", { token: admin, json: { tenant_id: "gone" } }), 201);
    const again = await tokenOf("gone");
    expect(errorCode(await s.call("GET", "/v1/chats/c1/messages", { token: again }))).toBe("CHAT_NOT_FOUND");
    expect((await ok(s.call("GET", "/v1/chats", { token: again }), 200)).json.data.items).toEqual([]);
    expect((await ok(s.call("GET", "/v1/objects", { token: again }), 200)).json.data.items).toEqual([]);
    expect((await ok(s.call("GET", "/v1/usage", { token: again }), 200)).json.data.messages).toBe(0);
    expect((await ok(s.call("GET", "/v1/vectors", { token: again }), 200)).json.data.items).toEqual([]);
    expect((await ok(s.call("GET", "/v1/users/u1/memories", { token: again }), 200)).json.data.items).toEqual(
      [],
    );
    const feed = await ok(s.call("GET", "/v1/changes", { token: again }), 200);
    expect(feed.json.data.items).toEqual([]);
    // No version of the old tenant's keys is kept: a key written again starts at version 1.
    const put = await ok(s.call("PUT", "/v1/kv/prefs/theme", { token: again, json: { dark: false } }), 200);
    expect(put.headers.get("etag")).toBe('"1"');
    await neighbourIntact(s, "kept", kept.token, kept.messageIds);
    await s.close();
  });

  it("shows progress while deleting, refuses the tenant's calls and its id, and resumes after a restart", async () => {
    const dir = await mkdtemp(join(tmpdir(), "kura-tdel-"));
    dirs.push(dir);
    let s = await serve(dir);
    const gone = await populate(s, "halfway");
    const kept = await populate(s, "beside");
    await s.close();

    // Small chunks, and the catalog failing on the third: the job stops with part of the rows gone.
    let purges = 0;
    const failing = (catalog: Catalog): Catalog =>
      new Proxy(catalog, {
        get(target, prop, receiver) {
          if (prop === "purgeTenantRows")
            return async (tenantId: string) => {
              if (++purges >= 3) throw new Error("catalog went away");
              return target.purgeTenantRows(tenantId, { limit: 5 });
            };
          const v = Reflect.get(target, prop, receiver);
          return typeof v === "function" ? v.bind(target) : v;
        },
      });
    s = await serve(dir, { wrapCatalog: failing, onWarning: () => undefined });
    await ok(s.call("DELETE", "/v1/admin/tenants/halfway", { token: admin }), 202);
    await s.kura.tenants.settleDeletions();
    expect(purges).toBe(3);
    const mid = await ok(s.call("GET", "/v1/admin/tenants/halfway", { token: admin }), 200);
    expect(mid.json.data.status).toBe("deleting");
    expect(mid.json.data.progress.phase).toBe("catalog");
    expect(mid.json.data.progress.catalog).toBe(10);
    expect(mid.json.data.progress.kv).toBeGreaterThan(0);
    expect(mid.json.data.progress.search).toBeGreaterThan(0);
    expect(mid.json.data.progress.blob).toBe(0);
    const refused = await s.call("GET", "/v1/objects", { token: gone.token });
    expect(refused.status).toBe(403);
    expect(errorCode(refused)).toBe("TENANT_DELETING");
    const taken = await s.call("POST", "/v1/admin/tenants", { token: admin, json: { tenant_id: "halfway" } });
    expect(taken.status).toBe(409);
    expect(errorCode(taken)).toBe("TENANT_EXISTS");
    const patch = await s.call("PATCH", "/v1/admin/tenants/halfway", {
      token: admin,
      json: { status: "active" },
    });
    expect(errorCode(patch)).toBe("TENANT_DELETING");
    // Deleting again while it runs changes nothing.
    expect(
      (await ok(s.call("DELETE", "/v1/admin/tenants/halfway", { token: admin }), 202)).json.data.status,
    ).toBe("deleting");
    await s.kura.tenants.settleDeletions();
    expect(Object.keys(catalogRows(dir, "halfway")).length).toBeGreaterThan(0);
    expect((await listAll(s, "halfway/")).length).toBeGreaterThan(0);
    await s.close();

    // Opened again, the job goes on from where it stopped and finishes.
    s = await serve(dir);
    await waitGone(s, "halfway");
    expect(catalogRows(dir, "halfway")).toEqual({});
    expect(await listAll(s, "halfway/")).toEqual([]);
    expect(pathsOf(dir, "halfway")).toEqual([]);
    await neighbourIntact(s, "beside", kept.token, kept.messageIds);
    const kura = s.kura;
    await s.close();
    expect(await planesOf(kura, "halfway")).toEqual({ kv: [], search: 0, memories: 0, messages: 0 });
  });
});

describe("DELETE /v1/admin/tenants/{id} on PostgreSQL + Redis", async () => {
  const db = await postgresForTests();
  if ("problem" in db) throw new Error(db.problem);
  const problem = await redisProblem();
  if (problem) throw new Error(problem);
  const prefix = `kura-test-tdel-${randomBytes(4).toString("hex")}:`;
  const config = {
    database: { backend: "postgres", url: db.url },
    kv: { backend: "redis", url: REDIS_URL, key_prefix: prefix },
  };
  const dirs: string[] = [];
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
    await dropPrefix(prefix);
    await db.destroy();
  });

  /** Rows naming `tenant` in every table of the database that has a `tenant_id` column. */
  const tableRows = async (tenant: string): Promise<Record<string, number>> => {
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      const tables = await client.query<{ table_schema: string; table_name: string }>(
        "SELECT table_schema, table_name FROM information_schema.columns WHERE column_name = 'tenant_id' " +
          "AND table_schema NOT IN ('pg_catalog', 'information_schema')",
      );
      const out: Record<string, number> = {};
      for (const { table_schema, table_name } of tables.rows) {
        const r = await client.query<{ n: string }>(
          `SELECT COUNT(*) AS n FROM "${table_schema}"."${table_name}" WHERE tenant_id = $1`,
          [tenant],
        );
        const n = Number(r.rows[0]?.n ?? 0);
        if (n > 0) out[`${table_schema}.${table_name}`] = n;
      }
      return out;
    } finally {
      await client.end();
    }
  };

  /** Every Redis key under the test's prefix that names `tenant`. */
  const redisKeys = async (tenant: string): Promise<string[]> => {
    const { Redis } = await import("ioredis");
    const redis = new Redis(REDIS_URL);
    try {
      const keys = await redis.keys(`${prefix}*`);
      return keys.filter((k) => k.includes(tenant));
    } finally {
      redis.disconnect();
    }
  };

  it("leaves no row in any table, no Redis key and no body of the tenant; its neighbour reads back whole", async () => {
    const dir = await mkdtemp(join(tmpdir(), "kura-tdel-pg-"));
    dirs.push(dir);
    let s = await serve(dir, {}, config);
    await populate(s, "gone");
    const kept = await populate(s, "kept");
    expect(Object.keys(await tableRows("gone")).length).toBeGreaterThan(5);
    expect((await redisKeys("gone")).length).toBeGreaterThan(0);
    expect((await listAll(s, "gone/")).length).toBeGreaterThan(5);

    await ok(s.call("DELETE", "/v1/admin/tenants/gone", { token: admin }), 202);
    await waitGone(s, "gone");
    expect(await tableRows("gone")).toEqual({});
    expect(await redisKeys("gone")).toEqual([]);
    expect(await listAll(s, "gone/")).toEqual([]);
    expect(pathsOf(dir, "gone")).toEqual([]);
    await neighbourIntact(s, "kept", kept.token, kept.messageIds);
    expect(Object.keys(await tableRows("kept")).length).toBeGreaterThan(5);
    const kura = s.kura;
    await s.close();
    expect(await planesOf(kura, "gone")).toEqual({ kv: [], search: 0, memories: 0, messages: 0 });
    expect((await planesOf(kura, "kept")).search).toBe(2);

    // The id starts empty when registered again.
    s = await serve(dir, {}, config);
    await ok(s.call("POST", "/v1/admin/tenants", { token: admin, json: { tenant_id: "gone" } }), 201);
    const again = await tokenOf("gone");
    expect((await ok(s.call("GET", "/v1/objects", { token: again }), 200)).json.data.items).toEqual([]);
    expect((await ok(s.call("GET", "/v1/usage", { token: again }), 200)).json.data.messages).toBe(0);
    const put = await ok(s.call("PUT", "/v1/kv/prefs/theme", { token: again, json: { dark: false } }), 200);
    expect(put.headers.get("etag")).toBe('"1"');
    await neighbourIntact(s, "kept", kept.token, kept.messageIds);
    await s.close();
  });
});
