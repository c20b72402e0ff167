/**
 * CFG-2 URI shorthand: a plane written as one string instead of a mapping.
 *
 *   storage:  s3://bucket/prefix?region=…&endpoint=…   gs://bucket/prefix   azure://container/prefix?account_name=…
 *             fs:///abs/path   file:./rel   memory:
 *   database: postgres://…   postgresql://…   sqlite:./path   sqlite:///abs
 *   kv:       redis://…   rediss://…   lmdb:./path   memory:
 *   any plane: a bare backend name, e.g. `search: sqlite-fts` or `vector: exact?metric=cosine`
 *
 * Query parameters become options (for storage) or section keys (other planes), with numbers
 * and booleans parsed. For postgres and redis the whole URL is kept as `url`, minus Kura's own
 * parameters (`schema`, `max_connections`, `key_prefix`), which the drivers would not understand.
 *
 * Messages never repeat the URI, which may hold a password.
 */
import { parseScalar } from "./scalar.js";
import type { Plane } from "./schema.js";

export type ShorthandResult = { ok: true; value: Record<string, unknown> } | { ok: false; message: string };

interface Parts {
  scheme: string;
  /** The part after `//` up to the next `/`; undefined when the URI has no `//`. */
  authority: string | undefined;
  path: string;
  query: Record<string, unknown>;
}

const SCHEME = /^([A-Za-z][A-Za-z0-9+.-]*):([\s\S]*)$/;

const SCHEMES: Record<Plane, readonly string[]> = {
  storage: ["s3://", "gs://", "azure://", "fs://", "file:", "memory:"],
  database: ["postgres://", "postgresql://", "sqlite:"],
  kv: ["redis://", "rediss://", "lmdb:", "memory:"],
  search: [],
  vector: [],
};

class ShorthandError extends Error {}

export function expandShorthand(plane: Plane, text: string): ShorthandResult {
  try {
    return { ok: true, value: expand(plane, text.trim()) };
  } catch (e) {
    if (e instanceof ShorthandError) return { ok: false, message: e.message };
    throw e;
  }
}

function expand(plane: Plane, text: string): Record<string, unknown> {
  const match = SCHEME.exec(text);
  if (!match || plane === "search" || plane === "vector") return bareName(plane, text);
  const scheme = match[1]!.toLowerCase();
  const rest = match[2]!;
  switch (`${plane}:${scheme}`) {
    case "storage:s3":
      return { backend: "s3", options: bucketOptions(split(scheme, rest), "bucket") };
    case "storage:gs":
    case "storage:gcs":
      return { backend: "gcs", options: bucketOptions(split(scheme, rest), "bucket") };
    case "storage:azure":
      return { backend: "azure", options: bucketOptions(split(scheme, rest), "container") };
    case "storage:fs":
    case "storage:file": {
      const parts = split(scheme, rest);
      return { backend: "fs", options: withPath(parts.query, "base_path", localPath(parts)) };
    }
    case "storage:memory":
      return { backend: "memory", options: emptyLocation(split(scheme, rest)) };
    case "database:postgres":
    case "database:postgresql":
      return { backend: "postgres", ...splitOwnParams(text, ["schema", "max_connections"]) };
    case "database:sqlite": {
      const parts = split(scheme, rest);
      return { ...withPath(parts.query, "path", localPath(parts)), backend: "sqlite" };
    }
    case "kv:redis":
    case "kv:rediss":
      return { backend: "redis", ...splitOwnParams(text, ["key_prefix"]) };
    case "kv:lmdb": {
      const parts = split(scheme, rest);
      return { ...withPath(parts.query, "path", localPath(parts)), backend: "lmdb" };
    }
    case "kv:memory":
      return { ...emptyLocation(split(scheme, rest)), backend: "memory" };
    default:
      throw new ShorthandError(
        `unsupported URI scheme "${scheme}:" for ${plane} (use ${SCHEMES[plane].join(", ")} or a mapping)`,
      );
  }
}

/** `embedded`, `sqlite-fts?x=1`: a backend name with optional query parameters. */
function bareName(plane: Plane, text: string): Record<string, unknown> {
  const q = text.indexOf("?");
  const backend = q < 0 ? text : text.slice(0, q);
  const query = q < 0 ? {} : parseQuery(text.slice(q + 1));
  if (!/^[a-z0-9-]+$/i.test(backend)) {
    const hint = SCHEMES[plane].length > 0 ? `a URI (${SCHEMES[plane].join(", ")}), ` : "";
    throw new ShorthandError(`must be ${hint}a backend name or a mapping`);
  }
  return plane === "storage" ? { backend, options: query } : { ...query, backend };
}

