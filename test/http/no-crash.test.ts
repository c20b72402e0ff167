/**
 * No error thrown while handling a request ends the process. Every route the server documents
 * (enumerated from /openapi.json, so a new route is covered the day it is added) is called
 * while the blob store, the catalog and the KV store all fail in every way a faulty backend
 * can: a KuraError of each kind, a plain Error, a TypeError, a thrown string, `undefined` —
 * thrown synchronously, as a rejected promise, or by a body stream after its first chunk. Each
 * answer must be the status the one error
 * mapping gives (`statusOf`), 500 "internal error" for anything unanticipated, 503 with
 * Retry-After for Unavailable (a stream that fails once the response has started is cut off,
 * never ended cleanly); the process must record no unhandled rejection or uncaught
 * exception, and must answer normally once the faults are gone.
 */
import { request } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ERROR_CODES, type ErrorCode, type ErrorKind, KuraError } from "../../src/core/errors.js";
import { LruCache } from "../../src/engine/lru-cache.js";
import { mintToken } from "../../src/http/auth.js";
import { statusOf } from "../../src/http/errors.js";
import { type PortFault, PortFaults, withPortFaults } from "../../src/layers/port-faults.js";
import { type CallResult, type Harness, SECRET, startServer } from "./harness.js";
import { watchProcess } from "./process-watch.js";

const watch = watchProcess();

/** Bodies of many read chunks (4 MiB), so a stream can fail once the response is under way. */
const BIG = "0123456789abcdef".repeat(256 * 1024);

/**
 * Codes a domain gives a meaning of its own (a blob-level "already exists" is a failed
 * precondition on PUT /v1/objects): the kind's mapping is tested with another code of it.
 */
const PREFERRED: Partial<Record<ErrorKind, ErrorCode>> = { AlreadyExists: "CATALOG_DUPLICATE" };

/** One code per kind: the preferred one, else the first the registry lists. */
function codePerKind(): Map<ErrorKind, ErrorCode> {
  const codes = new Map<ErrorKind, ErrorCode>(Object.entries(PREFERRED) as [ErrorKind, ErrorCode][]);
  for (const [code, [kind]] of Object.entries(ERROR_CODES) as [ErrorCode, readonly [ErrorKind, string]][])
    if (!codes.has(kind)) codes.set(kind, code);
  return codes;
}

interface Thrown {
  name: string;
  make: () => unknown;
  /** The status the client must see, and whether the message must be the generic one. */
  status: number;
  generic: boolean;
}

const THROWN: Thrown[] = [
  ...[...codePerKind()].map(([kind, code]): Thrown => {
    const make = () => new KuraError(code, `injected ${code}`, { operation: "test.fault" });
    return {
      name: `KuraError ${kind} (${code})`,
      make,
      status: statusOf(make()),
      generic: kind === "Unexpected" || kind === "ConfigInvalid",
    };
  }),
  { name: "Error", make: () => new Error("backend exploded"), status: 500, generic: true },
  { name: "TypeError", make: () => new TypeError("x is not a function"), status: 500, generic: true },
  { name: "string", make: () => "a thrown string", status: 500, generic: true },
  { name: "undefined", make: () => undefined, status: 500, generic: true },
  { name: "object", make: () => ({ code: "ECONNRESET" }), status: 500, generic: true },
  {
    // An SDK error that escaped its adapter: its HTTP status is the backend's, not the client's.
    name: "Error with statusCode",
    make: () => Object.assign(new Error("The specified blob does not exist."), { statusCode: 404 }),
    status: 500,
    generic: true,
  },
];

/**
 * Routes that touch none of the faulted planes (the process, the document, the vector plane's
 * own store), or that must answer without them: they answer as usual while everything fails.
 */
