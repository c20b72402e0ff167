/**
 * Hostile input: thousands of generated bad requests — malformed JSON, wrong types, huge headers
 * and bodies, traversal keys, invalid UTF-8, SQL/regex metacharacters, forged tokens, malformed
 * HTTP. The bar: no 5xx at all, no crash, every answer carries a request id (and, when it has a
 * JSON body, the error envelope), and the server is healthy with its data intact afterwards.
 */
import { connect } from "node:net";
import { SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Harness, SECRET, startServer } from "./harness.js";

/** Deterministic PRNG (mulberry32) so a failure can be replayed. */
function rng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (n: number) => Math.floor(next() * n),
    pick: <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)] as T,
  };
}

const META = [
  "' OR '1'='1",
  "'; DROP TABLE messages; --",
  '" OR ""="',
  "1; SELECT * FROM tenants",
  "%' AND 1=1 --",
  ".*",
  "(a+)+$",
  "^(?:a|a)*$",
  "[[[[[[",
  "\\",
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a log-injection probe, sent literally
  "${jndi:ldap://x}",
  "{{7*7}}",
  "<script>alert(1)</script>",
  "../../../../etc/passwd",
  "..\\..\\windows",
  "%00",
  "\u0000",
  "\uffff",
  "\ud800",
  "𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
  "会議' OR 1=1",
  "a".repeat(5000),
  "",
  " ",
  "null",
  "__proto__",
  "constructor",
];

const WRONG = [null, 0, -1, 1.5, 1e308, true, [], {}, [1, 2], { a: { b: [] } }, "x", "", "9".repeat(400)];

/** encodeURIComponent, with lone surrogates sent as their (invalid) UTF-8 bytes. */
const uri = (s: string) => {
  try {
    return encodeURIComponent(s);
  } catch {
    return "%ED%A0%80";
  }
};

interface Outcome {
  label: string;
  status: number | undefined;
  requestId: string | null;
  body: string;
  reset?: boolean;
}

let h: Harness;
let token: string;
let messageId: string;

beforeAll(async () => {
  h = await startServer();
  token = await h.token("acme");
  const r = await h.call("POST", "/v1/chats/keep/messages", {
    token,
    json: { role: "user", content: "must survive" },
  });
  messageId = r.json.data.id;
  await h.call("PUT", "/v1/objects/keep/file.txt", { token, body: "file survives" });
});
afterAll(async () => h?.close());

/** One raw HTTP/1.1 exchange over a socket (paths and headers exactly as given). */
function raw(data: Buffer | string, label: string): Promise<Outcome> {
  const url = new URL(h.base);
  return new Promise((resolve) => {
    const socket = connect(Number(url.port), url.hostname);
    const chunks: Buffer[] = [];
    let done = false;
    const finish = (reset: boolean) => {
      if (done) return;
      done = true;
      const text = Buffer.concat(chunks).toString("latin1");
      const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
      const id = /\r\nx-request-id: ([^\r\n]+)/i.exec(text)?.[1] ?? null;
      // The first response only: a broken request can leave bytes that the server answers as a
      // second (pipelined) request on the same connection.
      const first = text.split(/(?=HTTP\/1\.1 \d{3} )/)[0] ?? "";
      const body = first.split("\r\n\r\n").slice(1).join("\r\n\r\n");
      resolve({ label, status: m ? Number(m[1]) : undefined, requestId: id, body, reset: reset && !m });
      socket.destroy();
    };
    socket.setTimeout(10_000, () => finish(true));
    socket.on("data", (c) => chunks.push(c));
    socket.on("end", () => finish(false));
    socket.on("close", () => finish(false));
    socket.on("error", () => finish(true));
    socket.write(data, () => undefined);
  });
}

function rawRequest(
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: Buffer | string,
): Buffer {
  const b = body === undefined ? Buffer.alloc(0) : Buffer.isBuffer(body) ? body : Buffer.from(body, "utf8");
  const lines = [`${method} ${path} HTTP/1.1`, `Host: 127.0.0.1`, "Connection: close"];
  for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
  if (body !== undefined) lines.push(`Content-Length: ${b.length}`);
  return Buffer.concat([Buffer.from(`${lines.join("\r\n")}\r\n\r\n`, "latin1"), b]);
}

