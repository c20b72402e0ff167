/**
 * The write protocol of memories (MEM-1, ADR 0022): a memory's KV record — with its embedding —
 * is the record of truth, and its item in the `memories` vector index is a projection of it,
 * kept in line by intents that outlive any crash or failure between the two planes.
 *
 * A change to a record goes:
 * 1. an intent `~kura-memory-sync:{uuidv7}` naming the record's full KV key is written;
 * 2. the record is written or deleted (compare-and-set on the version read just before);
 * 3. the writer makes sure its intent still exists — a recovery pass in another process may have
 *    completed and removed it between 1 and 2 — and writes it again if not;
 * 4. the record is projected: its embedding upserted, or its item removed when it is gone; then
 *    the record is read again, and projected again if its version moved meanwhile (a concurrent
 *    writer's stale upsert may have landed after its own);
 * 5. the intent is removed.
 * If 3 or 4 fails, the record is put back as it was (when nothing has written it since) and the
 * intent stays. Whatever happens, an intent exists whenever the index may disagree with a
 * record: the recovery pass — run before a process's first memory operation, after a failed
 * one, and every {@link RECOVERY_INTERVAL_MS} — takes the intents over (one intent of its own
 * for their keys, theirs removed) and projects their records.
 *
 * An index that holds nothing for a tenant while the tenant has memory records (the in-memory
 * `exact` backend after a restart, a lost index directory, a new vector backend) is rebuilt
 * from the records the first time the tenant's memories are used in a process.
 *
 * The state lives per (KV store, index) pair, shared by every `Memories` object made over them.
 */
import { KuraError } from "../core/errors.js";
import { newMessageId } from "../core/ids.js";
import type { Embedder } from "../ports/embedder.js";
import type { KvEntry, KvStore } from "../ports/kv-store.js";
import type { VectorIndex, VectorItem } from "../ports/vector-index.js";

/** Prefix of intent keys: `~` is no tenant's first character (IDS-1), so no tenant sees them. */
export const MEMORY_INTENT_PREFIX = "~kura-memory-sync:";
/** A background recovery pass at most this often (intents of processes that died for good). */
export const RECOVERY_INTERVAL_MS = 600_000;
/** Projection rounds before a key that keeps moving is left to its writers' intents. */
const MAX_ROUNDS = 5;
/** Record keys per intent of a recovery pass or a rebuild (bounds the intent's size). */
const KEYS_PER_INTENT = 200;
/** Intents one recovery pass takes over; more wait for the next pass. */
const MAX_INTENTS_PER_PASS = 10_000;
/** `{tenant}:memory:{userId}:{memoryId}`: ids contain no `:` (IDS-1). */
const RECORD_KEY = /^([^:]+):memory:([^:]+):([^:]+)$/;

/** The fields of a stored memory record this protocol reads. */
export interface MemoryRecord {
  content: string;
  category: string | null;
  /** The embedding's float32 bytes (little-endian); absent in records written before ADR 0022. */
  embedding?: Uint8Array;
}

interface Intent {
  key: string;
  keys: string[];
}

/** The embedding as stored in a record. */
export function encodeEmbedding(vector: Float32Array): Uint8Array {
  return new Uint8Array(vector.buffer.slice(vector.byteOffset, vector.byteOffset + vector.byteLength));
}

function decodeEmbedding(bytes: Uint8Array, dimensions: number): Float32Array | undefined {
  if (!(bytes instanceof Uint8Array) || bytes.byteLength !== dimensions * 4) return undefined;
  return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
}

const versionOf = (entry: KvEntry | undefined): number => entry?.version ?? 0;

const instances = new WeakMap<VectorIndex, WeakMap<KvStore, MemoryIndex>>();

export class MemoryIndex {
  /** A recovery pass is due before the next operation (at start, and after a failed write). */
  private needed = true;
  private pass: Promise<void> | undefined;
  private lastPass = 0;
  /** Tenants whose index was checked for emptiness in this process. */
  private readonly tenants = new Map<string, Promise<void>>();

