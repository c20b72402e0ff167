/**
 * The S3-compatible endpoint (API-7) driven by @aws-sdk/client-s3 (and lib-storage's Upload for
 * multipart) against a real listener over a Kura (SQLite + fs): every operation, ranges,
 * conditionals, paging, checksums, presigned URLs, wrong secrets, tenant isolation, quotas.
 */
import { createHash, randomBytes } from "node:crypto";
import type { AddressInfo } from "node:net";
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListBucketsCommand,
  ListMultipartUploadsCommand,
  ListObjectsCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
  UploadPartCopyCommand,
} from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createS3Server } from "../../src/http/s3/server.js";
import { type Harness, startServer } from "./harness.js";

let h: Harness;
let s3server: ReturnType<typeof createS3Server>;
let endpoint: string;
let acme: S3Client;
let acmeKey: { keyId: string; secret: string };
let globex: S3Client;
let small: S3Client;

function client(keyId: string, secret: string, options: { region?: string } = {}): S3Client {
  return new S3Client({
    endpoint,
    region: options.region ?? "us-east-1",
    forcePathStyle: true,
    credentials: { accessKeyId: keyId, secretAccessKey: secret },
    maxAttempts: 1,
  });
}

async function keyFor(tenant: string, limits?: Record<string, number>) {
  await h.kura.tenants.create({ tenantId: tenant, ...(limits ? { limits } : {}) });
  return h.kura.tenants.createKey(tenant, { scopes: ["read", "write"] });
}

/** The S3 error code a failing call was answered with. */
async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    return (e as { name?: string; Code?: string }).Code ?? (e as { name: string }).name;
  }
  throw new Error("the call succeeded");
}

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

beforeAll(async () => {
  h = await startServer();
  s3server = createS3Server(h.kura, { region: "us-east-1", domain: "s3.localhost", idleTimeoutMs: 5000 });
  await new Promise<void>((r) => s3server.listen(0, "127.0.0.1", () => r()));
  endpoint = `http://127.0.0.1:${(s3server.address() as AddressInfo).port}`;
  acmeKey = await keyFor("acme");
  acme = client(acmeKey.keyId, acmeKey.secret);
  const g = await keyFor("globex");
  globex = client(g.keyId, g.secret);
  const s = await keyFor("smallco", { max_storage_bytes: 10_000 });
  small = client(s.keyId, s.secret);
});

afterAll(async () => {
  s3server?.closeAllConnections();
  await new Promise((r) => s3server?.close(r));
  await h?.close();
});

describe("S3 endpoint with @aws-sdk/client-s3", () => {
  it("creates, lists, heads and deletes buckets; another tenant sees none", async () => {
    await acme.send(new CreateBucketCommand({ Bucket: "photos" }));
    expect(await codeOf(acme.send(new CreateBucketCommand({ Bucket: "photos" })))).toBe(
      "BucketAlreadyOwnedByYou",
    );
    expect(await codeOf(acme.send(new CreateBucketCommand({ Bucket: "Bad_Name" })))).toBe(
      "InvalidBucketName",
    );
    await acme.send(new HeadBucketCommand({ Bucket: "photos" }));
    const listed = await acme.send(new ListBucketsCommand({}));
    expect(listed.Buckets?.map((b) => b.Name)).toContain("photos");
    expect((await globex.send(new ListBucketsCommand({}))).Buckets ?? []).toEqual([]);
    expect(await codeOf(globex.send(new HeadBucketCommand({ Bucket: "photos" })))).toBe("NotFound");
    await acme.send(new PutObjectCommand({ Bucket: "photos", Key: "a.txt", Body: "x" }));
    expect(await codeOf(acme.send(new DeleteBucketCommand({ Bucket: "photos" })))).toBe("BucketNotEmpty");
    await acme.send(new DeleteObjectCommand({ Bucket: "photos", Key: "a.txt" }));
    await acme.send(new DeleteBucketCommand({ Bucket: "photos" }));
    expect(await codeOf(acme.send(new HeadBucketCommand({ Bucket: "photos" })))).toBe("NotFound");
    expect(await codeOf(acme.send(new DeleteBucketCommand({ Bucket: "photos" })))).toBe("NoSuchBucket");
  });
});
