/**
 * `kura/client`: a typed client of the HTTP API (`kura serve`). The types in `schema.ts` are
 * generated from the server's OpenAPI document (`npm run gen:client`); openapi-fetch turns them
 * into `GET`/`PUT`/`POST`/`PATCH`/`DELETE`/`HEAD` methods whose paths, parameters, bodies and
 * responses are checked by the compiler.
 *
 * ```ts
 * const kura = createKuraClient({ baseUrl: "http://127.0.0.1:8787", token });
 * const { data, error } = await kura.POST("/v1/chats/{chat_id}/messages", {
 *   params: { path: { chat_id: "chat-1" } },
 *   body: { role: "user", content: "hello" },
 * });
 * ```
 *
 * JSON responses are the envelope `{success, data, timestamp, request_id}`; errors come back as
 * `error` (`{success: false, error, error_code, …}`). Raw bodies (objects, session files, a
 * streamed message) are sent as given when the request's Content-Type is not JSON; read raw
 * responses with `parseAs: "text" | "arrayBuffer" | "blob" | "stream"`.
 */
import createClient, { type Client } from "openapi-fetch";
import type { paths } from "./schema.js";

export type { components, operations, paths } from "./schema.js";

export interface KuraClientOptions {
  /** Where the server listens, e.g. `http://127.0.0.1:8787` (a trailing `/` is ignored). */
  baseUrl: string;
  /** A JWT carrying `tenant_id` (`kura token --tenant T`), sent as `Authorization: Bearer …`. */
  token: string;
  /** A fetch of your own (tests, proxies, retries); default `globalThis.fetch`. */
  fetch?: (input: Request) => Promise<Response>;
}

export type KuraClient = Client<paths>;

/** Bodies that are bytes already: never turned into JSON. */
function isBinary(body: unknown): boolean {
  return (
    body instanceof ArrayBuffer ||
    ArrayBuffer.isView(body) ||
    (typeof Blob !== "undefined" && body instanceof Blob) ||
    (typeof ReadableStream !== "undefined" && body instanceof ReadableStream) ||
    (typeof FormData !== "undefined" && body instanceof FormData) ||
    body instanceof URLSearchParams
  );
}

function contentTypeOf(headers: unknown): string | undefined {
  if (!headers) return undefined;
  if (headers instanceof Headers) return headers.get("content-type") ?? undefined;
  for (const [name, value] of Object.entries(headers as Record<string, unknown>)) {
    if (name.toLowerCase() === "content-type" && value != null) return String(value);
  }
  return undefined;
}

/**
 * JSON unless the body is bytes, or the request names a Content-Type that is not JSON (then a
 * string goes as its text): an object's or a file's content is sent as it is.
 */
function serializeBody(body: unknown, headers?: unknown): unknown {
  if (isBinary(body)) return body;
  const type = contentTypeOf(headers)?.split(";")[0]?.trim().toLowerCase();
  if (typeof body === "string" && type && type !== "application/json" && !type.endsWith("+json")) return body;
  return JSON.stringify(body);
}

/**
 * A client for one tenant's token. Every path parameter is percent-encoded, `/` included, so a
 * key such as `docs/report.pdf` is one parameter (`/v1/objects/docs%2Freport.pdf`), which the
 * server decodes.
 */
export function createKuraClient(options: KuraClientOptions): KuraClient {
  return createClient<paths>({
    baseUrl: options.baseUrl.replace(/\/+$/, ""),
    headers: { Authorization: `Bearer ${options.token}` },
    bodySerializer: serializeBody,
    ...(options.fetch ? { fetch: options.fetch } : {}),
  });
}