const PLANE_FREE = new Set([
  "healthz",
  "openapi",
  "docs",
  "docsAsset",
  // The console's static files.
  "console",
  "consoleFile",
  // tus discovery: the server's settings only.
  "uploadOptions",
  // Vector collections live in the vector plane's own store (not faulted here).
  "createCollection",
  "getCollection",
  "dropCollection",
  "listCollections",
  "putVector",
  "deleteVector",
  "queryVectors",
  // Encryption key routes: 501 ENCRYPTION_DISABLED before any plane (this server has no encryption).
  "rotateTenantKeys",
  "shredTenant",
]);

/**
 * Routes that answer a backend failure with a documented status of their own instead of the
 * failure's: readiness reports the plane as not ready; search degrades to a catalog scan and
 * then fails like it; /metrics leaves gauges it cannot read out.
 */
const OWN_STATUS: Record<string, (status: number, thrown: Thrown) => boolean> = {
  readyz: (status) => status === 503,
  metrics: (status) => status === 200,
};

interface Sample {
  path?: string;
  query?: string;
  json?: unknown;
  body?: string;
  headers?: Record<string, string>;
  auth?: false;
}

interface Operation {
  method: string;
  path: string;
  operationId: string;
  notImplemented: boolean;
  hasBody: boolean;
}

