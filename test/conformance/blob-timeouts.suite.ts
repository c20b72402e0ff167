/**
 * The timeout layer on a real adapter (BLOB-8): a transfer fails when it stops moving, never for
 * being long, and a failed transfer leaves nothing behind. Called by the adapter test files with
 * a store that has no timeout layer of its own; the suite puts `withTimeout` on it with a small
 * idle limit.
 */
import { randomBytes } from "node:crypto";
import { readdirSync } from "node:fs";
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { collect, sha256Hex } from "../../src/core/checksum.js";
import { withTimeout } from "../../src/layers/timeout.js";
import type { BlobStore } from "../../src/ports/blob-store.js";

export interface TimeoutHarness {
  /** The bare adapter (no layers), isolated from other runs. */
  store: BlobStore;
  /** What a failed put could leave behind: temp files, unfinished uploads. */
  leftovers(): Promise<number>;
  /** Whether the adapter's descriptors are all its own (fs: no connection pool to count). */
  countsDescriptors: boolean;
  /** Also stall after this many bytes (e.g. past the multipart threshold, so parts exist). */
  lateStallBytes?: number;
  cleanup(): Promise<void>;
}

const IDLE_MS = 200;
const CHUNK = 64 * 1024;

export const openDescriptors = () => readdirSync("/proc/self/fd").length;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `chunks` chunks, one every `everyMs`: slower in total than the idle limit, never idle that long. */
function slowStream(chunks: Buffer[], everyMs: number): Readable {
  return Readable.from(
    (async function* () {
      for (const chunk of chunks) {
        await sleep(everyMs);
        yield chunk;
      }
    })(),
  );
}

/** A stream that sends `chunks` and then nothing, ever (a client that stopped sending). */
function stallingStream(chunks: Buffer[]): Readable {
  let i = 0;
  return new Readable({
    read() {
      if (i < chunks.length) this.push(chunks[i++]);
    },
  });
}

export function blobTimeoutTests(name: string, open: () => Promise<TimeoutHarness>): void {
  describe(`blob timeouts: ${name}`, { timeout: 30_000 }, () => {
    let h: TimeoutHarness;
    let store: BlobStore;

    beforeAll(async () => {
      h = await open();
      store = withTimeout(h.store, { idleMs: IDLE_MS, operationMs: 5_000 });
    }, 60_000);
    afterAll(async () => {
      await h?.store.close();
      await h?.cleanup();
    }, 60_000);

    it("lets a slow upload take longer than the idle limit while bytes keep moving", async () => {
      const chunks = Array.from({ length: 12 }, () => randomBytes(CHUNK));
      const data = Buffer.concat(chunks);
      // 12 chunks 50 ms apart: about 600 ms in all, three times the 200 ms idle limit.
      const put = await store.put("slow/upload.bin", slowStream(chunks, IDLE_MS / 4));
      expect(put).toMatchObject({ size: data.length, sha256: sha256Hex(data) });
      expect((await store.getBuffer("slow/upload.bin")).data.equals(data)).toBe(true);
      expect(await h.leftovers()).toBe(0);
    });

    const stalls = (bytes: number) => async () => {
      const before = openDescriptors();
      const chunks = Array.from({ length: Math.ceil(bytes / CHUNK) }, () => randomBytes(CHUNK));
      const body = stallingStream(chunks);
      await expect(store.put("slow/stalled.bin", body)).rejects.toMatchObject({
        code: "OPERATION_TIMEOUT",
        kind: "Unavailable",
      });
      expect(await h.store.exists("slow/stalled.bin")).toBe(false);
      expect(await h.leftovers()).toBe(0);
      if (h.countsDescriptors) expect(openDescriptors()).toBe(before);
      // The caller's stream is left to the caller (an HTTP request must still get its answer).
      expect(body.destroyed).toBe(false);
      body.destroy();
    };

    it("fails a stalled upload with OPERATION_TIMEOUT and leaves nothing behind", stalls(2 * CHUNK));

    it("fails an upload stalled late (after parts went out) and leaves nothing behind", async (ctx) => {
      if (h.lateStallBytes === undefined) ctx.skip();
      await stalls(h.lateStallBytes as number)();
    });

    it("never cuts a download the layer has returned, however slowly it is read", async () => {
      const data = randomBytes(3 * 1024 * 1024);
      await store.put("slow/download.bin", data);
      // Obtaining the stream is itself limited by the idle limit; on a loaded machine the server
      // may take longer than that to answer, so it is tried again, as the retry layer would.
      let got: Awaited<ReturnType<BlobStore["get"]>> | undefined;
      for (let attempt = 1; got === undefined; attempt++) {
        try {
          got = await store.get("slow/download.bin");
        } catch (e) {
          if (attempt >= 5 || (e as { code?: string }).code !== "OPERATION_TIMEOUT") throw e;
        }
      }
      // The reader takes its time: longer than the idle limit before the first read.
      await sleep(IDLE_MS * 2);
      expect((await collect(got.body)).equals(data)).toBe(true);
    });
  });
}
