import { createHash, randomBytes } from "node:crypto";
import { open } from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { keyPath } from "../../src/adapters/blob/fs/layout.js";
import { parseContentUrl } from "../../src/engine/content-url.js";
import { errorCode, type Harness, readJson, startServer } from "./harness.js";

let h: Harness;
let acme: string;
let globex: string;
let now = Date.now();

beforeAll(async () => {
  h = await startServer({ server: { clock: () => now } });
  acme = await h.token("acme");
  globex = await h.token("globex");
});
afterAll(async () => h?.close());

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
const put = (key: string, body: RequestInit["body"], headers: Record<string, string> = {}, token = acme) =>
  h.call("PUT", `/v1/objects/${key}`, { token, body, headers });

/** Flip one byte of an object's stored body on disk (fs layout). */
async function corrupt(contentUrl: string, at: number): Promise<void> {
  const { path } = parseContentUrl(contentUrl);
  const file = keyPath(join(h.dir, "blobs"), path).file;
  const handle = await open(file, "r+");
  const byte = Buffer.alloc(1);
  await handle.read(byte, 0, 1, at);
  byte[0] = (byte[0] as number) ^ 0xff;
  await handle.write(byte, 0, 1, at);
  await handle.close();
}

describe("objects over HTTP", () => {
  it("puts, heads, gets, lists and deletes", async () => {
    const body = Buffer.from("hello objects");
    const r = await put("docs/hello.txt", body, { "content-type": "text/plain" });
    expect(r.status).toBe(200);
    expect(r.json.data).toMatchObject({
      key: "docs/hello.txt",
      size: body.length,
      sha256: sha(body),
      content_type: "text/plain",
    });
    expect(r.headers.get("etag")).toBe(`"${sha(body)}"`);

    const head = await fetch(`${h.base}/v1/objects/docs/hello.txt`, {
      method: "HEAD",
      headers: { authorization: `Bearer ${acme}` },
    });
    expect(head.status).toBe(200);
    expect(head.headers.get("content-length")).toBe(String(body.length));
    expect(head.headers.get("content-type")).toBe("text/plain");
    expect(head.headers.get("etag")).toBe(`"${sha(body)}"`);
    expect(head.headers.get("x-request-id")).toBeTruthy();
    expect(await head.text()).toBe("");

    const got = await fetch(`${h.base}/v1/objects/docs/hello.txt`, {
      headers: { authorization: `Bearer ${acme}` },
    });
    expect(got.status).toBe(200);
    expect(got.headers.get("accept-ranges")).toBe("bytes");
    expect(Buffer.from(await got.arrayBuffer())).toEqual(body);

    const cached = await fetch(`${h.base}/v1/objects/docs/hello.txt`, {
      headers: { authorization: `Bearer ${acme}`, "if-none-match": `"${sha(body)}"` },
    });
    expect(cached.status).toBe(304);

    await put("docs/other.txt", "2");
    await put("images/a.png", "3", { "content-type": "image/png" });
    const list = await h.call("GET", "/v1/objects?prefix=docs/&limit=1", { token: acme });
    expect(list.json.data.items.map((o: { key: string }) => o.key)).toEqual(["docs/hello.txt"]);
    const next = await h.call("GET", `/v1/objects?prefix=docs/&cursor=${list.json.data.next_cursor}`, {
      token: acme,
    });
    expect(next.json.data.items.map((o: { key: string }) => o.key)).toEqual(["docs/other.txt"]);
    expect(next.json.data.next_cursor).toBeNull();
    expect(list.json.data.common_prefixes).toEqual([]);

    const del = await h.call("DELETE", "/v1/objects/docs/other.txt", { token: acme });
    expect(del.status).toBe(204);
    expect((await h.call("DELETE", "/v1/objects/docs/other.txt", { token: acme })).status).toBe(204);
    const gone = await h.call("GET", "/v1/objects/docs/other.txt", { token: acme });
    expect(gone.status).toBe(404);
    expect(errorCode(gone)).toBe("OBJECT_NOT_FOUND");
    const headGone = await fetch(`${h.base}/v1/objects/docs/other.txt`, {
      method: "HEAD",
      headers: { authorization: `Bearer ${acme}` },
    });
    expect(headGone.status).toBe(404);
  });

  it("If-None-Match: * on PUT → 412 when the object exists, nothing replaced", async () => {
    expect((await put("cond/x", "first", { "if-none-match": "*" })).status).toBe(200);
    const again = await put("cond/x", "second", { "if-none-match": "*" });
    expect(again.status).toBe(412);
    expect(errorCode(again)).toBe("PRECONDITION_FAILED");
    const got = await h.call("GET", "/v1/objects/cond/x", { token: acme });
    expect(got.text).toBe("first");
    expect((await put("cond/x", "third")).status).toBe(200);
    expect((await h.call("GET", "/v1/objects/cond/x", { token: acme })).text).toBe("third");
  });

  it("If-Match on PUT: replaces only the object it names, 412 otherwise (a missing object too)", async () => {
    const first = await put("ifm/x", "first");
    const etag = first.headers.get("etag") as string;
    expect(etag).toBe(`"${sha(Buffer.from("first"))}"`);
    const stale = await put("ifm/x", "nope", { "if-match": '"0000"' });
    expect(stale.status).toBe(412);
    expect(errorCode(stale)).toBe("PRECONDITION_FAILED");
    expect((await h.call("GET", "/v1/objects/ifm/x", { token: acme })).text).toBe("first");
    const ok = await put("ifm/x", "second", { "if-match": etag });
    expect(ok.status).toBe(200);
    expect((await put("ifm/x", "third", { "if-match": etag })).status).toBe(412);
    expect((await put("ifm/x", "third", { "if-match": "*" })).status).toBe(200);
    expect((await put("ifm/missing", "x", { "if-match": "*" })).status).toBe(412);
    expect((await h.call("GET", "/v1/objects/ifm/missing", { token: acme })).status).toBe(404);
    expect((await h.call("GET", "/v1/objects/ifm/x", { token: acme })).text).toBe("third");
  });

  it("If-Match on PUT is atomic: a put that replaced the object while this one streamed wins, this one gets 412", async () => {
    const etag = (await put("ifm/race", "v0")).headers.get("etag") as string;
    let release: () => void = () => {};
    const held = new Promise<void>((r) => {
      release = r;
    });
    let sent = 0;
    const slow = new ReadableStream<Uint8Array>({
      async pull(c) {
        if (sent++ === 0) {
          c.enqueue(Buffer.from("slow-"));
          return;
        }
        await held;
        c.enqueue(Buffer.from("body"));
        c.close();
      },
    });
    const slowPut = fetch(`${h.base}/v1/objects/ifm/race`, {
      method: "PUT",
      headers: { authorization: `Bearer ${acme}`, "if-match": etag },
      body: slow,
      duplex: "half",
    } as RequestInit);
    // The slow put has read the row (its body is arriving); the fast one replaces the object.
    await new Promise((r) => setTimeout(r, 200));
    expect((await put("ifm/race", "fast", { "if-match": etag })).status).toBe(200);
    release();
    const res = await slowPut;
    expect(res.status).toBe(412);
    expect((await readJson(res)).error_code).toBe("PRECONDITION_FAILED");
    expect((await h.call("GET", "/v1/objects/ifm/race", { token: acme })).text).toBe("fast");
  });

  it("lists with a delimiter: common prefixes once, paged together with objects", async () => {
    for (const k of ["dl/a.txt", "dl/b/1", "dl/b/2", "dl/c/x/1", "dl/e.txt", "dl/f/1", "dlz"])
      await put(k, "x");
    const all = await h.call("GET", "/v1/objects?prefix=dl/&delimiter=/", { token: acme });
    expect(all.status).toBe(200);
    expect(all.json.data.items.map((o: { key: string }) => o.key)).toEqual(["dl/a.txt", "dl/e.txt"]);
    expect(all.json.data.common_prefixes).toEqual(["dl/b/", "dl/c/", "dl/f/"]);
    expect(all.json.data.next_cursor).toBeNull();
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const q: string = `/v1/objects?prefix=dl/&delimiter=/&limit=2${cursor ? `&cursor=${cursor}` : ""}`;
      const page = await h.call("GET", q, { token: acme });
      expect(page.json.data.items.length + page.json.data.common_prefixes.length).toBeLessThanOrEqual(2);
      seen.push(
        ...page.json.data.items.map((o: { key: string }) => o.key),
        ...page.json.data.common_prefixes,
      );
      cursor = page.json.data.next_cursor;
    } while (cursor);
    expect(seen.sort()).toEqual(["dl/a.txt", "dl/b/", "dl/c/", "dl/e.txt", "dl/f/"]);
    const root = await h.call("GET", "/v1/objects?prefix=dl&delimiter=/", { token: acme });
    expect(root.json.data.common_prefixes).toEqual(["dl/"]);
    expect(root.json.data.items.map((o: { key: string }) => o.key)).toEqual(["dlz"]);
    const other = await h.call("GET", "/v1/objects?prefix=dl/&delimiter=/", { token: globex });
    expect(other.json.data.common_prefixes).toEqual([]);
  });

  it("serves ranges: 206 with Content-Range, suffix ranges, 416 beyond the end", async () => {
    await put("range/abc", "0123456789");
    const get = (range: string) =>
      h.call("GET", "/v1/objects/range/abc", { token: acme, headers: { range } });
    const mid = await get("bytes=2-5");
    expect(mid.status).toBe(206);
    expect(mid.text).toBe("2345");
    expect(mid.headers.get("content-range")).toBe("bytes 2-5/10");
    expect(mid.headers.get("content-length")).toBe("4");
    expect((await get("bytes=7-")).text).toBe("789");
    expect((await get("bytes=-3")).text).toBe("789");
    expect((await get("bytes=8-100")).headers.get("content-range")).toBe("bytes 8-9/10");
    const beyond = await get("bytes=10-20");
    expect(beyond.status).toBe(416);
    expect(errorCode(beyond)).toBe("RANGE_NOT_SATISFIABLE");
    expect(beyond.headers.get("content-range")).toBe("bytes */10");
    const ignored = await get("bytes=0-1,4-5");
    expect(ignored.status).toBe(200);
    expect(ignored.text).toBe("0123456789");
  });

  it("stores nothing when an upload is aborted; non-ASCII keys round-trip", async () => {
    const controller = new AbortController();
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      async pull(c) {
        await new Promise((r) => setTimeout(r, 10));
        if (sent++ === 3) {
          controller.abort();
          return;
        }
        c.enqueue(new Uint8Array(64 * 1024));
      },
    });
    const before = (await h.call("GET", "/v1/usage", { token: acme })).json.data;
    await expect(
      fetch(`${h.base}/v1/objects/aborted.bin`, {
        method: "PUT",
        headers: { authorization: `Bearer ${acme}` },
        body,
        duplex: "half",
        signal: controller.signal,
      } as RequestInit),
    ).rejects.toThrow();
    await new Promise((r) => setTimeout(r, 200));
    expect((await h.call("GET", "/v1/objects/aborted.bin", { token: acme })).status).toBe(404);
    expect((await h.call("GET", "/v1/usage", { token: acme })).json.data).toEqual(before);

    const key = `${encodeURIComponent("会議")}/${encodeURIComponent("資料 (1).txt")}`;
    expect((await put(key, "日本語")).json.data.key).toBe("会議/資料 (1).txt");
    expect((await h.call("GET", `/v1/objects/${key}`, { token: acme })).text).toBe("日本語");
    const listed = await h.call("GET", `/v1/objects?prefix=${encodeURIComponent("会議/")}`, { token: acme });
    expect(listed.json.data.items.map((o: { key: string }) => o.key)).toEqual(["会議/資料 (1).txt"]);
  });

  it("refuses invalid keys with 400 KEY_INVALID", async () => {
    for (const key of ["a//b", "a/..%2Fb", "trailing.", "back%5Cslash", "ctl%01x"]) {
      const r = await put(key, "x");
      expect(r.status, key).toBe(400);
      expect(errorCode(r)).toBe("KEY_INVALID");
    }
  });

  it("streams a 50 MB object up and down, with a Range read", { timeout: 120_000 }, async () => {
    const size = 50 * 1024 * 1024;
    const chunk = randomBytes(1024 * 1024);
    const hash = createHash("sha256");
    for (let i = 0; i < 50; i++) hash.update(chunk);
    const expected = hash.digest("hex");
    const source = Readable.from(
      (function* () {
        for (let i = 0; i < 50; i++) yield chunk;
      })(),
    );
    const up = await fetch(`${h.base}/v1/objects/big/fifty.bin`, {
      method: "PUT",
      headers: { authorization: `Bearer ${acme}`, "content-type": "application/octet-stream" },
      body: Readable.toWeb(source) as ReadableStream,
      duplex: "half",
    } as RequestInit);
    expect(up.status).toBe(200);
    const info = (await readJson(up)).data;
    expect(info.size).toBe(size);
    expect(info.sha256).toBe(expected);

    const down = await fetch(`${h.base}/v1/objects/big/fifty.bin`, {
      headers: { authorization: `Bearer ${acme}` },
    });
    expect(down.headers.get("content-length")).toBe(String(size));
    const dh = createHash("sha256");
    let received = 0;
    for await (const c of down.body as unknown as AsyncIterable<Uint8Array>) {
      dh.update(c);
      received += c.length;
    }
    expect(received).toBe(size);
    expect(dh.digest("hex")).toBe(expected);

    const start = 30 * 1024 * 1024 + 17;
    const part = await fetch(`${h.base}/v1/objects/big/fifty.bin`, {
      headers: { authorization: `Bearer ${acme}`, range: `bytes=${start}-${start + 99_999}` },
    });
    expect(part.status).toBe(206);
    const bytes = Buffer.from(await part.arrayBuffer());
    expect(bytes.length).toBe(100_000);
    const offset = start % chunk.length;
    expect(bytes.subarray(0, 1000)).toEqual(chunk.subarray(offset, offset + 1000));
  });

  it("aborts the response when a streamed body fails its checksum; small bodies → 500 with the code", async () => {
    const big = randomBytes(3 * 1024 * 1024);
    const stored = (await put("corrupt/big.bin", big)).json.data;
    await corrupt(stored.content_url, 2 * 1024 * 1024);
    const res = await fetch(`${h.base}/v1/objects/corrupt/big.bin`, {
      headers: { authorization: `Bearer ${acme}` },
    });
    expect(res.status).toBe(200);
    await expect(res.arrayBuffer()).rejects.toThrow();

    const small = (await put("corrupt/small.txt", "a small body that will be damaged")).json.data;
    await corrupt(small.content_url, 5);
    const r = await h.call("GET", "/v1/objects/corrupt/small.txt", { token: acme });
    expect(r.status).toBe(500);
    expect(errorCode(r)).toBe("BLOB_CHECKSUM_MISMATCH");
    expect(r.headers.get("etag")).toBeNull();
    // The server is still healthy.
    expect((await h.call("GET", "/healthz")).status).toBe(200);
  });

  it("keeps tenants apart: another tenant's keys are 404 and never data", async () => {
    await put("private/plan.txt", "acme plan");
    for (const method of ["GET", "HEAD", "DELETE"]) {
      const r = await fetch(`${h.base}/v1/objects/private/plan.txt`, {
        method,
        headers: { authorization: `Bearer ${globex}` },
      });
      expect(r.status === 404 || (method === "DELETE" && r.status === 204), method).toBe(true);
      expect(await r.text()).not.toContain("acme plan");
    }
    const list = await h.call("GET", "/v1/objects", { token: globex });
    expect(list.json.data.items).toEqual([]);
    const presign = await h.call("POST", "/v1/objects:presign", {
      token: globex,
      json: { key: "private/plan.txt" },
    });
    expect(presign.status).toBe(404);
    // Still there for acme (globex's DELETE touched only globex's namespace).
    expect((await h.call("GET", "/v1/objects/private/plan.txt", { token: acme })).text).toBe("acme plan");
  });
});

