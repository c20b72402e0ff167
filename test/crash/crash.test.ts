/**
 * CONS-1 under SIGKILL: a child appends continuously and reports each acknowledged message;
 * the parent kills it at random moments, reopens the store and checks that every acknowledged
 * message reads back byte-identical, that no index row points at a missing or damaged body, and
 * that orphan bodies left by the crash are found and reclaimed by GC.
 */

import { createHash } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Kura } from "../../src/kura.js";
import { listAllBlobRefs } from "../support/blob-refs.js";
import { runUntilKilled } from "./kill.js";

const TRIALS = 20;
const appender = resolve(import.meta.dirname, "appender.ts");

async function appendUntilKilled(
  dataDir: string,
  trial: number,
  killAfterMs: number,
): Promise<Map<string, string>> {
  const acked = new Map<string, string>();
  await runUntilKilled(appender, [dataDir, String(trial)], killAfterMs, (line) => {
    const m = /^ACK (\S+) ([0-9a-f]{64})$/.exec(line);
    if (m) acked.set(m[1] as string, m[2] as string);
  });
  return acked;
}

describe("crash safety: SIGKILL during appends (CONS-1)", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "kura-crash-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it(`loses no acknowledged message and leaves only collectable orphans (${TRIALS} kills)`, {
    timeout: 300_000,
  }, async () => {
    const allAcked = new Map<string, string>();
    let orphansSeen = 0;
    for (let trial = 0; trial < TRIALS; trial++) {
      // Kill early in some trials (during startup/first writes), later in others.
      const killAfter = trial % 4 === 0 ? 20 + ((trial * 37) % 60) : 150 + ((trial * 7919) % 450);
      const acked = await appendUntilKilled(dir, trial, killAfter);
      for (const [id, sha] of acked) allAcked.set(id, sha);

      const kura = await Kura.open({ data_dir: dir });
      try {
        const t = kura.tenant("crash");
        // 1. Every acknowledged message, from this and every earlier trial, reads back byte-identical.
        const ids = [...allAcked.keys()];
        for (let i = 0; i < ids.length; i += 500) {
          const { items, missing } = await t.messages.getMany(ids.slice(i, i + 500));
          expect(missing).toEqual([]);
          for (const m of items) {
            expect(
              createHash("sha256")
                .update(m.content as string)
                .digest("hex"),
            ).toBe(allAcked.get(m.id));
          }
        }
        // 2. No index row points at a missing or damaged body.
        let refs = 0;
        const referenced = new Set<string>();
        for (const ref of await listAllBlobRefs(kura.catalog, "primary")) {
          referenced.add(ref.blobKey);
          const { data } = await kura.store.getBuffer(ref.blobKey, { expectedSha256: ref.checksum });
          expect(data.length).toBe(ref.sizeBytes);
          refs++;
        }
        expect(refs).toBeGreaterThanOrEqual(allAcked.size);
        // 3. Bodies without a row are orphans of the crash; GC past the grace period reclaims them.
        const listed: string[] = [];
        let cursor: string | undefined;
        do {
          const page = await kura.store.list("crash/messages/", { ...(cursor ? { cursor } : {}) });
          listed.push(...page.items.map((o) => o.key));
          cursor = page.cursor;
        } while (cursor);
        const orphans = listed.filter((k) => !referenced.has(k));
        orphansSeen += orphans.length;
        await kura.runJobs(Date.now() + 2 * 3_600_000);
        for (const k of orphans) expect(await kura.store.exists(k)).toBe(false);
        for (const k of [...referenced].slice(0, 50)) expect(await kura.store.exists(k)).toBe(true);
        const usage = await t.usage();
        expect(usage.messages).toBe(refs);
      } finally {
        await kura.close();
      }
    }
    expect(allAcked.size).toBeGreaterThan(100);
    // Informational: how often a kill landed between body write and commit.
    console.log(
      `crash test: ${allAcked.size} acknowledged messages over ${TRIALS} kills, ${orphansSeen} orphan bodies reclaimed`,
    );
  });
});