  private constructor(
    private readonly kv: KvStore,
    private readonly index: VectorIndex,
    private readonly embedder: Embedder,
    private readonly clock: () => number,
  ) {}

  /** The one instance for this KV store and index. */
  static for(ctx: { kv: KvStore; index: VectorIndex; embedder: Embedder; clock: () => number }): MemoryIndex {
    let byKv = instances.get(ctx.index);
    if (!byKv) {
      byKv = new WeakMap();
      instances.set(ctx.index, byKv);
    }
    let found = byKv.get(ctx.kv);
    if (!found) {
      found = new MemoryIndex(ctx.kv, ctx.index, ctx.embedder, ctx.clock);
      byKv.set(ctx.kv, found);
    }
    return found;
  }

  /**
   * Before a tenant's memories are searched or written: the recovery pass when one is due, and
   * the rebuild of the tenant's items if the index has none while records exist under
   * `recordPrefix` (`{tenant}:memory:`). Failures are not thrown: they are retried before the
   * next operation, which meets the failing plane itself.
   */
  async ready(tenantId: string, recordPrefix: string): Promise<void> {
    if (this.needed) await this.recoverOnce();
    else if (this.clock() - this.lastPass > RECOVERY_INTERVAL_MS) void this.recoverOnce();
    let checked = this.tenants.get(tenantId);
    if (!checked) {
      checked = this.rebuildIfEmpty(tenantId, recordPrefix).catch(() => {
        this.tenants.delete(tenantId);
      });
      this.tenants.set(tenantId, checked);
    }
    await checked;
  }

  /**
   * Change one record (`key` is its full KV key) and project it: `next` gets the current record
   * and returns the new one, or undefined to delete it. Resolves with the record replaced once
   * the index agrees (or a concurrent writer's intent covers the key); rejects if the record
   * could not be written, or could not be projected (the record is then put back as it was
   * when nothing wrote it since, and the recovery pass projects whichever it is).
   */
  async change<T extends MemoryRecord>(
    key: string,
    next: (current: T | undefined) => T | undefined,
  ): Promise<{ previous: T | undefined; current: T | undefined }> {
    if (!RECORD_KEY.test(key))
      throw new KuraError("INVALID_ARGUMENT", "not a memory record key", { operation: "memories" });
    const intent = await this.begin([key]);
    let previous: KvEntry<T> | undefined;
    let written: KvEntry<T> | undefined;
    try {
      for (let attempt = 1; ; attempt++) {
        previous = await this.kv.getEntry<T>(key);
        const value = next(previous?.value);
        try {
          if (value === undefined) {
            if (previous) await this.kv.delete(key, { ifVersion: previous.version });
            written = undefined;
          } else {
            const { version } = await this.kv.set(key, value, { ifVersion: versionOf(previous) });
            written = { key, value, version, expiresAt: undefined };
          }
          break;
        } catch (e) {
          if (attempt >= MAX_ROUNDS || !(e instanceof KuraError && e.code === "KV_VERSION_CONFLICT")) throw e;
        }
      }
    } catch (e) {
      // Nothing or the record written (an outcome the store could not report): the intent
      // stays for the recovery pass.
      this.needed = true;
      throw e;
    }
    let settled: boolean;
    try {
      await this.confirm(intent);
      settled = await this.project([key], new Map([[key, written]]));
    } catch (e) {
      await this.undo(key, previous, written).catch(() => undefined);
      await this.confirm(intent).catch(() => undefined);
      this.needed = true;
      throw e;
    }
    if (settled) await this.kv.delete(intent.key).catch(() => (this.needed = true));
    else this.needed = true;
    return { previous: previous?.value, current: written?.value };
  }

