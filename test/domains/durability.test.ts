/**
 * DUR-1 through the probe points: with `durability: fsync` an acknowledged append has fsynced
 * its body file (before the rename), the body's directory (after it) and committed the catalog
 * with synchronous=FULL; with `os` none of that is paid. Failures injected at those points
 * leave nothing acknowledged and nothing half-written.
 */
import { afterEach, describe, expect, it } from "vitest";
import { isKuraError, KuraError } from "../../src/core/errors.js";
import type { Kura } from "../../src/kura.js";
import { PortFaults, withPortFaults } from "../../src/layers/port-faults.js";
import { COMMIT_OUTCOME_UNKNOWN } from "../../src/ports/catalog.js";
import { type TestKuraFactory, testKura } from "../support/kura.js";

type Event = { point: string; detail: Readonly<Record<string, unknown>> };

describe("durability (DUR-1)", () => {
  let f: TestKuraFactory | undefined;
  let kura: Kura | undefined;
  afterEach(async () => {
    await kura?.close();
    await f?.cleanup();
    kura = undefined;
  });

  async function open(
    durability: "os" | "fsync",
    probe: (point: string, detail: Readonly<Record<string, unknown>>) => void,
  ) {
    f = await testKura("sqlite");
    kura = await f.open({ config: { durability }, probe });
    return kura;
  }

  it("fsync mode syncs the body file, its directory and the catalog before acknowledging", async () => {
    const events: Event[] = [];
    const k = await open("fsync", (point, detail) => void events.push({ point, detail }));
    const ref = await k.tenant("d").messages.append("c", { role: "user", content: "durable" });
    const key = ref.contentUrl.replace("local://storage/", "");
    const at = (point: string, match: (d: Readonly<Record<string, unknown>>) => boolean) =>
      events.findIndex((e) => e.point === point && match(e.detail));
    // A fresh key is created in place (no temp file, no rename): create, fsync the file, then
    // its directory, then commit.
    const created = at("fs.create", (d) => d.key === key);
    const fileSync = at("fs.fsync.file", (d) => d.key === key);
    const dirSuffix = `/${key.slice(0, key.lastIndexOf("/"))}`;
    const dirSync = events.findIndex(
      (e, i) => i > fileSync && e.point === "fs.fsync.dir" && String(e.detail.path).endsWith(dirSuffix),
    );
    const commit = events.findIndex((e, i) => i > dirSync && e.point === "catalog.commit");
    expect(created).toBeGreaterThanOrEqual(0);
    expect(fileSync).toBeGreaterThan(created);
    expect(dirSync).toBeGreaterThan(fileSync);
    expect(commit).toBeGreaterThan(dirSync);
    expect(events[commit]?.detail.synchronous).toBe("FULL");
  });

  it("os mode pays no fsync and commits with synchronous=NORMAL", async () => {
    const events: Event[] = [];
    const k = await open("os", (point, detail) => void events.push({ point, detail }));
    await k.tenant("d").messages.append("c", { role: "user", content: "fast" });
    expect(events.filter((e) => e.point.startsWith("fs.fsync"))).toEqual([]);
    expect(events.find((e) => e.point === "catalog.commit")?.detail.synchronous).toBe("NORMAL");
  });

  it("a failed file fsync fails the append and leaves no body and no row", async () => {
    const k = await open("fsync", (point) => {
      if (point === "fs.fsync.file") throw new Error("EIO: injected fsync failure");
    });
    const t = k.tenant("d");
    const err = await t.messages.append("c", { role: "user", content: "lost?" }).catch((e: unknown) => e);
    expect(isKuraError(err)).toBe(true);
    expect((await k.store.list("d/")).items).toEqual([]);
    expect(await t.messages.count("c")).toBe(0);
  });

  it("keeps the body when the commit's outcome is unknown, for GC to decide; removes it on a refusal", async () => {
    const faults = new PortFaults();
    f = await testKura("sqlite");
    kura = await f.open({ wrapCatalog: (c) => withPortFaults(c, faults) });
    const t = kura.tenant("u");
    // The connection died while COMMIT was in flight: a committed row may point at the body.
    faults.arm({
      methods: ["commit"],
      mode: "reject",
      make: () =>
        new KuraError("CATALOG_UNAVAILABLE", "connection lost during COMMIT", {
          context: { outcome: COMMIT_OUTCOME_UNKNOWN },
        }),
    });
    await expect(t.messages.append("c", { role: "user", content: "maybe" })).rejects.toThrow();
    expect((await kura.store.list("u/")).items).toHaveLength(1);
    // A refusal (or a failure before COMMIT) rolled back: its body goes at once.
    faults.arm({
      methods: ["commit"],
      mode: "reject",
      make: () => new KuraError("CATALOG_UNAVAILABLE", "connection refused"),
    });
    await expect(t.messages.append("c", { role: "user", content: "no" })).rejects.toThrow();
    expect((await kura.store.list("u/")).items).toHaveLength(1);
    faults.disarm();
  });

  it("a failed catalog commit removes the body it wrote", async () => {
    const k = await open("fsync", (point) => {
      if (point === "catalog.commit") throw new Error("injected commit failure");
    });
    const t = k.tenant("d");
    await expect(t.messages.append("c", { role: "user", content: "rolled back" })).rejects.toThrow();
    expect((await k.store.list("d/")).items).toEqual([]);
  });
});
