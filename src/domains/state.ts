/**
 * The state kinds of seed 004 beside session state (SESS-2), each a thin, tenant-scoped
 * view of the KV store:
 * - `config`: config values and feature flags (`{tenant}:config:{name}`), with change
 *   notification to subscribers in this process;
 * - `drafts`: workspace drafts (`{tenant}:draft:{id}`) saved only by compare-and-set, so two
 *   writers never silently overwrite each other;
 * - `cache`: values with a TTL (`{tenant}:cache:{key}`), loaded on a miss.
 *
 * Change notification is in-process: a write through another Kura process (another node on the
 * same Redis) does not reach this process's subscribers. Cross-node invalidation comes with
 * DIST-1 (see ADR 0008).
 */
import { KuraError } from "../core/errors.js";
import type { UploadStore } from "../engine/uploads.js";
import type { BlobStore } from "../ports/blob-store.js";
import type { KvEntry, KvStore, KvWriteResult } from "../ports/kv-store.js";
import { type KvNamespace, tenantKv } from "./kv.js";

/** What the state and session domains share; built once by `Kura.open`. */
export interface StateContext {
  kv: KvStore;
  /** Resumable uploads' state and parts (API-6), shared by every tenant's `uploads`. */
  uploads: UploadStore;
  /** The blob store session files go to. */
  store: BlobStore;
  clock: () => number;
  /** Default TTL of session metadata (`sessions.ttl_seconds`, SESSION_TTL). */
  sessionTtlSeconds: number;
  /** Session files expire this many days after they were written (`retention.session_files_days`). */
  sessionFilesDays: number;
  events: StateEvents;
}

export interface ConfigChange {
  tenantId: string;
  name: string;
  /** The new value; undefined when the entry was deleted. */
  value: unknown;
  /** The new version; 0 when the entry was deleted. */
  version: number;
}

export type ConfigListener = (change: ConfigChange) => void;

/** In-process fan-out of config changes, per tenant. */
export class StateEvents {
  private readonly listeners = new Map<string, Set<ConfigListener>>();
  /** Called when a listener throws (a listener never fails the write that notified it). */
  constructor(private readonly onListenerError: (error: unknown) => void = () => undefined) {}

  subscribe(tenantId: string, listener: ConfigListener): () => void {
    let set = this.listeners.get(tenantId);
    if (!set) {
      set = new Set();
      this.listeners.set(tenantId, set);
    }
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0 && this.listeners.get(tenantId) === set) this.listeners.delete(tenantId);
    };
  }

  emit(change: ConfigChange): void {
    for (const listener of [...(this.listeners.get(change.tenantId) ?? [])]) {
      try {
        listener(change);
      } catch (e) {
        this.onListenerError(e);
      }
    }
  }
}

function ttlMs(ttlSeconds: number | undefined, operation: string): number | undefined {
  if (ttlSeconds === undefined) return undefined;
  if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1) {
    throw new KuraError("INVALID_ARGUMENT", "ttlSeconds must be a positive integer", { operation });
  }
  return ttlSeconds * 1000;
}

/** Config values and feature flags of one tenant (`kura.tenant(t).config`). */
export class ConfigStore {
  private readonly ns: KvNamespace;

  constructor(
    private readonly state: StateContext,
    readonly tenantId: string,
  ) {
    this.ns = tenantKv(state.kv, tenantId).sub("config:");
  }

  get<T = unknown>(name: string): Promise<T | undefined> {
    return this.ns.get<T>(name);
  }

  getEntry<T = unknown>(name: string): Promise<KvEntry<T> | undefined> {
    return this.ns.getEntry<T>(name);
  }

  /** Set a value (optionally only over `ifVersion`) and notify subscribers once it is stored. */
  async set(name: string, value: unknown, options: { ifVersion?: number } = {}): Promise<KvWriteResult> {
    const result = await this.ns.set(name, value, options);
    this.state.events.emit({ tenantId: this.tenantId, name, value, version: result.version });
    return result;
  }

  async delete(name: string): Promise<boolean> {
    const deleted = await this.ns.delete(name);
    if (deleted) this.state.events.emit({ tenantId: this.tenantId, name, value: undefined, version: 0 });
    return deleted;
  }

