/**
 * What the `s3` adapter promises beyond the shared BlobStore suite: the store prefix, S3's key
 * limit, the checksum recorded after multipart uploads, server-side encryption, batch deletes,
 * and how transport and service failures are reported. Run against each S3 test server; a
 * test that needs something the server lacks says so when it skips.
 */
import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import {
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  type S3Client,
} from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { s3BlobStore } from "../../src/adapters/blob/s3/index.js";
import { collect, sha256Hex } from "../../src/core/checksum.js";
import { isKuraError, type KuraError } from "../../src/core/errors.js";
import { withRetry } from "../../src/layers/retry.js";
import type { BlobStore, BlobStoreDeps } from "../../src/ports/blob-store.js";
import { freePort } from "../support/servers/net.js";
import {
  createBucket,
  emptyAndDeleteBucket,
  rawClient,
  type S3TestServer,
  storeOptions,
} from "./s3-harness.js";

const MIB = 1024 * 1024;

async function failure(p: Promise<unknown>): Promise<KuraError> {
  try {
    await p;
  } catch (e) {
    if (!isKuraError(e)) throw new Error(`expected a KuraError, got ${String(e)}`, { cause: e });
    return e;
  }
  throw new Error("expected a failure, but it succeeded");
}

async function* chunksOf(data: Buffer, chunk: number): AsyncGenerator<Buffer> {
  for (let i = 0; i < data.length; i += chunk) yield data.subarray(i, i + chunk);
}

/** Yields `bytes` and then fails, like a client that goes away mid-upload. */
function failingStream(bytes: number): Readable {
  let sent = 0;
  return new Readable({
    read() {
      if (sent >= bytes) return this.destroy(new Error("client went away"));
      const n = Math.min(256 * 1024, bytes - sent);
      sent += n;
      this.push(randomBytes(n));
    },
  });
}

/** An endless slow stream, for abort tests. */
async function* endless(): AsyncGenerator<Buffer> {
  for (;;) {
    yield randomBytes(MIB);
    await new Promise((r) => setTimeout(r, 5));
  }
}

