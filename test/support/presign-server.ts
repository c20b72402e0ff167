/**
 * A minimal HTTP server honouring Kura-signed presigned URLs for a store, built on the same
 * verification primitive `kura serve` uses (core/presign.ts), so the fs adapter's presigned URLs
 * can be exercised with plain `fetch`.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { isKuraError } from "../../src/core/errors.js";
import { verifyPresignedRequest } from "../../src/core/presign.js";
import type { BlobStore } from "../../src/ports/blob-store.js";

export async function startPresignServer(
  getStore: () => BlobStore,
  getSecret: () => Promise<Buffer>,
): Promise<{ url: string; close(): Promise<void> }> {
  const server: Server = createServer(async (req, res) => {
    try {
      const claims = verifyPresignedRequest(await getSecret(), {
        method: req.method ?? "GET",
        url: req.url ?? "/",
      });
      const store = getStore();
      if (claims.method === "GET") {
        const { body, info } = await store.get(claims.key);
        res.writeHead(200, { "content-type": info.contentType, "content-length": info.size });
        body.on("error", () => res.destroy());
        body.pipe(res);
        return;
      }
      const put = await store.put(
        claims.key,
        req,
        claims.contentType ? { contentType: claims.contentType } : {},
      );
      res.writeHead(200, { etag: put.etag ?? "" }).end();
    } catch (e) {
      res.writeHead(isKuraError(e, "PermissionDenied") ? 403 : isKuraError(e, "NotFound") ? 404 : 500).end();
    }
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
