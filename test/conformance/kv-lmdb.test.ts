import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { lmdbKvStore } from "../../src/adapters/kv/lmdb/index.js";
import type { KvStore } from "../../src/ports/kv-store.js";
import { kvStoreConformance } from "./kv-store.suite.js";

kvStoreConformance("lmdb", async () => {
  const dir = await mkdtemp(join(tmpdir(), "kura-kv-lmdb-"));
  let now = Date.now();
  const open = () =>
    lmdbKvStore.create(lmdbKvStore.parseOptions({ path: join(dir, "kv"), max_value_bytes: 256 * 1024 }), {
      now: () => now,
    });
  let store: KvStore = await open();
  return {
    store,
    ttlMs: 1000,
    advance: async (ms) => {
      now += ms;
    },
    reopen: async () => {
      await store.close();
      store = await open();
      return store;
    },
    cleanup: async () => {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});

// With `durability: fsync` writes commit through lmdb-js's asynchronous transactions: the same
// contract, with the decisions taken over writes queued and not committed yet.
kvStoreConformance("lmdb (durability fsync)", async () => {
  const dir = await mkdtemp(join(tmpdir(), "kura-kv-lmdb-fsync-"));
  let now = Date.now();
  const open = () =>
    lmdbKvStore.create(lmdbKvStore.parseOptions({ path: join(dir, "kv"), max_value_bytes: 256 * 1024 }), {
      now: () => now,
      durability: "fsync",
    });
  let store: KvStore = await open();
  return {
    store,
    ttlMs: 1000,
    advance: async (ms) => {
      now += ms;
    },
    reopen: async () => {
      await store.close();
      store = await open();
      return store;
    },
    cleanup: async () => {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});
