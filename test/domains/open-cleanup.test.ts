/**
 * `Kura.open` closes what it opened when a later step fails: no catalog connection, KV
 * environment, store or search index is left behind, and the data directory opens again.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { createHashingEmbedder } from "../../src/adapters/embedder/hashing/index.js";
import { isKuraError } from "../../src/core/errors.js";
import { Kura } from "../../src/kura.js";

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

describe("Kura.open failing part-way", () => {
  it("closes the store, catalog and KV store it had opened, once each, and the directory opens again", async () => {
    const dir = await mkdtemp(join(tmpdir(), "kura-open-cleanup-"));
    dirs.push(dir);
    const closed: string[] = [];
    const spy = <T extends { close(): Promise<void> }>(name: string, port: T): T =>
      new Proxy(port, {
        get(target, prop, receiver) {
          if (prop === "close")
            return () => {
              closed.push(name);
              return target.close();
            };
          const v = Reflect.get(target, prop, receiver);
          return typeof v === "function" ? v.bind(target) : v;
        },
      });
    // The vector plane opens last and refuses an embedder of the wrong dimensions.
    const err = await Kura.open(
      { data_dir: dir, vector: { dimensions: 8 } },
      {
        embedder: createHashingEmbedder({ dimensions: 4 }),
        wrapStore: (s) => spy("store", s),
        wrapCatalog: (c) => spy("catalog", c),
        wrapKv: (k) => spy("kv", k),
        projectors: "inline",
      },
    ).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isKuraError(err) && err.message).toMatch(/dimensions/);
    // fs keeps session files in a store of their own: two stores, each wrapped and closed.
    expect(closed.sort()).toEqual(["catalog", "kv", "store", "store"]);
    const kura = await Kura.open(
      { data_dir: dir, vector: { dimensions: 8 } },
      { embedder: createHashingEmbedder({ dimensions: 8 }) },
    );
    const t = kura.tenant("t");
    await t.messages.append("c", { role: "user", content: "after a failed open" });
    expect((await t.messages.history("c")).items).toHaveLength(1);
    await kura.close();
  });
});