export function s3ExtraTests(name: string, getServer: () => S3TestServer): void {
  describe(`s3 adapter specifics: ${name}`, { timeout: 120_000 }, () => {
    let server: S3TestServer;
    let raw: S3Client;
    let bucket: string;
    const stores: BlobStore[] = [];

    /** The adapter itself, without layers: what it reports before any retry. */
    async function bareStore(
      extra: Record<string, unknown> = {},
      deps: BlobStoreDeps = {},
    ): Promise<BlobStore> {
      const s = await s3BlobStore.create(s3BlobStore.parseOptions(storeOptions(server, bucket, extra)), {
        capabilityOverrides: server.capabilityOverrides,
        ...deps,
      });
      stores.push(s);
      return s;
    }

    /**
     * The adapter behind the retry layer, as Kura runs it (s3rver answers some concurrent
     * DeleteObjects with a 500 that a retry clears).
     */
    async function store(extra: Record<string, unknown> = {}): Promise<BlobStore> {
      return withRetry(await bareStore(extra), { maxRetries: 2, baseDelayMs: 20 });
    }

    const rawHead = (key: string) => raw.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    const rawKeys = async (prefix: string) =>
      ((await raw.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }))).Contents ?? []).map(
        (o) => o.Key,
      );
    const uploadsUnder = async (prefix: string) =>
      (await raw.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: prefix }))).Uploads?.length ??
      0;

    beforeAll(async () => {
      server = getServer();
      raw = rawClient(server);
      bucket = await createBucket(raw, "extra");
    });

    afterAll(async () => {
      for (const s of stores) await s.close();
      try {
        await emptyAndDeleteBucket(raw, bucket);
      } finally {
        raw.destroy();
      }
    }, 120_000);

    describe("prefix and keys", () => {
      it("reports its location as bucket or bucket/prefix", async () => {
        expect((await store()).location).toBe(bucket);
        expect((await store({ prefix: "a/b" })).location).toBe(`${bucket}/a/b`);
        expect((await store({ prefix: "a/b/" })).location).toBe(`${bucket}/a/b`);
      });

      it("keeps a store inside its prefix and strips it from keys", async () => {
        const a = await store({ prefix: "iso-a" });
        const b = await store({ prefix: "iso-b/" });
        await a.put("x/1", Buffer.from("one"));
        await a.copy("x/1", "x/2");
        expect(await rawKeys("iso-a/")).toEqual(["iso-a/x/1", "iso-a/x/2"]);
        expect((await a.list("")).items.map((i) => i.key)).toEqual(["x/1", "x/2"]);
        expect((await a.head("x/2")).key).toBe("x/2");
        expect(await b.list("")).toEqual({ items: [], cursor: undefined });
        expect(await b.exists("x/1")).toBe(false);
        await a.delete(["x/1", "x/2"]);
        expect(await rawKeys("iso-a/")).toEqual([]);
      });

      it("refuses a key the prefix pushes past S3's 1024 bytes, before sending it", async () => {
        const s = await store({ prefix: "long-pfx" });
        const key = `k/${"é".repeat(511)}`;
        expect(Buffer.byteLength(key)).toBe(1024);
        expect((await failure(s.put(key, Buffer.from("x")))).code).toBe("KEY_INVALID");
        expect((await failure(s.head(key))).code).toBe("KEY_INVALID");
        expect(await rawKeys("long-pfx/")).toEqual([]);
      });

      it("stores a 1024-byte key without a prefix", async (ctx) => {
        if (!server.longSegments) return ctx.skip("the server cannot store a 1022-byte path segment");
        const s = await store();
        const key = `k/${"é".repeat(511)}`;
        await s.put(key, Buffer.from("long"));
        expect((await s.getBuffer(key)).data.toString()).toBe("long");
        await s.delete(key);
      });

      it("cursors belong to the listing that made them", async () => {
        const s = await store({ prefix: `cur-${randomBytes(3).toString("hex")}` });
        await Promise.all(["a/1", "a/2", "a/3", "b/1"].map((k) => s.put(k, Buffer.from(k))));
        const page = await s.list("a/", { limit: 1 });
        expect(page.cursor).toBeDefined();
        expect((await failure(s.list("b/", { cursor: page.cursor! }))).code).toBe("CURSOR_INVALID");
      });
    });

    describe("multipart", () => {
      it("records the SHA-256, content type and metadata of a multipart upload", async () => {
        const s = await store({ prefix: "mpx" });
        const data = randomBytes(11 * MIB);
        const put = await s.put("big.bin", chunksOf(data, 700_001), {
          contentType: "video/x-test",
          metadata: { owner: "b2", kura_like: "yes" },
        });
        expect(put.sha256).toBe(sha256Hex(data));
        const head = await s.head("big.bin");
        expect(head).toMatchObject({ size: data.length, sha256: put.sha256, contentType: "video/x-test" });
        expect(head.metadata).toEqual({ owner: "b2", kura_like: "yes" });
        expect(head.etag).toBe(put.etag);
        const rawMeta = (await rawHead("mpx/big.bin")).Metadata ?? {};
        expect(rawMeta.kura_sha256 ?? rawMeta["kura-sha256"]).toBe(put.sha256);
        if (server.listsMultipartUploads) expect(await uploadsUnder("mpx/")).toBe(0);
      });

      it("refuses a conditional multipart create over an existing key, leaving it as it was", async () => {
        const s = await store({ prefix: "mpc" });
        await s.put("taken", Buffer.from("original"));
        const err = await failure(s.put("taken", chunksOf(randomBytes(9 * MIB), MIB), { ifNoneMatch: "*" }));
        expect(err.code).toBe("BLOB_ALREADY_EXISTS");
        expect((await s.getBuffer("taken")).data.toString()).toBe("original");
        const fresh = randomBytes(9 * MIB);
        await s.put("free", chunksOf(fresh, MIB), { ifNoneMatch: "*" });
        expect((await s.getBuffer("free")).data.equals(fresh)).toBe(true);
        if (server.listsMultipartUploads) expect(await uploadsUnder("mpc/")).toBe(0);
      });

      it("stops a put when its signal aborts, leaving no object and no parts", async () => {
        const s = await store({ prefix: "abort" });
        const controller = new AbortController();
        setTimeout(() => controller.abort(), 400);
        const err = await failure(s.put("never.bin", endless(), { signal: controller.signal }));
        expect(err.code).toBe("OPERATION_ABORTED");
        expect(await s.exists("never.bin")).toBe(false);
        if (server.listsMultipartUploads) expect(await uploadsUnder("abort/")).toBe(0);
      });

      it("reports a failing body stream as OPERATION_ABORTED, not retryable", async () => {
        const s = await store({ prefix: "failing" });
        for (const bytes of [100_000, 12 * MIB]) {
          const err = await failure(s.put("f.bin", failingStream(bytes)));
          expect(err).toMatchObject({ code: "OPERATION_ABORTED", retryable: false });
        }
        expect(await rawKeys("failing/")).toEqual([]);
      });
    });

    describe("conditional create without server support", () => {
      it("checks for an existing object first when the server ignores If-None-Match", async (ctx) => {
        if (server.capabilityOverrides.conditionalCreate !== false) {
          return ctx.skip("the server honours If-None-Match (the conformance suite races it)");
        }
        const s = await store({ prefix: "ccx" });
        await s.put("once", Buffer.from("a"), { ifNoneMatch: "*" });
        expect((await failure(s.put("once", Buffer.from("b"), { ifNoneMatch: "*" }))).code).toBe(
          "BLOB_ALREADY_EXISTS",
        );
        expect((await s.getBuffer("once")).data.toString()).toBe("a");
      });
    });

    describe("reads and deletes", () => {
      it("serves range 0- of an empty object as empty, and refuses start 1", async () => {
        const s = await store({ prefix: "empty" });
        await s.put("zero", Buffer.alloc(0));
        // A bounded range on an empty object gets a 416 from S3, which the adapter answers itself.
        const ranges = server.rangesOnEmptyObjects ? [{ start: 0 }, { start: 0, end: 10 }] : [{ start: 0 }];
        for (const range of ranges) {
          const r = await s.get("zero", { range });
          expect((await collect(r.body)).length).toBe(0);
        }
        expect((await failure(s.get("zero", { range: { start: 1 } }))).code).toBe("RANGE_INVALID");
      });

      it("deletes more than 1000 keys in batches", async () => {
        const s = await store({ prefix: "batch" });
        const keys = Array.from({ length: 1003 }, (_, i) => `k/${String(i).padStart(4, "0")}`);
        for (let i = 0; i < keys.length; i += 50) {
          await Promise.all(keys.slice(i, i + 50).map((k) => s.put(k, Buffer.from(k))));
        }
        let seen = 0;
        let cursor: string | undefined;
        do {
          const page = await s.list("k/", cursor ? { cursor } : {});
          seen += page.items.length;
          cursor = page.cursor;
        } while (cursor);
        expect(seen).toBe(1003);
        await s.delete([...keys, "k/missing"]);
        expect((await s.list("k/")).items).toEqual([]);
      });
    });

    describe("failures", () => {
      it("reports a refused connection as retryable BLOB_BACKEND_UNAVAILABLE (no retry layer)", async () => {
        const port = await freePort();
        const s = await bareStore({ endpoint: `http://127.0.0.1:${port}` });
        for (const call of [() => s.head("a"), () => s.put("a", Buffer.from("x")), () => s.list("")]) {
          expect(await failure(call())).toMatchObject({
            code: "BLOB_BACKEND_UNAVAILABLE",
            kind: "Unavailable",
            retryable: true,
          });
        }
      });

      it("reports a missing bucket as BLOB_BUCKET_NOT_FOUND", async () => {
        const s = await bareStore({ bucket: `kura-missing-${randomBytes(4).toString("hex")}` });
        expect((await failure(s.put("a", Buffer.from("x")))).code).toBe("BLOB_BUCKET_NOT_FOUND");
        expect((await failure(s.list(""))).code).toBe("BLOB_BUCKET_NOT_FOUND");
      });

      it("reports wrong credentials as BLOB_ACCESS_DENIED", async (ctx) => {
        if (server.capabilityOverrides.presignEnforced === false)
          return ctx.skip("the server checks no signatures");
        const s = await bareStore({ secret_access_key: "not-the-secret" });
        for (const call of [() => s.put("a", Buffer.from("x")), () => s.list(""), () => s.get("a")]) {
          expect(await failure(call())).toMatchObject({ code: "BLOB_ACCESS_DENIED", retryable: false });
        }
      });

      it("times out a request the server does not answer", async (ctx) => {
        if (!server.pause || !server.resume) return ctx.skip("the harness cannot freeze this server");
        const s = await bareStore({ request_timeout_ms: 1000 });
        await server.pause();
        try {
          const started = Date.now();
          const err = await failure(s.head("anything"));
          expect(err).toMatchObject({ code: "BLOB_BACKEND_UNAVAILABLE", retryable: true });
          expect(Date.now() - started).toBeLessThan(5000);
        } finally {
          await server.resume();
        }
      });
    });

    describe("server-side encryption", () => {
      it("asks for SSE-S3 on put and in presigned PUTs", async () => {
        const s = await store({ prefix: "sse-s3", encryption: "sse-s3" });
        const put = await s.put("doc", Buffer.from("secret-ish"));
        expect((await s.getBuffer("doc")).info.sha256).toBe(put.sha256);
        const signed = await s.presign("up", { method: "PUT", expiresIn: 60 });
        expect(signed.headers["x-amz-server-side-encryption"]).toBe("AES256");
        if (server.objectAttributes) {
          // radosgw 16 records the request's SSE header with the object (it has no SSE-S3 keys).
          const attrs = await server.objectAttributes(bucket, "sse-s3/doc");
          expect(attrs["user.rgw.x-amz-server-side-encryption"]).toBe("AES256");
        }
      });

      it("encrypts with SSE-KMS through put, multipart, copy and presigned PUT", async (ctx) => {
        if (!server.kmsKeyId) return ctx.skip("the server has no KMS");
        const s = await store({ prefix: "sse-kms", encryption: "sse-kms", kms_key_id: server.kmsKeyId });
        const expectKms = async (key: string) => {
          const head = await rawHead(`sse-kms/${key}`);
          expect(head.ServerSideEncryption).toBe("aws:kms");
          expect(head.SSEKMSKeyId).toBe(server.kmsKeyId);
        };
        await s.put("small", Buffer.from("kms"));
        await expectKms("small");
        const big = randomBytes(9 * MIB);
        await s.put("big", chunksOf(big, MIB));
        await expectKms("big");
        expect((await s.getBuffer("big")).data.equals(big)).toBe(true);
        await s.copy("small", "copied");
        await expectKms("copied");
        const signed = await s.presign("uploaded", {
          method: "PUT",
          expiresIn: 60,
          contentType: "text/plain",
        });
        const res = await fetch(signed.url, { method: "PUT", body: "via url", headers: signed.headers });
        expect(res.status).toBeLessThan(300);
        await expectKms("uploaded");
      });

      it("reports a KMS key the server does not know clearly, without retrying", async (ctx) => {
        if (!server.kmsKeyId) return ctx.skip("the server has no KMS");
        const s = await bareStore({ prefix: "sse-bad", encryption: "sse-kms", kms_key_id: "no-such-key" });
        const err = await failure(s.put("x", Buffer.from("x")));
        // radosgw answers 403 InvalidAccessKeyId ("Failed to retrieve the actual key, kms-keyid: …");
        // AWS answers 400 KMS.NotFoundException.
        expect(["BLOB_ACCESS_DENIED", "BLOB_BACKEND_ERROR"]).toContain(err.code);
        expect(err.retryable).toBe(false);
        expect(err.message).toMatch(/kms|key/i);
        expect(await rawKeys("sse-bad/")).toEqual([]);
      });
    });
  });
}
