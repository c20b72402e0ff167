import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { errorCode, type Harness, readJson, startServer } from "./harness.js";

let h: Harness;
let acme: string;
let globex: string;

beforeAll(async () => {
  h = await startServer();
  acme = await h.token("acme");
  globex = await h.token("globex");
});
afterAll(async () => h?.close());

describe("KV over HTTP (KV-1)", () => {
  it("puts, gets, lists and deletes JSON values with versions as ETags", async () => {
    const put = await h.call("PUT", "/v1/kv/prefs/user:1/theme", {
      token: acme,
      json: { mode: "dark", sizes: [1, 2] },
    });
    expect(put.status).toBe(200);
    const v1 = put.json.data.version as number;
    expect(put.headers.get("etag")).toBe(`"${v1}"`);
    const get = await h.call("GET", "/v1/kv/prefs/user:1/theme", { token: acme });
    expect(get.json.data).toEqual({
      key: "user:1/theme",
      value: { mode: "dark", sizes: [1, 2] },
      version: v1,
      expires_at: null,
    });
    expect(get.headers.get("etag")).toBe(`"${v1}"`);
    for (const [key, value] of [
      ["user:1/lang", "ja"],
      ["user:2/lang", "en"],
      ["other", 42],
    ] as const) {
      expect((await h.call("PUT", `/v1/kv/prefs/${key}`, { token: acme, json: value })).status).toBe(200);
    }
    const page = await h.call("GET", "/v1/kv/prefs?prefix=user:1/&limit=1", { token: acme });
    const rest = page.json.data.next_cursor
      ? (
          await h.call(
            "GET",
            `/v1/kv/prefs?prefix=user:1/&cursor=${encodeURIComponent(page.json.data.next_cursor)}`,
            { token: acme },
          )
        ).json.data.items
      : [];
    const keys = [...page.json.data.items, ...rest].map((e: { key: string }) => e.key).sort();
    expect(keys).toEqual(["user:1/lang", "user:1/theme"]);
    expect((await h.call("DELETE", "/v1/kv/prefs/other", { token: acme })).status).toBe(204);
    const gone = await h.call("GET", "/v1/kv/prefs/other", { token: acme });
    expect(gone.status).toBe(404);
    expect(errorCode(gone)).toBe("KV_KEY_NOT_FOUND");
    expect((await h.call("DELETE", "/v1/kv/prefs/other", { token: acme })).status).toBe(204);
  });

  it("compare-and-set with If-Match, create-only with If-None-Match: * (412 on conflict)", async () => {
    const first = await h.call("PUT", "/v1/kv/cas/counter", {
      token: acme,
      json: 1,
      headers: { "if-none-match": "*" },
    });
    expect(first.status).toBe(200);
    const v = first.json.data.version as number;
    const again = await h.call("PUT", "/v1/kv/cas/counter", {
      token: acme,
      json: 9,
      headers: { "if-none-match": "*" },
    });
    expect(again.status).toBe(412);
    expect(errorCode(again)).toBe("KV_VERSION_CONFLICT");
    const ok = await h.call("PUT", "/v1/kv/cas/counter", {
      token: acme,
      json: 2,
      headers: { "if-match": `"${v}"` },
    });
    expect(ok.status).toBe(200);
    const stale = await h.call("PUT", "/v1/kv/cas/counter", {
      token: acme,
      json: 3,
      headers: { "if-match": `"${v}"` },
    });
    expect(stale.status).toBe(412);
    // The error names the caller's key, never the stored one (tenant prefix, internal layout).
    expect(stale.json.error).toContain(`"counter"`);
    expect(stale.text).not.toContain("acme:");
    expect(stale.text).not.toContain(":kv:");
    expect((await h.call("GET", "/v1/kv/cas/counter", { token: acme })).json.data.value).toBe(2);
    const staleDelete = await h.call("DELETE", "/v1/kv/cas/counter", {
      token: acme,
      headers: { "if-match": `"${v}"` },
    });
    expect(staleDelete.status).toBe(412);
    expect(
      errorCode(
        await h.call("PUT", "/v1/kv/cas/counter", { token: acme, json: 1, headers: { "if-match": "nope" } }),
      ),
    ).toBe("REQUEST_INVALID");
  });

  it('numbers versions per key: a new key is 1 (ETag "1"), If-Match: "1" writes 2; a re-created key continues', async () => {
    const put = (token: string, key: string, headers: Record<string, string> = {}) =>
      h.call("PUT", `/v1/kv/seq/${key}`, { token, json: 1, headers });
    for (let i = 0; i < 3; i++) await put(acme, "other");
    const first = await put(acme, "a");
    expect(first.json.data.version).toBe(1);
    expect(first.headers.get("etag")).toBe('"1"');
    for (let i = 0; i < 10; i++) await put(globex, `g${i}`);
    expect((await put(globex, "a")).json.data.version).toBe(1);
    const second = await put(acme, "a", { "if-match": '"1"' });
    expect(second.status).toBe(200);
    expect(second.json.data.version).toBe(2);
    expect(second.headers.get("etag")).toBe('"2"');
    expect((await put(acme, "a", { "if-match": '"1"' })).status).toBe(412);
    expect(
      (await h.call("DELETE", "/v1/kv/seq/a", { token: acme, headers: { "if-match": '"2"' } })).status,
    ).toBe(204);
    const again = await put(acme, "a", { "if-none-match": "*" });
    expect(again.json.data.version).toBe(3);
    expect((await put(acme, "a", { "if-match": '"2"' })).status).toBe(412);
  });

  it("expires values after ?ttl seconds", async () => {
    const r = await h.call("PUT", "/v1/kv/tmp/otp?ttl=1", { token: acme, json: "123456" });
    expect(r.status).toBe(200);
    const got = await h.call("GET", "/v1/kv/tmp/otp", { token: acme });
    expect(Date.parse(got.json.data.expires_at)).toBeGreaterThan(Date.now());
    await sleep(1200);
    expect((await h.call("GET", "/v1/kv/tmp/otp", { token: acme })).status).toBe(404);
    expect(errorCode(await h.call("PUT", "/v1/kv/tmp/otp?ttl=0", { token: acme, json: 1 }))).toBe(
      "REQUEST_INVALID",
    );
  });

  it("refuses bad namespaces, keys and bodies with 400", async () => {
    expect(errorCode(await h.call("PUT", "/v1/kv/bad%20ns/k", { token: acme, json: 1 }))).toBe(
      "REQUEST_INVALID",
    );
    expect(errorCode(await h.call("PUT", "/v1/kv/ns/a%01b", { token: acme, json: 1 }))).toBe(
      "KV_KEY_INVALID",
    );
    expect(
      errorCode(
        await h.call("PUT", "/v1/kv/ns/k", { token: acme, headers: { "content-type": "application/json" } }),
      ),
    ).toBe("REQUEST_INVALID");
    expect(errorCode(await h.call("GET", "/v1/kv/ns?cursor=forged", { token: acme }))).toMatch(/INVALID/);
  });

  it("keeps tenants apart", async () => {
    await h.call("PUT", "/v1/kv/secrets/api", { token: acme, json: "acme-secret" });
    const other = await h.call("GET", "/v1/kv/secrets/api", { token: globex });
    expect(other.status).toBe(404);
    expect(other.text).not.toContain("acme-secret");
    expect((await h.call("GET", "/v1/kv/secrets", { token: globex })).json.data.items).toEqual([]);
    await h.call("DELETE", "/v1/kv/secrets/api", { token: globex });
    expect((await h.call("GET", "/v1/kv/secrets/api", { token: acme })).json.data.value).toBe("acme-secret");
  });
});

