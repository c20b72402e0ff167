/**
 * `/docs`: the full API reference — every route with its parameters, request and response
 * schemas, examples and a "Try it out" that calls this server — rendered by Swagger UI from
 * `/openapi.json` (docs/adr/0024-docs-reference.md). Everything the page loads is served by Kura
 * itself from the `swagger-ui-dist` package (`/docs/{file}`), so it works offline and behind a
 * firewall: no CDN, no font host, no online validator.
 */
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { gzipSync } from "node:zlib";
import { z } from "zod";
import { KuraError } from "../core/errors.js";
import { type RouteSpec, SENT } from "./route.js";

/** Where the OpenAPI document is served; the page and its script name it. */
export const OPENAPI_PATH = "/openapi.json";

/** Starts Swagger UI on the document, with "Try it out" aimed at the server that served the page. */
const INIT_SCRIPT = `"use strict";
(function () {
  var me = document.currentScript;
  var documentUrl = (me && me.dataset.openapi) || ${JSON.stringify(OPENAPI_PATH)};
  var root = document.getElementById("swagger-ui");
  fetch(documentUrl, { headers: { accept: "application/json" } })
    .then(function (r) {
      if (!r.ok) throw new Error(r.status + " " + r.statusText);
      return r.json();
    })
    .then(function (spec) {
      // Requests from this page go to the server that served it ("/" in the document).
      var here = { url: location.origin, description: "This server" };
      spec.servers = [here].concat((spec.servers || []).filter(function (s) { return s.url !== here.url && s.url !== "/"; }));
      window.ui = SwaggerUIBundle({
        spec: spec,
        dom_id: "#swagger-ui",
        presets: [SwaggerUIBundle.presets.apis],
        layout: "BaseLayout",
        deepLinking: true,
        docExpansion: "list",
        defaultModelsExpandDepth: 0,
        displayOperationId: true,
        displayRequestDuration: true,
        showExtensions: true,
        filter: true,
        validatorUrl: null,
        persistAuthorization: false
      });
    })
    .catch(function (e) {
      root.textContent = "Could not load " + documentUrl + ": " + e.message;
    });
})();
`;

