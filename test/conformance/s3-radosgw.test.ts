// Over 40 lines: the port's suite and the S3 extras on one radosgw, whose gateway they pause and restart.
import { afterAll, beforeAll, describe } from "vitest";
import { backendAvailable } from "../support/backends.js";
import {
  RADOSGW_ACCESS_KEY,
  RADOSGW_KMS_KEY_ID,
  RADOSGW_SECRET_KEY,
  type RadosgwServer,
  radosgwProblem,
  startRadosgw,
} from "../support/servers/radosgw.js";
import { blobStoreConformance } from "./blob-store.suite.js";
import { s3ExtraTests } from "./s3-extra.suite.js";
import { type S3TestServer, s3Harness } from "./s3-harness.js";

const available = backendAvailable("s3-radosgw", radosgwProblem());

// radosgw is the proof for S3: it checks SigV4 (presigned URLs), honours If-None-Match on PUT,
// implements multipart uploads and their listing, and has a test KMS for SSE-KMS. The outage
// test stops and restarts only the gateway; the cluster behind it keeps the data.
describe.skipIf(!available)("s3 on radosgw", () => {
  let rgw: RadosgwServer | undefined;
  let server: S3TestServer;
  beforeAll(async () => {
    rgw = await startRadosgw();
    server = {
      endpoint: rgw.endpoint,
      accessKeyId: RADOSGW_ACCESS_KEY,
      secretAccessKey: RADOSGW_SECRET_KEY,
      capabilityOverrides: {},
      listsMultipartUploads: true,
      rangesOnEmptyObjects: true,
      longSegments: true,
      kmsKeyId: RADOSGW_KMS_KEY_ID,
      objectAttributes: rgw.objectAttributes,
      pause: rgw.pauseGateway,
      resume: rgw.resumeGateway,
      stop: rgw.stopGateway,
      start: rgw.startGateway,
      destroy: rgw.destroy,
    };
  }, 180_000);
  afterAll(async () => rgw?.destroy(), 60_000);

  blobStoreConformance("s3 (radosgw)", () => s3Harness(server, "rgw"));
  s3ExtraTests("radosgw", () => server);
});
