/**
 * The message store at scale-out settings: PostgreSQL catalog + S3 (s3rver on loopback), beside
 * the hand-written baseline of SPEC §5: parallel PutObject at the same concurrency + one
 * multi-row INSERT per 1000 rows. Skipped (with a line) when no PostgreSQL can be had.
 */
import { randomUUID } from "node:crypto";
import { PutObjectCommand } from "@aws-sdk/client-s3";
import pg from "pg";
import { Kura } from "../../src/kura.js";
import {
  createBucket,
  emptyAndDeleteBucket,
  rawClient,
  storeOptions,
} from "../../test/conformance/s3-harness.js";
import { postgresForTests } from "../../test/support/servers/postgres.js";
import { S3RVER_ACCESS_KEY, S3RVER_SECRET_KEY, startS3rver } from "../../test/support/servers/s3rver.js";
import { type BenchContext, latencies, ratioOf, type Scenario, throughput } from "../lib.js";

const text = (i: number) => `message ${i}: ${"the quick brown fox jumps over the lazy dog ".repeat(6)}`;

export const messagesPgS3: Scenario = {
  name: "messages-pg-s3",
  async run(ctx: BenchContext) {
    const db = await postgresForTests();
    if ("problem" in db) {
      ctx.log(`skipped: ${db.problem}`);
      return;
    }
    const server = await startS3rver();
    const test = {
      endpoint: server.endpoint,
      accessKeyId: S3RVER_ACCESS_KEY,
      secretAccessKey: S3RVER_SECRET_KEY,
      capabilityOverrides: {},
      listsMultipartUploads: false,
      longSegments: false,
      rangesOnEmptyObjects: false,
      destroy: () => server.destroy(),
    };
    const raw = rawClient(test);
    const bucket = await createBucket(raw, "bench");
    const n = ctx.quick ? 1000 : 10_000;
    const concurrency = 32;
    try {
      // Baseline: parallel PutObject (same concurrency) + one multi-row INSERT per 1000 rows.
      const client = new pg.Client({ connectionString: db.url });
      await client.connect();
      await client.query(
        "CREATE TABLE baseline (id text PRIMARY KEY, chat_id text, role text, preview text, content_url text, size_bytes int, created_at bigint)",
      );
      let started = performance.now();
      for (let start = 0; start < n; start += 1000) {
        const rows = Array.from({ length: Math.min(1000, n - start) }, (_, i) => ({
          id: randomUUID(),
          body: JSON.stringify({ content: text(start + i) }),
        }));
        let next = 0;
        await Promise.all(
          Array.from({ length: concurrency }, async () => {
            for (;;) {
              const r = rows[next++];
              if (!r) return;
              await raw.send(
                new PutObjectCommand({ Bucket: bucket, Key: `baseline/${r.id}.json`, Body: r.body }),
              );
            }
          }),
        );
        const values: unknown[] = [];
        const tuples = rows.map((r, i) => {
          values.push(
            r.id,
            "c",
            "user",
            r.body.slice(0, 200),
            `s3://${bucket}/baseline/${r.id}.json`,
            r.body.length,
            Date.now(),
          );
          const b = i * 7;
          return `($${b + 1},$${b + 2},$${b + 3},$${b + 4},$${b + 5},$${b + 6},$${b + 7})`;
        });
        await client.query(`INSERT INTO baseline VALUES ${tuples.join(",")}`, values);
      }
      const baseline = n / ((performance.now() - started) / 1000);
      await client.end();

      const kura = await Kura.open({
        data_dir: ctx.dir,
        database: { backend: "postgres", url: db.url },
        storage: { backend: "s3", options: storeOptions(test, bucket) },
      });
      const t = kura.tenant("bench");
      started = performance.now();
      const ids: string[] = [];
      for (let start = 0; start < n; start += 1000) {
        const refs = await t.messages.appendMany(
          `chat-${start / 1000}`,
          Array.from({ length: Math.min(1000, n - start) }, (_, i) => ({
            role: "user",
            content: text(start + i),
          })),
        );
        for (const r of refs) ids.push(r.id);
      }
      const batched = n / ((performance.now() - started) / 1000);
      const single = await throughput(Math.floor(n / 2), concurrency, (i) =>
        t.messages.append(`single-${i % 64}`, { role: "user", content: text(i) }),
      );
      const cold = await throughput(Math.floor(n / 2), 16, (i) =>
        t.messages.get(ids[(i * 7919) % ids.length] as string),
      );
      const page = await latencies(ctx.quick ? 300 : 3000, () => t.messages.history("chat-0", { limit: 50 }));
      await kura.close();

      const s = "messages (PostgreSQL + s3rver)";
      ctx.record({
        scenario: s,
        metric: "append batched (1000/tx)",
        value: batched,
        unit: "msg/s",
        baseline: "parallel PutObject + multi-row INSERT",
        baseline_value: baseline,
        ratio: ratioOf(batched, baseline),
      });
      ctx.record({
        scenario: s,
        metric: "append single acked, 32 callers",
        value: single,
        unit: "msg/s",
        baseline: "parallel PutObject + multi-row INSERT",
        baseline_value: baseline,
        ratio: ratioOf(single, baseline),
      });
      ctx.record({
        scenario: s,
        metric: "get (body + checksum)",
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
      await emptyAndDeleteBucket(raw, bucket).catch(() => undefined);
      raw.destroy();
      await server.destroy();
      await db.destroy();
    }
  },
};
