// Over 40 lines: two suites, the port's (which stops and starts azurite) and the timeouts', each on its own.
/**
 * The azure adapter against azurite (started here, on a free port, data under `.cache/tmp`).
 * azurite checks Shared Key and SAS signatures and honours If-None-Match, so no capability is
 * narrowed: conditional creates, SAS expiry and tampering are really tested.
 */
import { randomBytes } from "node:crypto";
import { describe } from "vitest";
import { azureBlobStore } from "../../src/adapters/blob/azure/index.js";
import { withRetry } from "../../src/layers/retry.js";
import type { BlobStore, BlobStoreDeps } from "../../src/ports/blob-store.js";
import { options, rawContainer } from "../support/azure.js";
import { backendAvailable } from "../support/backends.js";
import { azuriteProblem, randomContainerName, startAzurite } from "../support/servers/azurite.js";
import { type BlobHarness, blobStoreConformance } from "./blob-store.suite.js";
import { blobTimeoutTests } from "./blob-timeouts.suite.js";

const available = backendAvailable("azurite", azuriteProblem());

async function harness(): Promise<BlobHarness> {
  const server = await startAzurite();
  const container = randomContainerName("conf");
  const raw = await rawContainer(server, container);
  // The engine always stacks the retry layer on a store; the outage test relies on it.
  const open = async (deps?: BlobStoreDeps): Promise<BlobStore> =>
    withRetry(await azureBlobStore.create(options(server, container), deps), { baseDelayMs: 20 });
  return {
    create: open,
    corrupt: async (key) => {
      const blob = raw.getBlockBlobClient(key);
      const props = await blob.getProperties();
      const size = props.contentLength ?? 0;
      const bytes = randomBytes(Math.max(size, 1));
      await blob.upload(bytes, bytes.length, {
        metadata: props.metadata ?? {},
        blobHTTPHeaders: { blobContentType: props.contentType ?? "application/octet-stream" },
      });
    },
    stopServer: () => server.stop(),
    startServer: () => server.start(),
    cleanup: () => server.destroy(),
  };
}

describe.skipIf(!available)("azure on azurite", () => {
  blobStoreConformance("azure (azurite)", harness);

  blobTimeoutTests("azure (azurite)", async () => {
    const server = await startAzurite();
    const container = randomContainerName("timeouts");
    // A 1 MiB threshold, so the late stall happens while blocks are being staged.
    const store = await azureBlobStore.create(
      options(server, container, { multipart_threshold_mb: 1, multipart_chunk_mb: 1 }),
    );
    return {
      store,
      countsDescriptors: false,
      lateStallBytes: 3 * 1024 * 1024,
      // Committed blobs only: uncommitted blocks of a failed put cannot be removed without
      // committing something visible first (which could replace another writer's object); the
      // service discards them itself (see azure/blocks.ts).
      leftovers: async () => (await store.list("slow/stalled")).items.length,
      cleanup: () => server.destroy(),
    };
  });
});