describe("no request error ends the process", () => {
  const faults = new PortFaults();
  let h: Harness;
  let token: string;
  /** Admin routes are called as the admin (`kura token --admin`). */
  let adminToken: string;
  let operations: Operation[] = [];
  const samples: Record<string, Sample> = {};

  beforeAll(async () => {
    h = await startServer({
      // Backends failing in every way make routes answer what no route promises (a 412 from a
      // listing): the statuses here are statusOf's, checked below, not the document's.
      server: { onUndocumented: () => {} },
      open: {
        cache: new LruCache(0),
        wrapStore: (s) => withPortFaults(s, faults),
        wrapCatalog: (c) => withPortFaults(c, faults),
        wrapKv: (k) => withPortFaults(k, faults),
      },
    });
    token = await h.token("acme");
    adminToken = await mintToken({ secret: SECRET, admin: true, ttlSeconds: 600 });
    const ok = async (r: Promise<CallResult>) => {
      const res = await r;
      expect(res.status, res.text).toBeLessThan(300);
      return res;
    };
    const message = await ok(
      h.call("POST", "/v1/chats/c1/messages", { token, json: { role: "user", content: "hello" } }),
    );
    const id = message.json.data.id as string;
    await ok(h.call("PUT", "/v1/objects/o.txt", { token, body: BIG }));
    await ok(h.call("PUT", "/v1/kv/ns/k1", { token, json: { v: 1 } }));
    await ok(h.call("PUT", "/v1/sessions/s1/meta/m1", { token, json: { v: 1 } }));
    await ok(h.call("PUT", "/v1/sessions/s1/files/f.txt", { token, body: BIG }));
    const presignedGet = (
      await ok(h.call("POST", "/v1/objects:presign", { token, json: { key: "o.txt", method: "GET" } }))
    ).json.data.url as string;
    const presignedPut = (
      await ok(h.call("POST", "/v1/objects:presign", { token, json: { key: "p.txt", method: "PUT" } }))
    ).json.data.url as string;
    const tusHeaders = { "tus-resumable": "1.0.0" };
    const upload = (
      await ok(
        h.call("POST", "/v1/uploads", {
          token,
          headers: { ...tusHeaders, "upload-length": "5", "upload-metadata": "key dXAudHh0" },
        }),
      )
    ).headers.get("location") as string;
    const uploadPath = new URL(upload).pathname;
    const local = (url: string) => {
      const u = new URL(url);
      return { path: u.pathname, query: u.search.slice(1) };
    };
    const msg = (body: Sample = {}): Sample => ({ path: `/v1/messages/${id}`, ...body });
    Object.assign(samples, {
      appendMessage: { json: { role: "user", content: "x" } },
      appendMessages: { json: { messages: [{ role: "user", content: "x" }] } },
      streamMessage: { query: "role=user", body: "streamed", headers: { "content-type": "text/plain" } },
      getMessage: msg(),
      editMessage: msg({ json: { content: "edited" } }),
      deleteMessage: msg(),
      messageVersions: { path: `/v1/messages/${id}/versions` },
      undeleteMessage: { path: `/v1/messages/${id}:undelete` },
      batchGetMessages: { json: { ids: [id] } },
      putObject: { path: "/v1/objects/new.txt", body: "new body", headers: { "content-type": "text/plain" } },
      presignObject: { json: { key: "o.txt", method: "GET" } },
      createUpload: {
        body: "hello",
        headers: {
          ...tusHeaders,
          "upload-length": "5",
          "upload-metadata": "key dXAudHh0",
          "content-type": "application/offset+octet-stream",
        },
      },
      headUpload: { path: uploadPath, headers: tusHeaders },
      patchUpload: {
        path: uploadPath,
        body: "x",
        headers: { ...tusHeaders, "upload-offset": "0", "content-type": "application/offset+octet-stream" },
      },
      terminateUpload: { path: uploadPath, headers: tusHeaders },
      headPresigned: { ...local(presignedGet), auth: false },
      getPresigned: { ...local(presignedGet), auth: false },
      putPresigned: { ...local(presignedPut), body: "via presign", auth: false },
      kvPut: { json: { v: 2 } },
      sessionPutMeta: { json: { v: 2 } },
      sessionPutFile: { body: "new file", headers: { "content-type": "text/plain" } },
      sessionPresignFile: { json: { path: "f.txt", method: "GET" } },
      search: { query: "q=hello" },
      searchPost: { json: { q: "hello" } },
      addMemory: { json: { content: "likes tea" } },
      searchMemories: { json: { query: "tea" } },
      createCollection: { json: { dimensions: 3 } },
      putVector: { json: { vector: [1, 2, 3] } },
      queryVectors: { json: { vector: [1, 2, 3] } },
      createLegalHold: { json: { chat_id: "c1", reason: "case 1" } },
      storeMail: { body: "Subject: hi\r\n\r\nbody\r\n", headers: { "content-type": "message/rfc822" } },
      setMailFlags: { json: { add: ["\\Seen"] } },
      copyMail: { json: { mailbox_id: "mb2" } },
      moveMail: { json: { mailbox_id: "mb2" } },
      runLifecycle: { json: { dry_run: true } },
      createTenant: { json: { tenant_id: "t-new" } },
      updateTenant: { json: { status: "active" } },
      createApiKey: { json: { scopes: ["read"] } },
      fsck: { json: {} },
      // Refused at the catalog (every plane fails here) before a target is opened.
      startMigration: { json: { target: { storage: { backend: "memory" } } } },
    } satisfies Record<string, Sample>);
    const doc = (await h.call("GET", "/openapi.json")).json;
    for (const [path, ops] of Object.entries<Record<string, Record<string, unknown>>>(doc.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        operations.push({
          method: method.toUpperCase(),
          path,
          operationId: op.operationId as string,
          notImplemented: op["x-kura-not-implemented"] === true,
          hasBody: op.requestBody !== undefined,
        });
      }
    }
    operations = operations.sort((a, b) => a.operationId.localeCompare(b.operationId));
  });
  afterAll(async () => {
    faults.disarm();
    await h?.close();
  });

  /** The concrete request for an operation: documented path with sample values. */
  function requestOf(op: Operation): { path: string; init: Parameters<Harness["call"]>[2] } {
    const sample = samples[op.operationId] ?? {};
    const values: Record<string, string> = {
      chat_id: "c1",
      id: "v1",
      key: op.path.startsWith("/v1/kv/") ? "k1" : op.path.includes("/meta/") ? "m1" : "o.txt",
      namespace: "ns",
      session_id: "s1",
      path: "f.txt",
      user_id: "u1",
      collection: "col",
      mailbox_id: "mb1",
    };
    const path =
      sample.path ??
      op.path.replace(/\{([A-Za-z_]+)(?:\.\.\.)?\}/g, (_, name: string) => values[name] ?? "x1");
    const query = sample.query ? `?${sample.query}` : "";
    return {
      path: path + query,
      init: {
        ...(sample.auth === false ? {} : { token: op.path.startsWith("/v1/admin/") ? adminToken : token }),
        ...(sample.json !== undefined ? { json: sample.json } : {}),
        ...(sample.body !== undefined ? { body: sample.body } : {}),
        ...(sample.headers ? { headers: sample.headers } : {}),
      },
    };
  }

  it("enumerates the routes and has a request body for every one that takes one", () => {
    expect(operations.length).toBeGreaterThan(40);
    const missing = operations.filter((op) => op.hasBody && !op.notImplemented && !samples[op.operationId]);
    expect(missing.map((op) => op.operationId)).toEqual([]);
  });

  // Every route × every failure × three modes: about 30 s on a loaded 2-core machine.
  it("answers every route with the mapped status under every kind of backend failure", async () => {
    const problems: string[] = [];
    const reached = new Set<string>();
    /** Routes whose body stream was failed mid-way (answered with an error, or cut off). */
    const broken = new Set<string>();
    for (const op of operations) {
      const { path, init } = requestOf(op);
      for (const thrown of THROWN) {
        for (const mode of ["reject", "throw", "midstream"] as const) {
          // A stream fails with an error value; `undefined` would mean "no error" to it.
          // Only reads: a write under this mode really happens, and would change what later
          // requests find.
          if (mode === "midstream" && (thrown.make() === undefined || op.method !== "GET")) continue;
          // Mid-stream, fail late: after three of the body's four chunks, once the response
          // has started (the socket is then cut), not before its headers.
          const fault: PortFault = { make: thrown.make, mode, afterChunks: 3 };
          faults.resetHits();
          faults.arm(fault);
          let r: CallResult;
          try {
            r = await h.call(op.method, path, init);
          } catch (e) {
            faults.disarm();
            // A body cut off after its headers is the right answer to a stream that failed
            // mid-way; anything else that leaves the client without an answer is not.
            if (mode !== "midstream" || faults.resetHits() === 0)
              problems.push(`${op.operationId} ${thrown.name} ${mode}: no answer (${String(e)})`);
            else broken.add(op.operationId);
            continue;
          } finally {
            faults.disarm();
          }
          const hit = faults.resetHits() > 0;
          if (hit) (mode === "midstream" ? broken : reached).add(op.operationId);
          const what = `${op.method} ${path} ← ${thrown.name} (${mode}): ${r.status} ${r.text.slice(0, 160)}`;
          if (!hit) continue; // the request never reached a faulted plane: nothing to map
          const own = OWN_STATUS[op.operationId];
          if (own) {
            if (!own(r.status, thrown)) problems.push(what);
            continue;
          }
          if (r.status !== thrown.status) {
            problems.push(what);
            continue;
          }
          if (op.method === "HEAD") continue;
          if (r.json?.success !== false) problems.push(`${what} (not an error envelope)`);
          else if (thrown.generic && r.json.error !== "internal error") problems.push(`${what} (leaks)`);
          if (r.status === 503 && !(Number(r.headers.get("retry-after")) > 0))
            problems.push(`${what} (no Retry-After)`);
        }
      }
    }
    expect(problems).toEqual([]);
    expect(watch.escaped).toEqual([]);
    // Every implemented route that uses a faulted plane was reached by the faults: a route
    // whose sample request stops before its backend (validation) would prove nothing.
    const unreached = operations
      .filter((op) => !op.notImplemented && !reached.has(op.operationId) && !PLANE_FREE.has(op.operationId))
      .map((op) => op.operationId);
    expect(unreached).toEqual([]);
    for (const streamed of ["getObject", "getPresigned", "sessionGetFile"])
      expect(broken).toContain(streamed);
  }, 120_000);

  // Deterministic form of what the sweep above meets only when a tenant's cached admission has
  // expired: the tenant lookup in authentication fails with an SDK-like error.
  it("maps a backend failure while admitting a tenant like any other, not as the client's fault", async () => {
    const fresh = await h.token("not-yet-admitted");
    for (const thrown of THROWN.filter((t) => t.name === "Error with statusCode" || t.status === 503)) {
      faults.resetHits();
      faults.arm({ make: thrown.make, mode: "reject" });
      let r: CallResult;
      try {
        r = await h.call("GET", "/v1/usage", { token: fresh });
      } finally {
        faults.disarm();
      }
      expect(faults.resetHits()).toBeGreaterThan(0);
      expect(r.status, `${thrown.name}: ${r.text}`).toBe(thrown.status);
    }
    expect(watch.escaped).toEqual([]);
  });

  it("still answers, and answers normally, once the faults are gone", async () => {
    expect((await h.call("GET", "/healthz")).status).toBe(200);
    expect((await h.call("GET", "/v1/usage", { token })).status).toBe(200);
    const r = await h.call("GET", "/v1/objects/o.txt", { token });
    expect(r.status).toBe(200);
    expect(r.text).toBe(BIG);
    expect(watch.escaped).toEqual([]);
  });
});

