/**
 * `/docs`: the reference page and everything it loads come from Kura itself (no other host),
 * with the right content types (every response is nosniff), and the page names the document.
 */
import { gunzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DOCS_ASSET_NAMES } from "../../src/http/docs-page.js";
import { type Harness, readJson, startServer } from "./harness.js";

let h: Harness;

beforeAll(async () => {
  h = await startServer();
});
afterAll(async () => h?.close());

/** Every URL a page loads: script src, link href (style sheets, icons), img src. */
function referencedUrls(html: string): { scripts: string[]; styles: string[]; all: string[] } {
  const attr = (tag: string, name: string) =>
    [...html.matchAll(new RegExp(`<${tag}\\b[^>]*\\b${name}="([^"]*)"`, "gi"))].map((m) => m[1] as string);
  const scripts = attr("script", "src");
  const styles = [...html.matchAll(/<link\b[^>]*>/gi)]
    .map((m) => m[0])
    .filter((tag) => /rel="stylesheet"/i.test(tag))
    .map((tag) => /href="([^"]*)"/i.exec(tag)?.[1] as string);
  const all = [...scripts, ...attr("link", "href"), ...attr("img", "src"), ...attr("a", "href")];
  return { scripts, styles, all };
}

describe("/docs", () => {
  it("serves the reference page, which names the OpenAPI document", async () => {
    const r = await fetch(`${h.base}/docs`);
    expect(r.status).toBe(200);
    expect(r.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(r.headers.get("content-security-policy")).toContain("script-src 'self'");
    const html = await r.text();
    expect(html).toContain('data-openapi="/openapi.json"');
    expect(html).toContain('href="/openapi.json"');
    const doc = await fetch(`${h.base}/openapi.json`);
    expect(doc.status).toBe(200);
    expect((await readJson(doc)).paths["/docs"].get.operationId).toBe("docs");
  });

  it("loads nothing from another host: every script and style sheet is served by Kura with its type", async () => {
    const html = await (await fetch(`${h.base}/docs`)).text();
    const { scripts, styles, all } = referencedUrls(html);
    expect(scripts).toEqual(["/docs/swagger-ui-bundle.js", "/docs/kura-docs.js"]);
    expect(styles).toEqual(["/docs/swagger-ui.css"]);
    for (const url of all) expect(url, url).toMatch(/^\/[^/]/); // same origin, never //host or http(s)://
    expect(html).not.toMatch(/https?:\/\//);
    for (const url of [...scripts, ...styles]) {
      const r = await fetch(h.base + url, { headers: { "accept-encoding": "identity" } });
      expect(r.status, url).toBe(200);
      expect(r.headers.get("content-type"), url).toBe(
        url.endsWith(".js") ? "text/javascript; charset=utf-8" : "text/css; charset=utf-8",
      );
      expect(r.headers.get("x-content-type-options")).toBe("nosniff");
      expect((await r.arrayBuffer()).byteLength, url).toBeGreaterThan(100);
    }
    const init = await (await fetch(`${h.base}/docs/kura-docs.js`)).text();
    expect(init).toContain("SwaggerUIBundle(");
    expect(init).toContain("/openapi.json");
    expect(init).toContain("validatorUrl: null"); // no call to an online validator
  });

  it("serves the bundle gzipped when asked, with ETags that revalidate to 304", async () => {
    const identity = await fetch(`${h.base}/docs/swagger-ui-bundle.js`, {
      headers: { "accept-encoding": "identity" },
    });
    const plain = Buffer.from(await identity.arrayBuffer());
    expect(identity.headers.get("content-encoding")).toBeNull();
    const etag = identity.headers.get("etag") as string;
    expect(etag).toMatch(/^"[A-Za-z0-9_-]+"$/);

    // fetch would decode gzip itself; read the wire bytes through the harness's node:http.
    const gz = await rawGet(`${h.base}/docs/swagger-ui-bundle.js`, { "accept-encoding": "gzip, br" });
    expect(gz.headers["content-encoding"]).toBe("gzip");
    expect(gz.headers.vary).toContain("accept-encoding");
    expect(gz.headers.etag).not.toBe(etag);
    expect(gz.body.length).toBeLessThan(plain.length / 2);
    expect(gunzipSync(gz.body).equals(plain)).toBe(true);

    const again = await fetch(`${h.base}/docs/swagger-ui-bundle.js`, {
      headers: { "accept-encoding": "identity", "if-none-match": etag },
    });
    expect(again.status).toBe(304);
  });

  it("serves only the page's own files", async () => {
    for (const name of DOCS_ASSET_NAMES) {
      expect((await fetch(`${h.base}/docs/${name}`)).status, name).toBe(200);
    }
    for (const name of [
      "package.json",
      "index.html",
      "..%2Fpackage.json",
      "swagger-initializer.js",
      "toString",
    ]) {
      const r = await fetch(`${h.base}/docs/${name}`);
      expect(r.status, name).toBe(404);
      expect((await readJson(r)).error_code).toBe("ROUTE_NOT_FOUND");
    }
  });
});

async function rawGet(
  url: string,
  headers: Record<string, string>,
): Promise<{ headers: Record<string, string | string[] | undefined>; body: Buffer }> {
  const { request } = await import("node:http");
  return new Promise((resolve, reject) => {
    const req = request(url, { headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on("error", reject);
    req.end();
  });
}
