/**
 * The gcs adapter on the firebase-tools storage emulator (`servers/gcs-emulator.ts`): store
 * options with a fake service-account key, the capabilities it lacks, and the bucket behind the
 * store's back.
 */
import { generateKeyPairSync } from "node:crypto";
import { gcsBlobStore } from "../../src/adapters/blob/gcs/index.js";
import type { BlobCapabilities, BlobStoreDeps } from "../../src/ports/blob-store.js";
import type { GcsEmulator } from "./servers/gcs-emulator.js";

// The Google auth library must not probe for a metadata server (there is none here).
process.env.METADATA_SERVER_DETECTION = "none";

const EMULATOR_GAPS: Partial<BlobCapabilities> = {
  conditionalCreate: false,
  presign: false,
  presignEnforced: false,
};

/** A service-account key the emulator never checks, but that V4 signing needs. */
function fakeCredentials(): string {
  const { privateKey } = generateKeyPairSync("rsa", {
    modulusLength: 2048,
    privateKeyEncoding: { type: "pkcs8", format: "pem" },
    publicKeyEncoding: { type: "spki", format: "pem" },
  });
  return JSON.stringify({
    type: "service_account",
    project_id: "demo-kura",
    client_email: "kura-test@demo-kura.iam.gserviceaccount.com",
    private_key: privateKey,
  });
}
const CREDENTIALS = fakeCredentials();

export function options(server: GcsEmulator, bucket: string, extra: Record<string, unknown> = {}) {
  return gcsBlobStore.parseOptions({
    bucket,
    project_id: "demo-kura",
    endpoint: server.endpoint,
    credentials_json: CREDENTIALS,
    ...extra,
  });
}

export function withGaps(deps: BlobStoreDeps = {}): BlobStoreDeps {
  return { ...deps, capabilityOverrides: { ...EMULATOR_GAPS, ...deps.capabilityOverrides } };
}

/** Direct SDK access to the bucket, behind the store's back. */
export async function rawBucket(server: GcsEmulator, bucket: string) {
  const { Storage } = await import("@google-cloud/storage");
  return new Storage({
    apiEndpoint: server.endpoint,
    projectId: "demo-kura",
    useAuthWithCustomEndpoint: false,
  }).bucket(bucket);
}
