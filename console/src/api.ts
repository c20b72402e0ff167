/**
 * The console's only way to the server: `fetch` of this origin's `/v1` API with the token as a
 * Bearer header. Errors come back in the API's envelope (`{success: false, error: {code, message}}`)
 * and are thrown as `ApiError`.
 */

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export interface Page<T> {
  items: T[];
  next_cursor: string | null;
}

let token: string | undefined;

export function setToken(value: string | undefined): void {
  token = value;
}

export function authHeaders(): Record<string, string> {
  return token ? { authorization: `Bearer ${token}` } : {};
}

/** A path under this origin with its query (undefined values left out). */
export function url(path: string, query: Record<string, string | number | undefined> = {}): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== "") q.set(k, String(v));
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}

/** Each segment of an object key or path escaped, the slashes kept. */
export function keyPath(key: string): string {
  return key.split("/").map(encodeURIComponent).join("/");
}

async function failure(r: Response): Promise<ApiError> {
  try {
    const body = (await r.json()) as { error?: string; error_code?: string };
    return new ApiError(r.status, body.error_code ?? "HTTP_ERROR", body.error ?? r.statusText);
  } catch {
    return new ApiError(r.status, "HTTP_ERROR", `${r.status} ${r.statusText}`);
  }
}

/** A JSON route: the envelope's `data`. */
export async function api<T>(
  method: string,
  path: string,
  options: { json?: unknown; signal?: AbortSignal } = {},
): Promise<T> {
  const headers: Record<string, string> = { accept: "application/json", ...authHeaders() };
  const init: RequestInit = { method, headers };
  if (options.json !== undefined) {
    headers["content-type"] = "application/json";
    init.body = JSON.stringify(options.json);
  }
  if (options.signal) init.signal = options.signal;
  const r = await fetch(path, init);
  if (!r.ok) throw await failure(r);
  if (r.status === 204) return undefined as T;
  const body = (await r.json()) as { data: T };
  return body.data;
}

/** A raw body (objects, session files) as a Blob. */
export async function download(path: string): Promise<Blob> {
  const r = await fetch(path, { headers: authHeaders() });
  if (!r.ok) throw await failure(r);
  return r.blob();
}

export function errorText(e: unknown): string {
  if (e instanceof ApiError) return `${e.code}: ${e.message}`;
  return e instanceof Error ? e.message : String(e);
}

// --- shapes of the routes the console reads (docs/http.md, /openapi.json) -------------------

export interface MessageRef {
  id: string;
  chat_id: string;
  role: string;
  preview: string;
  content_type: string;
  content_url: string;
  size_bytes: number;
  checksum: string;
  version: number;
  created_at: string;
  updated_at: string;
  expires_at: string | null;
  metadata: Record<string, unknown>;
}

export interface Message extends MessageRef {
  content: unknown;
}

export interface MessageVersion {
  version: number;
  content_url: string;
  size_bytes: number;
  checksum: string;
  preview: string;
  created_at?: string;
}

export interface Chat {
  chat_id: string;
  created_at: string;
  last_message_at: string;
}

export interface SearchHit {
  message_id?: string;
  id?: string;
  chat_id: string;
  score: number;
  snippet: string;
  highlights: [number, number][];
}

export interface ObjectInfo {
  key: string;
  size: number;
  sha256: string;
  content_type: string;
  created_at?: string;
  updated_at?: string;
}

export interface Tenant {
  tenant_id?: string;
  id?: string;
}

export interface Dashboard {
  tenant_id: string | null;
  generated_at: string;
  storage_as_of: string;
  storage: {
    planes: { plane: string; bodies: number; bytes: number }[];
    tenants: {
      tenant_id: string;
      bytes: number;
      objects: number;
      messages: number;
      planes: { plane: string; bodies: number; bytes: number }[];
    }[];
  };
  message_sizes: {
    bounds: number[];
    counts: number[];
    at_least_4kb: number;
    at_least_128kb: number;
    share_at_least_4kb: number;
    alert_lines: { bytes: number; label: string }[];
  };
  activity: {
    slot_seconds: number;
    rates: { at: string; ingest_per_s: number; query_per_s: number }[];
    latency_ms: { p50: number | null; p90: number | null; p99: number | null; requests: number };
  };
  cost: {
    currency: string;
    as_of: string;
    estimates: { provider: string; class: string; monthly_usd: number }[];
    note: string;
  };
  outbox: { projector: string; lag_events: number }[] | null;
  cache: {
    hits: number;
    misses: number;
    hit_ratio: number | null;
    tiers: { tier: string; hits: number; misses: number; hit_ratio: number | null }[];
  } | null;
  lifecycle_runs: { at: string; actor: string; counts: Record<string, unknown> }[] | null;
  fsck: { at: string; ok: boolean; source: string; problems: Record<string, number> } | null;
}

export function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}