  /** Take over every intent left by failed or killed writers and project their records. */
  async recover(): Promise<void> {
    const found: KvEntry<{ keys?: unknown }>[] = [];
    let cursor: string | undefined;
    do {
      const page = await this.kv.scan<{ keys?: unknown }>(MEMORY_INTENT_PREFIX, {
        limit: 500,
        ...(cursor === undefined ? {} : { cursor }),
      });
      found.push(...page.items);
      cursor = found.length < MAX_INTENTS_PER_PASS ? page.cursor : undefined;
      if (page.cursor !== undefined && cursor === undefined) this.needed = true;
    } while (cursor !== undefined);
    const seen = new Set<string>();
    for (let i = 0; i < found.length; i += KEYS_PER_INTENT) {
      const intents = found.slice(i, i + KEYS_PER_INTENT).filter((e) => !seen.has(e.key));
      for (const e of intents) seen.add(e.key);
      const keys = new Set<string>();
      for (const e of intents) {
        const named = e.value?.keys;
        if (Array.isArray(named))
          for (const k of named) if (typeof k === "string" && RECORD_KEY.test(k)) keys.add(k);
      }
      await this.settleUnder([...keys], async () => {
        for (const e of intents) await this.kv.delete(e.key);
      });
    }
  }

  /**
   * How many memory records each tenant has (fsck's vector drift check): every KV key is
   * scanned, keys only. Tenants without records are absent.
   */
  async recordCounts(): Promise<Map<string, number>> {
    const counts = new Map<string, number>();
    let cursor: string | undefined;
    do {
      const page = await this.kv.scan("", {
        limit: 1000,
        keysOnly: true,
        ...(cursor === undefined ? {} : { cursor }),
      });
      for (const e of page.items) {
        const tenantId = RECORD_KEY.exec(e.key)?.[1];
        if (tenantId !== undefined) counts.set(tenantId, (counts.get(tenantId) ?? 0) + 1);
      }
      cursor = page.cursor;
    } while (cursor !== undefined);
    return counts;
  }

  /**
   * Project every record of a tenant again, under an intent as every projection (fsck's repair
   * of a drifted tenant: items missing from the index come back, stale ones are replaced).
   * Returns how many records were projected.
   */
  async reproject(tenantId: string): Promise<number> {
    let projected = 0;
    let cursor: string | undefined;
    do {
      const page = await this.kv.scan(`${tenantId}:memory:`, {
        limit: KEYS_PER_INTENT,
        keysOnly: true,
        ...(cursor === undefined ? {} : { cursor }),
      });
      const keys = page.items.map((e) => e.key).filter((k) => RECORD_KEY.test(k));
      await this.settleUnder(keys, async () => {});
      projected += keys.length;
      cursor = page.cursor;
    } while (cursor !== undefined);
    return projected;
  }

  private recoverOnce(): Promise<void> {
    if (!this.pass) {
      this.needed = false;
      this.pass = this.recover()
        .catch(() => {
          this.needed = true;
        })
        .finally(() => {
          this.lastPass = this.clock();
          this.pass = undefined;
        });
    }
    return this.pass;
  }

  private async rebuildIfEmpty(tenantId: string, recordPrefix: string): Promise<void> {
    if ((await this.index.count(tenantId)) > 0) return;
    let cursor: string | undefined;
    do {
      const page = await this.kv.scan(recordPrefix, {
        limit: KEYS_PER_INTENT,
        keysOnly: true,
        ...(cursor === undefined ? {} : { cursor }),
      });
      const keys = page.items.map((e) => e.key).filter((k) => RECORD_KEY.test(k));
      await this.settleUnder(keys, async () => {});
      cursor = page.cursor;
    } while (cursor !== undefined);
  }

  /**
   * Project `keys` under an intent of our own (so that a crash midway leaves them named),
   * running `takeOver` once ours is written. Our intent is removed once the index agrees.
   */
  private async settleUnder(keys: string[], takeOver: () => Promise<void>): Promise<void> {
    if (keys.length === 0) return takeOver();
    const intent = await this.begin(keys);
    await takeOver();
    if (await this.project(keys)) await this.kv.delete(intent.key);
    else this.needed = true;
  }