describe("sessions over HTTP (SESS-1)", () => {
  it("stores metadata with the session TTL, lists and deletes it", async () => {
    const put = await h.call("PUT", "/v1/sessions/s1/meta/user", { token: acme, json: { id: "u1" } });
    expect(put.status).toBe(200);
    await h.call("PUT", "/v1/sessions/s1/meta/lang?ttl=60", { token: acme, json: "ja" });
    const got = await h.call("GET", "/v1/sessions/s1/meta/user", { token: acme });
    expect(got.json.data.value).toEqual({ id: "u1" });
    const expires = Date.parse(got.json.data.expires_at);
    expect(expires).toBeGreaterThan(Date.now() + 86_000_000);
    const lang = await h.call("GET", "/v1/sessions/s1/meta/lang", { token: acme });
    expect(Date.parse(lang.json.data.expires_at)).toBeLessThan(Date.now() + 61_000);
    expect((await h.call("GET", "/v1/sessions/s1/meta", { token: acme })).json.data).toEqual({
      user: { id: "u1" },
      lang: "ja",
    });
    expect((await h.call("DELETE", "/v1/sessions/s1/meta/lang", { token: acme })).status).toBe(204);
    expect(errorCode(await h.call("GET", "/v1/sessions/s1/meta/lang", { token: acme }))).toBe(
      "KV_KEY_NOT_FOUND",
    );
  });

  it("streams files up and down with Range, lists and deletes them", async () => {
    const body = "session file body ".repeat(1000);
    const put = await h.call("PUT", "/v1/sessions/s2/files/uploads/notes.txt", {
      token: acme,
      body,
      headers: { "content-type": "text/plain" },
    });
    expect(put.status).toBe(200);
    expect(put.json.data).toMatchObject({ path: "uploads/notes.txt", size: body.length });
    const got = await h.call("GET", "/v1/sessions/s2/files/uploads/notes.txt", { token: acme });
    expect(got.text).toBe(body);
    expect(got.headers.get("content-type")).toBe("text/plain");
    const part = await h.call("GET", "/v1/sessions/s2/files/uploads/notes.txt", {
      token: acme,
      headers: { range: "bytes=8-11" },
    });
    expect(part.status).toBe(206);
    expect(part.text).toBe("file");
    const list = await h.call("GET", "/v1/sessions/s2/files", { token: acme });
    expect(list.json.data.items.map((f: { path: string }) => f.path)).toEqual(["uploads/notes.txt"]);
    expect(Date.parse(list.json.data.items[0].expires_at)).toBeGreaterThan(Date.now() + 6 * 86_400_000);
    expect(errorCode(await h.call("PUT", "/v1/sessions/s2/files/a/..%2Fb", { token: acme, body: "x" }))).toBe(
      "SESSION_PATH_INVALID",
    );
    expect((await h.call("DELETE", "/v1/sessions/s2/files/uploads/notes.txt", { token: acme })).status).toBe(
      204,
    );
    expect(errorCode(await h.call("GET", "/v1/sessions/s2/files/uploads/notes.txt", { token: acme }))).toBe(
      "SESSION_FILE_NOT_FOUND",
    );
  });

  it("presigned upload and download of a session file, served by kura serve", async () => {
    const local = (url: string) => {
      const u = new URL(url);
      return `${h.base}${u.pathname}${u.search}`;
    };
    const up = await h.call("POST", "/v1/sessions/s3/files:presign", {
      token: acme,
      json: { path: "avatar.png", method: "PUT", content_type: "image/png" },
    });
    expect(up.status, up.text).toBe(200);
    const putRes = await fetch(local(up.json.data.url), {
      method: "PUT",
      body: "png-bytes",
      headers: { "content-type": "image/png" },
    });
    expect(putRes.status).toBe(200);
    expect((await readJson(putRes)).data).toMatchObject({ path: "avatar.png", size: 9 });
    const down = await h.call("POST", "/v1/sessions/s3/files:presign", {
      token: acme,
      json: { path: "avatar.png" },
    });
    const got = await fetch(local(down.json.data.url));
    expect(got.status).toBe(200);
    expect(await got.text()).toBe("png-bytes");
  });

  it("deletes a whole session; other tenants see none of it", async () => {
    await h.call("PUT", "/v1/sessions/s4/meta/k", { token: acme, json: 1 });
    await h.call("PUT", "/v1/sessions/s4/files/f.bin", { token: acme, body: "bytes" });
    expect((await h.call("GET", "/v1/sessions/s4/meta/k", { token: globex })).status).toBe(404);
    expect((await h.call("GET", "/v1/sessions/s4/files/f.bin", { token: globex })).status).toBe(404);
    expect((await h.call("GET", "/v1/sessions/s4/files", { token: globex })).json.data.items).toEqual([]);
    expect((await h.call("DELETE", "/v1/sessions/s4", { token: globex })).json.data).toEqual({
      metadata: 0,
      files: 0,
    });
    const del = await h.call("DELETE", "/v1/sessions/s4", { token: acme });
    expect(del.json.data).toEqual({ metadata: 1, files: 1 });
    expect((await h.call("GET", "/v1/sessions/s4/meta", { token: acme })).json.data).toEqual({});
    expect(errorCode(await h.call("GET", "/v1/sessions/bad%20id/meta", { token: acme }))).toBe(
      "REQUEST_INVALID",
    );
  });
});
