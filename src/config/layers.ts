/**
 * CFG-1 precedence: defaults < YAML file < seed env names < `KURA_*` env < overrides (flags).
 *
 * Each source becomes a `Layer` (a nested patch plus where each value came from); layers are
 * merged in rank order. Two rules make merging do what a reader expects:
 * - a plane written as a string is expanded (CFG-2) inside its own layer, before merging, so a
 *   later layer can still refine it (`KURA_STORAGE__OPTIONS__REGION` after `storage: s3://b`);
 * - a later layer that switches a plane to another backend replaces the plane instead of merging
 *   into it, because the earlier backend's settings mean nothing to the new one.
 * The merged result remembers which source set each path, so problems can name it.
 */
import { type ConfigIssue, issue } from "./problems.js";
import { DEFAULTS, PLANES, type Plane } from "./schema.js";
import { type Env, isPlainObject, resolveEnvReference } from "./secrets.js";
import { expandShorthand } from "./uri.js";

export const RANK = Object.freeze({ file: 1, seedEnv: 2, kuraEnv: 3, overrides: 4 });

export interface Source {
  rank: number;
  /** Shown after a problem: the file, the environment variable, the flag. */
  label: string | undefined;
}

const DEFAULT_BACKEND: Record<Plane, string> = {
  database: DEFAULTS.database,
  storage: DEFAULTS.storage,
  kv: DEFAULTS.kv,
  search: DEFAULTS.search,
  vector: DEFAULTS.vector,
};

export function isPlane(key: string): key is Plane {
  return (PLANES as readonly string[]).includes(key);
}

/** One source's settings. */
export class Layer {
  readonly tree: Record<string, unknown> = {};
  private readonly labels = new Map<string, string>();

  constructor(
    readonly rank: number,
    private readonly defaultLabel: string | undefined,
    private readonly env: Env | undefined,
    private readonly problems: ConfigIssue[],
  ) {}

  /** The label of the nearest path (or ancestor) given one, else the layer's own. */
  labelAt(path: readonly string[]): string | undefined {
    for (let n = path.length; n > 0; n--) {
      const label = this.labels.get(path.slice(0, n).join("."));
      if (label !== undefined) return label;
    }
    return this.defaultLabel;
  }

  /**
   * Set `value` at `path`; objects merge with what the layer already holds there. `problemPath`
   * names the setting in problems (the env var or flag; the config path when omitted).
   */
  assign(path: readonly string[], value: unknown, label?: string, problemPath?: string): void {
    if (value === undefined || path.length === 0) return;
    const where = problemPath ?? path.join(".");
    if (path.includes(FORBIDDEN_KEY)) {
      this.problems.push(issue(where, "unknown key"));
      return;
    }
    value = withoutForbiddenKeys(value, path.join("."), this.problems);
    let node = this.tree;
    for (let i = 0; i < path.length - 1; i++) {
      const key = path[i]!;
      let child = node[key];
      if (child === undefined) {
        child = {};
        node[key] = child;
        // A section this setting brought into being is labelled by it too ("foo: unknown key (from KURA_FOO__BAR)").
        const at = path.slice(0, i + 1).join(".");
        if (label !== undefined && !this.labels.has(at)) this.labels.set(at, label);
      } else if (i === 0 && isPlane(key) && typeof child === "string") {
        return; // a plane string that failed to expand: its problem is already reported
      }
      if (!isPlainObject(child)) {
        this.problems.push(issue(where, `${path.slice(0, i + 1).join(".")} is not a section`));
        return;
      }
      node = child;
    }
    const key = path[path.length - 1]!;
    const next =
      path.length === 1 && isPlane(key) && typeof value === "string" ? this.plane(key, value) : value;
    const current = node[key];
    node[key] = isPlainObject(current) && isPlainObject(next) ? mergeObjects(current, next) : next;
    if (label !== undefined) this.labels.set(path.join("."), label);
  }

  /** A plane written as a string: resolve `env:VAR`, then expand the URI shorthand. */
  private plane(plane: Plane, text: string): unknown {
    const ref = resolveEnvReference(text, this.env, plane);
    if (!ref.ok) {
      this.problems.push(ref.problem);
      return text;
    }
    const expanded = expandShorthand(plane, String(ref.value));
    if (!expanded.ok) {
      this.problems.push(issue(plane, expanded.message));
      return text; // left as a string: the plane is skipped later, its problem already reported
    }
    return expanded.value;
  }
}

/** `__proto__` as a key would reach the object's prototype instead of a property: refuse it. */
const FORBIDDEN_KEY = "__proto__";

