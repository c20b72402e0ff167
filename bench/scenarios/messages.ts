/**
 * Message store on embedded defaults (SQLite + fs), beside the approaches of seed 000 run in the
 * same process on the same disk:
 *   (a) hand-rolled: write the JSON file, then INSERT the row with better-sqlite3 in autocommit,
 *       one message at a time;
 *   (b) hand-batched: the same with 1000 rows per transaction (files written concurrently).
 * Kura adds checksums, outbox, audit, usage and the write protocol on top.
 */
import { randomUUID } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import Database from "better-sqlite3";
import { LruCache } from "../../src/engine/lru-cache.js";
import { Kura } from "../../src/kura.js";
import { type BenchContext, latencies, ratioOf, type Scenario, throughput } from "../lib.js";

const text = (i: number) => `message ${i}: ${"the quick brown fox jumps over the lazy dog ".repeat(6)}`;

function seedDb(path: string) {
  const db = new Database(path);
  db.pragma("journal_mode = WAL");
  db.exec(
    "CREATE TABLE messages (id TEXT PRIMARY KEY, chat_id TEXT, role TEXT, preview TEXT, content_url TEXT, size_bytes INTEGER, created_at INTEGER)",
  );
  db.exec("CREATE INDEX messages_chat ON messages (chat_id, created_at)");
  return db;
}

async function handRolled(dir: string, n: number, perTx: number): Promise<number> {
  await mkdir(join(dir, "files"), { recursive: true });
  const db = seedDb(join(dir, "seed.db"));
  const insert = db.prepare("INSERT INTO messages VALUES (?, ?, ?, ?, ?, ?, ?)");
  const started = performance.now();
  if (perTx === 1) {
    for (let i = 0; i < n; i++) {
      const id = randomUUID();
      const body = JSON.stringify({
        content: text(i),
        metadata: { chat_id: "c", message_id: id },
        created_at: new Date().toISOString(),
      });
      const file = join(dir, "files", `${id}.json`);
      await writeFile(file, body);
      insert.run(id, "c", "user", text(i).slice(0, 200), `local://storage/${file}`, body.length, Date.now());
    }
  } else {
    const tx = db.transaction((rows: unknown[][]) => {
      for (const r of rows) insert.run(...r);
    });
    for (let start = 0; start < n; start += perTx) {
      const rows: unknown[][] = [];
      const writes: Promise<void>[] = [];
      for (let i = start; i < Math.min(n, start + perTx); i++) {
        const id = randomUUID();
        const body = JSON.stringify({
          content: text(i),
          metadata: { chat_id: "c", message_id: id },
          created_at: new Date().toISOString(),
        });
        const file = join(dir, "files", `${id}.json`);
        writes.push(writeFile(file, body));
        rows.push([
          id,
          "c",
          "user",
          text(i).slice(0, 200),
          `local://storage/${file}`,
          body.length,
          Date.now(),
        ]);
      }
      await Promise.all(writes);
      tx(rows);
    }
  }
  const rate = n / ((performance.now() - started) / 1000);
  db.close();
  return rate;
}

export const messages: Scenario = {
  name: "messages",
  async run(ctx: BenchContext) {
    const nBatched = ctx.quick ? 10_000 : 100_000;
    const nSingle = ctx.quick ? 4_000 : 40_000;
    const nSeed = ctx.quick ? 2_000 : 10_000;

    // Baselines first, each in its own directory.
    const seedSingle = await handRolled(join(ctx.dir, "seed-a"), nSeed, 1);
    const seedBatched = await handRolled(join(ctx.dir, "seed-b"), nBatched, 1000);

    const kura = await Kura.open({ data_dir: join(ctx.dir, "kura") });
    const t = kura.tenant("bench");
    // Batched: 1000 messages per appendMany.
    const started = performance.now();
    const ids: string[] = [];
    for (let start = 0; start < nBatched; start += 1000) {
      const refs = await t.messages.appendMany(
        `chat-${start / 1000}`,
        Array.from({ length: Math.min(1000, nBatched - start) }, (_, i) => ({
          role: "user",
          content: text(start + i),
        })),
      );
      for (const r of refs) ids.push(r.id);
    }
    const batched = nBatched / ((performance.now() - started) / 1000);
    // Single acknowledged appends from 32 concurrent callers.
    const single = await throughput(nSingle, 32, (i) =>
      t.messages.append(`single-${i % 64}`, { role: "user", content: text(i) }),
    );

    // Gets: hot (served by the LRU), cold (catalog + body read + checksum, no cache).
    const sample = ids.slice(0, Math.min(ids.length, 20_000));
    for (const id of sample.slice(0, 5000)) await t.messages.get(id);
    const hot = await throughput(ctx.quick ? 50_000 : 300_000, 1, (i) =>
      t.messages.get(sample[i % 5000] as string),
    );
    await kura.close();
    const cold = await Kura.open({ data_dir: join(ctx.dir, "kura") }, { cache: new LruCache(0) });
    const ct = cold.tenant("bench");
    const coldRate = await throughput(ctx.quick ? 5_000 : 40_000, 16, (i) =>
      ct.messages.get(sample[(i * 7919) % sample.length] as string),
    );
    // History page: newest 50 index entries of a 1000-message chat.
    const page = await latencies(ctx.quick ? 2_000 : 20_000, (i) =>
      ct.messages.history(`chat-${i % Math.max(1, Math.floor(nBatched / 1000))}`, { limit: 50 }),
    );
    await cold.close();

    const s = "messages (SQLite + fs)";
    ctx.record({
      scenario: s,
      metric: "append batched (1000/tx)",
      value: batched,
      unit: "msg/s",
      baseline: "hand-batched (b)",
      baseline_value: seedBatched,
      ratio: ratioOf(batched, seedBatched),
    });
    ctx.record({
      scenario: s,
      metric: "append single acked, 32 callers",
      value: single,
      unit: "msg/s",
      baseline: "hand-rolled autocommit (a)",
      baseline_value: seedSingle,
      ratio: ratioOf(single, seedSingle),
    });
    ctx.record({
      scenario: s,
      metric: "get hot",
      value: hot,
      unit: "ops/s",
      baseline: null,
      baseline_value: null,
      ratio: null,
    });
    ctx.record({
      scenario: s,
      metric: "get cold (body + checksum)",
      value: coldRate,
      unit: "ops/s",
      baseline: null,
      baseline_value: null,
      ratio: null,
    });
    ctx.record({
      scenario: s,
      metric: "history page (50) p50",
      value: page.p50,
      unit: "ms",
      baseline: null,
      baseline_value: null,
      ratio: null,
    });
    ctx.record({
      scenario: s,
      metric: "history page (50) p99",
      value: page.p99,
      unit: "ms",
      baseline: null,
      baseline_value: null,
      ratio: null,
    });
  },
};
