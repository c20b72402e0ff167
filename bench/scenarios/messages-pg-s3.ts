/**
 * The message store at scale-out settings: PostgreSQL catalog + S3, beside the hand-written
 * baseline of SPEC §5, in the same process and run:
 *   - batched: parallel PutObject (32 at a time) of the 1000 bodies, then one multi-row INSERT
 *     of their index rows — against `appendMany` of 1000 messages;
 *   - single: 32 callers each doing PutObject, then an autocommit INSERT on a pool of as many
 *     connections as Kura's (`database.max_connections`) — against acknowledged `append`s
 *     from 32 callers.
 * The baseline stores the same JSON document Kura stores (content, metadata, created_at) and an
 * index row of the same columns (less the checksum) under the same primary key and history
 * index. Kura and baseline alternate rounds; each keeps its best.
 *
 * S3 is Ceph radosgw (a real S3: SigV4, conditional PUT) when it is installed
 * (`scripts/test-servers/install-radosgw.sh`), started as the S3 suite starts it; otherwise
 * s3rver, an emulator (the row names which one). Skipped (with a line) when no PostgreSQL can
 * be had. Target: batched ≥ 0.8× the baseline.
 */
import { PutObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import pg from "pg";
import { v7 as uuidv7 } from "uuid";
import { Kura } from "../../src/kura.js";
import {
  createBucket,
  rawClient,
  type S3TestServer,
  storeOptions,
} from "../../test/conformance/s3-harness.js";
import { postgresForTests } from "../../test/support/servers/postgres.js";
import {
  RADOSGW_ACCESS_KEY,
  RADOSGW_SECRET_KEY,
  radosgwProblem,
  startRadosgw,
} from "../../test/support/servers/radosgw.js";
import { S3RVER_ACCESS_KEY, S3RVER_SECRET_KEY, startS3rver } from "../../test/support/servers/s3rver.js";
import { type BenchContext, latencies, ratioOf, type Scenario, throughput } from "../lib.js";

const text = (i: number) => `message ${i}: ${"the quick brown fox jumps over the lazy dog ".repeat(6)}`;
const BATCH = 1000;
const CONCURRENCY = 32;
/** Kura's default `database.max_connections` for PostgreSQL. */
const POOL = 10;

async function startS3(): Promise<{ server: S3TestServer; name: string }> {
  const base = { capabilityOverrides: {}, listsMultipartUploads: false, longSegments: false };
  if (radosgwProblem() === undefined) {
    const rgw = await startRadosgw();
    return {
      name: "radosgw",
      server: {
        ...base,
        endpoint: rgw.endpoint,
        accessKeyId: RADOSGW_ACCESS_KEY,
        secretAccessKey: RADOSGW_SECRET_KEY,
        rangesOnEmptyObjects: true,
        destroy: () => rgw.destroy(),
      },
    };
  }
  const s3rver = await startS3rver();
  return {
    name: "s3rver",
    server: {
      ...base,
      endpoint: s3rver.endpoint,
      accessKeyId: S3RVER_ACCESS_KEY,
      secretAccessKey: S3RVER_SECRET_KEY,
      rangesOnEmptyObjects: false,
      destroy: () => s3rver.destroy(),
    },
  };
}

/** The hand-written store: a PutObject per body, index rows INSERTed. */
class HandWritten {
  constructor(
    private readonly s3: S3Client,
    private readonly bucket: string,
    private readonly pool: pg.Pool,
  ) {}

  static async open(s3: S3Client, bucket: string, url: string): Promise<HandWritten> {
    const pool = new pg.Pool({ connectionString: url, max: POOL });
    await pool.query(
      "CREATE TABLE baseline (tenant_id text NOT NULL, id text NOT NULL, chat_id text NOT NULL, role text NOT NULL, " +
        "content_type text NOT NULL, preview text NOT NULL, size_bytes int NOT NULL, blob_key text NOT NULL, " +
        "version int NOT NULL, created_at bigint NOT NULL, updated_at bigint NOT NULL, metadata jsonb NOT NULL, " +
        "PRIMARY KEY (tenant_id, id))",
    );
    await pool.query("CREATE INDEX baseline_history ON baseline (tenant_id, chat_id, created_at, id)");
    return new HandWritten(s3, bucket, pool);
  }

  private prepare(chat: string, i: number): { key: string; body: string; row: unknown[] } {
    const id = uuidv7();
    const now = Date.now();
    const content = text(i);
    const body = JSON.stringify({
      content,
      metadata: {
        chat_id: chat,
        message_id: id,
        original_size: Buffer.byteLength(content),
        role: "user",
        content_type: "text/plain",
        version: 1,
      },
      created_at: new Date(now).toISOString(),
    });
    const key = `bench/messages/${chat}/${id}.json`;
    return {
      key,
      body,
      row: ["bench", id, chat, "user", "text/plain", content.slice(0, 200), body.length, key, now, now],
    };
  }

  private put(key: string, body: string): Promise<unknown> {
    return this.s3.send(
      new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: body, ContentType: "application/json" }),
    );
  }

  async batch(chat: string, from: number, n: number): Promise<void> {
    const items = Array.from({ length: n }, (_, i) => this.prepare(chat, from + i));
    let next = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        for (;;) {
          const item = items[next++];
          if (!item) return;
          await this.put(item.key, item.body);
        }
      }),
    );
    const values: unknown[] = [];
    const tuples = items.map((item, i) => {
      values.push(...item.row);
      const b = i * 10;
      return `($${b + 1},$${b + 2},$${b + 3},$${b + 4},$${b + 5},$${b + 6},$${b + 7},$${b + 8},1,$${b + 9},$${b + 10},'{}')`;
    });
    await this.pool.query(`INSERT INTO baseline VALUES ${tuples.join(",")}`, values);
  }

  async single(chat: string, i: number): Promise<void> {
    const item = this.prepare(chat, i);
    await this.put(item.key, item.body);
    await this.pool.query("INSERT INTO baseline VALUES ($1,$2,$3,$4,$5,$6,$7,$8,1,$9,$10,'{}')", item.row);
  }

  close(): Promise<void> {
    return this.pool.end();
  }
}

