/**
 * The conformance harness for the `s3` adapter, shared by the s3rver and radosgw suites: a
 * random bucket on a server the test file started, a random key prefix, and a raw SDK client
 * to change things behind the store's back.
 */
import { randomBytes } from "node:crypto";
import {
  AbortMultipartUploadCommand,
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from "@aws-sdk/client-s3";
import { s3BlobStore } from "../../src/adapters/blob/s3/index.js";
import { withRetry } from "../../src/layers/retry.js";
import type { BlobCapabilities, BlobStore, BlobStoreDeps } from "../../src/ports/blob-store.js";
import type { BlobHarness } from "./blob-store.suite.js";

export interface S3TestServer {
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** What the server cannot do, declared to the store. */
  capabilityOverrides: Partial<BlobCapabilities>;
  /** Whether the server implements ListMultipartUploads. */
  listsMultipartUploads: boolean;
  /** Server defects the suite should skip over (see `BlobHarness.knownGaps`). */
  knownGaps?: BlobHarness["knownGaps"];
  /** Whether the server stores a path segment longer than 255 bytes (s3rver: no, it crashes). */
  longSegments: boolean;
  /** Whether a range request on an empty object gets an answer (s3rver drops the connection). */
  rangesOnEmptyObjects: boolean;
  /** SSE-KMS key id the server's KMS knows, when it has one. */
  kmsKeyId?: string;
  /** Stored attributes of an object as the server keeps them (radosgw-admin object stat). */
  objectAttributes?(bucket: string, key: string): Promise<Record<string, string>>;
  /** Freeze and thaw the gateway process, so requests hang (for timeouts). */
  pause?(): Promise<void>;
  resume?(): Promise<void>;
  /** Stop and start the server with its data kept (for outages). */
  stop?(): Promise<void>;
  start?(): Promise<void>;
  destroy(): Promise<void>;
}

export function rawClient(server: S3TestServer): S3Client {
  return new S3Client({
    region: "us-east-1",
    endpoint: server.endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
  });
}

export async function createBucket(client: S3Client, tag: string): Promise<string> {
  const bucket = `kura-${tag}-${randomBytes(6).toString("hex")}`;
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
  return bucket;
}

/** Delete everything in the bucket (objects and unfinished uploads), then the bucket. */
export async function emptyAndDeleteBucket(client: S3Client, bucket: string): Promise<void> {
  let token: string | undefined;
  do {
    const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }));
    for (const o of page.Contents ?? [])
      await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: o.Key }));
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  const uploads = await client
    .send(new ListMultipartUploadsCommand({ Bucket: bucket }))
    .catch(() => undefined);
  for (const u of uploads?.Uploads ?? []) {
    await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: u.Key, UploadId: u.UploadId }));
  }
  await client.send(new DeleteBucketCommand({ Bucket: bucket }));
}

/** Store options for `server` and `bucket`, before parsing. */
export function storeOptions(server: S3TestServer, bucket: string, extra: Record<string, unknown> = {}) {
  return {
    bucket,
    endpoint: server.endpoint,
    force_path_style: true,
    access_key_id: server.accessKeyId,
    secret_access_key: server.secretAccessKey,
    request_timeout_ms: 10_000,
    ...extra,
  };
}

/** A harness on `server`; its cleanup removes the bucket, the test file stops the server. */
export async function s3Harness(server: S3TestServer, tag: string): Promise<BlobHarness> {
  const raw = rawClient(server);
  const bucket = await createBucket(raw, tag);
  const prefix = `conf-${randomBytes(4).toString("hex")}/`;
  const options = s3BlobStore.parseOptions(storeOptions(server, bucket, { prefix }));
  const stores: BlobStore[] = [];

  const harness: BlobHarness = {
    knownGaps: {
      maxKeyBytes: `the store prefix ${JSON.stringify(prefix)} takes ${prefix.length} of S3's 1024 key bytes (s3-extra tests a 1024-byte key without a prefix)`,
      ...server.knownGaps,
    },
    create: async (deps: BlobStoreDeps = {}) => {
      const store = await s3BlobStore.create(options, {
        ...deps,
        capabilityOverrides: { ...server.capabilityOverrides, ...deps.capabilityOverrides },
      });
      stores.push(store);
      // BLOB-8: the suite's outage test expects the retry layer in front of the adapter.
      return withRetry(store, { maxRetries: 2, baseDelayMs: 20 });
    },
    corrupt: async (key) => {
      const Key = prefix + key;
      const got = await raw.send(new GetObjectCommand({ Bucket: bucket, Key }));
      const data = Buffer.from(await got.Body!.transformToByteArray());
      data[0] = (data[0] ?? 0) ^ 0xff;
      await raw.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key,
          Body: data,
          ContentType: got.ContentType,
          Metadata: got.Metadata,
        }),
      );
      const head = await raw.send(new HeadObjectCommand({ Bucket: bucket, Key }));
      if (head.Metadata?.kura_sha256 !== got.Metadata?.kura_sha256)
        throw new Error("corrupt() lost kura_sha256");
    },
    cleanup: async () => {
      for (const s of stores) await s.close().catch(() => undefined);
      try {
        await emptyAndDeleteBucket(raw, bucket);
      } finally {
        raw.destroy();
      }
    },
  };
  if (server.listsMultipartUploads) {
    harness.incompleteUploads = async () => {
      const out = await raw.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: prefix }));
      return out.Uploads?.length ?? 0;
    };
  }
  if (server.stop && server.start) {
    harness.stopServer = server.stop;
    harness.startServer = server.start;
  }
  return harness;
}
