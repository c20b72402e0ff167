/**
 * Served bodies (objects, session files, presigned downloads) over the real server: ranges and
 * conditional requests by RFC 9110, and the headers that keep stored HTML/SVG/JS from running
 * in a browser. All three routes answer through one helper (src/http/ranges.ts), and each is
 * checked here so they cannot drift apart.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { errorCode, type Harness, startServer } from "./harness.js";

let h: Harness;
let acme: string;

const SIZE = 1024;
const BODY = Buffer.alloc(SIZE, 0x61);

/** A body-serving URL plus the headers it needs (a bearer token, or none for presigned). */
interface Target {
  name: string;
  url: () => Promise<string>;
  auth: boolean;
}

async function presignedUrl(key: string): Promise<string> {
  const r = await h.call("POST", "/v1/objects:presign", { token: acme, json: { key, expires_in: 600 } });
  expect(r.status).toBe(200);
  const u = new URL(r.json.data.url as string);
  return `${u.pathname}${u.search}`;
}

beforeAll(async () => {
  h = await startServer();
  acme = await h.token("acme");
  expect((await h.call("PUT", "/v1/objects/r/blob.bin", { token: acme, body: BODY })).status).toBe(200);
  const file = await h.call("PUT", "/v1/sessions/s1/files/r/blob.bin", { token: acme, body: BODY });
  expect(file.status).toBe(200);
});
afterAll(async () => h?.close());

const targets: Target[] = [
  { name: "object", url: async () => "/v1/objects/r/blob.bin", auth: true },
  { name: "session file", url: async () => "/v1/sessions/s1/files/r/blob.bin", auth: true },
  { name: "presigned GET", url: () => presignedUrl("r/blob.bin"), auth: false },
];

async function get(t: Target, headers: Record<string, string>, method = "GET") {
  return h.call(method, await t.url(), { ...(t.auth ? { token: acme } : {}), headers });
}