export const messagesPgS3: Scenario = {
  name: "messages-pg-s3",
  async run(ctx: BenchContext) {
    const db = await postgresForTests();
    if ("problem" in db) {
      ctx.log(`skipped: ${db.problem}`);
      return;
    }
    const { server, name } = await startS3();
    const raw = rawClient(server);
    const rounds = ctx.quick ? 1 : 2;
    // radosgw on this kind of machine takes on the order of 100 PUTs/s: sizes that finish.
    const n = ctx.quick ? 1000 : 3000;
    const nSingle = ctx.quick ? 500 : 2000;
    try {
      const kuraBucket = await createBucket(raw, "bench");
      const baseBucket = await createBucket(raw, "base");
      const baseline = await HandWritten.open(raw, baseBucket, db.url);
      const kura = await Kura.open({
        data_dir: ctx.dir,
        database: { backend: "postgres", url: db.url },
        storage: { backend: "s3", options: storeOptions(server, kuraBucket) },
      });
      const t = kura.tenant("bench");
      const best = { kura: 0, base: 0, kuraSingle: 0, baseSingle: 0 };
      const rate = async (count: number, run: () => Promise<void>) => {
        const started = performance.now();
        await run();
        return count / ((performance.now() - started) / 1000);
      };
      const ids: string[] = [];
      for (let round = 0; round < rounds; round++) {
        const chats = Array.from({ length: Math.ceil(n / BATCH) }, (_, k) => `chat-${round}-${k}`);
        const kuraBatched = await rate(n, async () => {
          for (let k = 0; k < chats.length; k++) {
            const from = k * BATCH;
            const refs = await t.messages.appendMany(
              chats[k] as string,
              Array.from({ length: Math.min(BATCH, n - from) }, (_, i) => ({
                role: "user",
                content: text(from + i),
              })),
            );
            for (const r of refs) ids.push(r.id);
          }
        });
        const baseBatched = await rate(n, async () => {
          for (let k = 0; k < chats.length; k++) {
            const from = k * BATCH;
            await baseline.batch(chats[k] as string, from, Math.min(BATCH, n - from));
          }
        });
        const kuraSingle = await throughput(nSingle, CONCURRENCY, (i) =>
          t.messages.append(`single-${i % 64}`, { role: "user", content: text(i) }),
        );
        const baseSingle = await throughput(nSingle, CONCURRENCY, (i) =>
          baseline.single(`single-${i % 64}`, i),
        );
        ctx.log(
          `round ${round + 1}: batched kura ${Math.round(kuraBatched)}/s, hand-written ${Math.round(baseBatched)}/s; ` +
            `single×${CONCURRENCY} kura ${Math.round(kuraSingle)}/s, hand-written ${Math.round(baseSingle)}/s`,
        );
        best.kura = Math.max(best.kura, kuraBatched);
        best.base = Math.max(best.base, baseBatched);
        best.kuraSingle = Math.max(best.kuraSingle, kuraSingle);
        best.baseSingle = Math.max(best.baseSingle, baseSingle);
      }
      let phase = performance.now();
      const cold = await throughput(ctx.quick ? 500 : 1000, 16, (i) =>
        t.messages.get(ids[(i * 7919) % ids.length] as string),
      );
      const getsMs = performance.now() - phase;
      phase = performance.now();
      const page = await latencies(ctx.quick ? 300 : 1000, () =>
        t.messages.history("chat-0-0", { limit: 50 }),
      );
      const historyMs = performance.now() - phase;
      phase = performance.now();
      await kura.close();
      await baseline.close();
      ctx.log(
        `gets ${Math.round(getsMs)} ms, history pages ${Math.round(historyMs)} ms, close ${Math.round(performance.now() - phase)} ms`,
      );

      const s = `messages (PostgreSQL + ${name})`;
      const batchedRatio = ratioOf(best.kura, best.base);
      ctx.log(
        `target: batched ≥ 0.8× hand-written: ${batchedRatio.toFixed(2)}× — ${batchedRatio >= 0.8 ? "met" : "NOT met"}`,
      );
      ctx.record({
        scenario: s,
        metric: `append batched (${BATCH}/call)`,
        value: best.kura,
        unit: "msg/s",
        baseline: `${CONCURRENCY} parallel PutObject + multi-row INSERT`,
        baseline_value: best.base,
        ratio: batchedRatio,
      });
      ctx.record({
        scenario: s,
        metric: `append single acked, ${CONCURRENCY} callers`,
        value: best.kuraSingle,
        unit: "msg/s",
        baseline: `PutObject + INSERT per message, ${CONCURRENCY} callers`,
        baseline_value: best.baseSingle,
        ratio: ratioOf(best.kuraSingle, best.baseSingle),
      });
      ctx.record({
        scenario: s,
        metric: "get (body + checksum), 16 callers",
        value: cold,
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
    } finally {
      // The server's data goes with it: no need to empty the buckets object by object.
      raw.destroy();
      await server.destroy?.();
      await db.destroy();
    }
  },
};
