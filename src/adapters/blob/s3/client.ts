/**
 * `s3` client: loading the AWS SDK, building its client (region, endpoint, path style,
 * credentials, one attempt per call), and the bucket context the reader, writer and lister
 * share (object keys under the store prefix, encryption parameters, error translation).
 */
import type * as S3Sdk from "@aws-sdk/client-s3";
import type * as LibStorage from "@aws-sdk/lib-storage";
import type * as Presigner from "@aws-sdk/s3-request-presigner";
import { translateS3Error } from "./errors.js";
import type { S3Options } from "./options.js";

export interface Sdk {
  s3: typeof S3Sdk;
  Upload: typeof LibStorage.Upload;
  getSignedUrl: typeof Presigner.getSignedUrl;
}

/** Headers and parameters that make S3 encrypt an object as the options ask. */
export interface SseParams {
  ServerSideEncryption?: S3Sdk.ServerSideEncryption;
  SSEKMSKeyId?: string;
}

export async function loadSdk(): Promise<Sdk> {
  const [s3, storage, presigner] = await Promise.all([
    import("@aws-sdk/client-s3"),
    import("@aws-sdk/lib-storage"),
    import("@aws-sdk/s3-request-presigner"),
  ]);
  return { s3, Upload: storage.Upload, getSignedUrl: presigner.getSignedUrl };
}

export function createS3Client(sdk: Sdk, options: S3Options): S3Sdk.S3Client {
  return new sdk.s3.S3Client({
    region: options.region,
    ...(options.endpoint ? { endpoint: options.endpoint } : {}),
    forcePathStyle: options.force_path_style,
    ...(options.credentials === "static"
      ? {
          credentials: {
            accessKeyId: options.access_key_id ?? "",
            secretAccessKey: options.secret_access_key ?? "",
            ...(options.session_token ? { sessionToken: options.session_token } : {}),
          },
        }
      : {}),
    // One attempt per call: Kura's retry layer owns the retry policy.
    maxAttempts: 1,
    // Kura hashes every body itself; SDK-added checksums (aws-chunked trailers) break
    // several S3-compatible servers.
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
    // Options for the SDK's own Node handler (@smithy/node-http-handler): the timeout runs
    // until the response starts, so streaming a large body is not cut off.
    requestHandler: { requestTimeout: options.request_timeout_ms, throwOnRequestTimeout: true },
  });
}

/** The SDK, its client and the bucket a store works in. */
export class S3Bucket {
  readonly bucket: string;
  readonly prefix: string;
  readonly sse: SseParams;

  constructor(
    readonly sdk: Sdk,
    readonly client: S3Sdk.S3Client,
    options: S3Options,
  ) {
    this.bucket = options.bucket;
    this.prefix = options.prefix;
    this.sse =
      options.encryption === "sse-s3"
        ? { ServerSideEncryption: "AES256" }
        : options.encryption === "sse-kms"
          ? {
              ServerSideEncryption: "aws:kms",
              ...(options.kms_key_id ? { SSEKMSKeyId: options.kms_key_id } : {}),
            }
          : {};
  }

  objectKey(key: string): string {
    return this.prefix + key;
  }

  /** `bucket/key` for CopySource, every segment URI-encoded. */
  copySource(key: string): string {
    return `${encodeURIComponent(this.bucket)}/${this.objectKey(key).split("/").map(encodeURIComponent).join("/")}`;
  }

  /** Run one SDK call, translating whatever it throws. */
  async call<T>(operation: string, key: string | undefined, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      throw translateS3Error(e, { operation, bucket: this.bucket, ...(key === undefined ? {} : { key }) });
    }
  }
}

/** ETags in their HTTP form, `"…"`: some servers leave the quotes off in XML bodies. */
export function quoteEtag(etag: string | undefined): string | undefined {
  if (etag === undefined || etag === "" || etag.startsWith('"') || etag.startsWith("W/")) return etag;
  return `"${etag}"`;
}
