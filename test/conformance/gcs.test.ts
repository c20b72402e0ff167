// Over 40 lines: the port's suite stops and starts the emulator, and corrupts bodies behind the store.
/**
 * The gcs adapter against the firebase-tools storage emulator (started here on a free port).
 *
 * Capabilities narrowed for this emulator (`withGaps`, test/support/gcs.ts), and why:
 * - conditionalCreate: it ignores `ifGenerationMatch=0`, so a conditional create overwrites;
 * - presign: it serves GET through a signed URL but has no route for PUT through one (501);
 *   presignEnforced follows (it checks no signatures anyway).
 * The gcs-emulator script forwards the JSON API paths of metadata PATCH and rewriteTo to the
 * emulator's own handlers, so checksums in metadata and server-side copy run for real.
 */
import { randomBytes } from "node:crypto";
import { describe } from "vitest";
import { gcsBlobStore } from "../../src/adapters/blob/gcs/index.js";
import { withRetry } from "../../src/layers/retry.js";
import type { BlobStore, BlobStoreDeps } from "../../src/ports/blob-store.js";
import { backendAvailable } from "../support/backends.js";
import { options, rawBucket, withGaps } from "../support/gcs.js";
import { randomContainerName } from "../support/servers/azurite.js";
import { gcsEmulatorProblem, startGcsEmulator } from "../support/servers/gcs-emulator.js";
import { type BlobHarness, blobStoreConformance } from "./blob-store.suite.js";

const available = backendAvailable("gcs-emulator", gcsEmulatorProblem());

async function harness(): Promise<BlobHarness> {
  const server = await startGcsEmulator();
  // The emulator creates any bucket on first use.
  const bucket = randomContainerName("conf");
  const raw = await rawBucket(server, bucket);
  // The engine always stacks the retry layer on a store; the outage test relies on it.
  const open = async (deps?: BlobStoreDeps): Promise<BlobStore> =>
    withRetry(await gcsBlobStore.create(options(server, bucket), withGaps(deps)), { baseDelayMs: 20 });
  return {
    create: open,
    corrupt: async (key) => {
      const file = raw.file(key);
      const [meta] = await file.getMetadata();
      const bytes = randomBytes(Math.max(Number(meta.size ?? 0), 1));
      await file.save(bytes, {
        resumable: false,
        contentType: meta.contentType ?? "application/octet-stream",
        metadata: { metadata: meta.metadata ?? {} },
      });
    },
    stopServer: () => server.stop(),
    startServer: () => server.start(),
    cleanup: () => server.destroy(),
  };
}

describe.skipIf(!available)("gcs on the firebase-tools storage emulator", () => {
  blobStoreConformance("gcs (firebase emulator)", harness, { timeoutMs: 120_000 });
});
