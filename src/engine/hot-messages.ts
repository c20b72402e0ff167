/**
 * A count-bounded LRU of recently read messages (catalog row + parsed content), so a hot get
 * costs a map lookup instead of a catalog query, a body read and a JSON parse.
 */
import type { MessageRow } from "../ports/catalog.js";

export interface HotMessage {
  row: MessageRow;
  content: unknown;
}

export class HotMessages {
  private readonly map = new Map<string, HotMessage>();
  /**
   * Hits must be checked against the catalog's row before use: other nodes write the same
   * catalog, and an entry here may hold a version they replaced or deleted (ADR 0039).
   */
  readonly validate: boolean;
  hits = 0;
  misses = 0;

  constructor(
    private readonly maxEntries: number,
    options: { validate?: boolean } = {},
  ) {
    this.validate = options.validate ?? false;
  }

  get(key: string): HotMessage | undefined {
    const hit = this.map.get(key);
    if (hit === undefined) return undefined;
    this.map.delete(key);
    this.map.set(key, hit);
    return hit;
  }

  set(key: string, value: HotMessage): void {
    if (this.maxEntries <= 0) return;
    this.map.delete(key);
    this.map.set(key, value);
    if (this.map.size > this.maxEntries) this.map.delete(this.map.keys().next().value as string);
  }

  delete(key: string): void {
    this.map.delete(key);
  }
}