  private async begin(keys: string[]): Promise<Intent> {
    const intent = { key: MEMORY_INTENT_PREFIX + newMessageId(this.clock()), keys };
    await this.kv.set(intent.key, { keys });
    return intent;
  }

  /** Write the intent again if a recovery pass took it over while our record write was in flight. */
  private async confirm(intent: Intent): Promise<void> {
    if ((await this.kv.getEntry(intent.key)) === undefined)
      await this.kv.set(intent.key, { keys: intent.keys });
  }

  /** Put back the record a failed change replaced, unless something wrote it since. */
  private async undo<T>(key: string, previous: KvEntry<T> | undefined, written: KvEntry<T> | undefined) {
    if (written) {
      if (previous) await this.kv.set(key, previous.value, { ifVersion: written.version });
      else await this.kv.delete(key, { ifVersion: written.version });
    } else if (previous) {
      await this.kv.set(key, previous.value, { ifVersion: 0 });
    }
  }

  /**
   * Bring the index in line with the records of `keys` (`known`: entries just written, saving a
   * read), reading each record again afterwards and repeating for those whose version moved.
   * False when some kept moving for {@link MAX_ROUNDS} rounds (their writers' intents cover them).
   */
  private async project(
    keys: readonly string[],
    known?: ReadonlyMap<string, KvEntry | undefined>,
  ): Promise<boolean> {
    let pending = [...keys];
    let entries = await Promise.all(
      pending.map((k) => (known?.has(k) ? Promise.resolve(known.get(k)) : this.kv.getEntry<MemoryRecord>(k))),
    );
    for (let round = 0; round < MAX_ROUNDS; round++) {
      await this.apply(pending, entries as (KvEntry<MemoryRecord> | undefined)[]);
      const again = await Promise.all(pending.map((k) => this.kv.getEntry<MemoryRecord>(k)));
      const moved = pending.flatMap((k, i) =>
        versionOf(again[i]) === versionOf(entries[i]) ? [] : [{ k, entry: again[i] }],
      );
      if (moved.length === 0) return true;
      pending = moved.map((m) => m.k);
      entries = moved.map((m) => m.entry);
    }
    return false;
  }

  /** Upsert the embeddings of the records that exist, remove the items of those that do not. */
  private async apply(keys: readonly string[], entries: readonly (KvEntry<MemoryRecord> | undefined)[]) {
    const items: VectorItem[] = [];
    const unembedded: { item: VectorItem; content: string }[] = [];
    const gone = new Map<string, string[]>();
    for (const [i, key] of keys.entries()) {
      const [, tenantId, userId, memoryId] = RECORD_KEY.exec(key) as unknown as [
        string,
        string,
        string,
        string,
      ];
      const id = `${userId}/${memoryId}`;
      const record = entries[i]?.value;
      if (!record || typeof record.content !== "string") {
        const ids = gone.get(tenantId) ?? [];
        ids.push(id);
        gone.set(tenantId, ids);
        continue;
      }
      const vector = record.embedding && decodeEmbedding(record.embedding, this.index.dimensions);
      const item: VectorItem = {
        tenantId,
        id,
        vector: vector ?? new Float32Array(0),
        userId,
        ...(typeof record.category === "string" ? { category: record.category } : {}),
      };
      if (!vector) unembedded.push({ item, content: record.content });
      items.push(item);
    }
    if (unembedded.length > 0) {
      const vectors = await this.embedder.embed(unembedded.map((u) => u.content));
      for (const [i, u] of unembedded.entries()) u.item.vector = vectors[i] as Float32Array;
    }
    if (items.length > 0) await this.index.upsert(items);
    for (const [tenantId, ids] of gone) await this.index.remove(tenantId, ids);
  }
}
