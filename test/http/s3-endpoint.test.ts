/**
 * The S3-compatible endpoint (API-7) driven by @aws-sdk/client-s3 (and lib-storage's Upload for
 * multipart) against a real listener over a Kura (SQLite + fs): every operation, ranges,
 * conditionals, paging, checksums, presigned URLs, wrong secrets, tenant isolation, quotas.
 */
import { createHash, randomBytes } from "node:crypto";
import { readdir } from "node:fs/promises";
import { request } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { Readable } from "node:stream";
import { Sha256 } from "@aws-crypto/sha256-js";
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
import { HttpRequest } from "@smithy/protocol-http";
import { SignatureV4 } from "@smithy/signature-v4";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { keyPath } from "../../src/adapters/blob/fs/layout.js";
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
    const err = e as { name: string; Code?: string; $metadata?: { httpStatusCode?: number } };
    if (err.name === "Unknown" && err.$metadata?.httpStatusCode !== undefined)
      return String(err.$metadata.httpStatusCode);
    return err.Code ?? err.name;
  }
  throw new Error("the call succeeded");
}

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

beforeAll(async () => {
  h = await startServer();
  s3server = createS3Server(h.kura, {
    region: "us-east-1",
    domain: "s3.localhost",
    idleTimeoutMs: 5000,
    bodyTimeoutMs: 2000,
  });
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

/** A request signed here (SigV4 over the given headers), sent with node:http: what no SDK sends. */
async function signedRequest(
  method: string,
  path: string,
  options: {
    key?: { keyId: string; secret: string };
    host?: string;
    headers?: Record<string, string>;
    body?: Buffer;
    payload?: string;
    date?: Date;
  } = {},
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  const key = options.key ?? acmeKey;
  const url = new URL(endpoint);
  const host = options.host ?? url.host;
  const [pathname = "", search = ""] = path.split("?");
  const query: Record<string, string> = {};
  for (const [k, v] of new URLSearchParams(search)) query[k] = v;
  const signer = new SignatureV4({
    credentials: { accessKeyId: key.keyId, secretAccessKey: key.secret },
    region: "us-east-1",
    service: "s3",
    sha256: Sha256,
    uriEscapePath: false,
  });
  const headers: Record<string, string> = {
    host,
    "x-amz-content-sha256": options.payload ?? sha(options.body ?? Buffer.alloc(0)),
    ...(options.headers ?? {}),
  };
  const signed = await signer.sign(
    new HttpRequest({ method, hostname: host, path: pathname, query, headers }),
    {
      ...(options.date ? { signingDate: options.date } : {}),
    },
  );
  const body = options.body;
  return new Promise((resolve, reject) => {
    const req = request(
      { host: url.hostname, port: url.port, method, path, headers: signed.headers },
      (res) => {
        let text = "";
        res.on("data", (c) => {
          text += c;
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

/** An aws-chunked body with chunk signatures chained from the request's (STREAMING-AWS4-HMAC-SHA256-PAYLOAD). */
async function signedChunkedPut(path: string, data: Buffer, chunkSize: number, tamper = false) {
  const url = new URL(endpoint);
  const date = new Date();
  const signer = new SignatureV4({
    credentials: { accessKeyId: acmeKey.keyId, secretAccessKey: acmeKey.secret },
    region: "us-east-1",
    service: "s3",
    sha256: Sha256,
    uriEscapePath: false,
  });
  const chunks: Buffer[] = [];
  for (let i = 0; i < data.length; i += chunkSize) chunks.push(data.subarray(i, i + chunkSize));
  chunks.push(Buffer.alloc(0));
  const sigLen = (n: number) => n.toString(16).length + ";chunk-signature=".length + 64 + 2 + n + 2;
  const encodedLength = chunks.reduce((t, c) => t + sigLen(c.length), 0) - 2 + 2;
  const headers: Record<string, string> = {
    host: url.host,
    "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
    "content-encoding": "aws-chunked",
    "x-amz-decoded-content-length": String(data.length),
    "content-length": String(encodedLength),
  };
  const signed = await signer.sign(new HttpRequest({ method: "PUT", hostname: url.host, path, headers }), {
    signingDate: date,
  });
  const auth = String(signed.headers.authorization);
  let previous = /Signature=([0-9a-f]{64})/.exec(auth)?.[1] as string;
  const longDate = signed.headers["x-amz-date"] as string;
  const scope = `${longDate.slice(0, 8)}/us-east-1/s3/aws4_request`;
  const parts: Buffer[] = [];
  for (const c of chunks) {
    const toSign = ["AWS4-HMAC-SHA256-PAYLOAD", longDate, scope, previous, sha(Buffer.alloc(0)), sha(c)].join(
      "\n",
    );
    const sig = await signer.sign(toSign, { signingDate: date });
    previous = sig;
    const bytes = tamper && c.length > 0 ? Buffer.from(c.map((b) => b ^ 1)) : c;
    parts.push(
      Buffer.from(`${c.length.toString(16)};chunk-signature=${sig}\r\n`),
      bytes,
      Buffer.from("\r\n"),
    );
  }
  const body = Buffer.concat(parts);
  signed.headers["content-length"] = String(body.length);
  return new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = request(
      { host: url.hostname, port: url.port, method: "PUT", path, headers: signed.headers },
      (res) => {
        let text = "";
        res.on("data", (d) => {
          text += d;
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

const text = async (out: { Body?: { transformToString(): Promise<string> } }) =>
  (await out.Body?.transformToString()) ?? "";

describe("S3 objects", () => {
  beforeAll(async () => {
    await acme.send(new CreateBucketCommand({ Bucket: "docs" }));
  });

  it("puts, gets (ranges, conditionals), heads, copies and deletes objects", async () => {
    const put = await acme.send(
      new PutObjectCommand({
        Bucket: "docs",
        Key: "a/hello.txt",
        Body: "hello world",
        ContentType: "text/plain",
      }),
    );
    expect(put.ETag).toBe(`"${sha(Buffer.from("hello world"))}"`);
    const got = await acme.send(new GetObjectCommand({ Bucket: "docs", Key: "a/hello.txt" }));
    expect(await text(got)).toBe("hello world");
    expect(got.ContentType).toBe("text/plain");
    expect(got.ContentLength).toBe(11);
    // The same object on /v1.
    const token = await h.token("acme");
    expect((await h.call("GET", "/v1/objects/docs/a/hello.txt", { token })).text).toBe("hello world");

    const ranged = await acme.send(
      new GetObjectCommand({ Bucket: "docs", Key: "a/hello.txt", Range: "bytes=6-" }),
    );
    expect(await text(ranged)).toBe("world");
    expect(ranged.ContentRange).toBe("bytes 6-10/11");
    expect(
      await codeOf(
        acme.send(new GetObjectCommand({ Bucket: "docs", Key: "a/hello.txt", Range: "bytes=20-" })),
      ),
    ).toBe("InvalidRange");
    expect(
      await codeOf(
        acme.send(new GetObjectCommand({ Bucket: "docs", Key: "a/hello.txt", IfMatch: '"nope"' })),
      ),
    ).toBe("PreconditionFailed");
    expect(
      await codeOf(
        acme.send(new GetObjectCommand({ Bucket: "docs", Key: "a/hello.txt", IfNoneMatch: put.ETag })),
      ),
    ).toBe("304");
    const head = await acme.send(new HeadObjectCommand({ Bucket: "docs", Key: "a/hello.txt" }));
    expect(head.ContentLength).toBe(11);
    expect(head.ETag).toBe(put.ETag);
    expect(await codeOf(acme.send(new GetObjectCommand({ Bucket: "docs", Key: "a/missing" })))).toBe(
      "NoSuchKey",
    );
    expect(await codeOf(acme.send(new HeadObjectCommand({ Bucket: "docs", Key: "a/missing" })))).toBe(
      "NotFound",
    );
    expect(await codeOf(acme.send(new GetObjectCommand({ Bucket: "nobucket", Key: "x" })))).toBe(
      "NoSuchBucket",
    );
    expect(await codeOf(acme.send(new PutObjectCommand({ Bucket: "nobucket", Key: "x", Body: "x" })))).toBe(
      "NoSuchBucket",
    );

    // Conditional writes.
    expect(
      await codeOf(
        acme.send(new PutObjectCommand({ Bucket: "docs", Key: "a/hello.txt", Body: "y", IfNoneMatch: "*" })),
      ),
    ).toBe("PreconditionFailed");
    expect(
      await codeOf(
        acme.send(new PutObjectCommand({ Bucket: "docs", Key: "a/hello.txt", Body: "y", IfMatch: '"0"' })),
      ),
    ).toBe("PreconditionFailed");

    const copied = await acme.send(
      new CopyObjectCommand({ Bucket: "docs", Key: "b/copy.txt", CopySource: "docs/a/hello.txt" }),
    );
    expect(copied.CopyObjectResult?.ETag).toBe(put.ETag);
    const copy = await acme.send(new GetObjectCommand({ Bucket: "docs", Key: "b/copy.txt" }));
    expect(await text(copy)).toBe("hello world");
    expect(copy.ContentType).toBe("text/plain");

    await acme.send(new DeleteObjectCommand({ Bucket: "docs", Key: "b/copy.txt" }));
    expect(await codeOf(acme.send(new GetObjectCommand({ Bucket: "docs", Key: "b/copy.txt" })))).toBe(
      "NoSuchKey",
    );
    await acme.send(new DeleteObjectCommand({ Bucket: "docs", Key: "b/copy.txt" }));

    // Audited as the key, as on /v1.
    const audit = await h.kura.tenant("acme").audit({ limit: 1000 });
    expect(audit.some((a) => a.action === "object.put" && a.actor === `key:${acmeKey.keyId}`)).toBe(true);
  });

  it("verifies checksums and Content-MD5: a mismatch is BadDigest and stores nothing", async () => {
    const body = Buffer.from("checked body");
    await acme.send(
      new PutObjectCommand({ Bucket: "docs", Key: "sum/ok", Body: body, ChecksumAlgorithm: "SHA256" }),
    );
    expect(
      await codeOf(
        acme.send(
          new PutObjectCommand({
            Bucket: "docs",
            Key: "sum/bad",
            Body: body,
            ChecksumSHA256: createHash("sha256").update("other").digest("base64"),
          }),
        ),
      ),
    ).toBe("BadDigest");
    expect(
      await codeOf(
        acme.send(
          new PutObjectCommand({
            Bucket: "docs",
            Key: "sum/bad",
            Body: body,
            ContentMD5: createHash("md5").update("other").digest("base64"),
          }),
        ),
      ),
    ).toBe("BadDigest");
    expect(await codeOf(acme.send(new HeadObjectCommand({ Bucket: "docs", Key: "sum/bad" })))).toBe(
      "NotFound",
    );
    // A body that is not what x-amz-content-sha256 says.
    const wrong = await signedRequest("PUT", "/docs/sum/bad", {
      body: body,
      payload: sha(Buffer.from("something else")),
    });
    expect(wrong.status).toBe(400);
    expect(wrong.body).toContain("<Code>XAmzContentSHA256Mismatch</Code>");
    expect(await codeOf(acme.send(new HeadObjectCommand({ Bucket: "docs", Key: "sum/bad" })))).toBe(
      "NotFound",
    );
  });

  it("streams an aws-chunked body with a checksum trailer, and one with chunk signatures", async () => {
    const data = randomBytes(300_000);
    // The SDK streams a body it cannot hash ahead as aws-chunked with a checksum trailer.
    const modes: string[] = [];
    const streaming = client(acmeKey.keyId, acmeKey.secret);
    streaming.middlewareStack.add(
      (next) => async (args) => {
        const headers = (args.request as { headers: Record<string, string> }).headers;
        modes.push(`${headers["x-amz-content-sha256"]} ${headers["x-amz-trailer"]}`);
        return next(args);
      },
      { step: "finalizeRequest", priority: "low" },
    );
    await streaming.send(
      new PutObjectCommand({
        Bucket: "docs",
        Key: "chunked/trailer.bin",
        Body: Readable.from([data.subarray(0, 100_000), data.subarray(100_000)]),
        ContentLength: data.length,
        ChecksumAlgorithm: "SHA256",
      }),
    );
    expect(modes).toEqual(["STREAMING-UNSIGNED-PAYLOAD-TRAILER x-amz-checksum-sha256"]);
    const back = await acme.send(new GetObjectCommand({ Bucket: "docs", Key: "chunked/trailer.bin" }));
    expect(sha(Buffer.from(await back.Body!.transformToByteArray()))).toBe(sha(data));

    const ok = await signedChunkedPut("/docs/chunked/signed.bin", data, 64 * 1024);
    expect(ok.status, ok.body).toBe(200);
    const signed = await acme.send(new GetObjectCommand({ Bucket: "docs", Key: "chunked/signed.bin" }));
    expect(sha(Buffer.from(await signed.Body!.transformToByteArray()))).toBe(sha(data));
    const bad = await signedChunkedPut("/docs/chunked/tampered.bin", data, 64 * 1024, true);
    expect(bad.status).toBe(400);
    expect(bad.body).toContain("<Code>XAmzContentSHA256Mismatch</Code>");
    expect(
      await codeOf(acme.send(new HeadObjectCommand({ Bucket: "docs", Key: "chunked/tampered.bin" }))),
    ).toBe("NotFound");
  });

  it("lists with prefix, delimiter, paging by continuation token, start-after, and v1 markers", async () => {
    await acme.send(new CreateBucketCommand({ Bucket: "list" }));
    const keys = ["a/1", "a/2", "b/x/1", "b/y", "c", "d+e f", "z/9"];
    for (const k of keys) await acme.send(new PutObjectCommand({ Bucket: "list", Key: k, Body: k }));
    const all = await acme.send(new ListObjectsV2Command({ Bucket: "list" }));
    expect(all.Contents?.map((o) => o.Key)).toEqual(keys);
    expect(all.KeyCount).toBe(keys.length);
    const top = await acme.send(new ListObjectsV2Command({ Bucket: "list", Delimiter: "/" }));
    expect(top.Contents?.map((o) => o.Key)).toEqual(["c", "d+e f"]);
    expect(top.CommonPrefixes?.map((p) => p.Prefix)).toEqual(["a/", "b/", "z/"]);
    const inB = await acme.send(new ListObjectsV2Command({ Bucket: "list", Prefix: "b/", Delimiter: "/" }));
    expect(inB.Contents?.map((o) => o.Key)).toEqual(["b/y"]);
    expect(inB.CommonPrefixes?.map((p) => p.Prefix)).toEqual(["b/x/"]);
    const seen: string[] = [];
    let token: string | undefined;
    do {
      const page = await acme.send(
        new ListObjectsV2Command({ Bucket: "list", Delimiter: "/", MaxKeys: 2, ContinuationToken: token }),
      );
      seen.push(
        ...(page.Contents ?? []).map((o) => o.Key as string),
        ...(page.CommonPrefixes ?? []).map((p) => p.Prefix as string),
      );
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    expect(seen.sort()).toEqual(["a/", "b/", "c", "d+e f", "z/"]);
    const after = await acme.send(new ListObjectsV2Command({ Bucket: "list", StartAfter: "b/y" }));
    expect(after.Contents?.map((o) => o.Key)).toEqual(["c", "d+e f", "z/9"]);
    // v1 with markers, common prefixes included.
    const v1: string[] = [];
    let marker: string | undefined;
    for (;;) {
      const page = await acme.send(
        new ListObjectsCommand({ Bucket: "list", Delimiter: "/", MaxKeys: 2, Marker: marker }),
      );
      v1.push(
        ...(page.Contents ?? []).map((o) => o.Key as string),
        ...(page.CommonPrefixes ?? []).map((p) => p.Prefix as string),
      );
      if (!page.IsTruncated) break;
      marker = page.NextMarker;
    }
    expect(v1.sort()).toEqual(["a/", "b/", "c", "d+e f", "z/"]);
    // DeleteObjects.
    const del = await acme.send(
      new DeleteObjectsCommand({ Bucket: "list", Delete: { Objects: keys.map((Key) => ({ Key })) } }),
    );
    expect(del.Deleted?.map((d) => d.Key).sort()).toEqual([...keys].sort());
    expect((await acme.send(new ListObjectsV2Command({ Bucket: "list" }))).KeyCount).toBe(0);
    await acme.send(new DeleteBucketCommand({ Bucket: "list" }));
  });

  it("multipart: lib-storage Upload, and every multipart call by hand with its errors", async () => {
    const big = randomBytes(12 * 1024 * 1024 + 5);
    const upload = new Upload({
      client: acme,
      params: { Bucket: "docs", Key: "mp/big.bin", Body: big, ContentType: "application/x-big" },
      partSize: 5 * 1024 * 1024,
      queueSize: 3,
    });
    await upload.done();
    const got = await acme.send(new GetObjectCommand({ Bucket: "docs", Key: "mp/big.bin" }));
    expect(got.ContentType).toBe("application/x-big");
    expect(sha(Buffer.from(await got.Body!.transformToByteArray()))).toBe(sha(big));

    const { UploadId } = await acme.send(
      new CreateMultipartUploadCommand({ Bucket: "docs", Key: "mp/hand.bin" }),
    );
    const part1 = big.subarray(0, 5 * 1024 * 1024);
    const p1 = await acme.send(
      new UploadPartCommand({ Bucket: "docs", Key: "mp/hand.bin", UploadId, PartNumber: 1, Body: part1 }),
    );
    const p2 = await acme.send(
      new UploadPartCopyCommand({
        Bucket: "docs",
        Key: "mp/hand.bin",
        UploadId,
        PartNumber: 2,
        CopySource: "docs/mp/big.bin",
        CopySourceRange: "bytes=0-99",
      }),
    );
    const parts = await acme.send(new ListPartsCommand({ Bucket: "docs", Key: "mp/hand.bin", UploadId }));
    expect(parts.Parts?.map((p) => [p.PartNumber, p.Size])).toEqual([
      [1, 5 * 1024 * 1024],
      [2, 100],
    ]);
    const uploads = await acme.send(new ListMultipartUploadsCommand({ Bucket: "docs" }));
    expect(uploads.Uploads?.map((u) => u.UploadId)).toContain(UploadId);
    expect((await globex.send(new ListBucketsCommand({}))).Buckets ?? []).toEqual([]);

    const complete = (Parts: { PartNumber: number; ETag?: string }[]) =>
      acme.send(
        new CompleteMultipartUploadCommand({
          Bucket: "docs",
          Key: "mp/hand.bin",
          UploadId,
          MultipartUpload: { Parts },
        }),
      );
    expect(await codeOf(complete([{ PartNumber: 1, ETag: '"0000"' }]))).toBe("InvalidPart");
    expect(
      await codeOf(
        complete([
          { PartNumber: 2, ETag: p2.CopyPartResult?.ETag },
          { PartNumber: 1, ETag: p1.ETag },
        ]),
      ),
    ).toBe("InvalidPartOrder");
    expect(
      await codeOf(
        complete([
          { PartNumber: 2, ETag: p2.CopyPartResult?.ETag },
          { PartNumber: 3, ETag: p2.CopyPartResult?.ETag },
        ]),
      ),
    ).toBe("InvalidPart");
    const done = await complete([
      { PartNumber: 1, ETag: p1.ETag },
      { PartNumber: 2, ETag: p2.CopyPartResult?.ETag },
    ]);
    expect(done.Key).toBe("mp/hand.bin");
    const hand = await acme.send(new GetObjectCommand({ Bucket: "docs", Key: "mp/hand.bin" }));
    const bytes = Buffer.from(await hand.Body!.transformToByteArray());
    expect(sha(bytes)).toBe(sha(Buffer.concat([part1, big.subarray(0, 100)])));
    expect(
      await codeOf(acme.send(new ListPartsCommand({ Bucket: "docs", Key: "mp/hand.bin", UploadId }))),
    ).toBe("NoSuchUpload");

    // Too small a part before the last.
    const small1 = await acme.send(new CreateMultipartUploadCommand({ Bucket: "docs", Key: "mp/small.bin" }));
    const s1 = await acme.send(
      new UploadPartCommand({
        Bucket: "docs",
        Key: "mp/small.bin",
        UploadId: small1.UploadId,
        PartNumber: 1,
        Body: "abc",
      }),
    );
    const s2 = await acme.send(
      new UploadPartCommand({
        Bucket: "docs",
        Key: "mp/small.bin",
        UploadId: small1.UploadId,
        PartNumber: 2,
        Body: "def",
      }),
    );
    expect(
      await codeOf(
        acme.send(
          new CompleteMultipartUploadCommand({
            Bucket: "docs",
            Key: "mp/small.bin",
            UploadId: small1.UploadId,
            MultipartUpload: {
              Parts: [
                { PartNumber: 1, ETag: s1.ETag },
                { PartNumber: 2, ETag: s2.ETag },
              ],
            },
          }),
        ),
      ),
    ).toBe("EntityTooSmall");
    // Abort removes it; a second abort finds nothing.
    await acme.send(
      new AbortMultipartUploadCommand({ Bucket: "docs", Key: "mp/small.bin", UploadId: small1.UploadId }),
    );
    expect(
      await codeOf(
        acme.send(
          new AbortMultipartUploadCommand({ Bucket: "docs", Key: "mp/small.bin", UploadId: small1.UploadId }),
        ),
      ),
    ).toBe("NoSuchUpload");
    const partsDir = keyPath(join(h.dir, "blobs"), `acme/multipart/${small1.UploadId}/00001`).dir;
    expect(await readdir(partsDir).catch(() => [])).toEqual([]);
  });

  it("the expire-multipart job removes abandoned uploads and their parts", async () => {
    const { UploadId } = await acme.send(
      new CreateMultipartUploadCommand({ Bucket: "docs", Key: "mp/abandoned" }),
    );
    await acme.send(
      new UploadPartCommand({
        Bucket: "docs",
        Key: "mp/abandoned",
        UploadId,
        PartNumber: 1,
        Body: "left behind",
      }),
    );
    const partsDir = keyPath(join(h.dir, "blobs"), `acme/multipart/${UploadId}/00001`).dir;
    expect(await readdir(partsDir)).toHaveLength(1);
    const run = async (now: number) =>
      (await h.kura.jobs.runOnce(now)).find((r) => r.name === "expire-multipart")?.result as
        | Record<string, number>
        | undefined;
    expect(await run(Date.now())).toMatchObject({ uploads: 0 });
    expect((await run(Date.now() + 8 * 86_400_000))?.uploads).toBeGreaterThanOrEqual(1);
    expect(await readdir(partsDir).catch(() => [])).toEqual([]);
    expect(
      await codeOf(acme.send(new ListPartsCommand({ Bucket: "docs", Key: "mp/abandoned", UploadId }))),
    ).toBe("NoSuchUpload");
  });

  it("presigned GET and PUT work until they expire; a changed one does not", async () => {
    await acme.send(new PutObjectCommand({ Bucket: "docs", Key: "pre/get.txt", Body: "presigned" }));
    const getUrl = await getSignedUrl(acme, new GetObjectCommand({ Bucket: "docs", Key: "pre/get.txt" }), {
      expiresIn: 60,
    });
    const got = await fetch(getUrl);
    expect(got.status).toBe(200);
    expect(got.headers.get("content-security-policy")).toBe("sandbox");
    expect(got.headers.get("x-content-type-options")).toBe("nosniff");
    expect(await got.text()).toBe("presigned");
    const tampered = await fetch(getUrl.replace("pre/get.txt", "pre/other.txt"));
    expect(tampered.status).toBe(403);
    expect(await tampered.text()).toContain("<Code>SignatureDoesNotMatch</Code>");
    const putUrl = await getSignedUrl(acme, new PutObjectCommand({ Bucket: "docs", Key: "pre/put.txt" }), {
      expiresIn: 60,
    });
    const put = await fetch(putUrl, { method: "PUT", body: "uploaded" });
    expect(put.status).toBe(200);
    expect(await text(await acme.send(new GetObjectCommand({ Bucket: "docs", Key: "pre/put.txt" })))).toBe(
      "uploaded",
    );
    const old = await getSignedUrl(acme, new GetObjectCommand({ Bucket: "docs", Key: "pre/get.txt" }), {
      expiresIn: 1,
      signingDate: new Date(Date.now() - 10_000),
    });
    const expired = await fetch(old);
    expect(expired.status).toBe(403);
    expect(await expired.text()).toContain("<Code>AccessDenied</Code>");
  });

  it("virtual-host-style requests under server.s3.domain", async () => {
    const r = await signedRequest("GET", "/vhost.txt", { host: "docs.s3.localhost" });
    expect(r.status).toBe(404);
    expect(r.body).toContain("<Code>NoSuchKey</Code>");
    await acme.send(new PutObjectCommand({ Bucket: "docs", Key: "vhost.txt", Body: "by host" }));
    const ok = await signedRequest("GET", "/vhost.txt", { host: "docs.s3.localhost" });
    expect(ok.status).toBe(200);
    expect(ok.body).toBe("by host");
    const list = await signedRequest("GET", "/?list-type=2&prefix=vhost", { host: "docs.s3.localhost" });
    expect(list.body).toContain("<Key>vhost.txt</Key>");
  });
});

describe("S3 hostile input", () => {
  it("refuses traversal keys, bad bucket names, malformed XML and DTDs; nothing is written", async () => {
    expect(await codeOf(acme.send(new PutObjectCommand({ Bucket: "docs", Key: "a/../b", Body: "x" })))).toBe(
      "InvalidArgument",
    );
    const traversal = await signedRequest("PUT", "/docs/..%2F..%2Fetc%2Fpasswd", { body: Buffer.from("x") });
    expect(traversal.status).toBe(400);
    expect(traversal.body).toContain("<Code>InvalidArgument</Code>");
    const badBucket = await signedRequest("GET", "/..");
    expect(badBucket.body).toContain("<Code>InvalidBucketName</Code>");
    const dtd = Buffer.from(
      '<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x "y">]><Delete><Object><Key>&x;</Key></Object></Delete>',
    );
    const withDtd = await signedRequest("POST", "/docs?delete", {
      body: dtd,
      headers: { "content-md5": createHash("md5").update(dtd).digest("base64") },
    });
    expect(withDtd.status).toBe(400);
    expect(withDtd.body).toContain("<Code>MalformedXML</Code>");
    const garbage = Buffer.from("<Delete><Object><Key>unclosed");
    const broken = await signedRequest("POST", "/docs?delete", { body: garbage });
    expect(broken.body).toContain("<Code>MalformedXML</Code>");
    const keys = (await acme.send(new ListObjectsV2Command({ Bucket: "docs", Prefix: "a/" }))).Contents ?? [];
    expect(keys.map((k) => k.Key)).not.toContain("b");
    expect(await codeOf(acme.send(new GetObjectCommand({ Bucket: "docs", Key: "../../etc/passwd" })))).toBe(
      "InvalidArgument",
    );
  });
});

describe("S3 stalled bodies", () => {
  it("a body that stops arriving closes its connection and stores nothing", async () => {
    await acme.send(new CreateBucketCommand({ Bucket: "stall" }));
    const url = new URL(endpoint);
    const signer = new SignatureV4({
      credentials: { accessKeyId: acmeKey.keyId, secretAccessKey: acmeKey.secret },
      region: "us-east-1",
      service: "s3",
      sha256: Sha256,
      uriEscapePath: false,
    });
    const headers = {
      host: url.host,
      "x-amz-content-sha256": "UNSIGNED-PAYLOAD",
      "content-length": "100",
    };
    const signed = await signer.sign(
      new HttpRequest({ method: "PUT", hostname: url.host, path: "/stall/stalled.bin", headers }),
    );
    const closed = await new Promise<string>((resolve) => {
      const req = request(
        {
          host: url.hostname,
          port: url.port,
          method: "PUT",
          path: "/stall/stalled.bin",
          headers: signed.headers,
        },
        (res) => {
          res.resume();
          res.on("end", () => resolve(`answered ${res.statusCode}`));
        },
      );
      req.on("error", () => resolve("closed"));
      req.write(Buffer.alloc(10));
    });
    expect(closed).toBe("closed");
    expect(await codeOf(acme.send(new HeadObjectCommand({ Bucket: "stall", Key: "stalled.bin" })))).toBe(
      "NotFound",
    );
  });
});

describe("S3 authentication and isolation", () => {
  it("a wrong secret is SignatureDoesNotMatch, an unknown key InvalidAccessKeyId, a skewed clock RequestTimeTooSkewed", async () => {
    const wrong = client(acmeKey.keyId, `${acmeKey.secret.slice(0, -2)}xx`);
    expect(await codeOf(wrong.send(new ListBucketsCommand({})))).toBe("SignatureDoesNotMatch");
    expect(await codeOf(wrong.send(new GetObjectCommand({ Bucket: "docs", Key: "a/hello.txt" })))).toBe(
      "SignatureDoesNotMatch",
    );
    const unknown = client("kk00000000000000000000", acmeKey.secret);
    expect(await codeOf(unknown.send(new ListBucketsCommand({})))).toBe("InvalidAccessKeyId");
    const skewed = await signedRequest("GET", "/", { date: new Date(Date.now() - 3_600_000) });
    expect(skewed.status).toBe(403);
    expect(skewed.body).toContain("<Code>RequestTimeTooSkewed</Code>");
    const anonymous = await fetch(`${endpoint}/docs/a/hello.txt`);
    expect(anonymous.status).toBe(403);
    expect(await anonymous.text()).toContain("<Code>AccessDenied</Code>");
    // A revoked key stops at once.
    const k = await h.kura.tenants.createKey("acme", { scopes: ["read", "write"] });
    const revoked = client(k.keyId, k.secret);
    await revoked.send(new ListBucketsCommand({}));
    await h.kura.tenants.revokeKey("acme", k.keyId);
    expect(await codeOf(revoked.send(new ListBucketsCommand({})))).toBe("InvalidAccessKeyId");
  });

  it("a read-only key reads but cannot write", async () => {
    const k = await h.kura.tenants.createKey("acme", { scopes: ["read"] });
    const reader = client(k.keyId, k.secret);
    expect(await text(await reader.send(new GetObjectCommand({ Bucket: "docs", Key: "a/hello.txt" })))).toBe(
      "hello world",
    );
    expect(await codeOf(reader.send(new PutObjectCommand({ Bucket: "docs", Key: "ro", Body: "x" })))).toBe(
      "AccessDenied",
    );
  });

  it("another tenant's key sees nothing of acme's", async () => {
    expect((await globex.send(new ListBucketsCommand({}))).Buckets ?? []).toEqual([]);
    expect(await codeOf(globex.send(new GetObjectCommand({ Bucket: "docs", Key: "a/hello.txt" })))).toBe(
      "NoSuchBucket",
    );
    expect(await codeOf(globex.send(new ListObjectsV2Command({ Bucket: "docs" })))).toBe("NoSuchBucket");
    await globex.send(new CreateBucketCommand({ Bucket: "docs" }));
    expect(await codeOf(globex.send(new GetObjectCommand({ Bucket: "docs", Key: "a/hello.txt" })))).toBe(
      "NoSuchKey",
    );
    expect((await globex.send(new ListObjectsV2Command({ Bucket: "docs" }))).KeyCount).toBe(0);
    expect(
      await codeOf(
        globex.send(new CopyObjectCommand({ Bucket: "docs", Key: "stolen", CopySource: "docs/a/hello.txt" })),
      ),
    ).toBe("NoSuchKey");
  });

  it("a tenant's storage quota applies: QuotaExceeded, nothing stored, usage unchanged", async () => {
    await small.send(new CreateBucketCommand({ Bucket: "bkt" }));
    await small.send(new PutObjectCommand({ Bucket: "bkt", Key: "fits", Body: randomBytes(4000) }));
    const before = await h.kura.tenant("smallco").usage();
    expect(before.bytes).toBe(4000);
    expect(
      await codeOf(small.send(new PutObjectCommand({ Bucket: "bkt", Key: "big", Body: randomBytes(8000) }))),
    ).toBe("QuotaExceeded");
    expect(await codeOf(small.send(new HeadObjectCommand({ Bucket: "bkt", Key: "big" })))).toBe("NotFound");
    expect((await h.kura.tenant("smallco").usage()).bytes).toBe(4000);
    // Multipart: a part that cannot fit is refused; a completed upload counts like a put.
    const { UploadId } = await small.send(new CreateMultipartUploadCommand({ Bucket: "bkt", Key: "mp" }));
    expect(
      await codeOf(
        small.send(
          new UploadPartCommand({
            Bucket: "bkt",
            Key: "mp",
            UploadId,
            PartNumber: 1,
            Body: randomBytes(8000),
          }),
        ),
      ),
    ).toBe("QuotaExceeded");
    const part = await small.send(
      new UploadPartCommand({ Bucket: "bkt", Key: "mp", UploadId, PartNumber: 1, Body: randomBytes(3000) }),
    );
    await small.send(
      new CompleteMultipartUploadCommand({
        Bucket: "bkt",
        Key: "mp",
        UploadId,
        MultipartUpload: { Parts: [{ PartNumber: 1, ETag: part.ETag }] },
      }),
    );
    const after = await h.kura.tenant("smallco").usage();
    expect([after.bytes, after.objects]).toEqual([7000, before.objects + 1]);
  });
});