export const DOCS_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Kura HTTP API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" type="image/png" sizes="32x32" href="/docs/favicon-32x32.png">
<link rel="stylesheet" href="/docs/swagger-ui.css">
<link rel="alternate" type="application/json" title="OpenAPI document" href="${OPENAPI_PATH}">
<style>body { margin: 0; } .kura-doc-link { font: 13px system-ui, sans-serif; padding: .5rem 1.25rem 0; max-width: 1460px; margin: 0 auto; box-sizing: border-box; }</style>
</head>
<body>
<p class="kura-doc-link">The OpenAPI 3.1 document: <a href="${OPENAPI_PATH}">${OPENAPI_PATH}</a>. Tokens: <code>kura token --tenant T</code>, then <b>Authorize</b>.</p>
<div id="swagger-ui"><noscript>This page needs JavaScript; the document itself is at <a href="${OPENAPI_PATH}">${OPENAPI_PATH}</a>.</noscript></div>
<script src="/docs/swagger-ui-bundle.js"></script>
<script src="/docs/kura-docs.js" data-openapi="${OPENAPI_PATH}"></script>
</body>
</html>
`;

/**
 * What the page may load. Same-origin only; inline styles are Swagger UI's own (style
 * attributes); "Try it out" and the document are fetched from this server.
 */
export const DOCS_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

const JS = "text/javascript; charset=utf-8";
const CSS = "text/css; charset=utf-8";
const PNG = "image/png";
const MAP = "application/json; charset=utf-8";

/** The files under `/docs/`: from swagger-ui-dist, or Kura's own. No other name is served. */
const ASSETS: Record<string, { type: string; from: "swagger-ui-dist" | "kura" }> = {
  "swagger-ui-bundle.js": { type: JS, from: "swagger-ui-dist" },
  "swagger-ui-bundle.js.map": { type: MAP, from: "swagger-ui-dist" },
  "swagger-ui.css": { type: CSS, from: "swagger-ui-dist" },
  "swagger-ui.css.map": { type: MAP, from: "swagger-ui-dist" },
  "favicon-32x32.png": { type: PNG, from: "swagger-ui-dist" },
  "favicon-16x16.png": { type: PNG, from: "swagger-ui-dist" },
  "kura-docs.js": { type: JS, from: "kura" },
};

/** The names `/docs/{file}` serves. */
export const DOCS_ASSET_NAMES: readonly string[] = Object.keys(ASSETS);

interface LoadedAsset {
  body: Buffer;
  /** Filled on the first request that accepts gzip. */
  gzip?: Buffer;
  etag: string;
  type: string;
}

/** The folder of the installed swagger-ui-dist (resolved from this module, so it is the one Kura depends on). */
function swaggerUiDir(): string {
  return dirname(createRequire(import.meta.url).resolve("swagger-ui-dist/package.json"));
}

const loaded = new Map<string, Promise<LoadedAsset>>();

async function loadAsset(name: string): Promise<LoadedAsset> {
  const spec = ASSETS[name] as { type: string; from: "swagger-ui-dist" | "kura" };
  const body =
    spec.from === "kura" ? Buffer.from(INIT_SCRIPT, "utf8") : await readFile(join(swaggerUiDir(), name));
  const etag = `"${createHash("sha256").update(body).digest("base64url").slice(0, 27)}"`;
  return { body, etag, type: spec.type };
}

/** A file read once and kept (they are small and never change while the process runs). */
function asset(name: string): Promise<LoadedAsset> {
  let p = loaded.get(name);
  if (!p) {
    p = loadAsset(name);
    loaded.set(name, p);
    // A failed read (a broken install) is retried by the next request.
    p.catch(() => loaded.delete(name));
  }
  return p;
}

function acceptsGzip(header: string | string[] | undefined): boolean {
  const value = Array.isArray(header) ? header.join(",") : (header ?? "");
  return value.split(",").some((part) => {
    const [coding, ...params] = part.trim().toLowerCase().split(";");
    if (coding?.trim() !== "gzip") return false;
    const q = params.map((p) => p.trim()).find((p) => p.startsWith("q="));
    return q === undefined || Number(q.slice(2)) > 0;
  });
}

const ASSET_ETAG = "The file's content tag (another for its gzipped form)";

/** `GET /docs` (the page) and `GET /docs/{file}` (what it loads). Neither needs a token. */
export function docsRoutes(tag: string): RouteSpec[] {
  const page: RouteSpec = {
    method: "GET",
    path: "/docs",
    operationId: "docs",
    summary: "The API reference (Swagger UI over /openapi.json): schemas, examples and Try it out",
    description:
      "Served entirely by this server (scripts and styles under /docs/), so it works offline. " +
      '"Try it out" sends requests to the server that served the page; use Authorize with a token.',
    tag,
    auth: false,
    responses: { 200: { description: "HTML", raw: "text/html" } },
    handler: async ({ reply }) => {
      reply
        .header("content-type", "text/html; charset=utf-8")
        .header("content-security-policy", DOCS_CSP)
        .header("cache-control", "no-cache")
        .send(DOCS_PAGE);
      return SENT;
    },
  };

  const file: RouteSpec<{ file: string }> = {
    method: "GET",
    path: "/docs/{file}",
    operationId: "docsAsset",
    summary: "A script, style sheet or icon of the /docs page",
    description: `One of: ${DOCS_ASSET_NAMES.join(", ")}. Sent with its own Content-Type and an ETag; gzip when accepted.`,
    tag,
    auth: false,
    params: z.object({ file: z.string().max(64) }),
    headers: {
      "If-None-Match": "Entity tags (weak comparison): a match → 304",
      "Accept-Encoding": "gzip: the file is sent gzipped (its own ETag)",
    },
    responses: {
      200: { description: "The file", raw: "application/octet-stream", headers: { ETag: ASSET_ETAG } },
      304: { description: "If-None-Match matched the ETag", headers: { ETag: ASSET_ETAG } },
      404: { description: "Not a file of the page (ROUTE_NOT_FOUND)" },
    },
    handler: async ({ params, req, reply }) => {
      if (!Object.hasOwn(ASSETS, params.file)) {
        throw new KuraError("ROUTE_NOT_FOUND", "no such file of the docs page", { operation: "docs" });
      }
      const a = await asset(params.file);
      // The gzip form is another representation: it has an ETag of its own.
      const gzip = acceptsGzip(req.headers["accept-encoding"]) && a.body.length > 1024;
      const etag = gzip ? `${a.etag.slice(0, -1)}-gz"` : a.etag;
      reply
        .header("content-type", a.type)
        .header("etag", etag)
        .header("cache-control", "no-cache")
        .header("vary", "accept-encoding");
      const inm = req.headers["if-none-match"];
      if (inm?.split(",").some((t) => t.trim().replace(/^W\//, "") === etag)) {
        reply.code(304).send();
        return SENT;
      }
      if (gzip) {
        a.gzip ??= gzipSync(a.body);
        reply.header("content-encoding", "gzip").send(a.gzip);
      } else {
        reply.send(a.body);
      }
      return SENT;
    },
  };

  return [page, file] as RouteSpec[];
}
