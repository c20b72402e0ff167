/**
 * The blob store an online migration writes through (`engine/migration/mirror-store.ts`): with
 * a target attached, every write lands in both and reads follow `switchReads`; a target that
 * fails a write detaches and reports it while the caller's write succeeds on the source.
 */
import { Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import { memoryBlobStore } from "../../src/adapters/blob/memory/index.js";
import { KuraError } from "../../src/core/errors.js";
import { MirrorBlobStore } from "../../src/engine/migration/mirror-store.js";
import type { BlobStore } from "../../src/ports/blob-store.js";

const memory = () => memoryBlobStore.create(memoryBlobStore.parseOptions({}));
const text = async (store: BlobStore, key: string) => (await store.getBuffer(key)).data.toString();

describe("MirrorBlobStore", () => {
  it("writes to both while attached, reads from the source until switched", async () => {
    const source = await memory();
    const target = await memory();
    const mirror = new MirrorBlobStore(source);
    await mirror.put("t/before", Buffer.from("before"));
    const failures: unknown[] = [];
    mirror.attach({
      store: target,
      onTargetFailure: (e) => failures.push(e),
      onSourceFailure: (e) => failures.push(e),
    });
    await mirror.put("t/buffer", Buffer.from("buffer"));
    await mirror.put("t/stream", Readable.from([Buffer.from("str"), Buffer.from("eam")]));
    await mirror.putMany([
      { key: "t/many-1", body: Buffer.from("m1") },
      { key: "t/many-2", body: Buffer.from("m2") },
    ]);
    // The target lacks the copy's source (not copied yet): the new object comes from the source.
    await mirror.copy("t/before", "t/copied");
    await mirror.put("t/replaced", Buffer.from("old"));
    await mirror.put("t/replaced", Buffer.from("new"));
    await mirror.delete("t/many-2");
    for (const key of ["t/buffer", "t/stream", "t/many-1", "t/copied", "t/replaced"])
      expect(await text(target, key)).toBe(await text(source, key));
    expect(await target.exists("t/many-2")).toBe(false);
    expect(await target.exists("t/before")).toBe(false);
    expect(await text(mirror, "t/before")).toBe("before");
    mirror.switchReads();
    expect(await mirror.exists("t/before")).toBe(false);
    expect(await text(mirror, "t/stream")).toBe("stream");
    // Switched: the target is the store of record, the source still gets every write.
    await mirror.put("t/after", Readable.from([Buffer.from("after")]));
    await mirror.putMany([{ key: "t/after-many", body: Buffer.from("am") }]);
    for (const key of ["t/after", "t/after-many"])
      expect(await text(source, key)).toBe(await text(target, key));
    expect(failures).toEqual([]);
  });

  it("a target that fails a write detaches; the write succeeds on the source", async () => {
    const source = await memory();
    const target = await memory();
    const failing: BlobStore = Object.create(target, {
      put: { value: async () => Promise.reject(new KuraError("BLOB_BACKEND_UNAVAILABLE", "down")) },
    });
    const mirror = new MirrorBlobStore(source);
    const failures: unknown[] = [];
    mirror.attach({
      store: failing,
      onTargetFailure: (e) => failures.push(e),
      onSourceFailure: (e) => failures.push(e),
    });

    await mirror.put("t/a", Buffer.from("a"));
    expect(await text(source, "t/a")).toBe("a");
    expect(failures).toHaveLength(1);
    expect(mirror.mirroring).toBe(false);
    // Detached: reads stay on the source.
    expect(await text(mirror, "t/a")).toBe("a");
  });

  it("after the switch a write the target fails is the caller's failure", async () => {
    const source = await memory();
    const target = await memory();
    const failing: BlobStore = Object.create(target, {
      put: { value: async () => Promise.reject(new KuraError("BLOB_BACKEND_UNAVAILABLE", "down")) },
    });
    const mirror = new MirrorBlobStore(source);
    mirror.attach({ store: failing, onTargetFailure: () => undefined, onSourceFailure: () => undefined });
    mirror.switchReads();
    await expect(mirror.put("t/a", Buffer.from("a"))).rejects.toMatchObject({
      code: "BLOB_BACKEND_UNAVAILABLE",
    });
    expect(mirror.mirroring).toBe(true);
  });
});
