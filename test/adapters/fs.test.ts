/** What the fs adapter does beyond the port's contract: puts of fresh keys. */
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fsBlobStore } from "../../src/adapters/blob/fs/index.js";
import { keyPath } from "../../src/adapters/blob/fs/layout.js";
import type { BlobStore } from "../../src/ports/blob-store.js";

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
