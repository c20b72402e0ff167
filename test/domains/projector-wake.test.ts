/**
 * Every commit wakes the projectors: with the full-text projector on this thread (`projectors:
 * "inline"`), and for any registered projector, appends, edits, deletes, erasure and object writes
 * reach them without a pump or a catch-up call. Waits are bounded polls.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { Projector } from "../../src/engine/outbox.js";
import { Kura } from "../../src/kura.js";
import type { OutboxRecord } from "../../src/ports/catalog.js";

let dir: string | undefined;
let kura: Kura | undefined;

afterEach(async () => {
  await kura?.close();
  kura = undefined;
  if (dir) await rm(dir, { recursive: true, force: true });
  dir = undefined;
});

async function openInline(): Promise<Kura> {
  dir = await mkdtemp(join(tmpdir(), "kura-wake-"));
  kura = await Kura.open({ data_dir: dir }, { projectors: "inline" });
  return kura;
}

const hitIds = async (k: Kura, q: string) => (await k.tenant("t").search(q)).hits.map((h) => h.id);
const poll = { timeout: 10_000, interval: 20 };

/** A projector that records the events it is handed. */
function recorder(name: string): Projector & { events: OutboxRecord[] } {
  const events: OutboxRecord[] = [];
  return {
    name,
    events,
    async handle(batch) {
      events.push(...batch);
    },
  };
}

describe("projector wake-up", () => {
  it("an inline full-text projector sees appends, edits, deletes and erasure without a pump", async () => {
    const k = await openInline();
    expect(k.searchProjection).toBe("inline");
    const t = k.tenant("t");
    const a = await t.messages.append("c", { role: "user", content: "a bittern booming" });
    await vi.waitFor(async () => expect(await hitIds(k, "bittern")).toEqual([a.id]), poll);
    const [b] = await t.messages.appendMany("c", [{ role: "user", content: "a curlew calling" }]);
    await vi.waitFor(async () => expect(await hitIds(k, "curlew")).toEqual([b?.id]), poll);
    await t.messages.edit(a.id, "a snipe drumming");
    await vi.waitFor(async () => expect(await hitIds(k, "snipe")).toEqual([a.id]), poll);
    await t.messages.delete(a.id);
    await vi.waitFor(async () => expect(await k.outboxLag("search")).toBe(0), poll);
    expect(await hitIds(k, "snipe")).toEqual([]);
    await t.messages.erase(b?.id as string);
    await vi.waitFor(async () => expect(await k.outboxLag("search")).toBe(0), poll);
    expect(await hitIds(k, "curlew")).toEqual([]);
  });

  it("object puts and deletes reach a registered projector without a pump", async () => {
    const k = await openInline();
    const seen = recorder("test-recorder");
    k.registerProjector(seen);
    const objects = k.tenant("t").objects;
    await objects.put("notes/a.txt", Buffer.from("first"));
    await vi.waitFor(() => expect(seen.events.map((e) => e.type)).toEqual(["object.put"]), poll);
    expect(seen.events[0]).toMatchObject({ tenantId: "t", entityId: "notes/a.txt", payload: { size: 5 } });
    await objects.put("notes/a.txt", Buffer.from("second"));
    await objects.delete("notes/a.txt");
    await vi.waitFor(
      () => expect(seen.events.map((e) => e.type)).toEqual(["object.put", "object.put", "object.deleted"]),
      poll,
    );
  });
});
