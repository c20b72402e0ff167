// Over 40 lines: three suites (the port's, the S3 extras, the timeouts') on one s3rver they stop and start.
import { afterAll, beforeAll, describe } from "vitest";
import { s3BlobStore } from "../../src/adapters/blob/s3/index.js";
import {
  S3RVER_ACCESS_KEY,
  S3RVER_SECRET_KEY,
  type S3rverServer,
  startS3rver,
} from "../support/servers/s3rver.js";
import { blobStoreConformance } from "./blob-store.suite.js";
import { blobTimeoutTests } from "./blob-timeouts.suite.js";
import { s3ExtraTests } from "./s3-extra.suite.js";
import {
  createBucket,
  emptyAndDeleteBucket,
  rawClient,
  type S3TestServer,
  s3Harness,
  storeOptions,
} from "./s3-harness.js";

// s3rver checks no signatures and ignores If-None-Match on PUT: those capabilities are declared
// off (the store then checks existence before a conditional put), and radosgw proves them.
describe("s3 on s3rver", () => {
  let s3rver: S3rverServer | undefined;
  let server: S3TestServer;
  beforeAll(async () => {
    s3rver = await startS3rver();
    server = {
      endpoint: s3rver.endpoint,
      accessKeyId: S3RVER_ACCESS_KEY,
      secretAccessKey: S3RVER_SECRET_KEY,
      capabilityOverrides: { presignEnforced: false, conditionalCreate: false },
      listsMultipartUploads: false,
      rangesOnEmptyObjects: false,
      longSegments: false,
      knownGaps: {
        listOrder:
          "s3rver lists in directory-walk order and its continuation tokens skip keys ('a/b' before 'a')",
      },
      stop: s3rver.stop,
      start: s3rver.start,
      destroy: s3rver.destroy,
    };
  }, 60_000);
  afterAll(async () => s3rver?.destroy());

  blobStoreConformance("s3 (s3rver)", () => s3Harness(server, "s3rver"));
  s3ExtraTests("s3rver", () => server);
  blobTimeoutTests("s3 (s3rver)", async () => {
    const raw = rawClient(server);
    const bucket = await createBucket(raw, "timeouts");
    // A 1 MiB threshold, so the late stall happens inside a multipart upload.
    const options = s3BlobStore.parseOptions(storeOptions(server, bucket, { multipart_threshold_mb: 1 }));
    const store = await s3BlobStore.create(options, { capabilityOverrides: server.capabilityOverrides });
    return {
      store,
      countsDescriptors: false,
      lateStallBytes: 3 * 1024 * 1024,
      // s3rver does not list multipart uploads; objects under the test's prefix are what is left.
      leftovers: async () => (await store.list("slow/stalled")).items.length,
      cleanup: async () => {
        await emptyAndDeleteBucket(raw, bucket);
        raw.destroy();
      },
    };
  });
});