function withoutForbiddenKeys(value: unknown, path: string, problems: ConfigIssue[]): unknown {
  if (Array.isArray(value)) return value.map((v, i) => withoutForbiddenKeys(v, `${path}.${i}`, problems));
  if (!isPlainObject(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    if (k === FORBIDDEN_KEY) problems.push(issue(`${path}.${k}`, "unknown key"));
    else out[k] = withoutForbiddenKeys(v, `${path}.${k}`, problems);
  }
  return out;
}

function mergeObjects(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b)) {
    if (v === undefined) continue;
    const cur = out[k];
    out[k] = isPlainObject(cur) && isPlainObject(v) ? mergeObjects(cur, v) : v;
  }
  return out;
}

/** The layers merged so far, with the source of every path. */
export class Merged {
  readonly tree: Record<string, unknown> = {};
  private readonly sources = new Map<string, Source>();

  apply(layer: Layer): void {
    this.mergeInto(this.tree, layer.tree, [], layer);
  }

  /** The source of `path`, or of its nearest ancestor that has one. */
  sourceOf(path: string): Source | undefined {
    const parts = path.split(".");
    for (let n = parts.length; n > 0; n--) {
      const source = this.sources.get(parts.slice(0, n).join("."));
      if (source) return source;
    }
    return undefined;
  }

  /**
   * Set a value with the precedence of `source`, unless a higher-ranked source already set this
   * exact path. Used for seed env names whose meaning depends on the final backend.
   */
  setUnlessOutranked(path: readonly string[], value: unknown, source: Source): void {
    const existing = this.sources.get(path.join("."));
    if (existing && existing.rank > source.rank) return;
    let node = this.tree;
    for (const key of path.slice(0, -1)) {
      const child = node[key] ?? {};
      if (!isPlainObject(child)) return; // an invalid section: its own problem is reported
      node[key] = child;
      node = child;
    }
    node[path[path.length - 1]!] = value;
    this.record(path, value, () => source.label, source.rank);
  }

  private mergeInto(
    target: Record<string, unknown>,
    patch: Record<string, unknown>,
    path: string[],
    layer: Layer,
  ) {
    for (const [key, value] of Object.entries(patch)) {
      if (value === undefined) continue;
      const p = [...path, key];
      const current = target[key];
      if (isPlainObject(current) && isPlainObject(value) && !switchesBackend(p, current, value)) {
        this.mergeInto(current, value, p, layer);
        continue;
      }
      target[key] = cloneTree(value);
      this.forget(p);
      this.record(p, value, (at) => layer.labelAt(at), layer.rank);
    }
  }

  private record(
    path: readonly string[],
    value: unknown,
    labelAt: (p: readonly string[]) => string | undefined,
    rank: number,
  ) {
    this.sources.set(path.join("."), { rank, label: labelAt(path) });
    if (isPlainObject(value)) {
      for (const [k, v] of Object.entries(value)) this.record([...path, k], v, labelAt, rank);
    }
  }

  private forget(path: readonly string[]) {
    const prefix = `${path.join(".")}.`;
    for (const key of [...this.sources.keys()]) if (key.startsWith(prefix)) this.sources.delete(key);
  }
}

/** Copies plain objects and arrays (merging must not alter a layer); other values are kept as they are. */
function cloneTree(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(cloneTree);
  if (!isPlainObject(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = cloneTree(v);
  return out;
}

function switchesBackend(
  path: readonly string[],
  current: Record<string, unknown>,
  next: Record<string, unknown>,
) {
  const key = path[0]!;
  if (path.length !== 1 || !isPlane(key) || next.backend === undefined) return false;
  return (current.backend ?? DEFAULT_BACKEND[key]) !== next.backend;
}

/** `{"server.port": 9000, storage: "s3://b"}` → a layer; dotted and nested keys may be mixed. */
export function overridesLayer(
  overrides: Readonly<Record<string, unknown>>,
  env: Env | undefined,
  problems: ConfigIssue[],
): Layer {
  const layer = new Layer(RANK.overrides, undefined, env, problems);
  // Shorter paths first, so `storage: "s3://…"` is in place before `storage.options.region`.
  const entries = Object.entries(overrides)
    .filter(([, v]) => v !== undefined)
    .map(([key, value]) => ({ key, path: key.split("."), value }))
    .sort((a, b) => a.path.length - b.path.length);
  for (const { key, path, value } of entries) {
    if (path.some((s) => s === "")) {
      problems.push(issue(key, "malformed override key (use dotted paths such as server.port)"));
      continue;
    }
    layer.assign(path, value, `override ${key}`, key);
  }
  return layer;
}

/** A parsed YAML document (or a `resolveConfig` input) → a layer. */
export function documentLayer(
  doc: Readonly<Record<string, unknown>>,
  rank: number,
  label: string | undefined,
  env: Env | undefined,
  problems: ConfigIssue[],
): Layer {
  const layer = new Layer(rank, label, env, problems);
  for (const [key, value] of Object.entries(doc)) layer.assign([key], value);
  return layer;
}
