import { describe, expect, it } from "vitest";
import { s3BlobStore } from "../../src/adapters/blob/s3/index.js";
import { isKuraError } from "../../src/core/errors.js";

function problems(raw: unknown): { path: string; message: string }[] {
  try {
    s3BlobStore.parseOptions(raw);
  } catch (e) {
    if (!isKuraError(e) || e.code !== "CONFIG_INVALID") throw e;
    return e.context.problems as { path: string; message: string }[];
  }
  throw new Error("expected CONFIG_INVALID");
}

describe("s3 options", () => {
  it("fills in the documented defaults", () => {
    expect(s3BlobStore.parseOptions({ bucket: "my-bucket" })).toEqual({
      bucket: "my-bucket",
      region: "us-east-1",
      force_path_style: false,
      prefix: "",
      credentials: "default_chain",
      multipart_threshold_mb: 8,
      multipart_chunk_mb: 8,
      encryption: "none",
      request_timeout_ms: 30_000,
    });
  });

  it("uses static credentials when keys are given, and does not imply path style from an endpoint", () => {
    const o = s3BlobStore.parseOptions({
      bucket: "b-1",
      endpoint: "http://127.0.0.1:7480",
      access_key_id: "AK",
      secret_access_key: "SK",
      prefix: "kura/prod",
    });
    expect(o).toMatchObject({ credentials: "static", force_path_style: false, prefix: "kura/prod/" });
  });

  it("lists every problem of a bad config at once", () => {
    const found = problems({
      bucket: "Bad_Bucket",
      endpoint: "ftp://example.com",
      encryption: "sse-kms",
      multipart_chunk_mb: 4,
      multipart_threshold_mb: 0,
      request_timeout_ms: 5,
      access_key_id: "AK",
      prefix: "../escape",
      colour: "blue",
    });
    const paths = found.map((p) => p.path).sort();
    expect(paths).toEqual(
      [
        "storage.options.bucket",
        "storage.options.colour",
        "storage.options.endpoint",
        "storage.options.kms_key_id",
        "storage.options.multipart_chunk_mb",
        "storage.options.multipart_threshold_mb",
        "storage.options.prefix",
        "storage.options.request_timeout_ms",
        "storage.options.secret_access_key",
      ].sort(),
    );
    expect(found.find((p) => p.path === "storage.options.kms_key_id")?.message).toMatch(/sse-kms/);
  });

  it("reports cross-field problems even when the bucket is missing", () => {
    const paths = problems({ encryption: "sse-kms", multipart_chunk_mb: 3 }).map((p) => p.path);
    expect(paths).toContain("storage.options.bucket");
    expect(paths).toContain("storage.options.kms_key_id");
    expect(paths).toContain("storage.options.multipart_chunk_mb");
  });

  it("refuses credential settings that contradict each other", () => {
    expect(problems({ bucket: "abc", credentials: "static" }).map((p) => p.path)).toEqual([
      "storage.options.access_key_id",
    ]);
    expect(
      problems({
        bucket: "abc",
        credentials: "default_chain",
        access_key_id: "AK",
        secret_access_key: "SK",
      }).map((p) => p.path),
    ).toEqual(["storage.options.credentials"]);
    expect(problems({ bucket: "abc", session_token: "T" }).map((p) => p.path)).toEqual([
      "storage.options.session_token",
    ]);
    expect(problems({ bucket: "abc", kms_key_id: "k" }).map((p) => p.path)).toEqual([
      "storage.options.kms_key_id",
    ]);
  });

  it("never echoes a secret in its problems", () => {
    const err = (() => {
      try {
        s3BlobStore.parseOptions({ bucket: "abc", secret_access_key: "TOP-SECRET-VALUE" });
      } catch (e) {
        return e;
      }
    })();
    expect(isKuraError(err)).toBe(true);
    expect(JSON.stringify(err)).not.toContain("TOP-SECRET-VALUE");
    expect(String((err as Error).message)).not.toContain("TOP-SECRET-VALUE");
  });
});