describe("a client that goes away mid-request", () => {
  let h: Harness;
  let token: string;
  beforeAll(async () => {
    h = await startServer();
    token = await h.token("acme");
  });
  afterAll(async () => h?.close());

  /** Sends the headers and part of a body that promises more, then destroys the connection. */
  const abandon = (method: string, path: string, headers: Record<string, string>) =>
    new Promise<void>((resolve) => {
      const url = new URL(h.base + path);
      const req = request({
        host: url.hostname,
        port: url.port,
        path: url.pathname + url.search,
        method,
        headers: { "content-length": String(1024 * 1024), ...headers },
      });
      req.on("error", () => resolve());
      req.on("response", () => resolve());
      req.write(Buffer.alloc(64 * 1024, 0x61), () => {
        setImmediate(() => {
          req.destroy();
          resolve();
        });
      });
    });

  it("leaves the process serving, with nothing escaped, on every body-reading route", async () => {
    const auth = { authorization: `Bearer ${token}` };
    const presigned = await h.call("POST", "/v1/objects:presign", {
      token,
      json: { key: "p.bin", method: "PUT" },
    });
    const p = new URL(presigned.json.data.url as string);
    for (let round = 0; round < 3; round++) {
      await Promise.all([
        abandon("PUT", "/v1/objects/abandoned.bin", { ...auth, "content-type": "application/octet-stream" }),
        abandon("PUT", "/v1/sessions/s1/files/abandoned.bin", { ...auth, "content-type": "text/plain" }),
        abandon("PUT", p.pathname + p.search, { "content-type": "application/octet-stream" }),
        abandon("POST", "/v1/chats/c1/messages:stream?role=user", { ...auth, "content-type": "text/plain" }),
        abandon("POST", "/v1/chats/c1/messages", { ...auth, "content-type": "application/json" }),
        abandon("PUT", "/v1/kv/ns/k1", { ...auth, "content-type": "application/json" }),
      ]);
    }
    // Let the server finish with the abandoned requests before looking.
    await new Promise((r) => setTimeout(r, 200));
    expect((await h.call("GET", "/healthz")).status).toBe(200);
    expect((await h.call("GET", "/v1/objects/abandoned.bin", { token })).status).toBe(404);
    const history = await h.call("GET", "/v1/chats/c1/messages", { token });
    // Nothing was appended: the chat does not exist (or is empty).
    if (history.status === 200) expect(history.json.data.items).toEqual([]);
    else expect(history.status).toBe(404);
    expect(watch.escaped).toEqual([]);
  });
});