async function viaFetch(
  label: string,
  method: string,
  path: string,
  init: { headers?: Record<string, string>; body?: string | Uint8Array } = {},
): Promise<Outcome> {
  try {
    const res = await fetch(h.base + path, {
      method,
      headers: init.headers ?? {},
      ...(init.body !== undefined ? { body: init.body } : {}),
    });
    return { label, status: res.status, requestId: res.headers.get("x-request-id"), body: await res.text() };
  } catch (e) {
    return { label, status: undefined, requestId: null, body: String(e), reset: true };
  }
}

function generate(seed: number): (() => Promise<Outcome>)[] {
  const r = rng(seed);
  const auth = () => ({ authorization: `Bearer ${token}` });
  const jsonHeaders = () => ({ ...auth(), "content-type": "application/json" });
  const jsonRoutes: [string, string][] = [
    ["POST", "/v1/chats/c1/messages"],
    ["POST", "/v1/chats/c1/messages:batch"],
    ["POST", "/v1/messages:batchGet"],
    ["PATCH", `/v1/messages/${"0".repeat(8)}-0000-7000-8000-000000000000`],
    ["POST", "/v1/objects:presign"],
  ];
  const out: (() => Promise<Outcome>)[] = [];

  // 1. Malformed JSON (400 expected).
  const valid = JSON.stringify({ role: "user", content: "hello", metadata: { a: [1, 2, { b: "c" }] } });
  for (let i = 0; i < 300; i++) {
    const [method, path] = r.pick(jsonRoutes);
    const kind = r.int(6);
    const body =
      kind === 0
        ? valid.slice(0, r.int(valid.length))
        : kind === 1
          ? valid.replace(/[:,"]/, r.pick(["", "::", "'", "\\"]))
          : kind === 2
            ? "[".repeat(1 + r.int(50_000))
            : kind === 3
              ? `{"role":"user","content":"${"\\u".repeat(1 + r.int(5))}zz"}`
              : kind === 4
                ? `{"__proto__":{"polluted":true},"role":"user","content":"x"}`
                : String.fromCharCode(...Array.from({ length: 1 + r.int(200) }, () => r.int(256)));
    out.push(() =>
      viaFetch(`malformed-json ${method} ${path}`, method, path, { headers: jsonHeaders(), body }),
    );
  }

  // 2. Wrong types and SQL/regex metacharacters in every field.
  const fields = ["role", "content", "content_type", "metadata", "ttl_seconds", "idempotency_key"];
  for (let i = 0; i < 400; i++) {
    const body: Record<string, unknown> = { role: "user", content: "x" };
    const f = r.pick(fields);
    body[f] = r.next() < 0.5 ? r.pick(WRONG) : r.pick(META);
    if (r.next() < 0.2) body[r.pick(META)] = r.pick(WRONG);
    const chat = r.next() < 0.3 ? uri(r.pick(META)) || "c" : "c2";
    const batch = r.next() < 0.3;
    out.push(() =>
      viaFetch(`wrong-type ${f}`, "POST", `/v1/chats/${chat}/messages${batch ? ":batch" : ""}`, {
        headers: jsonHeaders(),
        body: JSON.stringify(batch ? { messages: [body, r.pick(WRONG)] } : body),
      }),
    );
  }
  for (let i = 0; i < 250; i++) {
    const p = () => uri(r.pick(META));
    const queries = [
      `/v1/chats/c1/messages?limit=${p()}`,
      `/v1/chats/c1/messages?cursor=${p()}`,
      `/v1/chats/c1/messages?order=${p()}&since=${p()}&until=${p()}`,
      `/v1/chats/c1/messages?include=${p()}&limit=1&limit=2`,
      `/v1/chats?cursor=${p()}&limit=${p()}`,
      `/v1/objects?prefix=${p()}&cursor=${p()}`,
      `/v1/changes?since=${p()}&limit=${p()}`,
      `/v1/audit?since=${p()}&limit=${p()}`,
      `/v1/messages/${p()}`,
      `/v1/messages/${p()}/versions`,
      `/v1/chats/${p()}/messages`,
      `/v1/objects/${p()}`,
      `/v1/kv/${p()}/${p()}`,
      `/v1/kv/ns?prefix=${p()}&cursor=${p()}&limit=${p()}`,
      `/v1/kv/ns/k?ttl=${p()}`,
      `/v1/sessions/${p()}/meta/${p()}`,
      `/v1/sessions/s1/files/${p()}`,
      `/v1/sessions/${p()}`,
      `/v1/${p()}`,
      `/${p()}`,
    ];
    const path = r.pick(queries);
    const method = r.pick(["GET", "GET", "DELETE", "HEAD", "PUT", "OPTIONS", "PATCH"]);
    out.push(() =>
      viaFetch(`query ${method} ${path.slice(0, 80)}`, method, path, {
        headers: auth(),
        ...(method === "PUT" || method === "PATCH" ? { body: "x" } : {}),
      }),
    );
  }

  // 3. Forged tokens (401/403 expected, never data).
  const enc = (o: unknown) => Buffer.from(JSON.stringify(o)).toString("base64url");
  const forged: (() => Promise<string>)[] = [
    async () => `${enc({ alg: "none" })}.${enc({ tenant_id: "globex" })}.`,
    async () => {
      const [hd, , sig] = token.split(".");
      return `${hd}.${enc({ tenant_id: "globex", exp: 9_999_999_999 })}.${sig}`;
    },
    async () =>
      new SignJWT({ tenant_id: "globex" })
        .setProtectedHeader({ alg: "HS256" })
        .sign(new TextEncoder().encode("wrong-secret-wrong-secret-wrong!")),
    async () =>
      new SignJWT({ tenant_id: "globex" })
        .setProtectedHeader({ alg: "HS384" })
        .sign(new TextEncoder().encode(SECRET)),
    async () =>
      new SignJWT({ tenant_id: "acme" })
        .setProtectedHeader({
          alg: "HS256",
          kid: "../../../etc/passwd",
          jku: "http://127.0.0.1:1/jwks",
          x5u: "http://evil",
        } as never)
        .setExpirationTime(1)
        .sign(new TextEncoder().encode(SECRET)),
    async () => `${enc({ alg: "HS256" })}.${"A".repeat(6000)}.${"B".repeat(43)}`,
    async () =>
      Array.from({ length: 3 }, () =>
        Buffer.from(Array.from({ length: 1 + r.int(60) }, () => r.int(256))).toString("base64url"),
      ).join("."),
    async () => r.pick(META),
  ];
  // Correctly signed tokens whose tenant_id is a metacharacter string: 403 unless it is a valid id.
  for (let i = 0; i < 60; i++) {
    const tenant = r.pick(META);
    out.push(async () => {
      const t = await new SignJWT({ tenant_id: tenant })
        .setProtectedHeader({ alg: "HS256" })
        .setExpirationTime("5m")
        .sign(new TextEncoder().encode(SECRET));
      return raw(
        rawRequest("GET", "/v1/chats/keep/messages?include=content", { Authorization: `Bearer ${t}` }),
        "metachar-tenant",
      );
    });
  }
  for (let i = 0; i < 400; i++) {
    const make = r.pick(forged);
    const path = r.pick([
      "/v1/usage",
      `/v1/messages/${"x"}`,
      "/v1/objects/keep/file.txt",
      "/v1/chats/keep/messages?include=content",
      "/v1/audit",
    ]);
    const scheme = r.pick(["Bearer ", "bearer ", "Bearer  ", "Basic ", "", "Bearer\t"]);
    out.push(async () => {
      const t = await make();
      const header = `${scheme}${t}`.replace(/[\r\n]/g, "");
      return raw(
        rawRequest("GET", path, { Authorization: Buffer.from(header, "utf8").toString("latin1") }),
        `forged-token ${path}`,
      );
    });
  }

  // 4. Traversal and malformed keys, raw (no client-side normalisation).
  const keys = [
    "../../etc/passwd",
    "..%2f..%2fetc%2fpasswd",
    "%2e%2e/%2e%2e/etc/passwd",
    "a/./b",
    "a//b",
    "a/%00/b",
    "a\\..\\b",
    "%c0%ae%c0%ae/x",
    "%ff%fe",
    "%",
    "%zz",
    "a?b=../c",
    "/absolute",
    "x%0d%0aSet-Cookie:%20a=b",
    "~kura/presign.key",
    `${"a/".repeat(600)}x`,
    "%E3%81%82/../../b",
  ];
  for (let i = 0; i < 350; i++) {
    const key = r.pick(keys);
    const method = r.pick(["GET", "HEAD", "PUT", "DELETE"]);
    const prefix = r.pick([
      "/v1/objects/",
      "/v1/presigned/",
      "/v1/objects/ok/",
      "/v1/sessions/s1/files/",
      "/v1/kv/ns/",
    ]);
    const headers: Record<string, string> = { Authorization: `Bearer ${token}` };
    if (r.next() < 0.3)
      headers.Range = r.pick([
        "bytes=abc",
        "bytes=-",
        "bytes=99999999999999999999-",
        "bytes=5-1",
        "bytes=0-0,1-1",
        "items=0-1",
        "bytes=-0",
      ]);
    out.push(() =>
      raw(
        rawRequest(method, prefix + key, headers, method === "PUT" ? "payload" : undefined),
        `traversal ${method} ${prefix}${key.slice(0, 40)}`,
      ),
    );
  }

  // 5. Invalid UTF-8 in bodies, URLs and headers.
  for (let i = 0; i < 200; i++) {
    const bad = Buffer.from([0xc3, 0x28, 0xa0, 0xa1, 0xe2, 0x28, 0xa1, 0xf0, 0x28, 0x8c, 0xbc, 0xff, 0xfe]);
    const kind = r.int(4);
    if (kind === 0) {
      const body = Buffer.concat([Buffer.from('{"role":"user","content":"'), bad, Buffer.from('"}')]);
      out.push(() =>
        raw(
          rawRequest(
            "POST",
            "/v1/chats/u8/messages",
            { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
            body,
          ),
          "utf8 json",
        ),
      );
    } else if (kind === 1) {
      out.push(() =>
        raw(
          rawRequest(
            "POST",
            "/v1/chats/u8/messages:stream",
            { Authorization: `Bearer ${token}`, "Content-Type": "text/plain" },
            bad,
          ),
          "utf8 stream",
        ),
      );
    } else if (kind === 2) {
      const path = Buffer.concat([
        Buffer.from("GET /v1/objects/"),
        bad,
        Buffer.from(" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"),
      ]);
      out.push(() =>
        raw(Buffer.concat([path, Buffer.from(`Authorization: Bearer ${token}\r\n\r\n`)]), "utf8 path"),
      );
    } else {
      const head = Buffer.concat([
        Buffer.from(
          `GET /v1/usage HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer ${token}\r\nX-Request-Id: `,
        ),
        bad,
        Buffer.from("\r\nContent-Type: "),
        bad,
        Buffer.from("\r\n\r\n"),
      ]);
      out.push(() => raw(head, "utf8 header"));
    }
  }

  // 6. Huge headers and bodies (413/431 expected).
  for (let i = 0; i < 60; i++) {
    const kind = r.int(4);
    if (kind === 0) {
      out.push(() =>
        raw(
          rawRequest("GET", "/v1/usage", {
            Authorization: `Bearer ${token}`,
            "X-Big": "h".repeat(20_000 + r.int(50_000)),
          }),
          "huge header",
        ),
      );
    } else if (kind === 1) {
      const headers: Record<string, string> = { Authorization: `Bearer ${token}` };
      for (let j = 0; j < 3000; j++) headers[`X-H${j}`] = "v";
      out.push(() => raw(rawRequest("GET", "/v1/usage", headers), "many headers"));
    } else if (kind === 2) {
      const body = `{"role":"user","content":"${"x".repeat(2 * 1024 * 1024)}"}`;
      out.push(() =>
        viaFetch("huge json", "POST", "/v1/chats/big/messages", { headers: jsonHeaders(), body }),
      );
    } else {
      out.push(() =>
        viaFetch("huge batchGet", "POST", "/v1/messages:batchGet", {
          headers: jsonHeaders(),
          body: JSON.stringify({ ids: Array.from({ length: 40_000 }, (_, j) => `id-${j}`) }),
        }),
      );
    }
  }

  // 7. Malformed HTTP (never reaches a route).
  const garbage = [
    "GARBAGE\r\n\r\n",
    "GET / HTTP/9.9\r\n\r\n",
    "GET /healthz HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
    "POST /v1/chats/a/messages HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "POST /v1/chats/a/messages HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    "GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
    "\x00\x01\x02\x03\r\n\r\n",
  ];
  for (let i = 0; i < 60; i++) out.push(() => raw(r.pick(garbage), "malformed http"));
  return out;
}

async function runAll(tasks: (() => Promise<Outcome>)[], concurrency: number): Promise<Outcome[]> {
  const results: Outcome[] = new Array(tasks.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < tasks.length) {
        const i = next++;
        results[i] = await (tasks[i] as () => Promise<Outcome>)();
      }
    }),
  );
  return results;
}

