/**
 * Message reads on embedded defaults (SQLite + fs), beside what a team would hand-roll against
 * the same database file and body files, in the same process and run:
 *   - history: a page of 50 through `messages.history` vs a prepared better-sqlite3
 *     `SELECT … LIMIT 50` of the same columns (the columns a MessageRef is made of);
 *   - cold get (no cache): `messages.get` (row, body read, SHA-256 against the row's checksum,
 *     JSON parse) vs the row by id + the body file read (`readFileSync` and `await readFile`;
 *     the ratio is against the faster) + SHA-256 + JSON parse;
 *   - hot get: served by the message cache (no baseline).
 * Kura and baseline run in alternating rounds and each keeps its best round, so a burst of
 * load from elsewhere on the machine does not decide a ratio.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import Database from "better-sqlite3";
import { keyPath } from "../../src/adapters/blob/fs/layout.js";
import { LruCache } from "../../src/engine/lru-cache.js";
import { Kura } from "../../src/kura.js";
import { type BenchContext, latencies, ratioOf, type Scenario, throughput } from "../lib.js";

const text = (i: number) => `message ${i}: ${"the quick brown fox jumps over the lazy dog ".repeat(6)}`;

/** The columns a MessageRef is made of (tenant and deleted_at are in the WHERE clause). */
const REF_COLUMNS =
  "id, chat_id, role, content_type, preview, size_bytes, checksum, store_id, blob_key, version, " +
  "created_at, updated_at, expires_at, metadata";

interface BodyRow {
  blob_key: string;
  size_bytes: number;
  checksum: string;
}

function verifiedContent(raw: Buffer, row: BodyRow): unknown {
  const body = raw.subarray(0, row.size_bytes);
  if (createHash("sha256").update(body).digest("hex") !== row.checksum) throw new Error("checksum mismatch");
  return (JSON.parse(body.toString("utf8")) as { content: unknown }).content;
}

export const messagesReads: Scenario = {
  name: "messages-reads",
  async run(ctx: BenchContext) {
    const chats = ctx.quick ? 10 : 40;
    const perChat = 1000;
    const rounds = 3;
    const nHistory = ctx.quick ? 3_000 : 20_000;
    const nCold = ctx.quick ? 20_000 : 100_000;
    const nHot = ctx.quick ? 100_000 : 500_000;
    const dataDir = join(ctx.dir, "kura");

    const seeding = await Kura.open({ data_dir: dataDir });
    const ids: string[] = [];
    for (let c = 0; c < chats; c++) {
      const refs = await seeding.tenant("bench").messages.appendMany(
        `chat-${c}`,
        Array.from({ length: perChat }, (_, i) => ({ role: "user", content: text(c * perChat + i) })),
      );
      for (const r of refs) ids.push(r.id);
    }
    await seeding.close();

    // Cold: no body cache and no message cache (a given cache turns the message cache off).
    const kura = await Kura.open({ data_dir: dataDir }, { cache: new LruCache(0) });
    const t = kura.tenant("bench");
    const db = new Database(join(dataDir, "kura.db"));
    const historyStmt = db.prepare(
      `SELECT ${REF_COLUMNS} FROM messages WHERE tenant_id = ? AND chat_id = ? AND deleted_at IS NULL ` +
        "ORDER BY created_at DESC, id DESC LIMIT 50",
    );
    const rowStmt = db.prepare(
      `SELECT ${REF_COLUMNS} FROM messages WHERE tenant_id = ? AND id = ? AND deleted_at IS NULL`,
    );
    const blobs = join(dataDir, "blobs");
    const chat = (i: number) => `chat-${i % chats}`;
    const pick = (i: number) => ids[(i * 7919) % ids.length] as string;

    let kuraPage = { p50: Infinity, p99: Infinity };
    let rawPage = { p50: Infinity, p99: Infinity };
    let kuraCold = 0;
    let syncCold = 0;
    let asyncCold = 0;
    const best = (a: { p50: number; p99: number }, b: { p50: number; p99: number }) => ({
      p50: Math.min(a.p50, b.p50),
      p99: Math.min(a.p99, b.p99),
    });
    for (let round = 0; round < rounds; round++) {
      kuraPage = best(kuraPage, await latencies(nHistory, (i) => t.messages.history(chat(i), { limit: 50 })));
      rawPage = best(rawPage, await latencies(nHistory, async (i) => historyStmt.all("bench", chat(i))));
      kuraCold = Math.max(kuraCold, await throughput(nCold, 16, (i) => t.messages.get(pick(i))));
      syncCold = Math.max(
        syncCold,
        await throughput(nCold, 16, async (i) => {
          const row = rowStmt.get("bench", pick(i)) as BodyRow;
          return verifiedContent(readFileSync(keyPath(blobs, row.blob_key).file), row);
        }),
      );
      asyncCold = Math.max(
        asyncCold,
        await throughput(nCold, 16, async (i) => {
          const row = rowStmt.get("bench", pick(i)) as BodyRow;
          return verifiedContent(await readFile(keyPath(blobs, row.blob_key).file), row);
        }),
      );
    }
    db.close();
    await kura.close();

    // Hot: default caches, every sampled message read once first.
    const warm = await Kura.open({ data_dir: dataDir });
    const wt = warm.tenant("bench");
    const hotIds = ids.slice(0, 5000);
    for (const id of hotIds) await wt.messages.get(id);
    const hot = await throughput(nHot, 1, (i) => wt.messages.get(hotIds[i % hotIds.length] as string));
    await warm.close();

    const s = "messages reads (SQLite + fs)";
    const handRolled = Math.max(syncCold, asyncCold);
    ctx.log(
      `history p50/p99 ${kuraPage.p50.toFixed(3)}/${kuraPage.p99.toFixed(3)} ms (SELECT ${rawPage.p50.toFixed(3)}/${rawPage.p99.toFixed(3)}); ` +
        `cold get ${Math.round(kuraCold)}/s (hand-rolled sync ${Math.round(syncCold)}/s, async ${Math.round(asyncCold)}/s)`,
    );
    ctx.record({
      scenario: s,
      metric: "history page (50) p50",
      value: kuraPage.p50,
      unit: "ms",
      baseline: "SELECT … LIMIT 50, same columns",
      baseline_value: rawPage.p50,
      ratio: ratioOf(kuraPage.p50, rawPage.p50, false),
    });
    ctx.record({
      scenario: s,
      metric: "history page (50) p99",
      value: kuraPage.p99,
      unit: "ms",
      baseline: "SELECT … LIMIT 50, same columns",
      baseline_value: rawPage.p99,
      ratio: ratioOf(kuraPage.p99, rawPage.p99, false),
    });
    ctx.record({
      scenario: s,
      metric: "get cold (row + body + SHA-256), 16 callers",
      value: kuraCold,
      unit: "ops/s",
      baseline: syncCold >= asyncCold ? "row + readFileSync + SHA-256" : "row + readFile + SHA-256",
      baseline_value: handRolled,
      ratio: ratioOf(kuraCold, handRolled),
    });
    ctx.record({
      scenario: s,
      metric: "get hot (message cache)",
      value: hot,
      unit: "ops/s",
      baseline: null,
      baseline_value: null,
      ratio: null,
    });
  },
};
