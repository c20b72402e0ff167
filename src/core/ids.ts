/**
 * Ids (IDS-1): message ids are UUIDv7 — time-sortable, so keys and index order follow creation.
 *
 * Ids made by one process are strictly increasing (RFC 9562 §6.2, method 1): within one
 * millisecond, and when the clock stands still or steps back, the 32-bit counter after the
 * timestamp is incremented instead of drawn at random (a new millisecond starts it at a random
 * value below 2^31, leaving room to count). A chat's history orders by (created_at, id), so
 * messages appended in the same millisecond — a batch shares one created_at — read back in the
 * order they were appended.
 */
import { randomBytes, randomFillSync } from "node:crypto";
import { v7 } from "uuid";

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const COUNTER_LIMIT = 0x1_0000_0000;

const state = { msecs: -1, seq: 0 };

/**
 * Random bytes for ids, drawn from the CSPRNG 4 KiB at a time: one `getRandomValues` per id
 * was 3 % of an append's event-loop time.
 */
const POOL_BYTES = 4096;
const pool = Buffer.allocUnsafe(POOL_BYTES);
let poolOffset = POOL_BYTES;

function random16(): Uint8Array {
  if (poolOffset + 16 > POOL_BYTES) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  const out = pool.subarray(poolOffset, poolOffset + 16);
  poolOffset += 16;
  return out;
}

/**
 * A new UUIDv7 for a message created at `nowMs`, greater than every id this process made
 * before. The embedded time is `nowMs`, or the last id's time when the clock went back.
 */
export function newMessageId(nowMs: number): string {
  if (nowMs > state.msecs) {
    state.msecs = nowMs;
    state.seq = randomBytes(4).readUInt32BE(0) >>> 1;
  } else {
    state.seq++;
    if (state.seq >= COUNTER_LIMIT) {
      state.msecs++;
      state.seq = 0;
    }
  }
  return v7({ msecs: state.msecs, seq: state.seq, random: random16() });
}

export function isMessageId(id: unknown): id is string {
  return typeof id === "string" && UUID_V7.test(id);
}