describe.each(targets)("$name: ranges and conditional GETs", (t) => {
  it("answers 416 with Content-Range bytes */size for a range starting at the end (bytes=N-)", async () => {
    for (const range of [`bytes=${SIZE}-`, `bytes=${SIZE}-${SIZE}`, `bytes=${SIZE + 5}-`, "bytes=-0"]) {
      const r = await get(t, { range });
      expect(r.status, range).toBe(416);
      expect(errorCode(r)).toBe("RANGE_NOT_SATISFIABLE");
      expect(r.headers.get("content-range")).toBe(`bytes */${SIZE}`);
    }
  });

  it("serves satisfiable ranges as 206 and several ranges as the whole body (200)", async () => {
    const last = await get(t, { range: `bytes=${SIZE - 1}-` });
    expect(last.status).toBe(206);
    expect(last.headers.get("content-range")).toBe(`bytes ${SIZE - 1}-${SIZE - 1}/${SIZE}`);
    expect(last.text).toBe("a");
    const multi = await get(t, { range: "bytes=0-1,4-5" });
    expect(multi.status).toBe(200);
    expect(multi.text.length).toBe(SIZE);
    const backwards = await get(t, { range: "bytes=5-3" });
    expect(backwards.status).toBe(200);
  });

  it("sends the whole body (200) when If-Range does not name the current version", async () => {
    const whole = await get(t, {});
    const etag = whole.headers.get("etag") as string;
    const lastModified = whole.headers.get("last-modified") as string;
    expect(etag).toMatch(/^"/);
    expect(lastModified).toBeTruthy();

    const stale = await get(t, { range: "bytes=0-9", "if-range": '"not-the-current-version"' });
    expect(stale.status).toBe(200);
    expect(stale.text.length).toBe(SIZE);
    expect(stale.headers.get("content-range")).toBeNull();
    const weak = await get(t, { range: "bytes=0-9", "if-range": `W/${etag}` });
    expect(weak.status).toBe(200);
    const oldDate = await get(t, { range: "bytes=0-9", "if-range": "Mon, 01 Jan 2001 00:00:00 GMT" });
    expect(oldDate.status).toBe(200);

    const current = await get(t, { range: "bytes=0-9", "if-range": etag });
    expect(current.status).toBe(206);
    expect(current.text).toBe("aaaaaaaaaa");
    const sameDate = await get(t, { range: "bytes=0-9", "if-range": lastModified });
    expect(sameDate.status).toBe(206);
  });

  it("answers 412 when If-Match does not hold, and serves when it does (or is *)", async () => {
    const etag = (await get(t, {})).headers.get("etag") as string;
    const miss = await get(t, { "if-match": '"other"' });
    expect(miss.status).toBe(412);
    expect(errorCode(miss)).toBe("PRECONDITION_FAILED");
    // Strong comparison: a weak tag never matches.
    expect((await get(t, { "if-match": `W/${etag}` })).status).toBe(412);
    expect((await get(t, { "if-match": "*" })).status).toBe(200);
    expect((await get(t, { "if-match": `"x", ${etag}` })).status).toBe(200);
    // If-Match wins over a range.
    expect((await get(t, { "if-match": '"other"', range: "bytes=0-1" })).status).toBe(412);
    expect((await get(t, { "if-match": '"other"' }, "HEAD")).status).toBe(412);
  });

  it("answers 304 for If-None-Match and If-Modified-Since, 412 for If-Unmodified-Since in the past", async () => {
    const whole = await get(t, {});
    const etag = whole.headers.get("etag") as string;
    const lastModified = whole.headers.get("last-modified") as string;
    const inm = await get(t, { "if-none-match": `W/${etag}` });
    expect(inm.status).toBe(304);
    expect(inm.headers.get("etag")).toBe(etag);
    expect((await get(t, { "if-none-match": '"other"' })).status).toBe(200);
    expect((await get(t, { "if-modified-since": lastModified })).status).toBe(304);
    expect((await get(t, { "if-modified-since": "Mon, 01 Jan 2001 00:00:00 GMT" })).status).toBe(200);
    // If-None-Match takes precedence over If-Modified-Since (RFC 9110 §13.2.2).
    expect((await get(t, { "if-none-match": '"other"', "if-modified-since": lastModified })).status).toBe(
      200,
    );
    const ius = await get(t, { "if-unmodified-since": "Mon, 01 Jan 2001 00:00:00 GMT" });
    expect(ius.status).toBe(412);
    expect((await get(t, { "if-unmodified-since": lastModified })).status).toBe(200);
  });
});

describe("served bodies are never run by a browser", () => {
  const types: Array<[string, boolean]> = [
    ["text/html; charset=utf-8", true],
    ["image/svg+xml", true],
    ["application/xhtml+xml", true],
    ["text/xml", true],
    ["application/xml", true],
    ["application/javascript", true],
    ["text/javascript", true],
    ["text/plain", false],
    ["image/png", false],
    ["application/json", false],
    ["application/octet-stream", false],
  ];

  it.each(types)("%s: nosniff and sandbox; attachment when active (%s)", async (type, active) => {
    const key = `types/${type.replace(/[^a-z]/g, "_")}.file`;
    const put = await h.call("PUT", `/v1/objects/${key}`, {
      token: acme,
      body: "<script>alert(1)</script>",
      headers: { "content-type": type },
    });
    expect(put.status).toBe(200);
    for (const r of [
      await h.call("GET", `/v1/objects/${key}`, { token: acme }),
      await h.call("HEAD", `/v1/objects/${key}`, { token: acme }),
      await h.call("GET", await presignedUrl(key)),
    ]) {
      expect(r.headers.get("x-content-type-options")).toBe("nosniff");
      expect(r.headers.get("content-security-policy")).toBe("sandbox");
      const disposition = r.headers.get("content-disposition");
      if (active) expect(disposition).toMatch(/^attachment; filename="/);
      else expect(disposition).toBeNull();
    }
  });

  it("names the attachment after the key's last segment, safely encoded (RFC 6266 / 8187)", async () => {
    const name = 'résumé "final"; x.html';
    const put = await h.call("PUT", `/v1/objects/docs/${encodeURIComponent(name)}`, {
      token: acme,
      body: "<h1>hi</h1>",
      headers: { "content-type": "text/html" },
    });
    expect(put.status).toBe(200);
    const r = await h.call("GET", `/v1/objects/docs/${encodeURIComponent(name)}`, { token: acme });
    expect(r.headers.get("content-disposition")).toBe(
      `attachment; filename="r_sum_ _final_; x.html"; filename*=UTF-8''r%C3%A9sum%C3%A9%20%22final%22%3B%20x.html`,
    );
    const file = await h.call("PUT", "/v1/sessions/s1/files/page.svg", {
      token: acme,
      body: "<svg/>",
      headers: { "content-type": "image/svg+xml" },
    });
    expect(file.status).toBe(200);
    const served = await h.call("GET", "/v1/sessions/s1/files/page.svg", { token: acme });
    expect(served.headers.get("content-disposition")).toBe(
      `attachment; filename="page.svg"; filename*=UTF-8''page.svg`,
    );
  });

  it("sends X-Content-Type-Options: nosniff on JSON, error and not-found responses too", async () => {
    for (const r of [
      await h.call("GET", "/healthz"),
      await h.call("GET", "/v1/objects/missing/thing", { token: acme }),
      await h.call("GET", "/v1/nowhere"),
      await h.call("GET", "/v1/usage"),
    ]) {
      expect(r.headers.get("x-content-type-options")).toBe("nosniff");
    }
  });
});
