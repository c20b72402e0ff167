import { mkdir, mkdtemp, open, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
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

describe("fs: puts of fresh keys", () => {
  let base: string;
  let store: BlobStore;
  const points: string[] = [];
  beforeAll(async () => {
    base = await mkdtemp(join(tmpdir(), "kura-fs-fresh-"));
    store = await fsBlobStore.create(fsBlobStore.parseOptions({ base_path: base }), {
      durability: "os",
      probe: (point) => {
        points.push(point);
      },
    });
  });
  afterAll(async () => {
    await store.close();
    await rm(base, { recursive: true, force: true });
  });

  it("creates the file in place: no temp file, no rename", async () => {
    points.length = 0;
    await store.put("t/2026/m-1.json", Buffer.from('{"a":1}'), { freshKey: true });
    expect(points).toContain("fs.create");
    expect(points).not.toContain("fs.rename");
    expect(await readdir(join(base, "~kura", "tmp"))).toEqual([]);
    expect((await store.getBuffer("t/2026/m-1.json")).data.toString()).toBe('{"a":1}');
  });

  it("never replaces an existing object: BLOB_ALREADY_EXISTS, the first body stays", async () => {
    await store.put("t/2026/m-2.json", Buffer.from("first"));
    await expect(
      store.put("t/2026/m-2.json", Buffer.from("second"), { freshKey: true }),
    ).rejects.toMatchObject({
      code: "BLOB_ALREADY_EXISTS",
    });
    expect((await store.getBuffer("t/2026/m-2.json")).data.toString()).toBe("first");
  });

  it("lists a body cut short by a crash (so GC finds it) and refuses to read it", async () => {
    const { dir, file } = keyPath(base, "t/cut/m-4.json");
    await mkdir(dir, { recursive: true });
    await writeFile(file, '{"content":"half');
    const listed = (await store.list("t/cut/")).items;
    expect(listed.map((i) => [i.key, i.sha256])).toEqual([["t/cut/m-4.json", undefined]]);
    await expect(store.getBuffer("t/cut/m-4.json")).rejects.toMatchObject({ code: "BLOB_METADATA_CORRUPT" });
    await store.delete(["t/cut/m-4.json"]);
    expect((await store.list("t/cut/")).items).toEqual([]);
  });

  it("a put that fails after creating its file removes it", async () => {
    const failing = await fsBlobStore.create(fsBlobStore.parseOptions({ base_path: base }), {
      durability: "fsync",
      probe: (point) => {
        if (point === "fs.fsync.dir") throw new Error("injected");
      },
    });
    await expect(failing.put("t/2026/m-3.json", Buffer.from("x"), { freshKey: true })).rejects.toThrow();
    await expect(store.head("t/2026/m-3.json")).rejects.toMatchObject({ code: "BLOB_NOT_FOUND" });
    await failing.close();
  });
});
