/**
 * Ids (IDS-1): message ids are UUIDv7 — time-sortable, so keys and index order follow creation.
 */
import { v7 } from "uuid";

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** A new UUIDv7 for a message created at `nowMs`. */
export function newMessageId(nowMs: number): string {
  return v7({ msecs: nowMs });
}

export function isMessageId(id: unknown): id is string {
  return typeof id === "string" && UUID_V7.test(id);
}