describe("hostile input", () => {
  it("survives ≥ 2,000 generated bad requests with zero 5xx and stays healthy", {
    timeout: 90_000,
  }, async () => {
    const tasks = generate(20_261_123);
    expect(tasks.length).toBeGreaterThanOrEqual(2000);
    const started = Date.now();
    const results = await runAll(tasks, 16);
    const elapsed = Date.now() - started;

    const fivexx = results.filter((o) => o.status !== undefined && o.status >= 500);
    expect(fivexx.map((o) => `${o.status} ${o.label}: ${o.body.slice(0, 200)}`)).toEqual([]);

    // Every answer has a request id, and a JSON body is the error envelope (or a success).
    for (const o of results) {
      if (o.status === undefined) continue;
      expect(o.requestId, `${o.label} ${o.status} ${o.body.slice(0, 300)}`).toBeTruthy();
      if (o.body.startsWith("{")) {
        let env: { success?: unknown; error_code?: unknown };
        try {
          env = JSON.parse(o.body);
        } catch {
          throw new Error(`${o.label} ${o.status}: not one JSON document: ${o.body.slice(0, 600)}`);
        }
        expect(typeof env.success, o.label).toBe("boolean");
        if (!env.success) expect(typeof env.error_code, o.label).toBe("string");
      }
    }
    // Connections closed without an answer only where the request itself was oversized or broken.
    const unanswered = results.filter((o) => o.status === undefined);
    for (const o of unanswered)
      expect(
        ["huge header", "many headers", "huge json", "huge batchGet", "malformed http"],
        o.label,
      ).toContain(o.label);
    expect(unanswered.length).toBeLessThan(results.length / 20);
    for (const o of results.filter((x) => x.label === "metachar-tenant")) {
      expect([403, 404]).toContain(o.status);
      expect(o.body).not.toContain("must survive");
    }
    // Forged tokens never got data.
    for (const o of results.filter((x) => x.label.startsWith("forged-token"))) {
      expect([400, 401, 403], `${o.label} ${o.body.slice(0, 100)}`).toContain(o.status);
      expect(o.body).not.toContain("must survive");
      expect(o.body).not.toContain("file survives");
    }
    const histogram: Record<string, number> = {};
    for (const o of results) histogram[String(o.status)] = (histogram[String(o.status)] ?? 0) + 1;
    process.stdout.write(
      `hostile: ${results.length} requests in ${elapsed} ms, statuses ${JSON.stringify(histogram)}\n`,
    );

    // Still healthy, data intact.
    expect((await h.call("GET", "/healthz")).status).toBe(200);
    expect((await h.call("GET", "/readyz")).status).toBe(200);
    expect((await h.call("GET", `/v1/messages/${messageId}`, { token })).json.data.content).toBe(
      "must survive",
    );
    expect((await h.call("GET", "/v1/objects/keep/file.txt", { token })).text).toBe("file survives");
    const globex = await h.token("globex");
    expect((await h.call("GET", "/v1/usage", { token: globex })).json.data).toMatchObject({
      messages: 0,
      objects: 0,
    });
    expect(
      (await h.call("POST", "/v1/chats/after/messages", { token, json: { role: "user", content: "ok" } }))
        .status,
    ).toBe(201);
  });
});
