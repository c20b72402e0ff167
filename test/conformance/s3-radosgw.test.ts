import { describe } from "vitest";
import { backendAvailable } from "../support/backends.js";
import {
  RADOSGW_ACCESS_KEY,
  RADOSGW_SECRET_KEY,
  radosgwProblem,
  startRadosgw,
} from "../support/servers/radosgw.js";
import { blobStoreConformance } from "./blob-store.suite.js";
import { s3Harness } from "./s3-harness.js";

const available = backendAvailable("s3-radosgw", radosgwProblem());

// radosgw is the proof for S3: it checks SigV4 (presigned URLs), honours If-None-Match on PUT
// and implements multipart uploads and their listing. The outage test stops only the gateway.
describe.skipIf(!available)("s3 on radosgw", () => {
  blobStoreConformance("s3 (radosgw)", () =>
    s3Harness(async () => {
      const server = await startRadosgw();
      return {
        endpoint: server.endpoint,
        accessKeyId: RADOSGW_ACCESS_KEY,
        secretAccessKey: RADOSGW_SECRET_KEY,
        capabilityOverrides: {},
        listsMultipartUploads: true,
        stop: server.stopGateway,
        start: server.startGateway,
        destroy: server.destroy,
      };
    }, "rgw"),
  );
});
