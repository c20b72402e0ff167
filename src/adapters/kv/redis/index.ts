/**
 * `redis`: the shared KV store for several Kura nodes (ioredis). Every key is
 * `{key_prefix}{key}`; TTLs are Redis's own (`PX`), so nothing needs sweeping; scans use
 * `SCAN … MATCH` (never `KEYS`); compare-and-set, increment and batch writes are Lua scripts
 * (run with EVALSHA, EVAL on a cold script cache), atomic against every client.
 *
 * At start it reads `CONFIG GET maxmemory-policy` and warns unless it is `noeviction`: any
 * eviction policy may drop drafts and CAS state under memory pressure (SPEC KV-1).
 */
import type { Redis as RedisClient } from "ioredis";
import { z } from "zod";
import { KuraError } from "../../../core/errors.js";
import {
  DEFAULT_MAX_VALUE_BYTES,
  type KvCapabilities,
  type KvEntry,
  type KvIncrOptions,
  type KvScanOptions,
  type KvScanPage,
  type KvSetManyItem,
  type KvSetOptions,
  type KvStore,
  type KvStoreDefinition,
  type KvStoreDeps,
  type KvWriteResult,
} from "../../../ports/kv-store.js";
import { parseOptions } from "../../options.js";
import {
  checkIncrBy,
  checkIncrTtl,
  checkKey,
  checkPrefix,
  checkSet,
  checkSetMany,
  checkVersion,
  closedError,
  corrupt,
  decodeFramed,
  decodeScanCursor,
  encodeFramed,
  encodeScanCursor,
  notACounter,
  scanLimit,
  versionConflict,
  versionScope,
} from "../common.js";
import { DELETE_IF, GET_WITH_TTL, INCR, PUT, SET, SET_MANY } from "./scripts.js";