describe("presigned URLs (BLOB-5)", () => {
  const local = (url: string) => {
    const u = new URL(url);
    return `${h.base}${u.pathname}${u.search}`;
  };

  it("serves a presigned GET without a token, with Range; tampered and expired → 403", async () => {
    now = Date.now();
    await put("share/report.txt", "quarterly report", { "content-type": "text/plain" });
    const r = await h.call("POST", "/v1/objects:presign", {
      token: acme,
      json: { key: "share/report.txt", expires_in: 60 },
    });
    expect(r.status).toBe(200);
    expect(Date.parse(r.json.data.expires_at)).toBeGreaterThan(now);
    const url = local(r.json.data.url as string);
    expect(url).toContain("/v1/presigned/");

    const got = await fetch(url);
    expect(got.status).toBe(200);
    expect(got.headers.get("content-type")).toBe("text/plain");
    expect(await got.text()).toBe("quarterly report");
    const part = await fetch(url, { headers: { range: "bytes=0-8" } });
    expect(part.status).toBe(206);
    expect(await part.text()).toBe("quarterly");
    expect((await fetch(url, { method: "HEAD" })).status).toBe(200);

    const tampered = [
      url.replace("report.txt", "report.tx%74x"),
      url.replace(/X-Kura-Expires=(\d+)/, (_, n) => `X-Kura-Expires=${Number(n) + 3600}`),
      url.replace(/X-Kura-Signature=([0-9a-f])/, (_, c) => `X-Kura-Signature=${c === "0" ? "1" : "0"}`),
      url.replace(/&?X-Kura-Signature=[0-9a-f]+/, ""),
    ];
    for (const t of tampered) {
      const res = await fetch(t);
      expect(res.status, t).toBe(403);
      expect((await readJson(res)).error_code).toBe("PRESIGN_INVALID");
    }
    expect((await fetch(url, { method: "PUT", body: "overwrite" })).status).toBe(403);

    now += 120_000;
    const expired = await fetch(url);
    expect(expired.status).toBe(403);
    expect((await readJson(expired)).error_code).toBe("PRESIGN_EXPIRED");
  });

  it("accepts a presigned PUT (fs) through the write protocol; its content type is enforced", async () => {
    const r = await h.call("POST", "/v1/objects:presign", {
      token: acme,
      json: { key: "uploads/u1.txt", method: "PUT", expires_in: 60, content_type: "text/plain" },
    });
    expect(r.status).toBe(200);
    const url = local(r.json.data.url as string);
    const wrongType = await fetch(url, {
      method: "PUT",
      body: "x",
      headers: { "content-type": "text/html" },
    });
    expect(wrongType.status).toBe(403);
    const ok = await fetch(url, {
      method: "PUT",
      body: "uploaded without a token",
      headers: { "content-type": "text/plain" },
    });
    expect(ok.status).toBe(200);
    const got = await h.call("GET", "/v1/objects/uploads/u1.txt", { token: acme });
    expect(got.text).toBe("uploaded without a token");
    expect(got.headers.get("content-type")).toBe("text/plain");
    // Counted and audited like any other put.
    const audit = await h.call("GET", "/v1/audit?limit=1000", { token: acme });
    expect(audit.json.data.items.some((a: { target: string }) => a.target === "uploads/u1.txt")).toBe(true);
    // Signed for acme: globex sees nothing.
    expect((await h.call("GET", "/v1/objects/uploads/u1.txt", { token: globex })).status).toBe(404);
  });

  it("refuses presigning a missing object, a bad key and a bad expiry", async () => {
    expect(
      errorCode(await h.call("POST", "/v1/objects:presign", { token: acme, json: { key: "nope" } })),
    ).toBe("OBJECT_NOT_FOUND");
    expect(
      errorCode(
        await h.call("POST", "/v1/objects:presign", { token: acme, json: { key: "a//b", method: "PUT" } }),
      ),
    ).toBe("KEY_INVALID");
    expect(
      (await h.call("POST", "/v1/objects:presign", { token: acme, json: { key: "x", expires_in: 0 } }))
        .status,
    ).toBe(400);
  });
});