function split(scheme: string, rest: string): Parts {
  const q = rest.indexOf("?");
  const query = q < 0 ? {} : parseQuery(rest.slice(q + 1));
  const body = q < 0 ? rest : rest.slice(0, q);
  if (!body.startsWith("//")) return { scheme, authority: undefined, path: body, query };
  const slash = body.indexOf("/", 2);
  return {
    scheme,
    authority: slash < 0 ? body.slice(2) : body.slice(2, slash),
    path: slash < 0 ? "" : body.slice(slash),
    query,
  };
}

function parseQuery(raw: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const piece of raw.split("&")) {
    if (piece === "") continue;
    const eq = piece.indexOf("=");
    const key = decode(eq < 0 ? piece : piece.slice(0, eq));
    // A parameter without a value is a flag: `?force_path_style` means true.
    out[key] = eq < 0 ? true : parseScalar(decode(piece.slice(eq + 1)));
  }
  return out;
}

function decode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw new ShorthandError("has a malformed %-escape");
  }
}

/** `s3://bucket/prefix`: the authority is the bucket (or container), the path the key prefix. */
function bucketOptions(parts: Parts, nameKey: "bucket" | "container"): Record<string, unknown> {
  const example = `${parts.scheme}://${nameKey}/prefix`;
  if (parts.authority === undefined || parts.authority === "") {
    throw new ShorthandError(`must name a ${nameKey}: ${example}`);
  }
  if (parts.authority.includes("@")) {
    throw new ShorthandError(
      `must not carry credentials; set them in storage.options (e.g. "env:VAR" references) instead`,
    );
  }
  const prefix = parts.path
    .split("/")
    .filter((s) => s !== "")
    .map(decode)
    .join("/");
  const options: Record<string, unknown> = { ...parts.query, [nameKey]: decode(parts.authority) };
  if (prefix !== "") options.prefix = prefix;
  return options;
}

/**
 * `fs:///abs`, `file://localhost/abs`, `file:./rel`, `sqlite:/abs`: a path on this machine.
 * An empty path means "the default location under data_dir".
 */
function localPath(parts: Parts): string | undefined {
  let path: string;
  if (parts.authority === undefined) {
    path = parts.path;
  } else if (parts.authority === "" || parts.authority.toLowerCase() === "localhost") {
    path = decode(parts.path);
  } else {
    throw new ShorthandError(
      `must name a local path: ${parts.scheme}:///absolute/path or ${parts.scheme}:./relative/path`,
    );
  }
  return path === "" ? undefined : path;
}

function withPath(query: Record<string, unknown>, key: string, path: string | undefined) {
  return path === undefined ? { ...query } : { ...query, [key]: path };
}

function emptyLocation(parts: Parts): Record<string, unknown> {
  if ((parts.authority ?? "") !== "" || parts.path !== "") {
    throw new ShorthandError(`${parts.scheme}: takes no location (write "${parts.scheme}:")`);
  }
  return { ...parts.query };
}

/**
 * `postgres://user:pw@host/db?sslmode=require&schema=kura`: the URL stays whole for the driver,
 * except the parameters Kura itself reads. The query is looked for after the userinfo, where a
 * password may contain `?`.
 */
function splitOwnParams(url: string, ownKeys: readonly string[]): Record<string, unknown> {
  const at = url.lastIndexOf("@");
  const q = url.indexOf("?", at); // from 0 when there is no "@"
  if (q < 0) return { url };
  const kept: string[] = [];
  const own: Record<string, unknown> = {};
  for (const piece of url.slice(q + 1).split("&")) {
    if (piece === "") continue;
    const eq = piece.indexOf("=");
    const key = decode(eq < 0 ? piece : piece.slice(0, eq));
    if (ownKeys.includes(key)) own[key] = eq < 0 ? true : parseScalar(decode(piece.slice(eq + 1)));
    else kept.push(piece);
  }
  return { ...own, url: kept.length > 0 ? `${url.slice(0, q)}?${kept.join("&")}` : url.slice(0, q) };
}
