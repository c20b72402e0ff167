/**
 * Secrets in configuration (SEC-4): `env:VAR` indirection so secrets stay out of files, and
 * redaction so a configuration can be printed or logged without them.
 */
import type { ConfigIssue } from "./problems.js";
import type { KuraConfig } from "./schema.js";

/** Option and section keys whose values are secrets wherever they appear. */
export const SECRET_KEYS: ReadonlySet<string> = new Set([
  "access_key_id",
  "secret_access_key",
  "session_token",
  "account_key",
  "sas_token",
  "connection_string",
  "credentials_json",
  "private_key",
  "client_secret",
  "jwt_secret",
  "presign_secret",
  "master_key",
  "api_key",
  "password",
]);

/** Query parameters that carry a secret inside a URL (libpq accepts `?password=`). */
const SECRET_QUERY_PARAMS = /^(password|pass|pwd|secret|token|sig|access_key|secret_key|api_key|apikey)$/i;

export const REDACTED = "[redacted]";

const ENV_REFERENCE = /^env:(.*)$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export type Env = Readonly<Record<string, string | undefined>>;

/**
 * If `value` is an `env:VAR` reference, the variable's text (verbatim, never parsed), or a
 * problem when it is unset or empty; any other value is returned as it is.
 */
export function resolveEnvReference(
  value: unknown,
  env: Env | undefined,
  path: string,
): { ok: true; value: unknown } | { ok: false; problem: ConfigIssue } {
  if (typeof value !== "string") return { ok: true, value };
  const match = ENV_REFERENCE.exec(value);
  if (!match) return { ok: true, value };
  const name = match[1]!;
  if (!ENV_NAME.test(name)) {
    return {
      ok: false,
      problem: {
        path,
        code: "CONFIG_INVALID",
        message: "env: must be followed by a variable name (env:NAME)",
      },
    };
  }
  const text = env?.[name];
  if (text === undefined || text === "") {
    const why = env === undefined ? "no environment was given to resolve it" : "it is not set";
    return {
      ok: false,
      problem: {
        path,
        code: "CONFIG_ENV_MISSING",
        message: `refers to environment variable ${name}, but ${why}`,
      },
    };
  }
  return { ok: true, value: text };
}

/** Replace every `env:VAR` string inside plain objects and arrays, collecting every problem. */
export function resolveEnvReferences(
  tree: unknown,
  env: Env | undefined,
  path: string,
  problems: ConfigIssue[],
): unknown {
  if (Array.isArray(tree))
    return tree.map((v, i) => resolveEnvReferences(v, env, join(path, String(i)), problems));
  if (isPlainObject(tree)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(tree)) out[k] = resolveEnvReferences(v, env, join(path, k), problems);
    return out;
  }
  const resolved = resolveEnvReference(tree, env, path);
  if (resolved.ok) return resolved.value;
  problems.push(resolved.problem);
  return tree;
}

/**
 * A copy of `config` safe to print: secret keys become "[redacted]" (an unset secret stays
 * `null`, so "not configured" remains visible), and passwords inside any URL are masked.
 */
export function redactConfig(config: KuraConfig): unknown {
  return redactValue(config, undefined);
}

function redactValue(value: unknown, key: string | undefined): unknown {
  if (key !== undefined && SECRET_KEYS.has(key) && value !== null && value !== undefined) return REDACTED;
  if (Array.isArray(value)) return value.map((v) => redactValue(v, undefined));
  if (isPlainObject(value)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = redactValue(v, k);
    return out;
  }
  if (typeof value === "string") return maskUrlSecrets(value);
  return value;
}

/**
 * `postgres://kura:pw@host/db?password=x` → `postgres://kura:[redacted]@host/db?password=[redacted]`.
 * Strings that are not URLs with a `scheme://` are returned unchanged.
 */
export function maskUrlSecrets(text: string): string {
  const scheme = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.exec(text);
  if (!scheme) return text;
  const start = scheme[0].length;
  let rest = text.slice(start);
  // The userinfo ends at the last `@` before the path: passwords may contain `/`, `?` or `@`.
  const at = rest.lastIndexOf("@");
  if (at >= 0) {
    const userinfo = rest.slice(0, at);
    const colon = userinfo.indexOf(":");
    if (colon >= 0) rest = `${userinfo.slice(0, colon + 1)}${REDACTED}${rest.slice(at)}`;
  }
  const q = rest.indexOf("?", rest.lastIndexOf("@") + 1);
  if (q >= 0) {
    const hash = rest.indexOf("#", q);
    const end = hash < 0 ? rest.length : hash;
    const query = rest
      .slice(q + 1, end)
      .split("&")
      .map((piece) => {
        const eq = piece.indexOf("=");
        const name = eq < 0 ? piece : piece.slice(0, eq);
        return eq >= 0 && SECRET_QUERY_PARAMS.test(name) ? `${name}=${REDACTED}` : piece;
      })
      .join("&");
    rest = `${rest.slice(0, q + 1)}${query}${rest.slice(end)}`;
  }
  return `${text.slice(0, start)}${rest}`;
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== "object" || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

function join(path: string, key: string): string {
  return path === "" ? key : `${path}.${key}`;
}
