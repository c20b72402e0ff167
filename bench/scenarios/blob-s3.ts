/**
 * Blob plane on S3 (s3rver, in a child process on loopback): 1 KB and 1 MB put/get through Kura
 * (SHA-256 computed and stored in metadata, verified reads) beside raw `PutObject` /
 * `GetObject` calls of the AWS SDK with the same client settings and concurrency.
 */
import { randomBytes } from "node:crypto";
import { GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { s3BlobStore } from "../../src/adapters/blob/s3/index.js";
import {
  createBucket,
  emptyAndDeleteBucket,
  rawClient,
  storeOptions,
} from "../../test/conformance/s3-harness.js";
import { S3RVER_ACCESS_KEY, S3RVER_SECRET_KEY, startS3rver } from "../../test/support/servers/s3rver.js";
import { type BenchContext, ratioOf, type Scenario, throughput } from "../lib.js";

export const blobS3: Scenario = {
  name: "blob-s3",
  async run(ctx: BenchContext) {
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
    try {
      const store = await s3BlobStore.create(s3BlobStore.parseOptions(storeOptions(test, bucket)));
      for (const [label, size, full, quick] of [
        ["1KB", 1024, 5_000, 800],
        ["1MB", 1024 * 1024, 200, 40],
      ] as const) {
        const n = ctx.quick ? quick : full;
        const data = randomBytes(size);
        const concurrency = 16;
        const kuraPut = await throughput(n, concurrency, (i) => store.put(`kura/${label}/${i}`, data));
        const rawPut = await throughput(n, concurrency, (i) =>
          raw.send(new PutObjectCommand({ Bucket: bucket, Key: `raw/${label}/${i}`, Body: data })),
        );
        const kuraGet = await throughput(n, concurrency, (i) => store.getBuffer(`kura/${label}/${i % n}`));
        const rawGet = await throughput(n, concurrency, async (i) => {
          const res = await raw.send(new GetObjectCommand({ Bucket: bucket, Key: `raw/${label}/${i % n}` }));
          return res.Body?.transformToByteArray();
        });
        const scenario = `blob s3rver ${label}`;
        ctx.record({
          scenario,
          metric: "put",
          value: kuraPut,
          unit: "ops/s",
          baseline: "raw PutObject",
          baseline_value: rawPut,
          ratio: ratioOf(kuraPut, rawPut),
        });
        ctx.record({
          scenario,
          metric: "get (verified)",
          value: kuraGet,
          unit: "ops/s",
          baseline: "raw GetObject",
          baseline_value: rawGet,
          ratio: ratioOf(kuraGet, rawGet),
        });
      }
      await store.close();
    } finally {
      await emptyAndDeleteBucket(raw, bucket).catch(() => undefined);
      raw.destroy();
      await server.destroy();
    }
  },
};
