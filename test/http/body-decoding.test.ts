/**
 * JSON request bodies as raw bytes over the real server: invalid UTF-8, lone surrogates and
 * over-deep values are refused with 400 and nothing is stored (they used to become U+FFFD);
 * prototype poisoning is still refused and body limits still hold.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MAX_JSON_DEPTH, parseJsonBody } from "../../src/http/json-body.js";
import { errorCode, type Harness, startServer } from "./harness.js";

let h: Harness;
let token: string;

beforeAll(async () => {
  h = await startServer();
  token = await h.token("acme");
});
afterAll(async () => h?.close());

/** `{"field": "ok<bytes>"}` around raw bytes, and the rest of a request body as given. */
const withBytes = (prefix: string, bytes: number[], suffix: string) =>
  Buffer.concat([Buffer.from(prefix), Buffer.from(bytes), Buffer.from(suffix)]);

const post = (method: string, path: string, body: Buffer | string, type = "application/json") =>
  h.call(method, path, { token, body, headers: { "content-type": type } });

/** `levels` nested arrays. */
const nest = (levels: number) => `${"[".repeat(levels)}${"]".repeat(levels)}`;

interface Route {
  name: string;
  method: string;
  path: string;
  /** A body whose one string field holds `inner` (raw JSON text between the quotes). */
  body: (inner: Buffer) => Buffer;
  /** A body whose deepest value is `levels` deep (the top-level object is level 1). */
  deep: (levels: number) => string;
  /** True when nothing was stored by the refused requests. */
  nothingStored: () => Promise<boolean>;
}

const routes: Route[] = [
  {
    name: "message append",
    method: "POST",
    path: "/v1/chats/utf8/messages",
    body: (inner) => Buffer.concat([Buffer.from('{"role":"user","content":"'), inner, Buffer.from('"}')]),
    deep: (levels) => `{"role":"user","content":"hi","metadata":{"x":${nest(levels - 2)}}}`,
    nothingStored: async () => {
      const r = await h.call("GET", "/v1/chats/utf8/messages", { token });
      return r.status === 404 || (r.status === 200 && r.json.data.items.length === 0);
    },
  },
  {
    name: "KV put",
    method: "PUT",
    path: "/v1/kv/ns/k1",
    body: (inner) => Buffer.concat([Buffer.from('{"v":"'), inner, Buffer.from('"}')]),
    deep: (levels) => `{"v":${nest(levels - 1)}}`,
    nothingStored: async () => (await h.call("GET", "/v1/kv/ns/k1", { token })).status === 404,
  },
  {
    name: "memory",
    method: "POST",
    path: "/v1/users/u1/memories",
    body: (inner) => Buffer.concat([Buffer.from('{"content":"'), inner, Buffer.from('"}')]),
    deep: (levels) => `{"content":"hi","x":${nest(levels - 1)}}`,
    nothingStored: async () => {
      const r = await h.call("GET", "/v1/users/u1/memories", { token });
      return r.status === 200 && r.json.data.items.length === 0;
    },
  },
];

describe.each(routes)("$name", (route) => {
  it("refuses invalid UTF-8 bytes with 400 INVALID_UTF8 and stores nothing", async () => {
    const bad = [
      [0xff], // never valid
      [0xc3], // truncated two-byte sequence
      [0xc0, 0xaf], // overlong "/"
      [0xed, 0xa0, 0x80], // an encoded surrogate (CESU-8)
      [0xf4, 0x90, 0x80, 0x80], // beyond U+10FFFF
    ];
    for (const bytes of bad) {
      const r = await post(route.method, route.path, route.body(withBytes("ok", bytes, "")));
      expect(r.status, JSON.stringify(bytes)).toBe(400);
      expect(errorCode(r)).toBe("INVALID_UTF8");
    }
    expect(await route.nothingStored()).toBe(true);
  });

  it("refuses a lone surrogate escape in a string with 400 INVALID_UTF8", async () => {
    for (const esc of ["\\ud800", "\\udfff", "x\\ud83dy", "\\ude00\\ud83d"]) {
      const r = await post(route.method, route.path, route.body(Buffer.from(esc)));
      expect(r.status, esc).toBe(400);
      expect(errorCode(r)).toBe("INVALID_UTF8");
    }
    expect(await route.nothingStored()).toBe(true);
  });

  it("refuses values nested deeper than 64 levels with 400 VALUE_TOO_DEEP", async () => {
    for (const levels of [MAX_JSON_DEPTH + 1, 200_000]) {
      const r = await post(route.method, route.path, route.deep(levels));
      expect(r.status, String(levels)).toBe(400);
      expect(errorCode(r)).toBe("VALUE_TOO_DEEP");
    }
    expect(await route.nothingStored()).toBe(true);
  });

  it("still stores valid UTF-8 and paired surrogate escapes", async () => {
    const r = await post(route.method, route.path, route.body(Buffer.from("café 東京 \\ud83d\\ude00 😀")));
    expect(r.status).toBeLessThan(300);
    expect(await route.nothingStored()).toBe(false);
  });
});

describe("JSON bodies in general", () => {
  it("counts depth from the top-level value: 64 levels pass, 65 do not", () => {
    expect(MAX_JSON_DEPTH).toBe(64);
    expect(() => parseJsonBody(Buffer.from(nest(64)))).not.toThrow();
    expect(() => parseJsonBody(Buffer.from(`{"a":${nest(63)}}`))).not.toThrow();
    expect(() => parseJsonBody(Buffer.from(nest(65)))).toThrow(/deeper than 64/);
  });

  it("accepts +json types and decodes text/plain as strictly", async () => {
    const ok = await post("PUT", "/v1/kv/ns/typed", '{"a":1}', "application/merge-patch+json");
    expect(ok.status).toBe(200);
    const text = await post("PUT", "/v1/kv/ns/text", withBytes("ab", [0xff], "cd"), "text/plain");
    expect(text.status).toBe(400);
    expect(errorCode(text)).toBe("INVALID_UTF8");
  });

  it("refuses a lone surrogate in a key", async () => {
    const r = await post("PUT", "/v1/kv/ns/key", '{"a\\ud800b":1}');
    expect(r.status).toBe(400);
    expect(errorCode(r)).toBe("INVALID_UTF8");
  });

  it("keeps refusing prototype poisoning, malformed and empty JSON", async () => {
    for (const body of [
      '{"__proto__":{"polluted":1}}',
      '{"a":{"constructor":{"prototype":{"polluted":1}}}}',
      '{"a":',
      "",
    ]) {
      const r = await post("PUT", "/v1/kv/ns/proto", body);
      expect(r.status, body).toBe(400);
      expect(errorCode(r)).toBe("REQUEST_INVALID");
    }
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it("keeps the body size limits (413 REQUEST_TOO_LARGE)", async () => {
    const big = JSON.stringify({ ids: Array.from({ length: 40_000 }, (_, i) => `id-${i}-padding-padding`) });
    const r = await post("POST", "/v1/messages:batchGet", big);
    expect(r.status).toBe(413);
    expect(errorCode(r)).toBe("REQUEST_TOO_LARGE");
  });
});
