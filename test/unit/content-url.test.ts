import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ContentUrls, parseContentUrl } from "../../src/engine/content-url.js";
import { openBlobStore } from "../../src/open/blob.js";
import type { BlobStore } from "../../src/ports/blob-store.js";

describe("content URLs (MSG-6)", () => {
  let base: string;
  let fs: BlobStore;
  let mem: BlobStore;
  let urls: ContentUrls;

  beforeAll(async () => {
    base = await mkdtemp(join(tmpdir(), "kura-url-"));
    fs = await openBlobStore({ backend: "fs", options: { base_path: base } });
    mem = await openBlobStore({ backend: "memory", options: { name: "scratch" } });
    urls = new ContentUrls({ primary: fs, scratch: mem });
    await fs.put("t1/messages/2026/11/23/c1/m1.json", Buffer.from('{"content":"hi"}'));
    await fs.put("t2/objects/secret", Buffer.from("tenant two"));
    await mem.put("t1/a b/ü?#", Buffer.from("odd key"));
  });
  afterAll(async () => {
    await rm(base, { recursive: true, force: true });
  });

  it("formats the seed's local:// URL and reads it back for the owning tenant", async () => {
    const url = urls.urlFor("primary", "t1/messages/2026/11/23/c1/m1.json");
    expect(url).toBe("local://storage/t1/messages/2026/11/23/c1/m1.json");
    expect((await urls.read(url, "t1")).toString()).toBe('{"content":"hi"}');
  });

  it("round-trips keys that need escaping", async () => {
    const url = urls.urlFor("scratch", "t1/a b/ü?#");
    expect(url).toBe("memory://scratch/t1/a%20b/%C3%BC%3F%23");
    expect((await urls.read(url, "t1")).toString()).toBe("odd key");
  });

  it("parses every supported scheme", () => {
    expect(parseContentUrl("s3://bucket/p/k.json")).toEqual({
      scheme: "s3",
      bucket: "bucket",
      path: "p/k.json",
    });
    expect(parseContentUrl("gs://b/k")).toMatchObject({ scheme: "gs" });
    expect(parseContentUrl("azure://container/k")).toMatchObject({ scheme: "azure", bucket: "container" });
  });

  it("never resolves another tenant's key, an unconfigured store or a hostile URL", async () => {
    await expect(urls.read("local://storage/t2/objects/secret", "t1")).rejects.toMatchObject({
      code: "BLOB_NOT_FOUND",
    });
    expect(() => urls.resolve("s3://other-bucket/t1/x", "t1")).toThrow(
      expect.objectContaining({ code: "URL_STORE_UNKNOWN" }),
    );
    for (const bad of [
      "local://storage/t1/../t2/objects/secret",
      "local://storage/t1/%2e%2e/t2/objects/secret",
      "local://storage/t1%2F..%2Ft2/objects/secret",
      "http://example.com/t1/x",
      "local://storage",
      "local://storage/t1/x?y=1",
      "local://storage/t1/%E0%A4%A",
      "file:///etc/passwd",
    ]) {
      expect(() => urls.resolve(bad, "t1"), bad).toThrow(
        expect.objectContaining({ kind: expect.stringMatching(/InvalidArgument|NotFound/) }),
      );
    }
    expect(() => urls.resolve("local://storage/t1/x", "../t2")).toThrow(
      expect.objectContaining({ code: "INVALID_ARGUMENT" }),
    );
  });
});
