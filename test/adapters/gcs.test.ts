/** What the gcs adapter does beyond the port's contract, on the firebase-tools storage emulator. */
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { gcsBlobStore } from "../../src/adapters/blob/gcs/index.js";
import { collect, sha256Hex } from "../../src/core/checksum.js";
import { backendAvailable } from "../support/backends.js";
import { expectOptionProblems, expectPrefixesKept } from "../support/cloud-blob.js";
import { options, rawBucket, withGaps } from "../support/gcs.js";
import { randomContainerName } from "../support/servers/azurite.js";
import { type GcsEmulator, gcsEmulatorProblem, startGcsEmulator } from "../support/servers/gcs-emulator.js";

const available = backendAvailable("gcs-emulator", gcsEmulatorProblem());

describe.skipIf(!available)("gcs on the firebase-tools storage emulator", () => {
  describe("gcs specifics", () => {
    let server: GcsEmulator;
    const bucket = randomContainerName("extra");

    beforeAll(async () => {
      server = await startGcsEmulator();
    }, 60_000);
    afterAll(async () => {
      await server?.destroy();
    });

    it("keeps a store below its prefix and strips it from listed keys", async () => {
      await expectPrefixesKept(
        (prefix) => gcsBlobStore.create(options(server, bucket, { prefix }), withGaps()),
        async () => {
          const [files] = await (await rawBucket(server, bucket)).getFiles({ prefix: "tenant-" });
          return files.map((f) => f.name);
        },
      );
    });

    it("signs V4 URLs that the emulator serves for GET", async () => {
      // Without the presign override: the emulator serves signed GETs (checking nothing).
      const store = await gcsBlobStore.create(options(server, bucket));
      await store.put("ps/get.bin", Buffer.from("signed"));
      const now = Date.now();
      const signed = await store.presign("ps/get.bin", { method: "GET", expiresIn: 120 });
      const url = new URL(signed.url);
      expect(url.origin).toBe(server.endpoint);
      expect(url.pathname).toBe(`/${bucket}/ps/get.bin`);
      expect(url.searchParams.get("X-Goog-Algorithm")).toBe("GOOG4-RSA-SHA256");
      expect(url.searchParams.get("X-Goog-Expires")).toBe("120");
      expect(url.searchParams.get("X-Goog-Signature")).toMatch(/^[0-9a-f]{512}$/);
      expect(Math.abs(signed.expiresAt.getTime() - (now + 120_000))).toBeLessThan(5_000);
      expect(await (await fetch(signed.url)).text()).toBe("signed");
      const put = await store.presign("ps/put.bin", {
        method: "PUT",
        expiresIn: 60,
        contentType: "text/plain",
      });
      expect(put.headers).toEqual({ "content-type": "text/plain" });
      expect(new URL(put.url).searchParams.get("X-Goog-SignedHeaders")).toContain("content-type");
    });

    it("still returns and verifies the checksum of a large stream when metadata cannot hold it", async () => {
      const store = await gcsBlobStore.create(
        options(server, bucket, { multipart_threshold_mb: 1 }),
        withGaps({ capabilityOverrides: { checksumInMetadata: false } }),
      );
      const data = randomBytes(3 * 1024 * 1024 + 7);
      async function* chunks() {
        for (let i = 0; i < data.length; i += 100_000) yield data.subarray(i, i + 100_000);
      }
      const put = await store.put("nm/large", chunks(), { metadata: { owner: "x" } });
      expect(put.sha256).toBe(sha256Hex(data));
      const head = await store.head("nm/large");
      expect(head.sha256).toBeUndefined();
      expect(head.metadata).toEqual({ owner: "x" });
      expect((await store.getBuffer("nm/large", { expectedSha256: put.sha256 })).data.equals(data)).toBe(
        true,
      );
      await expect(store.getBuffer("nm/large", { expectedSha256: sha256Hex("other") })).rejects.toMatchObject(
        {
          code: "BLOB_CHECKSUM_MISMATCH",
        },
      );
      // A streamed read with the capability declared true adds the checksum via a metadata patch.
      const full = await gcsBlobStore.create(
        options(server, bucket, { multipart_threshold_mb: 1 }),
        withGaps(),
      );
      const again = await full.put("nm/patched", chunks());
      expect((await full.head("nm/patched")).sha256).toBe(again.sha256);
      expect((await collect((await full.get("nm/patched")).body)).equals(data)).toBe(true);
    });

    it("still finds the emulator ignoring ifGenerationMatch=0 (why conditionalCreate is narrowed)", async () => {
      const store = await gcsBlobStore.create(options(server, bucket));
      await store.put("cc/one", Buffer.from("first"), { ifNoneMatch: "*" });
      // On GCS this fails with BLOB_ALREADY_EXISTS; the emulator overwrites.
      await store.put("cc/one", Buffer.from("second"), { ifNoneMatch: "*" });
      expect((await store.getBuffer("cc/one")).data.toString()).toBe("second");
    });

    it("refuses keys that the prefix makes too long, and a closed store", async () => {
      const store = await gcsBlobStore.create(options(server, bucket, { prefix: "p" }));
      await expect(store.put(`k/${"é".repeat(511)}`, Buffer.from("x"))).rejects.toMatchObject({
        code: "KEY_INVALID",
      });
      await store.close();
      await expect(store.head("a")).rejects.toMatchObject({ code: "CLOSED" });
    });

    it("reports every option problem at once", () => {
      expectOptionProblems(
        () =>
          gcsBlobStore.parseOptions({
            bucket: "B",
            credentials_file: "/k.json",
            credentials_json: "{not json",
            multipart_chunk_mb: -1,
          }),
        ["storage.options.bucket", "storage.options.credentials_json", "storage.options.multipart_chunk_mb"],
      );
    });
  });
});
