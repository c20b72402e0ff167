/**
 * The KV store a running Kura writes through while an online migration moves the state plane
 * (LMDB → Redis, or any other pair). Without a target it is the source, one call away. With one,
 * every write is applied to the source and then *copied* to the target: the key's current
 * entry on the source (value and expiry, or its absence) is set on the target. Copies of one
 * key run one after another, each reading the source when its turn comes, so the target ends
 * at the source's last state whatever order concurrent writes (an `incr`, a CAS) finished in —
 * and the copy step copies keys through the same queue. Reads follow `switchReads`, as in
 * `MirrorBlobStore`.
 *
 * Versions are not copied: a KV write cannot set one, so a key's versions in the target count
 * the target's writes (ADR 0033).
 */
import type {
  KvCapabilities,
  KvEntry,
  KvIncrOptions,
  KvScanOptions,
  KvScanPage,
  KvSetManyItem,
  KvSetOptions,
  KvStore,
  KvTokenBucket,
  KvWriteResult,
} from "../../ports/kv-store.js";

export interface MirrorKvTarget {
  store: KvStore;
  /** Called when the target fails a copy before the switch; the mirror has detached it. */
  onTargetFailure(error: unknown): void;
}

export class MirrorKvStore implements KvStore {
  private target: MirrorKvTarget | undefined;
  private readsFromTarget = false;
  /** Per key, the tail of its queue of copies. */
  private readonly queues = new Map<string, Promise<void>>();

  constructor(
    readonly source: KvStore,
    /** The clock the source's expiry is counted by. */
    private readonly clock: () => number = Date.now,
  ) {}

  get scheme(): string {
    return this.source.scheme;
  }
  get capabilities(): KvCapabilities {
    return this.source.capabilities;
  }
  get maxValueBytes(): number {
    return this.source.maxValueBytes;
  }
  get tombstoneRetentionMs(): number {
    return this.source.tombstoneRetentionMs;
  }

  attach(target: MirrorKvTarget): void {
    this.target = target;
    this.readsFromTarget = false;
  }
  switchReads(): void {
    if (this.target) this.readsFromTarget = true;
  }
  detach(): void {
    this.target = undefined;
    this.readsFromTarget = false;
  }
  get mirroring(): boolean {
    return this.target !== undefined;
  }

  private reader(): KvStore {
    return this.readsFromTarget && this.target ? this.target.store : this.source;
  }

  /**
   * Make the target's `key` the source's current entry, after every copy of it queued before.
   * Before the switch a failure detaches the target (reported, not thrown); after it, it throws.
   */
  async copyKey(key: string): Promise<void> {
    const target = this.target;
    if (!target) return;
    const previous = this.queues.get(key) ?? Promise.resolve();
    const mine = previous.then(() => copyEntry(this.source, target.store, key, this.clock()));
    const tail = mine.catch(() => undefined);
    this.queues.set(key, tail);
    void tail.then(() => {
      if (this.queues.get(key) === tail) this.queues.delete(key);
    });
    try {
      await mine;
    } catch (e) {
      if (this.readsFromTarget) throw e;
      if (this.target === target) {
        this.detach();
        target.onTargetFailure(e);
      }
    }
  }

  get<T = unknown>(key: string): Promise<T | undefined> {
    return this.reader().get<T>(key);
  }
  getEntry<T = unknown>(key: string): Promise<KvEntry<T> | undefined> {
    return this.reader().getEntry<T>(key);
  }
  getMany<T = unknown>(keys: readonly string[]): Promise<(T | undefined)[]> {
    return this.reader().getMany<T>(keys);
  }
  scan<T = unknown>(prefix: string, options?: KvScanOptions): Promise<KvScanPage<T>> {
    return this.reader().scan<T>(prefix, options);
  }

  // The target is looked at once the source has the write: a migration attached meanwhile
  // gets it copied (its scan may have read the key before). Without one, nothing more is done.
  async set(key: string, value: unknown, options?: KvSetOptions): Promise<KvWriteResult> {
    const result = await this.source.set(key, value, options);
    if (this.target) await this.copyKey(key);
    return result;
  }
  async delete(key: string, options?: { ifVersion?: number }): Promise<boolean> {
    const deleted = await this.source.delete(key, options);
    if (this.target) await this.copyKey(key);
    return deleted;
  }
  async incr(key: string, options?: KvIncrOptions): Promise<{ value: number; version: number }> {
    const result = await this.source.incr(key, options);
    if (this.target) await this.copyKey(key);
    return result;
  }
  async setMany(items: readonly KvSetManyItem[]): Promise<KvWriteResult[]> {
    const results = await this.source.setMany(items);
    if (this.target) await Promise.all([...new Set(items.map((i) => i.key))].map((k) => this.copyKey(k)));
    return results;
  }
  async forgetPrefix(prefix: string): Promise<number> {
    const n = await this.source.forgetPrefix(prefix);
    const target = this.target;
    if (target) await target.store.forgetPrefix(prefix);
    return n;
  }
  /** Each store expires its own keys (the copies carry their expiry). */
  sweepExpired(options?: { now?: number; limit?: number }): Promise<number> {
    return this.source.sweepExpired(options);
  }

  get takeToken(): KvStore["takeToken"] {
    // Rate buckets are the source's alone: short-lived counters, not state to move.
    const take = this.source.takeToken;
    return take ? (name: string, bucket: KvTokenBucket) => take.call(this.source, name, bucket) : undefined;
  }

  close(): Promise<void> {
    this.detach();
    return this.source.close();
  }
}

/** The source's current entry of `key` set on the target (value and remaining lifetime), or removed. */
async function copyEntry(source: KvStore, target: KvStore, key: string, now: number): Promise<void> {
  const entry = await source.getEntry(key);
  if (entry === undefined) {
    await target.delete(key);
    return;
  }
  const ttlMs = entry.expiresAt === undefined ? undefined : entry.expiresAt - now;
  if (ttlMs !== undefined && ttlMs <= 0) {
    await target.delete(key);
    return;
  }
  await target.set(key, entry.value, ttlMs === undefined ? {} : { ttlMs });
}
