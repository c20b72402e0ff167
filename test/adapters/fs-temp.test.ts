/**
 * The fs adapter's temp files and descriptors: every failed put closes its file and removes its
 * temp file, a periodic sweep removes what killed writers left (never a live upload's), temp
 * bytes are reported, and a full disk is STORAGE_FULL with deletes still working.
 */
import { randomBytes } from "node:crypto";
import { readdirSync, rmSync, writeFileSync } from "node:fs";
import { mkdtemp, readdir, rm, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { type FsBlobStore, fsBlobStore } from "../../src/adapters/blob/fs/index.js";
import { isKuraError } from "../../src/core/errors.js";
import { mountTmpfs, tmpfsAvailable } from "../support/tmpfs.js";

const openDescriptors = () => readdirSync("/proc/self/fd").length;

async function openStore(base: string, extra: Record<string, unknown> = {}): Promise<FsBlobStore> {
  return (await fsBlobStore.create(fsBlobStore.parseOptions({ base_path: base, ...extra }), {
    durability: "os",
  })) as FsBlobStore;
}

/** A body whose next chunk is sent when the test says so. */
function controlledStream() {
  const stream = new Readable({ read() {} });
  return { stream, send: (bytes: number) => stream.push(randomBytes(bytes)) };
}

describe("fs temp files and descriptors", () => {
  let base: string;
  let store: FsBlobStore;
  const temps = () => readdir(join(base, "~kura", "tmp"));

  beforeAll(async () => {
    base = await mkdtemp(join(tmpdir(), "kura-fs-temp-"));
    store = await openStore(base, { temp_sweep_interval_ms: 0 });
  });
  afterAll(async () => {
    await store?.close();
    await rm(base, { recursive: true, force: true });
  });

  it("closes the file and removes the temp file when the client goes away mid-upload", async () => {
    const before = openDescriptors();
    const body = controlledStream();
    const put = store.put("gone/upload.bin", body.stream);
    body.send(300 * 1024);
    await vi.waitFor(async () => expect((await store.stats()).tempBytes).toBeGreaterThan(0));
    // Destroyed without an error, as an HTTP request whose socket closed.
    body.stream.destroy();
    await expect(put).rejects.toSatisfy(isKuraError);
    expect(await temps()).toEqual([]);
    expect(await store.exists("gone/upload.bin")).toBe(false);
    expect(openDescriptors()).toBe(before);
  });

  it("closes the file and removes the temp file when the put is aborted", async () => {
    const before = openDescriptors();
    const body = controlledStream();
    const controller = new AbortController();
    const put = store.put("gone/aborted.bin", body.stream, { signal: controller.signal });
    body.send(64 * 1024);
    await vi.waitFor(async () => expect(await temps()).toHaveLength(1));
    controller.abort();
    await expect(put).rejects.toMatchObject({ code: "OPERATION_ABORTED" });
    expect(await temps()).toEqual([]);
    expect(openDescriptors()).toBe(before);
    body.stream.destroy();
  });

  it("closes the file of a download the reader stops early", async () => {
    await store.put("big/read.bin", randomBytes(4 * 1024 * 1024));
    const before = openDescriptors();
    const got = await store.get("big/read.bin");
    expect(openDescriptors()).toBe(before + 1);
    for await (const _chunk of got.body) break; // destroys the stream
    await vi.waitFor(() => expect(openDescriptors()).toBe(before));
  });

  it("counts a live upload's temp bytes, sweeps leftovers and never a live upload's file", async () => {
    const sweeping = await openStore(base, { temp_sweep_interval_ms: 0, temp_grace_ms: 0 });
    const leftover = join(base, "~kura", "tmp", "killed-writer.tmp");
    await writeFile(leftover, randomBytes(1000));
    expect((await sweeping.stats()).tempBytes).toBe(1000);
    const body = controlledStream();
    const put = sweeping.put("live/upload.bin", body.stream);
    body.send(300 * 1024);
    await vi.waitFor(() => expect(sweeping.liveTempBytes()).toBeGreaterThanOrEqual(256 * 1024));
    await sweeping.sweepTemps();
    // The leftover is gone; the live upload's temp file is not, whatever its age.
    expect(await temps()).toHaveLength(1);
    expect(await temps()).not.toContain("killed-writer.tmp");
    const live = await sweeping.stats();
    expect(live.tempFiles).toBe(1);
    expect(live.tempBytes).toBeGreaterThanOrEqual(256 * 1024);
    body.send(10);
    body.stream.push(null);
    expect((await put).size).toBe(300 * 1024 + 10);
    expect(await sweeping.stats()).toEqual({ tempFiles: 0, tempBytes: 0 });
    expect(sweeping.liveTempBytes()).toBe(0);
    await sweeping.close();
  });

  it("sweeps periodically, not only at open, and keeps young files of other writers", async () => {
    const periodic = await openStore(base, { temp_sweep_interval_ms: 20, temp_grace_ms: 60_000 });
    const old = join(base, "~kura", "tmp", "old.tmp");
    const young = join(base, "~kura", "tmp", "young.tmp");
    await writeFile(old, "x");
    await writeFile(young, "y");
    const twoHoursAgo = new Date(Date.now() - 2 * 3600_000);
    await utimes(old, twoHoursAgo, twoHoursAgo);
    await vi.waitFor(async () => expect(await temps()).toEqual(["young.tmp"]));
    await periodic.close();
    await rm(young);
  });
});

/** A real full disk: a 4 MiB tmpfs (needs root; skipped with the reason otherwise, failed in CI). */
describe.skipIf(!tmpfsAvailable("tmpfs (fs disk full)"))("fs on a full disk", () => {
  let store: FsBlobStore;
  let disk: ReturnType<typeof mountTmpfs>;
  let fullDir: string;
  let base: string;
  const temps = () => readdir(join(base, "~kura", "tmp"));

  beforeAll(async () => {
    disk = mountTmpfs("4m");
    fullDir = disk.dir;
    base = join(fullDir, "blobs");
    store = await openStore(base, { temp_sweep_interval_ms: 0 });
  });
  afterAll(async () => {
    await store?.close();
    disk?.unmount();
  });

  it("answers STORAGE_FULL, removes the temp file, closes the file, and still deletes", async () => {
    await store.put("keep/a", randomBytes(100 * 1024));
    await store.put("keep/b", randomBytes(100 * 1024));
    const before = openDescriptors();
    // A streamed body larger than the disk.
    const streamed = await store
      .put(
        "full/streamed",
        Readable.from(
          (function* () {
            for (let i = 0; i < 80; i++) yield randomBytes(64 * 1024);
          })(),
        ),
      )
      .catch((e: unknown) => e);
    expect(streamed).toMatchObject({ code: "STORAGE_FULL", kind: "QuotaExceeded" });
    expect(await temps()).toEqual([]);
    expect(openDescriptors()).toBe(before);
    // A buffered body larger than what is left.
    const buffered = await store.put("full/buffered", randomBytes(5 * 1024 * 1024)).catch((e: unknown) => e);
    expect(buffered).toMatchObject({ code: "STORAGE_FULL" });
    expect(await temps()).toEqual([]);
    expect(await store.exists("full/streamed")).toBe(false);
    expect(await store.exists("full/buffered")).toBe(false);
    // Fill what is left to the last block, then delete to make room.
    try {
      writeFileSync(join(fullDir, "filler"), randomBytes(4 * 1024 * 1024));
    } catch {
      // ENOSPC: the disk is as full as it gets.
    }
    await expect(store.put("full/small", randomBytes(64 * 1024))).rejects.toMatchObject({
      code: "STORAGE_FULL",
    });
    await store.delete(["keep/a", "keep/b"]);
    expect(await store.exists("keep/a")).toBe(false);
    rmSync(join(fullDir, "filler"), { force: true });
    await store.put("full/small", randomBytes(64 * 1024));
    expect(openDescriptors()).toBe(before);
  });
});
