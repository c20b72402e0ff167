/** What the fs adapter does beyond the port's contract: puts of fresh keys. */
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
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

describe("fs: batch puts (putMany)", () => {
  let base: string;
  const open = (options: Record<string, unknown>, durability: "os" | "fsync" = "os", points?: string[]) =>
    fsBlobStore.create(fsBlobStore.parseOptions({ base_path: base, ...options }), {
      durability,
      ...(points ? { probe: (point: string) => void points.push(point) } : {}),
    });
  const batch = (prefix: string, n: number, size = 300) =>
    Array.from({ length: n }, (_, i) => ({
      key: `${prefix}/${i}.json`,
      body: Buffer.alloc(size, 97 + (i % 26)),
    }));
  beforeAll(async () => {
    base = await mkdtemp(join(tmpdir(), "kura-fs-many-"));
  });
  afterAll(async () => {
    await rm(base, { recursive: true, force: true });
  });

  it("creates the files in place, with no temp file, once per body", async () => {
    const points: string[] = [];
    const store = await open({}, "os", points);
    try {
      const items = batch("w/ok", 25);
      await store.putMany?.(items);
      expect(points.filter((p) => p === "fs.create")).toHaveLength(25);
      expect(points).not.toContain("fs.rename");
      expect(await readdir(join(base, "~kura", "tmp"))).toEqual([]);
      expect((await readdir(keyPath(base, "w/ok/0.json").dir)).length).toBe(25);
    } finally {
      await store.close();
    }
  });

  it("removes the files it created when one of the batch cannot be created", async () => {
    const store = await open({});
    try {
      const items = batch("w/half", 12);
      // The eighth file's path is taken by a directory: the writer fails there, after seven files.
      await mkdir(keyPath(base, "w/half/7.json").file, { recursive: true });
      const err = await store.putMany?.(items).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: "BLOB_ALREADY_EXISTS" });
      expect((await readdir(keyPath(base, "w/half/0.json").dir)).sort()).toEqual([
        basename(keyPath(base, "w/half/7.json").file),
      ]);
    } finally {
      await store.close();
    }
  });

  it("puts each body on its own above sync_io_max_bytes and with fsync, all or nothing all the same", async () => {
    for (const [options, durability] of [
      [{ sync_io_max_bytes: 100 }, "os"],
      [{}, "fsync"],
    ] as const) {
      const points: string[] = [];
      const store = await open(options, durability, points);
      try {
        const prefix = `w/each-${durability}`;
        const items = batch(prefix, 10);
        await store.put(`${prefix}/4.json`, Buffer.from("first"));
        await expect(store.putMany?.(items)).rejects.toMatchObject({ code: "BLOB_ALREADY_EXISTS" });
        expect((await store.list(`${prefix}/`)).items.map((i) => i.key)).toEqual([`${prefix}/4.json`]);
        expect((await store.getBuffer(`${prefix}/4.json`)).data.toString()).toBe("first");
        await store.delete(`${prefix}/4.json`);
        const results = await store.putMany?.(items);
        expect(results?.map((r) => r.size)).toEqual(items.map((i) => i.body.length));
        if (durability === "fsync") expect(points).toContain("fs.fsync.file");
      } finally {
        await store.close();
      }
    }
  });

  it("a closed store refuses a batch with CLOSED and its writer thread is gone", async () => {
    const store = await open({});
    await store.putMany?.(batch("w/closed", 3));
    await store.close();
    await expect(store.putMany?.(batch("w/closed2", 3))).rejects.toMatchObject({ code: "CLOSED" });
  });
});
