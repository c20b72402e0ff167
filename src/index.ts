/**
 * Kura's public library API.
 */

export { BLOB_BACKENDS, blobStoreDefinition } from "./adapters/blob/registry.js";
export { type KuraConfig, redactConfig } from "./config/index.js";
export { sha256Hex } from "./core/checksum.js";
export { ERROR_CODES, type ErrorCode, type ErrorKind, isKuraError, KuraError } from "./core/errors.js";
export { assertValidKey, keyProblem } from "./core/keys.js";
export { buildPresignedUrl, type PresignClaims, verifyPresignedRequest } from "./core/presign.js";
export type {
  AppendInput,
  ContentPart,
  Message,
  MessageContent,
  MessageRef,
  MessageVersion,
} from "./domains/messages.js";
export type { ObjectInfo } from "./domains/objects.js";
export { ContentUrls, parseContentUrl } from "./engine/content-url.js";
export { Kura, type KuraOpenOptions, TenantScope } from "./kura.js";
export { FaultController, type FaultRule, withFaults } from "./layers/fault-injection.js";
export { type BlobOperationEvent, withMetrics } from "./layers/metrics.js";
export { type RetryOptions, withRetry } from "./layers/retry.js";
export { withTimeout } from "./layers/timeout.js";
export { type OpenBlobStoreOptions, openBlobStore } from "./open/blob.js";
export { loadConfig, resolveConfig } from "./open/config.js";
export type * from "./ports/blob-store.js";
