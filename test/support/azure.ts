/** The azure adapter on azurite (`servers/azurite.ts`): store options, and the container behind its back. */
import { azureBlobStore } from "../../src/adapters/blob/azure/index.js";
import { AZURITE_ACCOUNT, AZURITE_KEY, type AzuriteServer } from "./servers/azurite.js";

export function options(server: AzuriteServer, container: string, extra: Record<string, unknown> = {}) {
  return azureBlobStore.parseOptions({
    container,
    account_name: AZURITE_ACCOUNT,
    account_key: AZURITE_KEY,
    endpoint: server.endpoint,
    create_container: true,
    ...extra,
  });
}

/** Direct SDK access to the container, behind the store's back. */
export async function rawContainer(server: AzuriteServer, container: string) {
  const { BlobServiceClient, StorageSharedKeyCredential } = await import("@azure/storage-blob");
  const credential = new StorageSharedKeyCredential(AZURITE_ACCOUNT, AZURITE_KEY);
  return new BlobServiceClient(server.endpoint, credential).getContainerClient(container);
}