  /** Every config entry of the tenant by name. */
  async all(): Promise<Record<string, unknown>> {
    const out: Record<string, unknown> = {};
    for (const e of await this.ns.scanAll()) out[e.key] = e.value;
    return out;
  }

  /** A feature flag: true only when the stored value is `true`; `fallback` when unset. */
  async enabled(flag: string, fallback = false): Promise<boolean> {
    const value = await this.ns.get(flag);
    return value === undefined ? fallback : value === true;
  }

  /**
   * Call `listener` after each change to this tenant's config made through this Kura instance
   * (any `tenant(t)` scope of it). Returns the function that unsubscribes.
   */
  subscribe(listener: ConfigListener): () => void {
    return this.state.events.subscribe(this.tenantId, listener);
  }
}

export interface Draft<T = unknown> {
  id: string;
  value: T;
  version: number;
  expiresAt: number | undefined;
}

/** Workspace drafts of one tenant (`kura.tenant(t).drafts`): every save is a compare-and-set. */
export class Drafts {
  private readonly ns: KvNamespace;

  constructor(state: StateContext, tenantId: string) {
    this.ns = tenantKv(state.kv, tenantId).sub("draft:");
  }

  async get<T = unknown>(id: string): Promise<Draft<T> | undefined> {
    const entry = await this.ns.getEntry<T>(id);
    return entry && { id, value: entry.value, version: entry.version, expiresAt: entry.expiresAt };
  }

  /**
   * Save a draft over the version the writer last read (`0` for a new draft). If anyone saved
   * since, fails with `KV_VERSION_CONFLICT` (ConditionFailed) and stores nothing: the writer
   * re-reads and merges instead of overwriting.
   */
  async save(
    id: string,
    value: unknown,
    options: { expectedVersion: number; ttlSeconds?: number },
  ): Promise<KvWriteResult> {
    if (typeof options?.expectedVersion !== "number") {
      throw new KuraError("INVALID_ARGUMENT", "expectedVersion is required (0 for a new draft)", {
        operation: "drafts.save",
      });
    }
    const ttl = ttlMs(options.ttlSeconds, "drafts.save");
    return this.ns.set(id, value, { ifVersion: options.expectedVersion, ...(ttl ? { ttlMs: ttl } : {}) });
  }

  /** Delete a draft; with `expectedVersion` only if nobody saved since. */
  delete(id: string, options: { expectedVersion?: number } = {}): Promise<boolean> {
    return this.ns.delete(
      id,
      options.expectedVersion === undefined ? {} : { ifVersion: options.expectedVersion },
    );
  }

  /** Every draft of the tenant (ids, versions and values). */
  async list<T = unknown>(): Promise<Draft<T>[]> {
    return (await this.ns.scanAll<T>()).map((e) => ({
      id: e.key,
      value: e.value,
      version: e.version,
      expiresAt: e.expiresAt,
    }));
  }
}

/** A tenant's cache of computed values with a TTL (`kura.tenant(t).cache`). */
export class StateCache {
  static readonly DEFAULT_TTL_SECONDS = 300;
  private readonly ns: KvNamespace;

  constructor(state: StateContext, tenantId: string) {
    this.ns = tenantKv(state.kv, tenantId).sub("cache:");
  }

  get<T = unknown>(key: string): Promise<T | undefined> {
    return this.ns.get<T>(key);
  }

  async set(key: string, value: unknown, options: { ttlSeconds?: number } = {}): Promise<void> {
    const ttl = ttlMs(options.ttlSeconds ?? StateCache.DEFAULT_TTL_SECONDS, "cache.set") as number;
    await this.ns.set(key, value, { ttlMs: ttl });
  }

  delete(key: string): Promise<boolean> {
    return this.ns.delete(key);
  }

  /** The cached value, or `load()`'s result stored for `ttlSeconds` (default 300). */
  async getOrSet<T>(key: string, load: () => Promise<T>, options: { ttlSeconds?: number } = {}): Promise<T> {
    const cached = await this.ns.get<T>(key);
    if (cached !== undefined) return cached;
    const value = await load();
    await this.set(key, value, options);
    return value;
  }
}