export const redisKvOptionsSchema = z
  .object({
    /** `redis://[:password@]host:port/db` or `rediss://…` (the password is a secret). */
    url: z.string().regex(/^rediss?:\/\//, "must be a redis:// or rediss:// URL"),
    /** Prefix of every key Kura writes; default `kura:`. */
    key_prefix: z.string().default("kura:"),
    /** Largest encoded value in bytes; default 1 MiB. */
    max_value_bytes: z.number().int().min(1).default(DEFAULT_MAX_VALUE_BYTES),
    /** Time to establish the connection, in ms; default 5000. */
    connect_timeout_ms: z.number().int().min(1).default(5000),
    /** Time one command may take before it fails with `KV_UNAVAILABLE`, in ms; default 5000. */
    command_timeout_ms: z.number().int().min(1).default(5000),
  })
  .strict();
export type RedisKvOptions = z.infer<typeof redisKvOptionsSchema>;

const CAPABILITIES: KvCapabilities = Object.freeze({ orderedScan: false, nativeTtl: true, persistent: true });

/** Items per Lua call of `setMany`: bounds how long one script blocks the server. */
const SET_MANY_CHUNK = 500;
const HEADER = 16;

type Script = (...args: (string | Buffer | number)[]) => Promise<unknown>;

interface ScriptedClient {
  kvSet: Script;
  kvPut: Script;
  kvSetMany: Script;
  kvDeleteIf: Script;
  kvIncr: Script;
  kvGetWithTtlBuffer: Script;
}

/** Escape glob characters of `SCAN … MATCH`. */
export function globEscape(text: string): string {
  return text.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}

class RedisKvStore implements KvStore {
  readonly scheme = "redis";
  readonly capabilities = CAPABILITIES;
  readonly maxValueBytes: number;
  private readonly prefix: string;
  /**
   * The store-wide version counter of earlier releases (a floor for every scope's counter); scope
   * counters are `{versionKey}\u0000{scope}`. Their names hold a NUL, which no Kura key may contain.
   */
  private readonly versionKey: string;
  private readonly scripts: ScriptedClient;
  private closed = false;

  constructor(
    private readonly client: RedisClient,
    options: RedisKvOptions,
  ) {
    this.maxValueBytes = options.max_value_bytes;
    this.prefix = options.key_prefix;
    this.versionKey = `${options.key_prefix}\u0000version`;
    this.scripts = client as unknown as ScriptedClient;
  }

  /** The version counter of `key`'s scope (see `versionScope`). */
  private counterOf(key: string): string {
    return `${this.versionKey}\u0000${versionScope(key)}`;
  }

  private open(operation: string): void {
    if (this.closed) throw closedError(operation);
  }

  private async call<T>(operation: string, run: () => Promise<T>, key?: string): Promise<T> {
    try {
      return await run();
    } catch (e) {
      throw redisError(e, operation, key);
    }
  }

  private parse(key: string, stored: Buffer, operation: string): { version: number; value: unknown } {
    if (stored.length <= HEADER) throw corrupt(key, new Error("value shorter than its header"), operation);
    const version = Number.parseInt(stored.toString("latin1", 0, HEADER), 16);
    if (!Number.isSafeInteger(version)) throw corrupt(key, new Error("bad version header"), operation);
    return { version, value: decodeFramed(key, stored.subarray(HEADER), operation) };
  }

  /** The value alone (the version header is skipped, not parsed). */
  private value(key: string, stored: Buffer, operation: string): unknown {
    if (stored.length <= HEADER) throw corrupt(key, new Error("value shorter than its header"), operation);
    return decodeFramed(key, stored.subarray(HEADER), operation);
  }

  async get<T>(key: string): Promise<T | undefined> {
    this.open("kv.get");
    checkKey(key, "kv.get");
    const stored = await this.call("kv.get", () => this.client.getBuffer(this.prefix + key), key);
    return stored === null ? undefined : (this.value(key, stored, "kv.get") as T);
  }

  async getEntry<T>(key: string): Promise<KvEntry<T> | undefined> {
    this.open("kv.get");
    checkKey(key, "kv.get");
    const [stored, ttl] = (await this.call(
      "kv.get",
      () => this.scripts.kvGetWithTtlBuffer(1, this.prefix + key),
      key,
    )) as [Buffer | null, number];
    if (stored === null) return undefined;
    const { version, value } = this.parse(key, stored, "kv.get");
    return { key, value: value as T, version, expiresAt: ttl >= 0 ? Date.now() + ttl : undefined };
  }

  async set(key: string, value: unknown, options: KvSetOptions = {}): Promise<KvWriteResult> {
    this.open("kv.set");
    checkSet(key, value, options, "kv.set");
    const frame = encodeFramed(key, value, this.maxValueBytes, "kv.set");
    if (options.ifVersion === undefined && options.ttlMs === undefined) {
      const version = (await this.call(
        "kv.set",
        () => this.scripts.kvPut(this.prefix + key, this.counterOf(key), this.versionKey, frame),
        key,
      )) as number;
      return { version };
    }
    const [ok, version] = (await this.call(
      "kv.set",
      () =>
        this.scripts.kvSet(
          this.prefix + key,
          this.counterOf(key),
          this.versionKey,
          frame,
          options.ttlMs === undefined ? "" : String(options.ttlMs),
          options.ifVersion === undefined ? "" : String(options.ifVersion),
        ),
      key,
    )) as [number, number];
    if (ok !== 1) throw versionConflict(key, options.ifVersion ?? 0, version, "kv.set");
    return { version };
  }

  async delete(key: string, options: { ifVersion?: number } = {}): Promise<boolean> {
    this.open("kv.delete");
    checkKey(key, "kv.delete");
    checkVersion(options.ifVersion, "kv.delete", key);
    if (options.ifVersion === undefined) {
      return (await this.call("kv.delete", () => this.client.del(this.prefix + key), key)) > 0;
    }
    const expected = options.ifVersion;
    const [ok, result] = (await this.call(
      "kv.delete",
      () => this.scripts.kvDeleteIf(this.prefix + key, String(expected)),
      key,
    )) as [number, number];
    if (ok !== 1) throw versionConflict(key, expected, result, "kv.delete");
    return result > 0;
  }

  async incr(key: string, options: KvIncrOptions = {}): Promise<{ value: number; version: number }> {
    this.open("kv.incr");
    checkKey(key, "kv.incr");
    const by = checkIncrBy(options.by, "kv.incr", key);
    checkIncrTtl(options.ttlMs, "kv.incr", key);
    const reply = (await this.call(
      "kv.incr",
      () =>
        this.scripts.kvIncr(
          this.prefix + key,
          this.counterOf(key),
          this.versionKey,
          String(by),
          options.ttlMs === undefined ? "" : String(options.ttlMs),
        ),
      key,
    )) as [number, number | string, string?];
    if (reply[0] !== 1) {
      throw notACounter(
        key,
        reply[1] === "range"
          ? "the result would leave the safe integer range"
          : "the stored value is not a safe integer",
      );
    }
    return { value: Number(reply[2]), version: reply[1] as number };
  }

  async getMany<T>(keys: readonly string[]): Promise<(T | undefined)[]> {
    this.open("kv.getMany");
    for (const key of keys) checkKey(key, "kv.getMany");
    if (keys.length === 0) return [];
    const stored = await this.call("kv.getMany", () =>
      this.client.mgetBuffer(...keys.map((k) => this.prefix + k)),
    );
    return stored.map((s, i) =>
      s === null ? undefined : (this.value(keys[i] as string, s, "kv.getMany") as T),
    );
  }

  async setMany(items: readonly KvSetManyItem[]): Promise<KvWriteResult[]> {
    this.open("kv.setMany");
    checkSetMany(items, "kv.setMany");
    const frames = items.map((item) => encodeFramed(item.key, item.value, this.maxValueBytes, "kv.setMany"));
    // One script call per scope and chunk: a call spends versions of one scope's counter.
    const byScope = new Map<string, number[]>();
    items.forEach((item, i) => {
      const scope = versionScope(item.key);
      const list = byScope.get(scope);
      if (list) list.push(i);
      else byScope.set(scope, [i]);
    });
    const results: KvWriteResult[] = new Array(items.length);
    const calls: Promise<void>[] = [];
    for (const indexes of byScope.values()) {
      for (let start = 0; start < indexes.length; start += SET_MANY_CHUNK) {
        const chunk = indexes.slice(start, start + SET_MANY_CHUNK);
        const firstKey = (items[chunk[0] as number] as KvSetManyItem).key;
        const args: (string | Buffer)[] = [this.counterOf(firstKey), this.versionKey];
        for (const i of chunk) args.push(this.prefix + (items[i] as KvSetManyItem).key);
        for (const i of chunk) {
          const ttl = (items[i] as KvSetManyItem).ttlMs;
          args.push(ttl === undefined ? "" : String(ttl), frames[i] as Buffer);
        }
        calls.push(
          this.call("kv.setMany", async () => {
            const first = (await this.scripts.kvSetMany(chunk.length + 2, ...args)) as number;
            chunk.forEach((i, k) => {
              results[i] = { version: first + k + 1 };
            });
          }),
        );
      }
    }
    await Promise.all(calls);
    return results;
  }

  async scan<T>(prefix: string, options: KvScanOptions = {}): Promise<KvScanPage<T>> {
    this.open("kv.scan");
    checkPrefix(prefix, "kv.scan");
    const limit = scanLimit(options);
    let position = decodeScanCursor(this.scheme, prefix, options.cursor) ?? "0";
    if (!/^\d+$/.test(position)) {
      throw new KuraError("CURSOR_INVALID", "the scan cursor was not made by this store", {
        operation: "kv.scan",
      });
    }
    const pattern = `${globEscape(this.prefix + prefix)}*`;
    const items: KvEntry<T>[] = [];
    // SCAN may return empty batches mid-way, and keys may vanish before they are read: keep
    // going until something is found or the scan ends, so only the last page can be empty.
    do {
      const [next, batch] = await this.call("kv.scan", () =>
        this.client.scan(position, "MATCH", pattern, "COUNT", Math.max(limit, 100)),
      );
      position = next;
      const keys = batch.filter((k) => !k.startsWith(this.versionKey));
      if (keys.length > 0) items.push(...(await this.fetch<T>(keys, options.keysOnly === true)));
    } while (items.length === 0 && position !== "0");
    return { items, cursor: position === "0" ? undefined : encodeScanCursor(this.scheme, prefix, position) };
  }

  /** Values, versions and TTLs of full keys in one round trip; keys gone since SCAN are left out. */
  private async fetch<T>(keys: string[], keysOnly: boolean): Promise<KvEntry<T>[]> {
    const reply = (await this.call("kv.scan", () =>
      this.scripts.kvGetWithTtlBuffer(keys.length, ...keys),
    )) as (Buffer | number | null)[];
    const now = Date.now();
    const items: KvEntry<T>[] = [];
    keys.forEach((full, i) => {
      const stored = reply[2 * i] as Buffer | null;
      const ttl = reply[2 * i + 1] as number;
      if (stored === null) return;
      const key = full.slice(this.prefix.length);
      const { version, value } = this.parse(key, stored, "kv.scan");
      items.push({
        key,
        value: (keysOnly ? undefined : value) as T,
        version,
        expiresAt: ttl >= 0 ? now + ttl : undefined,
      });
    });
    return items;
  }

  async sweepExpired(): Promise<number> {
    this.open("kv.sweep");
    return 0;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.client.quit().catch(() => this.client.disconnect());
  }
}

const TRANSIENT_REPLY = /^(LOADING|BUSY|TRYAGAIN|CLUSTERDOWN|MASTERDOWN|OOM|READONLY)\b/;

function redisError(e: unknown, operation: string, key?: string): KuraError {
  if (e instanceof KuraError) return e;
  const message = e instanceof Error ? e.message : String(e);
  const name = e instanceof Error ? e.name : "";
  const context = key === undefined ? {} : { key };
  if (name === "ReplyError" && !TRANSIENT_REPLY.test(message)) {
    return new KuraError("KV_BACKEND_ERROR", `redis: ${message}`, { operation, context, cause: e });
  }
  return new KuraError("KV_UNAVAILABLE", `redis unavailable: ${message}`, { operation, context, cause: e });
}

export const redisKvStore: KvStoreDefinition<RedisKvOptions> = {
  scheme: "redis",
  capabilities: CAPABILITIES,
  parseOptions: (raw) => parseOptions(redisKvOptionsSchema, raw, "kv"),
  create: async (options, deps = {}) => {
    const { Redis } = await import("ioredis");
    const client = new Redis(options.url, {
      lazyConnect: true,
      connectTimeout: options.connect_timeout_ms,
      commandTimeout: options.command_timeout_ms,
      maxRetriesPerRequest: 2,
      retryStrategy: (times) => Math.min(times * 200, 2000),
      scripts: {
        kvSet: { numberOfKeys: 3, lua: SET },
        kvPut: { numberOfKeys: 3, lua: PUT },
        kvSetMany: { lua: SET_MANY },
        kvDeleteIf: { numberOfKeys: 1, lua: DELETE_IF },
        kvIncr: { numberOfKeys: 3, lua: INCR },
        kvGetWithTtl: { lua: GET_WITH_TTL },
      },
    });
    // Connection problems surface as failed commands (KV_UNAVAILABLE); the event is only noise.
    client.on("error", () => undefined);
    try {
      await client.connect();
    } catch (e) {
      client.disconnect();
      throw redisError(e, "kv.open");
    }
    await checkEvictionPolicy(client, deps.warn);
    return new RedisKvStore(client, options);
  },
};

/** Warn unless `maxmemory-policy` is `noeviction` (eviction would drop drafts and CAS state). */
async function checkEvictionPolicy(client: RedisClient, warn: KvStoreDeps["warn"]): Promise<void> {
  if (!warn) return;
  try {
    const reply = (await client.config("GET", "maxmemory-policy")) as unknown as string[];
    const policy = reply[1];
    if (policy !== "noeviction") {
      warn(
        `redis maxmemory-policy is ${JSON.stringify(policy)}, not "noeviction": under memory pressure Redis may evict sessions, drafts and compare-and-set state`,
        { policy },
      );
    }
  } catch (e) {
    warn("could not read redis maxmemory-policy (CONFIG GET refused); make sure it is noeviction", {
      error: e instanceof Error ? e.message : String(e),
    });
  }
}
