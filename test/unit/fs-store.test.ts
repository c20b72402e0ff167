import { mkdir, mkdtemp, readdir, readFile, rm, truncate, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { fsBlobStore } from "../../src/adapters/blob/fs/index.js";
import { keyPath, objectFile } from "../../src/adapters/blob/fs/layout.js";
import type { BlobStore, BlobStoreDeps } from "../../src/ports/blob-store.js";

let base: string;
const open = (deps: BlobStoreDeps = {}) =>
  fsBlobStore.create(fsBlobStore.parseOptions({ base_path: base }), deps);

beforeEach(async () => {
  base = await mkdtemp(join(tmpdir(), "kura-fsu-"));
});
afterEach(async () => {
  await rm(base, { recursive: true, force: true });
});

describe("fs layout", () => {
  it("keeps a key and keys below it apart, and reserved-looking names intact", async () => {
    const store = await open();
    const keys = [
      "a",
      "a/b",
      "x.obj",
      "x.obj/y",
      "x.obj_/z",
      "~tilde",
      "~kura/x",
      "~h-abc",
      `long/${"s".repeat(300)}`,
      `${"d".repeat(250)}/leaf`,
    ];
    for (const k of keys) await store.put(k, Buffer.from(`v:${k}`));
    for (const k of keys) expect((await store.getBuffer(k)).data.toString()).toBe(`v:${k}`);
    const listed = (await store.list("")).items.map((i) => i.key);
    expect(listed).toEqual([...keys].sort((p, q) => Buffer.compare(Buffer.from(p), Buffer.from(q))));
    // The layout stays readable: a message-like key is a plain path.
    expect(keyPath(base, "t1/messages/2026/11/23/c1/m.json").file).toBe(
      join(base, "t1/messages/2026/11/23/c1/m.json.obj"),
    );
  });

  it("finds a key's file by the read-side shortcut exactly where the full encoding puts it", () => {
    const keys = [
      "a",
      "t1/messages/2026/11/23/c1/m.json",
      "x.obj",
      "x.obj/y",
      "x.obj_/z",
      "a/x.obj__/b",
      "y.obj.obj",
      "~tilde",
      "a/~tilde/b",
      "a/b~c",
      "~kura/x",
      "~h-abc",
      `long/${"s".repeat(300)}`,
      `${"d".repeat(250)}/leaf`,
      `${"é".repeat(66)}/${"é".repeat(67)}`, // 134 bytes: plain, though past the shortcut's sure-short bound
      `${"日".repeat(66)}/${"日".repeat(67)}`, // 201 bytes: hashed
      `k/${"x".repeat(200)}`,
      `k/${"x".repeat(201)}`,
    ];
    for (const b of [base, `${base}/`])
      for (const k of keys) expect(objectFile(b, k), k).toBe(keyPath(b, k).file);
  });

  it("never lists temp files or Kura's own files", async () => {
    const store = await open();
    await store.put("p/one", Buffer.from("1"));
    await store.presign("p/one", { method: "GET", expiresIn: 60 }); // creates ~kura/presign.key
    await writeFile(join(base, "p", "stray.tmp"), "x");
    await writeFile(join(base, "foreign-file"), "x");
    expect((await store.list("")).items.map((i) => i.key)).toEqual(["p/one"]);
  });
});

describe("fs durability (DUR-1)", () => {
  it("fsync mode syncs the file before the rename and the directory after it", async () => {
    const events: string[] = [];
    const store = await open({ durability: "fsync", probe: (point) => void events.push(point) });
    await store.put("d/1", Buffer.from("one"));
    expect(events).toEqual(expect.arrayContaining(["fs.fsync.file", "fs.rename", "fs.fsync.dir"]));
    expect(events.indexOf("fs.fsync.file")).toBeLessThan(events.indexOf("fs.rename"));
    expect(events.lastIndexOf("fs.fsync.dir")).toBeGreaterThan(events.indexOf("fs.rename"));
    events.length = 0;
    await store.put(
      "d/2",
      (async function* () {
        yield Buffer.from("streamed");
      })(),
    );
    expect(events).toEqual(["fs.fsync.file", "fs.rename", "fs.fsync.dir"]);
  });

  it("os mode never fsyncs", async () => {
    const events: string[] = [];
    const store = await open({ durability: "os", probe: (point) => void events.push(point) });
    await store.put("d/1", Buffer.from("one"));
    expect(events).toEqual(["fs.rename"]);
  });

  it("concurrent writers into one directory share directory fsyncs", async () => {
    let dirSyncs = 0;
    const store = await open({
      durability: "fsync",
      probe: (p) => void (p === "fs.fsync.dir" && dirSyncs++),
    });
    await store.put("g/warm", Buffer.from("x"));
    dirSyncs = 0;
    await Promise.all(Array.from({ length: 50 }, (_, i) => store.put(`g/${i}`, Buffer.from(String(i)))));
    expect(dirSyncs).toBeGreaterThan(0);
    expect(dirSyncs).toBeLessThan(50);
  });

  it("a failure before the rename leaves neither object nor temp file", async () => {
    const store = await open({
      probe: (point) => {
        if (point === "fs.rename") throw new Error("injected crash before rename");
      },
    });
    await expect(store.put("f/x", Buffer.from("x"))).rejects.toThrow();
    const plain = await open();
    expect(await plain.exists("f/x")).toBe(false);
    expect(await readdir(join(base, "~kura", "tmp"))).toEqual([]);
  });
});

describe("fs damage and foreign files", () => {
  let store: BlobStore;
  beforeEach(async () => {
    store = await open();
  });

  it("reports a truncated or footer-damaged file as Corrupt", async () => {
    await store.put("c/t", Buffer.from("hello world, this is a body"));
    const file = keyPath(base, "c/t").file;
    const raw = await readFile(file);
    await writeFile(file, Buffer.concat([raw.subarray(0, raw.length - 3), Buffer.from("XYZ")]));
    await expect(store.getBuffer("c/t")).rejects.toMatchObject({
      code: "BLOB_METADATA_CORRUPT",
      kind: "Corrupt",
    });
    await truncate(file, 5);
    await expect(store.head("c/t")).rejects.toMatchObject({ code: "BLOB_METADATA_CORRUPT" });
  });

  it("reports a foreign file in the way of a directory as a path conflict", async () => {
    await writeFile(join(base, "blocker"), "not kura");
    await expect(store.put("blocker/x", Buffer.from("x"))).rejects.toMatchObject({
      code: "BLOB_PATH_CONFLICT",
    });
  });

  it("removes stale temp files of dead writers on open, keeping fresh ones", async () => {
    const tmp = join(base, "~kura", "tmp");
    await mkdir(tmp, { recursive: true });
    await writeFile(join(tmp, "old.tmp"), "x");
    await writeFile(join(tmp, "fresh.tmp"), "x");
    const old = new Date(Date.now() - 2 * 3600_000);
    await utimes(join(tmp, "old.tmp"), old, old);
    await open();
    expect(await readdir(tmp)).toEqual(["fresh.tmp"]);
  });
});
