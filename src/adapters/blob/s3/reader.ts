/**
 * `s3` reads: GetObject (whole or a range) with the body verified against the SHA-256 in the
 * object's metadata, HeadObject, and the object's info from either response.
 */
import { PassThrough, type Readable, type Transform } from "node:stream";
import type * as S3Sdk from "@aws-sdk/client-s3";
import { collect, VerifyingStream, verifyBuffer } from "../../../core/checksum.js";
import type { BlobInfo, ByteRange, GetOptions, GetResult } from "../../../ports/blob-store.js";
import { DEFAULT_CONTENT_TYPE, resolveRange, splitMetadata } from "../common.js";
import { quoteEtag, type S3Bucket } from "./client.js";
import { translateS3Error } from "./errors.js";

/** Reads of one bucket; the store has checked the key and that it is open. */
export class S3Reader {
  constructor(private readonly b: S3Bucket) {}

  async get(key: string, options: GetOptions): Promise<GetResult> {
    const { info, body, range } = await this.fetchObject(key, options.range, options.signal);
    if (range) return { info, body: this.guard(key, body, new PassThrough()), range };
    const expected = options.expectedSha256 ?? info.sha256;
    const dest = expected === undefined ? new PassThrough() : new VerifyingStream(expected, key, info.size);
    return { info, body: this.guard(key, body, dest), range: undefined };
  }

  async getBuffer(
    key: string,
    options: Omit<GetOptions, "range">,
  ): Promise<{ info: BlobInfo; data: Buffer }> {
    const { info, body } = await this.fetchObject(key, undefined, options.signal);
    const data = await collect(this.guard(key, body, new PassThrough()));
    verifyBuffer(data, options.expectedSha256 ?? info.sha256, key, "blob.get");
    return { info, data };
  }

  async head(key: string, signal: AbortSignal | undefined): Promise<BlobInfo> {
    const b = this.b;
    const out = await b.call("blob.head", key, () =>
      b.client.send(new b.sdk.s3.HeadObjectCommand({ Bucket: b.bucket, Key: b.objectKey(key) }), {
        abortSignal: signal,
      }),
    );
    return this.info(key, out, out.ContentLength ?? 0);
  }

  /** GetObject, with the object's info and the raw (unverified, untranslated) body stream. */
  private async fetchObject(
    key: string,
    range: ByteRange | undefined,
    signal: AbortSignal | undefined,
  ): Promise<{ info: BlobInfo; body: Readable; range: { start: number; end: number } | undefined }> {
    const b = this.b;
    let out: S3Sdk.GetObjectCommandOutput;
    try {
      out = await b.client.send(
        new b.sdk.s3.GetObjectCommand({
          Bucket: b.bucket,
          Key: b.objectKey(key),
          // Always `bytes=start-[end]`: suffix ranges (`bytes=-N`) are served wrongly by some
          // servers. `bytes=0-` is the whole object: asked for without a Range header, which
          // also spares empty objects S3's 416.
          ...(range && (range.start > 0 || range.end !== undefined)
            ? { Range: `bytes=${range.start}-${range.end ?? ""}` }
            : {}),
        }),
        { abortSignal: signal },
      );
    } catch (e) {
      const error = translateS3Error(e, { operation: "blob.get", bucket: b.bucket, key });
      if (error.code === "RANGE_INVALID" && range) {
        // S3 refuses every range of an empty object; the port allows start 0 there.
        const info = await this.head(key, signal);
        return { info, body: emptyReadable(), range: resolveRange(key, range, info.size) };
      }
      throw error;
    }
    const body = (out.Body as Readable | undefined) ?? emptyReadable();
    const total = out.ContentRange === undefined ? undefined : totalFromContentRange(out.ContentRange);
    const info = this.info(key, out, total ?? out.ContentLength ?? 0);
    return { info, body, range: range ? resolveRange(key, range, info.size) : undefined };
  }

  /**
   * Pipe the SDK's response stream into `dest`, turning a dropped connection into a translated
   * error on `dest` (so a reader never sees a clean end) and releasing the connection when the
   * reader stops early.
   */
  private guard(key: string, source: Readable, dest: Transform): Readable {
    source.once("error", (e) =>
      dest.destroy(translateS3Error(e, { operation: "blob.get", bucket: this.b.bucket, key })),
    );
    dest.once("close", () => {
      if (!source.readableEnded) source.destroy();
    });
    source.pipe(dest);
    return dest;
  }

  private info(
    key: string,
    out: { ContentType?: string; ETag?: string; LastModified?: Date; Metadata?: Record<string, string> },
    size: number,
  ): BlobInfo {
    const { sha256, metadata } = splitMetadata(fromS3Metadata(out.Metadata));
    return {
      key,
      size,
      sha256,
      contentType: out.ContentType ?? DEFAULT_CONTENT_TYPE,
      etag: quoteEtag(out.ETag),
      lastModified: out.LastModified ?? new Date(0),
      metadata,
    };
  }
}

/**
 * Metadata names as Kura wrote them. Some servers (radosgw) return `_` in `x-amz-meta-` names
 * as `-`; Kura's names never contain `-` (see common.ts), so mapping back is lossless.
 */
function fromS3Metadata(raw: Record<string, string> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(raw ?? {})) out[name.toLowerCase().replaceAll("-", "_")] = value;
  return out;
}

function emptyReadable(): Readable {
  const r = new PassThrough();
  r.end();
  return r;
}

/** `bytes 2-5/36` → 36. */
function totalFromContentRange(header: string | undefined): number | undefined {
  const m = header === undefined ? null : /\/(\d+)\s*$/.exec(header);
  return m ? Number(m[1]) : undefined;
}
