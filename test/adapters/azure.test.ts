/** What the azure adapter does beyond the port's contract, on azurite (started here, on a free port). */
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { azureBlobStore } from "../../src/adapters/blob/azure/index.js";
import { sha256Hex } from "../../src/core/checksum.js";
import { isKuraError } from "../../src/core/errors.js";
import { options, rawContainer } from "../support/azure.js";
import { backendAvailable } from "../support/backends.js";
import { expectOptionProblems, expectPrefixesKept } from "../support/cloud-blob.js";
import {
  AZURITE_ACCOUNT,
  AZURITE_KEY,
  type AzuriteServer,
  azuriteProblem,
  randomContainerName,
  startAzurite,
} from "../support/servers/azurite.js";

const available = backendAvailable("azurite", azuriteProblem());

describe.skipIf(!available)("azure on azurite", () => {
  describe("azure specifics", () => {
    let server: AzuriteServer;
    const container = randomContainerName("extra");

    beforeAll(async () => {
      server = await startAzurite();
    }, 60_000);
    afterAll(async () => {
      await server?.destroy();
    });

    it("keeps a store below its prefix and strips it from listed keys", async () => {
      const { b } = await expectPrefixesKept(
        (prefix) => azureBlobStore.create(options(server, container, { prefix })),
        async () => {
          const names: string[] = [];
          for await (const item of (await rawContainer(server, container)).listBlobsFlat())
            names.push(item.name);
          return names;
        },
      );
      // The presigned URL points below the prefix too.
      const url = (await b.presign("x/1", { method: "GET", expiresIn: 60 })).url;
      expect(url).toContain("/tenant-b/x/1?");
      expect(await (await fetch(url)).text()).toBe("b1");
    });

    it("opens with a connection string", async () => {
      const connection = `DefaultEndpointsProtocol=http;AccountName=${AZURITE_ACCOUNT};AccountKey=${AZURITE_KEY};BlobEndpoint=${server.endpoint};`;
      const store = await azureBlobStore.create(
        azureBlobStore.parseOptions({ container, connection_string: connection, create_container: true }),
      );
      await store.put("cs/one", Buffer.from("via connection string"));
      expect((await store.getBuffer("cs/one")).data.toString()).toBe("via connection string");
      expect(store.capabilities.presign).toBe(true);
    });

    it("deletes keys with spaces, unicode and reserved characters in one batch", async () => {
      const store = await azureBlobStore.create(options(server, container));
      const keys = ["bd/a b", "bd/日本語", "bd/a+b=c&d", "bd/100%", "bd/q?x#y", "bd/😀"];
      await Promise.all(keys.map((k) => store.put(k, Buffer.from(k))));
      expect((await store.list("bd/")).items).toHaveLength(keys.length);
      await store.delete([...keys, "bd/missing"]);
      expect((await store.list("bd/")).items).toEqual([]);
    });

    it("stages a large buffer as blocks and keeps its checksum in the commit", async () => {
      const store = await azureBlobStore.create(
        options(server, container, { multipart_threshold_mb: 1, multipart_chunk_mb: 1 }),
      );
      const data = randomBytes(3 * 1024 * 1024 + 5);
      const put = await store.put("big/buffer", data, { ifNoneMatch: "*" });
      expect(put.sha256).toBe(sha256Hex(data));
      const blocks = await (await rawContainer(server, container))
        .getBlockBlobClient("big/buffer")
        .getBlockList("committed");
      expect(blocks.committedBlocks?.length).toBe(4);
      expect((await store.head("big/buffer")).sha256).toBe(put.sha256);
      await expect(store.put("big/buffer", data, { ifNoneMatch: "*" })).rejects.toMatchObject({
        code: "BLOB_ALREADY_EXISTS",
      });
    });

    it("reports a missing container, a wrong key and a closed store clearly", async () => {
      const missing = await azureBlobStore.create(
        options(server, "kura-never-created", { create_container: false }),
      );
      await expect(missing.head("a")).rejects.toMatchObject({ code: "BLOB_BUCKET_NOT_FOUND" });
      await expect(missing.put("a", Buffer.from("x"))).rejects.toMatchObject({
        code: "BLOB_BUCKET_NOT_FOUND",
      });
      const wrongKey = await azureBlobStore
        .create(options(server, container, { account_key: Buffer.from("not the key").toString("base64") }))
        .catch((e: unknown) => e);
      // create_container already talks to the service.
      expect(isKuraError(wrongKey) && wrongKey.code).toBe("BLOB_ACCESS_DENIED");
      const store = await azureBlobStore.create(options(server, container));
      await store.close();
      await expect(store.head("a")).rejects.toMatchObject({ code: "CLOSED" });
    });

    it("reports every option problem at once", () => {
      expectOptionProblems(
        () =>
          azureBlobStore.parseOptions({
            container: "Bad_Name",
            account_name: "dev",
            multipart_chunk_mb: 0,
            extra: 1,
          }),
        ["storage.options.container", "storage.options.account_key", "storage.options.multipart_chunk_mb"],
      );
      expect(() =>
        azureBlobStore.parseOptions({
          container: "abc",
          connection_string: "x",
          account_name: "dev",
          account_key: "k",
        }),
      ).toThrow(/not both/);
    });
  });
});
