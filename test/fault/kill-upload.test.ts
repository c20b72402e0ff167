/**
 * `kura serve` (SQLite + fs) killed with SIGKILL in the middle of streamed object uploads, then
 * restarted on the same data_dir, three times: every acknowledged object reads back intact
 * (SHA-256), the upload cut short is not visible — neither listed nor readable — unless it
 * completed whole, and its temp file is swept when the store opens again.
 */
import { createHash } from "node:crypto";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, describe, expect, it } from "vitest";
import { type ServeChild, startServe, token } from "./support.js";

const MiB = 1024 * 1024;
const CYCLES = 3;

function body(seed: number, size: number): Buffer {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i += 4) b.writeUInt32LE((seed * 2654435761 + i) >>> 0, i);
  return b;
}

const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

/** A request body that yields `data` in 64 KiB chunks, calling `at(sent)` after each. */
function streamOf(data: Buffer, at?: (sent: number) => Promise<void>): ReadableStream<Uint8Array> {
  let sent = 0;
  return new ReadableStream({
    async pull(controller) {
      if (sent >= data.length) {
        controller.close();
        return;
      }
      const chunk = data.subarray(sent, sent + 64 * 1024);
      sent += chunk.length;
      controller.enqueue(new Uint8Array(chunk));
      await at?.(sent);
    },
  });
}

describe("fault: SIGKILL during streamed uploads", () => {
  const dir = mkdtempSync(join(tmpdir(), "kura-fault-kill-"));
  // A grace of 0: the sweep at open removes every temp file a killed writer left.
  const config = { data_dir: join(dir, "data"), storage: { backend: "fs", options: { temp_grace_ms: 0 } } };
  let serve: ServeChild | undefined;

  afterAll(async () => {
    await serve?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it(`acknowledged objects survive intact, cut uploads stay invisible (${CYCLES} kills)`, {
    timeout: 180_000,
  }, async () => {
    const auth = `Bearer ${await token("acme")}`;
    const acked = new Map<string, string>();
    const cut = new Map<string, string>();
    const put = (url: string, key: string, stream: ReadableStream<Uint8Array>) =>
      fetch(`${url}/v1/objects/${key}`, {
        method: "PUT",
        headers: { authorization: auth, "content-type": "application/octet-stream" },
        body: stream,
        duplex: "half",
        signal: AbortSignal.timeout(60_000),
      } as RequestInit);

    for (let cycle = 0; cycle < CYCLES; cycle++) {
      serve = await startServe(config, dir);
      const s = serve;
      // Whole uploads, acknowledged.
      for (let i = 0; i < 3; i++) {
        const key = `up/${cycle}-${i}`;
        const data = body(cycle * 10 + i, 3 * MiB);
        const r = await put(s.url, key, streamOf(data));
        expect(r.status, await r.clone().text()).toBe(200);
        acked.set(key, sha(data));
      }
      // Two uploads in flight; the server dies when the first is past its middle.
      const victim = body(cycle * 10 + 7, 8 * MiB);
      const other = body(cycle * 10 + 8, 8 * MiB);
      const killAt = (sent: number) => {
        if (sent >= victim.length / 2 && s.alive()) s.child.kill("SIGKILL");
        return sleep(1);
      };
      const results = await Promise.allSettled([
        put(s.url, `cut/${cycle}-a`, streamOf(victim, killAt)),
        put(
          s.url,
          `cut/${cycle}-b`,
          streamOf(other, () => sleep(1)),
        ),
      ]);
      await s.exited;
      for (const [i, res] of results.entries()) {
        const key = `cut/${cycle}-${i === 0 ? "a" : "b"}`;
        const digest = sha(i === 0 ? victim : other);
        // A response that made it out before the kill is an acknowledgement.
        if (res.status === "fulfilled" && res.value.status === 200) acked.set(key, digest);
        else cut.set(key, digest);
      }
    }

    serve = await startServe(config, dir);
    const url = serve.url;
    // Every acknowledged object is intact.
    for (const [key, digest] of acked) {
      const r = await fetch(`${url}/v1/objects/${key}`, { headers: { authorization: auth } });
      expect(r.status, key).toBe(200);
      expect(sha(Buffer.from(await r.arrayBuffer())), key).toBe(digest);
    }
    // An upload cut short is neither listed nor readable (unless it landed whole).
    const listed = new Set<string>();
    let cursor: string | null = null;
    for (let page = 0; page < 100; page++) {
      const q: string = cursor ? `&cursor=${encodeURIComponent(cursor)}` : "";
      const r = await fetch(`${url}/v1/objects?limit=100${q}`, { headers: { authorization: auth } });
      expect(r.status).toBe(200);
      const b = (await r.json()) as { data: { items: { key: string }[]; next_cursor: string | null } };
      for (const item of b.data.items) listed.add(item.key);
      cursor = b.data.next_cursor;
      if (!cursor) break;
    }
    for (const key of acked.keys()) expect(listed.has(key), key).toBe(true);
    for (const [key, digest] of cut) {
      const r = await fetch(`${url}/v1/objects/${key}`, { headers: { authorization: auth } });
      if (r.status === 200) {
        expect(sha(Buffer.from(await r.arrayBuffer())), `${key} is visible, so it must be whole`).toBe(
          digest,
        );
      } else {
        expect(r.status, key).toBe(404);
        expect(listed.has(key), `${key} is listed but not readable`).toBe(false);
      }
    }
    for (const key of listed) expect(acked.has(key) || cut.has(key), key).toBe(true);
    // The temp files of the cut uploads were swept when the store opened.
    expect(readdirSync(join(dir, "data", "blobs", "~kura", "tmp"))).toEqual([]);
  });
});
