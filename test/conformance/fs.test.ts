// Over 40 lines: the port's suite once per durability, with a presign server for its URLs, and the timeouts'.
import { mkdtemp, open, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type FsBlobStore, fsBlobStore } from "../../src/adapters/blob/fs/index.js";
import { keyPath } from "../../src/adapters/blob/fs/layout.js";
import type { BlobStore } from "../../src/ports/blob-store.js";
import { startPresignServer } from "../support/presign-server.js";
import { blobStoreConformance } from "./blob-store.suite.js";
import { blobTimeoutTests } from "./blob-timeouts.suite.js";

for (const durability of ["os", "fsync"] as const) {
  blobStoreConformance(`fs (durability ${durability})`, async () => {
    const base = await mkdtemp(join(tmpdir(), "kura-fs-"));
    let main: BlobStore | undefined;
    const server = await startPresignServer(
      () => main as BlobStore,
      () => (main as FsBlobStore).presignKey(),
    );
    const options = fsBlobStore.parseOptions({ base_path: base, public_url: server.url });
    main = await fsBlobStore.create(options, { durability });
    return {
      create: async (deps) =>
        deps ? fsBlobStore.create(options, { durability, ...deps }) : (main as BlobStore),
      // Flip one byte of the body on disk, leaving the footer (and its checksum) as it was.
      corrupt: async (key) => {
        const handle = await open(keyPath(base, key).file, "r+");
        const byte = Buffer.alloc(1);
        await handle.read(byte, 0, 1, 100);
        byte[0] = (byte[0] as number) ^ 0xff;
        await handle.write(byte, 0, 1, 100);
        await handle.close();
      },
      cleanup: async () => {
        await server.close();
        await rm(base, { recursive: true, force: true });
      },
    };
  });
}

blobTimeoutTests("fs", async () => {
  const base = await mkdtemp(join(tmpdir(), "kura-fs-timeouts-"));
  const store = await fsBlobStore.create(fsBlobStore.parseOptions({ base_path: base }), { durability: "os" });
  return {
    store,
    countsDescriptors: true,
    lateStallBytes: 2 * 1024 * 1024,
    leftovers: async () => (await readdir(join(base, "~kura", "tmp"))).length,
    cleanup: () => rm(base, { recursive: true, force: true }),
  };
});
