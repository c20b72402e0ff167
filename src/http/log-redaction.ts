/**
 * Credentials never reach a log line. Clients put tokens where they should not — `?jwt=`,
 * `?access_token=`, `?Authorization=Bearer…`, presigned signatures — and URLs end up in request
 * lines, error messages and stack traces. Every credential-looking query parameter (by name,
 * case-insensitive, percent-decoded) is redacted in every string a log line carries, and so is
 * anything shaped like a JWT or a `Bearer` credential wherever it appears.
 */

export const REDACTED = "[redacted]";

/** Query parameter names that are credentials, compared lower-cased with `-` read as `_`. */
const CREDENTIAL_NAMES = new Set([
  "authorization",
  "auth",
  "jwt",
  "id_token",
  "token",
  "access_token",
  "refresh_token",
  "bearer",
  "key",
  "api_key",
  "apikey",
  "secret",
  "client_secret",
  "password",
  "passwd",
  "pass",
  "pwd",
  "signature",
  "sig",
  "code",
  "credential",
  "credentials",
  "session",
  "sessionid",
  "session_id",
]);

/** Names that look like credentials wherever the telling word sits in them. */
const CREDENTIAL_PARTS =
  /token|secret|passw|signature|credential|jwt|bearer|authori[sz]ation|(?:api|access|secret|private|signing|shared|account|master|client|subscription)_?key/;

export function isCredentialName(name: string): boolean {
  let decoded = name;
  try {
    decoded = decodeURIComponent(name.replaceAll("+", " "));
  } catch {
    // Malformed percent-encoding: judge the raw name.
  }
  const n = decoded.trim().toLowerCase().replaceAll("-", "_");
  return CREDENTIAL_NAMES.has(n) || CREDENTIAL_PARTS.test(n);
}

/** `name=value` after `?`, `&` or `;` — in a URL or in any text quoting one. */
const QUERY_PAIR = /([?&;])([^=&?#\s"'<>;]+)=([^&#\s"'<>;]*)/g;
/** Three base64url segments starting with a JSON object header: a JWT (or JWS). */
const JWT_SHAPE = /\beyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*/g;
const BEARER = /\b(Bearer(?:\s+|%20|\+))[A-Za-z0-9._~+/=-]+/gi;

/**
 * What every redacted shape contains: a query pair has `=`, a JWT starts with `eyJ`, a bearer
 * credential follows `Bearer`. Text with none of them (most of what a log line carries: methods,
 * route templates, ids) is returned as it is without running the three replacements.
 */
const MAYBE_CREDENTIAL = /=|eyJ|bearer/i;

/** `text` with credential-looking query values, JWTs and bearer credentials replaced. */
export function redactText(text: string): string {
  if (!MAYBE_CREDENTIAL.test(text)) return text;
  return text
    .replace(QUERY_PAIR, (whole, sep: string, name: string) =>
      isCredentialName(name) ? `${sep}${name}=${REDACTED}` : whole,
    )
    .replace(BEARER, `$1${REDACTED}`)
    .replace(JWT_SHAPE, REDACTED);
}

/** A request URL as it may be logged. */
export function redactUrl(url: string): string {
  return redactText(url);
}

const MAX_DEPTH = 8;

/** An error as a log line shows it, its strings redacted (pino's serializer would not). */
export function serializeError(error: Error, depth = 0): Record<string, unknown> {
  const out: Record<string, unknown> = {
    type: error.constructor?.name ?? error.name,
    message: redactText(String(error.message)),
  };
  if (typeof error.stack === "string") out.stack = redactText(error.stack);
  for (const [key, value] of Object.entries(error)) {
    if (key in out || key === "cause") continue;
    out[key] = redactLogValue(value, depth + 1);
  }
  if (error.cause !== undefined && depth < MAX_DEPTH) out.cause = redactLogValue(error.cause, depth + 1);
  return out;
}

/**
 * A copy of a logged value with every string redacted: plain objects, arrays and errors are
 * walked; other objects (requests, replies, sockets) are left to their serializers.
 */
export function redactLogValue(value: unknown, depth = 0): unknown {
  if (typeof value === "string") return redactText(value);
  if (value === null || typeof value !== "object" || depth > MAX_DEPTH) return value;
  if (value instanceof Error) return serializeError(value, depth);
  if (Array.isArray(value)) return value.map((v) => redactLogValue(v, depth + 1));
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return value;
  // Copied only when a value changes: most logged objects have nothing to redact.
  let out: Record<string, unknown> | undefined;
  const record = value as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    const v = record[key];
    const redacted = redactLogValue(v, depth + 1);
    if (redacted !== v) {
      out ??= { ...record };
      out[key] = redacted;
    }
  }
  return out ?? value;
}

type LoggerOptions = Record<string, unknown> & {
  serializers?: Record<string, (value: never) => unknown>;
  formatters?: Record<string, unknown> & {
    log?: (object: Record<string, unknown>) => Record<string, unknown>;
  };
};

/**
 * Pino options with redaction added to whatever they already say: the request serializer's
 * URL, error messages and stacks, the message text and every string of the logged object.
 * Serializers given in `options` run first; redaction applies to what they return.
 */
export function withLogRedaction<T extends object>(options: T): T {
  const o = options as LoggerOptions;
  const given = o.serializers ?? {};
  const serializers: Record<string, (value: never) => unknown> = {};
  for (const [key, serialize] of Object.entries(given)) {
    serializers[key] = (value: never) => redactLogValue(serialize(value));
  }
  serializers.req = (req: never) => {
    const r = req as { method: string; url: string; hostname?: string; ip?: string };
    const out = given.req ? given.req(req) : { method: r.method, url: r.url, host: r.hostname, remote: r.ip };
    return redactLogValue(out);
  };
  serializers.err = (err: never) => {
    const e = given.err ? given.err(err) : err;
    return e instanceof Error ? serializeError(e) : redactLogValue(e);
  };
  serializers.msg = (msg: never) => redactLogValue(given.msg ? given.msg(msg) : msg);
  const log = o.formatters?.log;
  return {
    ...options,
    serializers,
    formatters: {
      ...(o.formatters ?? {}),
      log: (object: Record<string, unknown>) =>
        redactLogValue(log ? log(object) : object) as Record<string, unknown>,
    },
  };
}
