/**
 * `/console`: the browser console (UI-1), a single-page app built from `console/` by
 * `npm run build:console` into `dist/console` and shipped in the package (no build step for
 * users, nothing loaded from another host: it works offline). Served as static files: the
 * content type of each name, hashed assets (`assets/*-{hash}.js|css`) cached for a year as
 * immutable, `index.html` never cached and answered for every client route (`/console/chats/x`),
 * and a Content-Security-Policy allowing only this origin. The app itself talks to `/v1` with
 * the token it is given, like any client.
 */
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { extname, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { KuraError } from "../core/errors.js";
import { type RouteResult, type RouteSpec, SENT } from "./route.js";

/** What the console's pages may load and where they may connect: this origin only. */
export const CONSOLE_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data: blob:",
  "connect-src 'self'",
  "font-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join("; ");

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".json": "application/json; charset=utf-8",
  ".map": "application/json; charset=utf-8",
  ".txt": "text/plain; charset=utf-8",
  ".woff2": "font/woff2",
};

/** Vite names built assets `name-{8+ url-safe chars}.ext`: their content never changes under that name. */
const HASHED = /^assets\/[^/]+-[A-Za-z0-9_-]{8,}\.[a-z0-9]+$/;

/**
 * Where the built console is: `dist/console` beside this module once compiled (`dist/http/` →
 * `dist/console/`), or the repository's `dist/console` when running from the sources.
 */
export function consoleDir(): string | undefined {
  const here = fileURLToPath(new URL(".", import.meta.url));
  for (const candidate of [resolve(here, "../console"), resolve(here, "../../dist/console")]) {
    if (existsSync(resolve(candidate, "index.html"))) return candidate;
  }
  return undefined;
}

interface LoadedFile {
  body: Buffer;
  etag: string;
  type: string;
}

function notBuilt(): KuraError {
  return new KuraError(
    "NOT_IMPLEMENTED",
    "the console is not built into this installation (npm run build:console)",
    { operation: "console" },
  );
}

function noFile(): KuraError {
  return new KuraError("ROUTE_NOT_FOUND", "no such file of the console", { operation: "console" });
}

export function consoleRoutes(tag: string, dir: string | undefined = consoleDir()): RouteSpec[] {
  // The files do not change while the process runs: each is read once.
  const loaded = new Map<string, Promise<LoadedFile | undefined>>();
  const load = (name: string): Promise<LoadedFile | undefined> => {
    let p = loaded.get(name);
    if (!p) {
      const root = dir as string;
      const path = resolve(root, name);
      p =
        path.startsWith(root + sep) && TYPES[extname(path)] !== undefined
          ? readFile(path).then(
              (body) => ({
                body,
                etag: `"${createHash("sha256").update(body).digest("base64url").slice(0, 27)}"`,
                type: TYPES[extname(path)] as string,
              }),
              () => undefined,
            )
          : Promise.resolve(undefined);
      if (loaded.size < 1000) loaded.set(name, p);
    }
    return p;
  };

  const send = async (
    name: string,
    req: { headers: Record<string, unknown> },
    reply: RouteReply,
  ): Promise<RouteResult> => {
    if (dir === undefined) throw notBuilt();
    let file = await load(name);
    let html = name === "index.html";
    if (!file) {
      // A client route (no extension, not under assets/) gets the app; a missing asset does not.
      if (name.startsWith("assets/") || extname(name) !== "") throw noFile();
      file = await load("index.html");
      html = true;
      if (!file) throw notBuilt();
    }
    reply.header("content-type", file.type).header("etag", file.etag);
    reply.header(
      "cache-control",
      !html && HASHED.test(name) ? "public, max-age=31536000, immutable" : "no-cache",
    );
    if (html) reply.header("content-security-policy", CONSOLE_CSP);
    const inm = req.headers["if-none-match"];
    if (typeof inm === "string" && inm.split(",").some((t) => t.trim().replace(/^W\//, "") === file.etag)) {
      reply.code(304).send();
      return SENT;
    }
    reply.send(file.body);
    return SENT;
  };

  const FILE_HEADERS = {
    ETag: "The file's content tag",
    "Cache-Control": "no-cache for the page; a year, immutable, for hashed assets",
  };
  const responses = (what: string) => ({
    200: {
      description: what,
      raw: "text/html",
      headers: { ...FILE_HEADERS, "Content-Security-Policy": "On the page: this origin only" },
    },
    304: { description: "If-None-Match matched the ETag", headers: FILE_HEADERS },
    404: { description: "A missing asset (ROUTE_NOT_FOUND)" },
    501: { description: "The console is not built into this installation (NOT_IMPLEMENTED)" },
  });
  const headers = { "If-None-Match": "Entity tags: a match → 304" };

  const page: RouteSpec = {
    method: "GET",
    path: "/console",
    operationId: "console",
    summary: "The browser console: chats, search, objects, sessions, KV and the dashboard",
    description:
      "A single-page app served entirely by this server; sign in with a token or API key. It calls " +
      "the /v1 API like any client.",
    tag,
    auth: false,
    headers,
    responses: responses("The console's page"),
    handler: async ({ req, reply }) => send("index.html", req, reply),
  };

  const file: RouteSpec<{ path: string }> = {
    method: "GET",
    path: "/console/{path...}",
    operationId: "consoleFile",
    summary: "A file of the console, or its page for a client route",
    description:
      "Scripts and styles under assets/ (hashed names, cached as immutable); any other path " +
      "without an extension answers the page, whose script shows that route.",
    tag,
    auth: false,
    params: z.object({ path: z.string().max(1024) }),
    headers,
    responses: responses("The file, or the page"),
    handler: async ({ params, req, reply }) => {
      const name = params.path === "" ? "index.html" : params.path;
      if (name.split("/").some((s) => s === ".." || s === "." || s.startsWith("~"))) throw noFile();
      return send(name, req, reply);
    },
  };

  return [page, file] as RouteSpec[];
}

type RouteReply = Parameters<NonNullable<RouteSpec["handler"]>>[0]["reply"];
