import { afterAll, beforeAll, describe } from "vitest";
import {
  S3RVER_ACCESS_KEY,
  S3RVER_SECRET_KEY,
  type S3rverServer,
  startS3rver,
} from "../support/servers/s3rver.js";
import { blobStoreConformance } from "./blob-store.suite.js";
import { s3ExtraTests } from "./s3-extra.suite.js";
import { type S3TestServer, s3Harness } from "./s3-harness.js";

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
});
