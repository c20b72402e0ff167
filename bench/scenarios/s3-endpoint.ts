/**
 * The S3-compatible endpoint (API-7): PUT and GET of 4 KB and 1 MB objects through
 * `@aws-sdk/client-s3` against Kura's S3 listener (SQLite + fs, SigV4 checked on every request),
 * beside the same operations on Kura's own `/v1/objects` (fetch with a token) and beside Ceph
 * radosgw served the same way through the same client, when radosgw is installed
 * (`scripts/test-servers/install-radosgw.sh`; otherwise its rows are left out and the log says so).
 */
import { randomBytes } from "node:crypto";
import type { AddressInfo } from "node:net";
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { mintToken } from "../../src/http/auth.js";
import { createS3Server } from "../../src/http/s3/server.js";
import { buildServer } from "../../src/http/server.js";
import { Kura } from "../../src/kura.js";
import {
  RADOSGW_ACCESS_KEY,
  RADOSGW_SECRET_KEY,
  radosgwProblem,
  startRadosgw,
} from "../../test/support/servers/radosgw.js";
import { type BenchContext, ratioOf, type Scenario, throughput } from "../lib.js";

const SECRET = "bench-secret-0123456789abcdef0123456789";
const CONCURRENCY = 16;

function s3Client(endpoint: string, accessKeyId: string, secretAccessKey: string): S3Client {
  return new S3Client({
    endpoint,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: { accessKeyId, secretAccessKey },
  });
}

async function putGet(client: S3Client, bucket: string, prefix: string, data: Buffer, n: number) {
  const put = await throughput(n, CONCURRENCY, (i) =>
    client.send(new PutObjectCommand({ Bucket: bucket, Key: `${prefix}/${i}`, Body: data })),
  );
  const get = await throughput(n, CONCURRENCY, async (i) => {
    const res = await client.send(new GetObjectCommand({ Bucket: bucket, Key: `${prefix}/${i % n}` }));
    return res.Body?.transformToByteArray();
  });
  return { put, get };
}

export const s3Endpoint: Scenario = {
  name: "s3-endpoint",
  async run(ctx: BenchContext) {
    const kura = await Kura.open({ data_dir: ctx.dir, auth: { jwt_secret: SECRET } });
    const app = await buildServer(kura, { logger: false });
    await app.listen({ host: "127.0.0.1", port: 0 });
    const v1 = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    const s3 = createS3Server(kura, { region: "us-east-1", domain: null, idleTimeoutMs: 72_000 });
    await new Promise<void>((r) => s3.listen(0, "127.0.0.1", () => r()));
    const endpoint = `http://127.0.0.1:${(s3.address() as AddressInfo).port}`;
    await kura.tenants.create({ tenantId: "bench" });
    const key = await kura.tenants.createKey("bench", { scopes: ["read", "write"] });
    const token = await mintToken({ secret: SECRET, tenant: "bench", ttlSeconds: 3600 });
    const client = s3Client(endpoint, key.keyId, key.secret);
    await client.send(new CreateBucketCommand({ Bucket: "bench" }));

    const problem = radosgwProblem();
    const rgw = problem === undefined ? await startRadosgw() : undefined;
    if (problem !== undefined) ctx.log(`radosgw rows left out: ${problem}`);
    const rgwClient = rgw ? s3Client(rgw.endpoint, RADOSGW_ACCESS_KEY, RADOSGW_SECRET_KEY) : undefined;
    await rgwClient?.send(new CreateBucketCommand({ Bucket: "bench" }));
    try {
      for (const [label, size, full, quick] of [
        ["4KB", 4096, 3_000, 400],
        ["1MB", 1024 * 1024, 200, 40],
      ] as const) {
        const n = ctx.quick ? quick : full;
        const data = randomBytes(size);
        const kuraS3 = await putGet(client, "bench", `s3/${label}`, data, n);
        const headers = { authorization: `Bearer ${token}` };
        const v1Put = await throughput(n, CONCURRENCY, async (i) => {
          const r = await fetch(`${v1}/v1/objects/v1/${label}/${i}`, { method: "PUT", headers, body: data });
          await r.arrayBuffer();
          if (!r.ok) throw new Error(`PUT /v1/objects: ${r.status}`);
        });
        const v1Get = await throughput(n, CONCURRENCY, async (i) => {
          const r = await fetch(`${v1}/v1/objects/v1/${label}/${i % n}`, { headers });
          await r.arrayBuffer();
          if (!r.ok) throw new Error(`GET /v1/objects: ${r.status}`);
        });
        const scenario = `s3-endpoint ${label}`;
        for (const [metric, value, v1Value] of [
          ["put", kuraS3.put, v1Put],
          ["get", kuraS3.get, v1Get],
        ] as const) {
          ctx.record({
            scenario,
            metric,
            value,
            unit: "ops/s",
            baseline: "Kura /v1/objects",
            baseline_value: v1Value,
            ratio: ratioOf(value, v1Value),
          });
        }
        if (rgwClient) {
          const rados = await putGet(rgwClient, "bench", `rgw/${label}`, data, n);
          for (const [metric, value, base] of [
            ["put", kuraS3.put, rados.put],
            ["get", kuraS3.get, rados.get],
          ] as const) {
            ctx.record({
              scenario,
              metric,
              value,
              unit: "ops/s",
              baseline: "radosgw (same client)",
              baseline_value: base,
              ratio: ratioOf(value, base),
            });
          }
        }
      }
    } finally {
      client.destroy();
      rgwClient?.destroy();
      await rgw?.destroy();
      s3.closeAllConnections();
      await new Promise((r) => s3.close(r));
      await app.close();
      await kura.close();
    }
  },
};
