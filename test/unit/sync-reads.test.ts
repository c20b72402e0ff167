/**
 * Small synchronous body reads (`BlobStore.getBufferSync`): which layers forward them, how a
 * failure worth retrying falls back to `getBuffer`, and that a message read through them is
 * still verified against the catalog's checksum.
 */
import { mkdtemp, open, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { fsBlobStore } from "../../src/adapters/blob/fs/index.js";
import { keyPath } from "../../src/adapters/blob/fs/layout.js";
import { memoryBlobStore } from "../../src/adapters/blob/memory/index.js";
import { KuraError } from "../../src/core/errors.js";
import { LruCache } from "../../src/engine/lru-cache.js";
import { Kura } from "../../src/kura.js";
import { FaultController, withFaults } from "../../src/layers/fault-injection.js";
import { type BlobOperationEvent, withMetrics } from "../../src/layers/metrics.js";
import { withRetry } from "../../src/layers/retry.js";
import { openBlobStore } from "../../src/open/blob.js";
import type { BlobStore } from "../../src/ports/blob-store.js";

/** A memory store whose `getBufferSync` answers what the test says. */
async function storeWithSyncReads(answer: () => { data: Buffer } | undefined): Promise<BlobStore> {
  const inner = await memoryBlobStore.create(memoryBlobStore.parseOptions({}));
  return Object.assign(Object.create(inner) as BlobStore, {
    getBufferSync: () => {
      const got = answer();
      return got && { info: { key: "k", size: got.data.length }, data: got.data };
    },
  });
}

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

describe("layers and synchronous reads", () => {
  it("a layer without a synchronous hook (fault injection) leaves getBufferSync out", async () => {
    const store = await storeWithSyncReads(() => ({ data: Buffer.from("x") }));
    expect(withFaults(store, new FaultController()).getBufferSync).toBeUndefined();
  });

  it("retry: one attempt; a retryable failure answers undefined (the caller retries via getBuffer)", async () => {
    let calls = 0;
    let error: KuraError | undefined = new KuraError("FAULT_INJECTED", "flaky");
    const store = withRetry(
      await storeWithSyncReads(() => {
        calls++;
        if (error) throw error;
        return { data: Buffer.from("ok") };
      }),
    );
    expect(store.getBufferSync?.("k")).toBeUndefined();
    expect(calls).toBe(1);
    error = new KuraError("BLOB_CHECKSUM_MISMATCH", "bad bytes");
    expect(() => store.getBufferSync?.("k")).toThrow(error);
    error = undefined;
    expect(store.getBufferSync?.("k")?.data.toString()).toBe("ok");
  });

  it("metrics: a read is reported, a declined one is not", async () => {
    let data: Buffer | undefined = Buffer.from("v");
    const events: BlobOperationEvent[] = [];
    const store = withMetrics(await storeWithSyncReads(() => (data ? { data } : undefined)), (e) =>
      events.push(e),
    );
    store.getBufferSync?.("k");
    data = undefined;
    expect(store.getBufferSync?.("k")).toBeUndefined();
    expect(events).toMatchObject([{ operation: "getBuffer", ok: true }]);
  });

  it("a store opened from config reads small fs bodies synchronously, through every layer", async () => {
    const dir = await mkdtemp(join(tmpdir(), "kura-sync-"));
    dirs.push(dir);
    const events: BlobOperationEvent[] = [];
    const store = await openBlobStore({
      backend: "fs",
      options: { base_path: dir },
      onOperation: (e) => events.push(e),
    });
    const put = await store.put("t/a.json", Buffer.from('{"a":1}'));
    expect(store.getBufferSync?.("t/a.json", { expectedSha256: put.sha256 })?.data.toString()).toBe(
      '{"a":1}',
    );
    expect(events.at(-1)).toMatchObject({ operation: "getBuffer", ok: true });
    await store.close();
  });
});

describe("fs: reads by size", () => {
  it("declines bodies over sync_io_max_bytes; getBuffer hashes them while reading", async () => {
    const dir = await mkdtemp(join(tmpdir(), "kura-sync-"));
    dirs.push(dir);
    const store = await fsBlobStore.create(
      fsBlobStore.parseOptions({ base_path: dir, sync_io_max_bytes: 1024 }),
    );
    const big = Buffer.alloc(3 * 1024 * 1024 + 17, 7);
    const put = await store.put("t/big.bin", big);
    expect(store.getBufferSync?.("t/big.bin")).toBeUndefined();
    expect((await store.getBuffer("t/big.bin", { expectedSha256: put.sha256 })).data.equals(big)).toBe(true);
    // A byte changed in the last chunk still fails the read.
    const handle = await open(keyPath(dir, "t/big.bin").file, "r+");
    await handle.write(Buffer.from([8]), 0, 1, big.length - 3);
    await handle.close();
    await expect(store.getBuffer("t/big.bin", { expectedSha256: put.sha256 })).rejects.toMatchObject({
      code: "BLOB_CHECKSUM_MISMATCH",
    });
    await store.close();
  });
});

describe("messages read through synchronous body reads", () => {
  it("a cold get still verifies the body against the catalog's checksum", async () => {
    const dir = await mkdtemp(join(tmpdir(), "kura-sync-"));
    dirs.push(dir);
    let kura = await Kura.open({ data_dir: dir });
    const ref = await kura.tenant("t1").messages.append("c1", { role: "user", content: "hello there" });
    await kura.close();
    const file = keyPath(join(dir, "blobs"), `t1/${ref.contentUrl.split("/t1/")[1]}`).file;
    const handle = await open(file, "r+");
    await handle.write(Buffer.from("J"), 0, 1, 15);
    await handle.close();
    kura = await Kura.open({ data_dir: dir }, { cache: new LruCache(0) });
    // The store's BLOB_CHECKSUM_MISMATCH is, to a reader of the message, its BODY_CORRUPT.
    await expect(kura.tenant("t1").messages.get(ref.id)).rejects.toMatchObject({
      code: "BODY_CORRUPT",
    });
    await kura.close();
  });

  it("a store wrapped by fault injection sees every body read", async () => {
    const dir = await mkdtemp(join(tmpdir(), "kura-sync-"));
    dirs.push(dir);
    const faults = new FaultController();
    const kura = await Kura.open(
      { data_dir: dir },
      { cache: new LruCache(0), wrapStore: (s) => withFaults(s, faults) },
    );
    const ref = await kura.tenant("t1").messages.append("c1", { role: "user", content: "hi" });
    faults.add({ operations: ["getBuffer"], code: "BLOB_CHECKSUM_MISMATCH" });
    await expect(kura.tenant("t1").messages.get(ref.id)).rejects.toMatchObject({
      code: "BODY_CORRUPT",
    });
    faults.clear();
    expect((await kura.tenant("t1").messages.get(ref.id)).content).toBe("hi");
    await kura.close();
  });
});
