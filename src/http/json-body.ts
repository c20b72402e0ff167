/**
 * Request bodies of the JSON routes (SEC-4). Fastify's own parsers decode with replacement, so
 * invalid UTF-8 became U+FFFD and was stored as if the client had sent it. These parsers refuse
 * instead, before anything is written:
 *
 * - bytes that are not UTF-8 → 400 `INVALID_UTF8` (`TextDecoder` with `fatal: true`);
 * - a lone UTF-16 surrogate in any string or key (`"\ud800"` escapes are valid JSON, but the
 *   value cannot be stored as UTF-8) → 400 `INVALID_UTF8`;
 * - values nested deeper than `MAX_JSON_DEPTH` → 400 `VALUE_TOO_DEEP`;
 * - `__proto__` keys and `constructor.prototype` (prototype poisoning) → 400 `REQUEST_INVALID`,
 *   as Fastify's secure-json-parse with `protoAction`/`constructorAction: "error"` did.
 *
 * Body size limits are unchanged: Fastify reads the body (with the route's `bodyLimit`) before
 * handing the bytes over. `text/plain` bodies are decoded just as strictly.
 */
import { isUtf8 } from "node:buffer";
import type { FastifyInstance, FastifyRequest } from "fastify";
import { KuraError } from "../core/errors.js";

/** Deepest nesting of arrays and objects a JSON body may have (the top-level value is level 1). */
export const MAX_JSON_DEPTH = 64;

/** `application/json` and every `application/…+json` type. */
const JSON_TYPES = /^application\/(?:[\w.!#$&^-]+\+)?json$/i;

function invalidUtf8(message: string, cause?: unknown): KuraError {
  return new KuraError("INVALID_UTF8", message, { operation: "http.body", ...(cause ? { cause } : {}) });
}

/** Decodes UTF-8 strictly (a BOM is dropped): INVALID_UTF8 on any byte sequence that is not UTF-8. */
export function decodeUtf8(body: Buffer): string {
  // `isUtf8` checks without decoding; the string is then made by the buffer itself, which is
  // cheaper than a fatal TextDecoder per request. The error keeps the decoder's own message.
  if (isUtf8(body)) {
    const bom = body.length >= 3 && body[0] === 0xef && body[1] === 0xbb && body[2] === 0xbf;
    return body.toString("utf8", bom ? 3 : 0);
  }
  try {
    new TextDecoder("utf-8", { fatal: true }).decode(body);
  } catch (e) {
    throw invalidUtf8("the request body is not valid UTF-8", e);
  }
  throw invalidUtf8("the request body is not valid UTF-8");
}

/** Parses a JSON request body, refusing what Kura cannot store faithfully (see the file comment). */
export function parseJsonBody(body: Buffer): unknown {
  const text = decodeUtf8(body);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    // Only a body that failed to parse can be empty (JSON.parse refuses whitespace alone).
    if (text.trim() === "") {
      throw new KuraError("REQUEST_INVALID", "the JSON body is empty", { operation: "http.body" });
    }
    throw new KuraError("REQUEST_INVALID", `the body is not JSON: ${(e as Error).message}`.slice(0, 300), {
      operation: "http.body",
      cause: e,
    });
  }
  check(value, 0);
  return value;
}

/** Walks the parsed value once: depth, lone surrogates, prototype poisoning. */
function check(value: unknown, depth: number): void {
  if (typeof value === "string") {
    if (!value.isWellFormed()) throw invalidUtf8("a string in the body holds a lone UTF-16 surrogate");
    return;
  }
  if (typeof value !== "object" || value === null) return;
  if (depth + 1 > MAX_JSON_DEPTH) {
    throw new KuraError("VALUE_TOO_DEEP", `the body is nested deeper than ${MAX_JSON_DEPTH} levels`, {
      operation: "http.body",
      context: { limit: MAX_JSON_DEPTH },
    });
  }
  if (Array.isArray(value)) {
    for (const item of value) check(item, depth + 1);
    return;
  }
  for (const key of Object.keys(value)) {
    if (!key.isWellFormed()) throw invalidUtf8("a key in the body holds a lone UTF-16 surrogate");
    const item = (value as Record<string, unknown>)[key];
    if (
      key === "__proto__" ||
      (key === "constructor" && isObject(item) && Object.hasOwn(item, "prototype"))
    ) {
      throw new KuraError("REQUEST_INVALID", "the body contains a forbidden prototype property", {
        operation: "http.body",
      });
    }
    check(item, depth + 1);
  }
}

function isObject(v: unknown): v is object {
  return typeof v === "object" && v !== null;
}

type Done = (err: Error | null, body?: unknown) => void;

/** A Fastify body parser from a function of the body's bytes; what it throws becomes the error. */
function parser(parse: (body: Buffer) => unknown) {
  return (_req: FastifyRequest, body: Buffer | string, done: Done) => {
    try {
      done(null, parse(typeof body === "string" ? Buffer.from(body) : body));
    } catch (e) {
      done(e as Error);
    }
  };
}

/** Replaces Fastify's JSON and text parsers on `app` (JSON routes; raw-body routes have their own). */
export function registerBodyParsers(app: FastifyInstance): void {
  app.removeContentTypeParser(["application/json", "text/plain"]);
  app.addContentTypeParser(JSON_TYPES, { parseAs: "buffer" }, parser(parseJsonBody));
  app.addContentTypeParser("text/plain", { parseAs: "buffer" }, parser(decodeUtf8));
}
