import { spawnSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mintToken } from "../../src/http/auth.js";
import { defaultLoggerOptions } from "../../src/http/server.js";
import { Kura } from "../../src/kura.js";
import { errorCode, getWithHost, type Harness, SECRET, startServer } from "./harness.js";

describe("operational routes, OpenAPI, metrics, logs", () => {
  let h: Harness;
  let acme: string;
  const logs: string[] = [];

  beforeAll(async () => {
    const stream = new Writable({
      write(chunk, _enc, done) {
        logs.push(String(chunk));
        done();
      },
    });
    h = await startServer({
      server: {
        logger: { ...defaultLoggerOptions("info"), stream },
        metrics: { outboxLag: async () => ({ search: 3 }) },
      },
    });
    acme = await h.token("acme");
  });
  afterAll(async () => h?.close());

  it("healthz and readyz answer in the envelope without a token", async () => {
    const health = await h.call("GET", "/healthz");
    expect(health.status).toBe(200);
    expect(health.json).toMatchObject({ success: true, data: { status: "ok" } });
    const ready = await h.call("GET", "/readyz");
    expect(ready.status).toBe(200);
    expect(ready.json.data).toEqual({
      status: "ready",
      catalog: "ok",
      blob_store: "ok",
      kv: "ok",
      search: "ok",
      vectors: "ok",
      temp_bytes: 0,
    });
  });

  it("serves an OpenAPI 3.1 document covering the routes of SPEC §4, marking the unbuilt ones", async () => {
    const r = await h.call("GET", "/openapi.json");
    expect(r.status).toBe(200);
    expect(r.headers.get("content-type")).toContain("application/json");
    expect(r.json.success).toBeUndefined(); // raw, not enveloped
    const doc = r.json;
    expect(doc.openapi).toBe("3.1.0");
    const has = (method: string, path: string) => doc.paths[path]?.[method.toLowerCase()];
    const spec = [
      ["GET", "/healthz"],
      ["GET", "/readyz"],
      ["GET", "/metrics"],
      ["GET", "/openapi.json"],
      ["POST", "/v1/chats/{chat_id}/messages"],
      ["POST", "/v1/chats/{chat_id}/messages:batch"],
      ["POST", "/v1/chats/{chat_id}/messages:stream"],
      ["GET", "/v1/chats/{chat_id}/messages"],
      ["GET", "/v1/chats"],
      ["DELETE", "/v1/chats/{chat_id}"],
      ["GET", "/v1/messages/{id}"],
      ["POST", "/v1/messages:batchGet"],
      ["PATCH", "/v1/messages/{id}"],
      ["DELETE", "/v1/messages/{id}"],
      ["POST", "/v1/messages/{id}:undelete"],
      ["GET", "/v1/search"],
      ["POST", "/v1/search"],
      ["PUT", "/v1/objects/{key}"],
      ["GET", "/v1/objects/{key}"],
      ["HEAD", "/v1/objects/{key}"],
      ["DELETE", "/v1/objects/{key}"],
      ["GET", "/v1/objects"],
      ["POST", "/v1/objects:presign"],
      ["POST", "/v1/users/{user_id}/memories"],
      ["GET", "/v1/users/{user_id}/memories"],
      ["POST", "/v1/users/{user_id}/memories:search"],
      ["PUT", "/v1/vectors/{collection}"],
      ["PUT", "/v1/vectors/{collection}/{id}"],
      ["DELETE", "/v1/vectors/{collection}/{id}"],
      ["POST", "/v1/vectors/{collection}:query"],
      ["POST", "/v1/mailboxes/{mailbox_id}/messages"],
      ["GET", "/v1/mailboxes/{mailbox_id}/messages"],
      ["PATCH", "/v1/mailboxes/{mailbox_id}/messages/{id}/flags"],
      ["PUT", "/v1/kv/{namespace}/{key}"],
      ["GET", "/v1/kv/{namespace}/{key}"],
      ["DELETE", "/v1/kv/{namespace}/{key}"],
      ["GET", "/v1/kv/{namespace}"],
      ["PUT", "/v1/sessions/{session_id}/meta/{key}"],
      ["GET", "/v1/sessions/{session_id}/meta/{key}"],
      ["DELETE", "/v1/sessions/{session_id}/meta/{key}"],
      ["PUT", "/v1/sessions/{session_id}/files/{path}"],
      ["GET", "/v1/sessions/{session_id}/files/{path}"],
      ["DELETE", "/v1/sessions/{session_id}/files/{path}"],
      ["DELETE", "/v1/sessions/{session_id}"],
      ["GET", "/v1/changes"],
      ["GET", "/v1/usage"],
      ["GET", "/v1/audit"],
      ["GET", "/v1/admin/tenants"],
      ["POST", "/v1/admin/tenants"],
      ["GET", "/v1/admin/tenants/{id}"],
      ["PATCH", "/v1/admin/tenants/{id}"],
      ["DELETE", "/v1/admin/tenants/{id}"],
      ["POST", "/v1/admin/fsck"],
    ] as const;
    for (const [method, path] of spec) expect(has(method, path), `${method} ${path}`).toBeTruthy();
    expect(
      has("POST", "/v1/chats/{chat_id}/messages").requestBody.content["application/json"].schema.properties
        .role,
    ).toBeTruthy();
    expect(has("GET", "/v1/mailboxes/{mailbox_id}/messages")["x-kura-not-implemented"]).toBeUndefined();
    expect(has("PUT", "/v1/vectors/{collection}")["x-kura-not-implemented"]).toBeUndefined();
    expect(has("GET", "/v1/users/{user_id}/memories")["x-kura-not-implemented"]).toBeUndefined();
    expect(has("GET", "/v1/search")["x-kura-not-implemented"]).toBeUndefined();
    expect(has("POST", "/v1/chats/{chat_id}/messages")["x-kura-not-implemented"]).toBeUndefined();
    expect(has("GET", "/healthz").security).toEqual([]);
    expect(has("GET", "/v1/usage").security).toEqual([{ bearer: [] }, { apiKey: [] }]);
    expect(has("GET", "/v1/admin/tenants").security).toEqual([{ bearer: [] }]);
  });

  it("uses standard path templates whose every parameter is declared, and declares errors as errors", async () => {
    const doc = (await h.call("GET", "/openapi.json")).json;
    expect(doc.info.license).toMatchObject({ name: "Apache-2.0" });
    expect(doc.servers?.length).toBeGreaterThan(0);
    type Op = {
      parameters: { name: string; in: string }[];
      responses: Record<string, { content?: unknown }>;
    };
    for (const [path, ops] of Object.entries(doc.paths as Record<string, Record<string, Op>>)) {
      expect(path, path).not.toContain("...");
      const templated = [...path.matchAll(/\{([A-Za-z_]+)\}/g)].map((m) => m[1]).sort();
      for (const [method, op] of Object.entries(ops)) {
        const declared = op.parameters
          .filter((p) => p.in === "path")
          .map((p) => p.name)
          .sort();
        expect(declared, `${method} ${path}`).toEqual(templated);
        if (templated.length > 0) expect(op.responses["404"], `${method} ${path} 404`).toBeDefined();
        for (const [status, r] of Object.entries(op.responses)) {
          if (Number(status) >= 400 && r.content)
            expect(JSON.stringify(r.content), `${method} ${path} ${status}`).toContain(
              "#/components/schemas/Error",
            );
        }
      }
    }
  });

  it("passes the Redocly linter with zero errors", async () => {
    const doc = (await h.call("GET", "/openapi.json")).text;
    const dir = await mkdtemp(join(tmpdir(), "kura-openapi-"));
    try {
      const file = join(dir, "openapi.json");
      await writeFile(file, doc);
      const cli = join(import.meta.dirname, "../../node_modules/@redocly/cli/bin/cli.js");
      const run = spawnSync(process.execPath, [cli, "lint", "--format=json", file], { encoding: "utf8" });
      const report = JSON.parse(run.stdout.slice(run.stdout.indexOf("{"))) as {
        totals: { errors: number };
        problems: { ruleId: string; message: string; severity: string }[];
      };
      expect(
        report.problems.filter((p) => p.severity === "error").map((p) => `${p.ruleId}: ${p.message}`),
      ).toEqual([]);
      expect(report.totals.errors).toBe(0);
      expect(run.status).toBe(0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("takes keys with '/' sent escaped (as generated clients send {key}) and refuses unexpanded templates", async () => {
    const put = await h.call("PUT", "/v1/objects/docs%2Fa%2Fb.txt", { token: acme, body: "escaped" });
    expect(put.status).toBe(200);
    const got = await h.call("GET", "/v1/objects/docs/a/b.txt", { token: acme });
    expect(got.text).toBe("escaped");
    for (const literal of ["%7Bkey...%7D", "%7Bkey%7D", "a/%7Bkey%7D/b"]) {
      const r = await h.call("PUT", `/v1/objects/${literal}`, { token: acme, body: "x" });
      expect(r.status, literal).toBe(400);
      expect(errorCode(r)).toBe("REQUEST_INVALID");
    }
    expect((await h.call("PUT", "/v1/kv/ns/%7Bkey%7D", { token: acme, json: 1 })).status).toBe(400);
    const listed = await h.call("GET", "/v1/objects?prefix=%7B", { token: acme });
    expect(listed.json.data.items).toEqual([]);
  });

  it("answers 501 NOT_IMPLEMENTED, in the envelope, on every route the document marks unbuilt", async () => {
    const doc = (await h.call("GET", "/openapi.json")).json;
    let count = 0;
    for (const [path, ops] of Object.entries(
      doc.paths as Record<string, Record<string, Record<string, unknown>>>,
    )) {
      for (const [method, op] of Object.entries(ops)) {
        if (!op["x-kura-not-implemented"]) continue;
        const url = path.replace(/\{[A-Za-z]+\}/g, "x1");
        const m = method.toUpperCase();
        const body = m === "GET" ? {} : { json: {} };
        // Admin routes answer only the admin (`kura token --admin`).
        const token = path.startsWith("/v1/admin/")
          ? await mintToken({ secret: SECRET, admin: true, ttlSeconds: 60 })
          : acme;
        const r = await h.call(m, url, { token, ...body });
        expect(r.status, `${method} ${url}`).toBe(501);
        expect(errorCode(r)).toBe("NOT_IMPLEMENTED");
        // Unbuilt routes still require a token.
        expect((await h.call(m, url, body)).status).toBe(401);
        count++;
      }
    }
    // DELETE /v1/chats/{chat_id} at least.
    expect(count).toBeGreaterThanOrEqual(1);
  });

  it("serves a docs page", async () => {
    const r = await fetch(`${h.base}/docs`);
    expect(r.status).toBe(200);
    expect(r.headers.get("content-type")).toContain("text/html");
    expect(await r.text()).toContain("/openapi.json");
  });

  it("answers unknown routes with 404 ROUTE_NOT_FOUND in the envelope", async () => {
    const r = await h.call("GET", "/v2/nothing");
    expect(r.status).toBe(404);
    expect(errorCode(r)).toBe("ROUTE_NOT_FOUND");
    expect(r.headers.get("x-request-id")).toBe(r.json.request_id);
  });

  it("exposes Prometheus metrics: latency by route, message sizes, errors, outbox lag", async () => {
    await h.call("POST", "/v1/chats/m/messages", {
      token: acme,
      json: { role: "user", content: "measure me" },
    });
    await h.call("GET", "/v1/usage");
    await h.call("POST", "/v1/users/alice/memories:search", { token: acme, json: { query: "x" } });
    const r = await fetch(`${h.base}/metrics`);
    expect(r.status).toBe(200);
    expect(r.headers.get("content-type")).toContain("text/plain");
    const text = await r.text();
    // Routes are labelled with the documented template.
    expect(text).toMatch(
      /kura_http_request_duration_seconds_bucket\{[^}]*route="\/v1\/chats\/\{chat_id\}\/messages"/,
    );
    expect(text).toMatch(/route="\/v1\/users\/\{user_id\}\/memories:search"/);
    expect(text).not.toContain("::");
    expect(text).toMatch(/kura_message_size_bytes_count\{operation="append"\} [1-9]/);
    expect(text).toMatch(/kura_http_errors_total\{code="AUTH_REQUIRED",status="401"\} [1-9]/);
    expect(text).toContain('kura_outbox_lag_events{projector="search"} 3');
    expect(text).toContain("kura_process_cpu_seconds_total");
    // Every plane's metrics layer: the append's body put and commit, the memory search's index.
    const ops = (plane: string, operation: string) =>
      new RegExp(
        `kura_backend_operation_duration_seconds_count\\{plane="${plane}",backend="[a-z-]+",operation="${operation}",outcome="ok"\\} [1-9]`,
      );
    expect(text).toMatch(ops("blob", "putMany"));
    expect(text).toMatch(ops("catalog", "commit"));
    expect(text).toMatch(ops("vector", "query"));
  });

  it("exposes body-cache hits and misses per tier (hit ratios)", async () => {
    const ref = await h.call("POST", "/v1/chats/cache/messages", {
      token: acme,
      json: { role: "user", content: "cache me" },
    });
    const hits = async () => {
      const text = await (await fetch(`${h.base}/metrics`)).text();
      const m = /kura_cache_hits\{tier="hot"\} (\d+)/.exec(text);
      expect(text).toMatch(/kura_cache_misses\{tier="hot"\} \d+/);
      return Number(m?.[1]);
    };
    // History with content reads bodies through the body cache: the second read hits it.
    expect(ref.status).toBe(201);
    const before = await hits();
    await h.call("GET", `/v1/chats/cache/messages?include=content`, { token: acme });
    await h.call("GET", `/v1/chats/cache/messages?include=content`, { token: acme });
    expect(await hits()).toBeGreaterThan(before);
  });

  it("change feed: the tenant's events after a cursor, others' never", async () => {
    const globex = await h.token("globex");
    await h.call("POST", "/v1/chats/feed/messages", {
      token: globex,
      json: { role: "user", content: "globex event" },
    });
    const first = await h.call("GET", "/v1/changes?limit=1000", { token: acme });
    expect(first.status).toBe(200);
    expect(first.json.data.items.length).toBeGreaterThan(0);
    expect(first.json.data.items.every((e: { type: string }) => typeof e.type === "string")).toBe(true);
    const seen = JSON.stringify(first.json.data.items);
    expect(seen).not.toContain("feed");
    const cursor = first.json.data.next_cursor;
    const id = (
      await h.call("POST", "/v1/chats/feed2/messages", {
        token: acme,
        json: { role: "user", content: "new" },
      })
    ).json.data.id;
    // Other tenants' writes in between never move acme's positions.
    for (let i = 0; i < 5; i++) {
      await h.call("POST", "/v1/chats/feed/messages", {
        token: globex,
        json: { role: "user", content: `g${i}` },
      });
    }
    const id2 = (
      await h.call("POST", "/v1/chats/feed2/messages", {
        token: acme,
        json: { role: "user", content: "newer" },
      })
    ).json.data.id;
    const next = await h.call("GET", `/v1/changes?since=${cursor}`, { token: acme });
    expect(next.json.data.items.map((e: { entity_id: string }) => e.entity_id)).toEqual([id, id2]);
    const seqs = [...first.json.data.items, ...next.json.data.items].map((e: { seq: number }) => e.seq);
    expect(seqs).toEqual(seqs.map((_, i) => i + 1));
    // Read to the end: the cursor stays where it is.
    const end = await h.call("GET", `/v1/changes?since=${next.json.data.next_cursor}`, { token: acme });
    expect(end.json.data.items).toEqual([]);
    expect(end.json.data.next_cursor).toBe(next.json.data.next_cursor);
    expect(errorCode(await h.call("GET", "/v1/changes?since=garbage", { token: acme }))).toBe(
      "CURSOR_INVALID",
    );
    const forged = Buffer.from(JSON.stringify({ k: "f2", p: "drop table" })).toString("base64url");
    expect(errorCode(await h.call("GET", `/v1/changes?since=${forged}`, { token: acme }))).toBe(
      "CURSOR_INVALID",
    );
  });

  it("usage and audit are the tenant's own", async () => {
    const usage = await h.call("GET", "/v1/usage", { token: acme });
    expect(usage.json.data).toMatchObject({ tenant_id: "acme" });
    expect(usage.json.data.messages).toBeGreaterThan(0);
    const audit = await h.call("GET", `/v1/audit?since=${Date.now() - 60_000}&limit=10`, { token: acme });
    expect(audit.json.data.items.length).toBeGreaterThan(0);
    expect(audit.json.data.items.map((a: { action: string }) => a.action)).toContain("message.append");
    const none = await h.call("GET", "/v1/audit", { token: await h.token("nobody") });
    expect(none.json.data.items).toEqual([]);
  });

  it("records the token's subject as the audit actor (SEC-3)", async () => {
    const alice = await h.sign({ tenant_id: "acme", sub: "alice" }, { expiresIn: "5m" });
    const put = await h.call("PUT", "/v1/objects/audit/who.txt", { token: alice, body: "by alice" });
    expect(put.status).toBeLessThan(300);
    const audit = await h.call("GET", "/v1/audit?limit=1000", { token: acme });
    const entry = audit.json.data.items.find((a: { target: string }) => a.target === "audit/who.txt");
    expect(entry).toMatchObject({ action: "object.put", actor: "user:alice" });
  });

  it("logs JSON lines with no token or URL signature in them", async () => {
    await h.call("PUT", "/v1/objects/log/x.txt", { token: acme, body: "x" });
    const p = await h.call("POST", "/v1/objects:presign", { token: acme, json: { key: "log/x.txt" } });
    const u = new URL(p.json.data.url);
    await fetch(`${h.base}${u.pathname}${u.search}`);
    await sleep(50);
    const all = logs.join("");
    expect(all.length).toBeGreaterThan(0);
    for (const line of logs) expect(() => JSON.parse(line)).not.toThrow();
    expect(all).not.toContain(acme);
    expect(all).not.toContain(u.searchParams.get("X-Kura-Signature") as string);
    expect(all).toContain("X-Kura-Signature=[redacted]");
  });
});

describe("outbox lag of registered projectors", () => {
  it("reports each projector's pending events in /metrics", async () => {
    const h = await startServer();
    // A projector that never keeps up: every event stays pending for it.
    h.kura.registerProjector({
      name: "stuck",
      handle: async () => {
        throw new Error("not yet");
      },
    });
    const token = await h.token("acme");
    for (let i = 0; i < 3; i++) {
      await h.call("POST", "/v1/chats/lag/messages", { token, json: { role: "user", content: `m${i}` } });
    }
    const text = await (await fetch(`${h.base}/metrics`)).text();
    expect(text).toContain('kura_outbox_lag_events{projector="stuck"} 3');
    await h.close();
  });
});

describe("where the server is reachable (OpenAPI servers, presigned URLs)", () => {
  let h: Harness | undefined;
  afterAll(async () => h?.close());

  const presign = async (h: Harness, token: string) => {
    await h.call("PUT", "/v1/objects/a.txt", { token, body: "a" });
    const get = await h.call("POST", "/v1/objects:presign", { token, json: { key: "a.txt" } });
    const put = await h.call("POST", "/v1/objects:presign", { token, json: { key: "b.txt", method: "PUT" } });
    const file = await h.call("POST", "/v1/sessions/s1/files:presign", {
      token,
      json: { path: "f.bin", method: "PUT" },
    });
    return [get, put, file].map((r) => {
      expect(r.status, r.text).toBe(200);
      return r.json.data.url as string;
    });
  };

  it("without server.public_url: the document's own server and the port it listens on; URLs work as given", async () => {
    h = await startServer();
    expect(h.base).not.toContain(":8787");
    const doc = (await h.call("GET", "/openapi.json")).json;
    expect(doc.servers.map((s: { url: string }) => s.url)).toEqual(["/", h.base]);
    // A Host header names no server of the document.
    const other = await getWithHost(h, "evil.example", "/openapi.json", "");
    expect(other.body).not.toContain("evil.example");
    const acme = await h.token("acme");
    const [get, put, file] = (await presign(h, acme)) as [string, string, string];
    for (const url of [get, put, file]) expect(url.startsWith(`${h.base}/v1/presigned/`), url).toBe(true);
    expect(await (await fetch(get)).text()).toBe("a");
    expect((await fetch(put, { method: "PUT", body: "b" })).status).toBe(200);
    expect((await fetch(file, { method: "PUT", body: "f" })).status).toBe(200);
    await h.close();
    h = undefined;
  });

  it("with no server in the process, Kura signs for the configured public URL, else host and port", async () => {
    const dir = await mkdtemp(join(tmpdir(), "kura-server-url-"));
    try {
      const signed = async (server: Record<string, unknown>) => {
        const kura = await Kura.open({ data_dir: dir, server });
        try {
          await kura.tenant("acme").objects.put("a.txt", Buffer.from("a"));
          return (await kura.tenant("acme").objects.presign("a.txt", { expiresIn: 60 })).url;
        } finally {
          await kura.close();
        }
      };
      expect(await signed({ host: "0.0.0.0", port: 9300 })).toMatch(
        /^http:\/\/127\.0\.0\.1:9300\/v1\/presigned\//,
      );
      expect(await signed({ port: 9300, public_url: "https://kura.example.com" })).toMatch(
        /^https:\/\/kura\.example\.com\/v1\/presigned\//,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("server.public_url wins: it is the document's server and the base of presigned URLs", async () => {
    h = await startServer({ config: { server: { public_url: "https://kura.example.com/" } } });
    const doc = (await h.call("GET", "/openapi.json")).json;
    expect(doc.servers).toEqual([{ url: "https://kura.example.com", description: "This server" }]);
    const acme = await h.token("acme");
    for (const url of await presign(h, acme))
      expect(url.startsWith("https://kura.example.com/v1/presigned/"), url).toBe(true);
  });
});

describe("CORS from server.cors.origins", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startServer({
      config: {
        auth: { jwt_secret: "x".repeat(32) },
        server: { cors: { origins: ["https://app.example"] } },
      },
    });
  });
  afterAll(async () => h?.close());

  it("answers preflights for configured origins only", async () => {
    const pre = await fetch(`${h.base}/v1/objects/a.txt`, {
      method: "OPTIONS",
      headers: {
        origin: "https://app.example",
        "access-control-request-method": "PUT",
        "access-control-request-headers": "authorization",
      },
    });
    expect(pre.status).toBeLessThan(300);
    expect(pre.headers.get("access-control-allow-origin")).toBe("https://app.example");
    const get = await fetch(`${h.base}/healthz`, { headers: { origin: "https://app.example" } });
    expect(get.headers.get("access-control-allow-origin")).toBe("https://app.example");
    expect(get.headers.get("access-control-expose-headers")).toContain("X-Request-Id");
    const evil = await fetch(`${h.base}/healthz`, { headers: { origin: "https://evil.example" } });
    expect(evil.headers.get("access-control-allow-origin")).toBeNull();
  });
});

describe("graceful shutdown and readiness", () => {
  it("finishes an in-flight request before closing, then refuses new connections", async () => {
    const h = await startServer();
    const token = await h.token("acme");
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      async pull(c) {
        if (sent === 1) await gate;
        if (sent === 3) return c.close();
        sent++;
        c.enqueue(new TextEncoder().encode(`part${sent} `));
      },
    });
    const inflight = fetch(`${h.base}/v1/chats/shutdown/messages:stream`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "text/plain" },
      body,
      duplex: "half",
    } as RequestInit);
    await sleep(100);
    const closing = h.app.close();
    await sleep(100);
    await expect(fetch(`${h.base}/healthz`)).rejects.toThrow();
    release();
    const res = await inflight;
    expect(res.status).toBe(201);
    await closing;
    const page = await h.kura.tenant("acme").messages.history("shutdown", { includeContent: true });
    expect(page.items.map((m) => ("content" in m ? m.content : ""))).toEqual(["part1 part2 part3 "]);
    await h.close();
  });

  it("readyz answers 503 with Retry-After when the catalog is gone", async () => {
    const h = await startServer();
    await h.kura.catalog.close();
    const r = await h.call("GET", "/readyz");
    expect(r.status).toBe(503);
    expect(r.headers.get("retry-after")).toBeTruthy();
    // A closed catalog is CLOSED, not an outage: the answer is the general NOT_READY naming it.
    expect(errorCode(r)).toBe("NOT_READY");
    expect(r.json.error).toMatch(/^not ready: catalog: .*closed/);
    expect((await h.call("GET", "/healthz")).status).toBe(200);
    await h.app.close();
  });

  it("readyz checks the KV plane too, naming it in the 503", async () => {
    const h = await startServer();
    await (h.kura as unknown as { state: { kv: { close(): Promise<void> } } }).state.kv.close();
    const r = await h.call("GET", "/readyz");
    expect(r.status).toBe(503);
    expect(r.headers.get("retry-after")).toBeTruthy();
    expect(r.json.error).toMatch(/^not ready: kv: /);
    expect(r.json.details).toEqual([expect.objectContaining({ plane: "kv" })]);
    await h.close();
  });
});
