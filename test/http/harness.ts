/**
 * Starts the real `kura serve` server (buildServer + listen on port 0) over a Kura in a temp
 * directory (SQLite + fs), and drives it over HTTP with fetch.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { FastifyInstance } from "fastify";
import { type JWTPayload, SignJWT } from "jose";
import { mintToken } from "../../src/http/auth.js";
import { buildServer, type ServerOptions } from "../../src/http/server.js";
import { Kura, type KuraOpenOptions } from "../../src/kura.js";

export const SECRET = "test-secret-0123456789abcdef0123456789";

export interface Harness {
  base: string;
  kura: Kura;
  app: FastifyInstance;
  dir: string;
  token(tenant: string, options?: { ttlSeconds?: number }): Promise<string>;
  /** Sign arbitrary claims with the HS256 secret (or another). */
  sign(
    claims: JWTPayload,
    options?: { secret?: string; expiresIn?: number | string; header?: Record<string, unknown> },
  ): Promise<string>;
  call(method: string, path: string, options?: CallOptions): Promise<CallResult>;
  /**
   * What the routes did that the OpenAPI document does not declare (a status, a request header
   * read, a response header sent); `close` fails when there is any.
   */
  undocumented: string[];
  close(): Promise<void>;
}

export interface CallOptions {
  token?: string;
  json?: unknown;
  body?: RequestInit["body"];
  headers?: Record<string, string>;
}

export interface CallResult {
  status: number;
  headers: Headers;
  // biome-ignore lint/suspicious/noExplicitAny: response bodies are checked field by field in tests
  json: any;
  text: string;
}

export async function startServer(
  options: { config?: Record<string, unknown>; server?: ServerOptions; open?: KuraOpenOptions } = {},
): Promise<Harness> {
  const dir = await mkdtemp(join(tmpdir(), "kura-http-"));
  const kura = await Kura.open(
    {
      data_dir: dir,
      auth: { jwt_secret: SECRET },
      ...(options.config ?? {}),
    },
    options.open ?? {},
  );
  const undocumented: string[] = [];
  const app = await buildServer(kura, {
    logger: false,
    validateResponses: true,
    onUndocumented: (problem) => {
      if (!undocumented.includes(problem)) undocumented.push(problem);
    },
    ...(options.server ?? {}),
  });
  await app.listen({ host: "127.0.0.1", port: 0 });
  const address = app.server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  const base = `http://127.0.0.1:${port}`;
  const h: Harness = {
    base,
    kura,
    app,
    dir,
    token: (tenant, o = {}) => mintToken({ secret: SECRET, tenant, ttlSeconds: o.ttlSeconds ?? 600 }),
    sign: async (claims, o = {}) => {
      let jwt = new SignJWT(claims).setProtectedHeader({ alg: "HS256", ...(o.header ?? {}) }).setIssuedAt();
      if (o.expiresIn !== undefined) jwt = jwt.setExpirationTime(o.expiresIn);
      return jwt.sign(new TextEncoder().encode(o.secret ?? SECRET));
    },
    call: async (method, path, o = {}) => {
      const headers: Record<string, string> = { ...(o.headers ?? {}) };
      if (o.token) headers.authorization = `Bearer ${o.token}`;
      let body = o.body;
      if (o.json !== undefined) {
        headers["content-type"] ??= "application/json";
        body = JSON.stringify(o.json);
      }
      const res = await fetch(base + path, { method, headers, ...(body !== undefined ? { body } : {}) });
      const text = await res.text();
      let json: unknown;
      try {
        json = text ? JSON.parse(text) : undefined;
      } catch {
        json = undefined;
      }
      return { status: res.status, headers: res.headers, json, text };
    },
    undocumented,
    close: async () => {
      await app.close();
      await kura.close();
      await rm(dir, { recursive: true, force: true });
      if (undocumented.length > 0) {
        throw new Error(
          `the OpenAPI document does not declare what the server did:\n${undocumented.join("\n")}`,
        );
      }
    },
  };
  return h;
}

/** Checks the API-2 error envelope and returns its error_code. */
export function errorCode(r: CallResult): string {
  if (
    r.json?.success !== false ||
    typeof r.json.error !== "string" ||
    typeof r.json.request_id !== "string"
  ) {
    throw new Error(`not an error envelope (${r.status}): ${r.text.slice(0, 300)}`);
  }
  return r.json.error_code as string;
}

/** A fetch Response's JSON body, for field-by-field checks. */
// biome-ignore lint/suspicious/noExplicitAny: response bodies are checked field by field in tests
export async function readJson(r: Response): Promise<any> {
  return r.json();
}

/** A GET with a chosen Host header (fetch cannot set Host; node:http can). */
export function getWithHost(
  h: Harness,
  host: string,
  path: string,
  token: string,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const url = new URL(h.base + path);
    const req = request(
      { host: url.hostname, port: url.port, path, headers: { host, authorization: `Bearer ${token}` } },
      (res) => {
        let body = "";
        res.on("data", (c) => {
          body += c;
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on("error", reject);
    req.end();
  });
}
