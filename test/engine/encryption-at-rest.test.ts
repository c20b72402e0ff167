/**
 * Encryption at rest (SEC-2) through `Kura.open` with an `encryption` section: known English and
 * Japanese plaintext written through every API (messages with an edit, objects, sessions and
 * session files, KV, drafts, memories, vectors) is found nowhere on disk — every file under
 * data_dir (SQLite database with its -wal/-shm, LMDB, search and vector files, blob files) in
 * UTF-8 and, for Japanese, UTF-16LE; on PostgreSQL + radosgw, every table's rows and every
 * object — while search, history, memories and vectors answer as before. A changed byte of a
 * body is BODY_CORRUPT; a rotation keeps old and new data readable and the re-encryption job
 * leaves nothing under the old version; after a shred every read is TENANT_KEYS_DESTROYED,
 * search is empty and the scan is still clean.
 */
import { randomBytes } from "node:crypto";
import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isKuraError } from "../../src/core/errors.js";
import { parseHeader } from "../../src/core/sealed.js";
import type { Kura } from "../../src/kura.js";
import { backendAvailable } from "../support/backends.js";
import { type TestKuraFactory, testKura } from "../support/kura.js";
import { postgresForTests } from "../support/servers/postgres.js";

const MASTER = randomBytes(32).toString("base64");
const EN = "Zephyrquill quarterly ledger";
const EN_WORD = "zephyrquill";
const JA = "機密の議事録です";
const JA_WORD = "議事録";
/** What must never reach disk: each needle in UTF-8, the Japanese ones in UTF-16LE too. */
const NEEDLES: Buffer[] = [
  Buffer.from("Zephyrquill", "utf8"),
  Buffer.from("zephyrquill", "utf8"),
  Buffer.from("Marmalade-secret", "utf8"),
  Buffer.from("議事録", "utf8"),
  Buffer.from("議事録", "utf16le"),
  Buffer.from("秘密の鍵束", "utf8"),
  Buffer.from("秘密の鍵束", "utf16le"),
];

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (isKuraError(e)) return e.code;
    throw e;
  }
  return "ok";
}

async function files(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await files(p)));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

/** Files under `dir` holding a needle, with the needle. */
async function plaintextOnDisk(dir: string): Promise<string[]> {
  const found: string[] = [];
  for (const f of await files(dir)) {
    const data = await readFile(f);
    for (const n of NEEDLES) if (data.includes(n)) found.push(`${f}: ${n.toString("utf8")}`);
  }
  return found;
}

interface Written {
  messageId: string;
  editedId: string;
}

/** Plaintext through every API of tenant `t`. */
async function writeEverything(kura: Kura, t: string): Promise<Written> {
  const tenant = kura.tenant(t);
  const m = await tenant.messages.append("chat-1", {
    role: "user",
    content: `${EN} and ${JA}`,
    metadata: { note: "Marmalade-secret" },
  });
  const e = await tenant.messages.append("chat-1", { role: "assistant", content: "draft one" });
  await tenant.messages.edit(e.id, `edited: ${JA} Zephyrquill`);
  await tenant.objects.put("docs/report.txt", Buffer.from(`${EN} ${JA} `.repeat(5000)), {
    contentType: "text/plain",
  });
  await tenant.sessions.setMeta("s1", "summary", { text: `${EN} 秘密の鍵束` });
  await tenant.sessions.putFile("s1", "notes/a.txt", Buffer.from(`${JA} Marmalade-secret`));
  await tenant.kv("prefs").set("k1", { v: "Zephyrquill 秘密の鍵束" });
  await tenant.drafts.save("d1", { body: `${JA} Zephyrquill` }, { expectedVersion: 0 });
  await tenant.memories.put("u1", { content: `The user likes Zephyrquill tea and ${JA}` });
  await tenant.vectors.create("col", { dimensions: 3, metric: "cosine" });
  await tenant.vectors.put("col", "v1", [0.1, 0.2, 0.3]);
  await kura.pumpOutbox();
  return { messageId: m.id, editedId: e.id };
}

async function readsAsBefore(kura: Kura, t: string, w: Written): Promise<void> {
  const tenant = kura.tenant(t);
  const m = await tenant.messages.get(w.messageId);
  expect(m.content).toBe(`${EN} and ${JA}`);
  expect(m.metadata).toEqual({ note: "Marmalade-secret" });
  expect((await tenant.messages.get(w.editedId)).content).toBe(`edited: ${JA} Zephyrquill`);
  const history = await tenant.messages.history("chat-1", { order: "asc" });
  expect(history.items.map((i) => i.id)).toEqual([w.messageId, w.editedId]);
  const body = (await tenant.objects.getBuffer("docs/report.txt")).data.toString("utf8");
  expect(body).toBe(`${EN} ${JA} `.repeat(5000));
  // A range in the middle of the object, across a 64 KiB chunk boundary.
  const whole = Buffer.from(`${EN} ${JA} `.repeat(5000));
  const ranged = await tenant.objects.get("docs/report.txt", { range: { start: 65_000, end: 70_000 } });
  const parts: Buffer[] = [];
  for await (const c of ranged.body) parts.push(Buffer.from(c as Uint8Array));
  expect(Buffer.concat(parts).equals(whole.subarray(65_000, 70_001))).toBe(true);
  expect(await tenant.sessions.listMeta("s1")).toEqual({ summary: { text: `${EN} 秘密の鍵束` } });
  expect((await tenant.sessions.readFile("s1", "notes/a.txt")).data.toString()).toBe(
    `${JA} Marmalade-secret`,
  );
  expect(await tenant.kv("prefs").get("k1")).toEqual({ v: "Zephyrquill 秘密の鍵束" });
  expect((await tenant.drafts.get("d1"))?.value).toEqual({ body: `${JA} Zephyrquill` });
  const memories = await tenant.memories.search("u1", { query: "Zephyrquill tea", k: 3 });
  expect(memories[0]?.memory.content).toBe(`The user likes Zephyrquill tea and ${JA}`);
  expect((await tenant.vectors.query("col", { vector: [0.1, 0.2, 0.3], k: 1 }))[0]?.id).toBe("v1");
  // Search: an English word, Japanese words of 1, 2 and 3 characters, and a snippet in plaintext.
  for (const q of [EN_WORD, JA_WORD, "機密", "録", "quarterly ledger"]) {
    const r = await tenant.search(q);
    expect(r.degraded).toBe(false);
    expect(r.hits.map((h) => h.id)).toContain(w.messageId);
  }
  const hit = (await tenant.search(EN_WORD)).hits.find((h) => h.id === w.messageId);
  expect(hit?.snippet).toContain("Zephyrquill");
  expect((await tenant.search("nothingmatcheshere")).hits).toEqual([]);
}

describe("encryption at rest on SQLite + fs + LMDB", () => {
  let factory: TestKuraFactory;
  let kura: Kura;
  let written: Written;
  const config = { encryption: { master_key: MASTER } };

  beforeAll(async () => {
    factory = await testKura("sqlite");
    kura = await factory.open({ projectors: "inline", config });
    written = await writeEverything(kura, "acme");
  });
  afterAll(async () => {
    await kura?.close();
    await factory?.cleanup();
  });

  it("stores no plaintext in any file under data_dir, and everything reads as before", async () => {
    await readsAsBefore(kura, "acme", written);
    await kura.close();
    expect(await plaintextOnDisk(factory.dir)).toEqual([]);
    kura = await factory.open({ projectors: "inline", config });
    await readsAsBefore(kura, "acme", written);
  });

  it("keeps old and new data readable across a rotation, and re-encryption leaves nothing under the old version", async () => {
    const t = kura.tenant("acme");
    expect((await kura.encryption.rotate("acme")).version).toBe(2);
    const after = await t.messages.append("chat-3", { role: "user", content: "written after the rotation" });
    await t.objects.put("docs/new.txt", Buffer.from("new object"));
    expect((await t.messages.get(written.messageId)).content).toBe(`${EN} and ${JA}`);
    expect((await t.messages.get(after.id)).content).toBe("written after the rotation");
    const versions = async () => {
      const seen = new Set<number>();
      for (const f of await files(join(factory.dir, "blobs", "acme")))
        seen.add(parseHeader(await readFile(f))?.version ?? -1);
      return seen;
    };
    expect(await versions()).toEqual(new Set([1, 2]));
    const report = await kura.runJobs();
    expect(report.find((r) => r.name === "reencrypt-keys")?.ran).toBe(true);
    expect(await versions()).toEqual(new Set([2]));
    // Catalog text too: every stored preview of the tenant is sealed under version 2.
    const rows = await kura.catalog.storedMessageText("acme", { limit: 1000 });
    expect(rows.length).toBeGreaterThan(0);
    for (const r of rows) {
      expect(r.preview.startsWith("~kenc1:")).toBe(true);
      expect(parseHeader(Buffer.from(r.preview.slice(7), "base64url"))?.version).toBe(2);
    }
    await readsAsBefore(kura, "acme", written);
    expect((await t.messages.get(after.id)).content).toBe("written after the rotation");
  });

  it("detects a changed byte of a body as BODY_CORRUPT", async () => {
    const t = kura.tenant("acme");
    const m = await t.messages.append("chat-2", { role: "user", content: "tamper with me please" });
    await kura.close();
    const path = (await files(join(factory.dir, "blobs"))).find((f) => f.includes(m.id));
    expect(path).toBeDefined();
    const data = await readFile(path as string);
    data[40] = (data[40] as number) ^ 0x01;
    await writeFile(path as string, data);
    kura = await factory.open({ projectors: "inline", config });
    expect(await code(kura.tenant("acme").messages.get(m.id))).toBe("BODY_CORRUPT");
  });
  it("after a shred answers TENANT_KEYS_DESTROYED to every read, finds nothing, and leaves no plaintext", async () => {
    const other = await writeEverything(kura, "beta");
    const t = kura.tenant("acme");
    expect((await kura.encryption.shred("acme")).destroyedKeys).toBeGreaterThan(0);
    expect(await code(t.messages.get(written.messageId))).toBe("TENANT_KEYS_DESTROYED");
    expect(await code(t.messages.history("chat-1"))).toBe("TENANT_KEYS_DESTROYED");
    expect(await code(t.objects.getBuffer("docs/report.txt"))).toBe("TENANT_KEYS_DESTROYED");
    expect(await code(t.sessions.readFile("s1", "notes/a.txt"))).toBe("TENANT_KEYS_DESTROYED");
    expect(await code(t.sessions.listMeta("s1"))).toBe("TENANT_KEYS_DESTROYED");
    expect(await code(t.kv("prefs").get("k1"))).toBe("TENANT_KEYS_DESTROYED");
    expect(await code(t.drafts.get("d1"))).toBe("TENANT_KEYS_DESTROYED");
    expect(await code(t.memories.get("u1", "none"))).not.toBe("UNEXPECTED");
    expect(await code(t.messages.append("chat-1", { role: "user", content: "more" }))).toBe(
      "TENANT_KEYS_DESTROYED",
    );
    for (const q of [EN_WORD, JA_WORD, "録"]) expect((await t.search(q)).hits).toEqual([]);
    // Another tenant is untouched.
    await readsAsBefore(kura, "beta", other);
    await kura.close();
    expect(await plaintextOnDisk(factory.dir)).toEqual([]);
    kura = await factory.open({ projectors: "inline", config });
    expect(await code(kura.tenant("acme").messages.get(written.messageId))).toBe("TENANT_KEYS_DESTROYED");
    expect((await kura.tenant("acme").search(EN_WORD)).hits).toEqual([]);
  });
});

describe("the scan itself", () => {
  it("finds the plaintext the same writes leave without encryption", async () => {
    const factory = await testKura("sqlite");
    const kura = await factory.open({ projectors: "inline" });
    try {
      await writeEverything(kura, "acme");
      await kura.close();
      const found = await plaintextOnDisk(factory.dir);
      expect(found.some((f) => f.includes("Zephyrquill"))).toBe(true);
      expect(found.some((f) => f.includes("議事録"))).toBe(true);
    } finally {
      await kura.close();
      await factory.cleanup();
    }
  });
});

const db = await postgresForTests();
const pgAvailable = backendAvailable("encryption-postgres", "problem" in db ? db.problem : undefined);

/** Every row of every table of the database, as text (bytea as bytes), with the needles found. */
async function plaintextInTables(url: string): Promise<string[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const found: string[] = [];
    const tables = await client.query(
      "SELECT table_schema, table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE' " +
        "AND table_schema NOT IN ('pg_catalog', 'information_schema')",
    );
    for (const t of tables.rows) {
      const name = `"${t.table_schema}"."${t.table_name}"`;
      const rows = await client.query(`SELECT * FROM ${name}`);
      for (const row of rows.rows) {
        const parts = Object.values(row).map((v) =>
          Buffer.isBuffer(v) ? v : Buffer.from(typeof v === "string" ? v : (JSON.stringify(v) ?? ""), "utf8"),
        );
        const data = Buffer.concat(parts);
        for (const n of NEEDLES) if (data.includes(n)) found.push(`${name}: ${n.toString("utf8")}`);
      }
    }
    return found;
  } finally {
    await client.end();
  }
}

describe.skipIf(!pgAvailable)("encryption at rest on PostgreSQL (catalog and full-text search) + fs", () => {
  let factory: TestKuraFactory;
  let kura: Kura;
  let written: Written;
  const config = { encryption: { master_key: MASTER }, search: { backend: "postgres" } };

  beforeAll(async () => {
    factory = await testKura("postgres", async () =>
      "url" in db ? { url: db.url, drop: async () => {} } : undefined,
    );
    kura = await factory.open({ projectors: "inline", config });
    written = await writeEverything(kura, "acme");
  });
  afterAll(async () => {
    await kura?.close();
    await factory?.cleanup();
    if ("destroy" in db) await db.destroy();
  });

  it("holds no plaintext in any row of any table nor any file, reads as before, re-encrypts and shreds", async () => {
    await readsAsBefore(kura, "acme", written);
    const url = "url" in db ? db.url : "";
    expect(await plaintextInTables(url)).toEqual([]);
    expect(await plaintextOnDisk(factory.dir)).toEqual([]);
    // A rotation and the re-encryption job on PostgreSQL: every preview under the new version.
    await kura.encryption.rotate("acme");
    await kura.encryption.reencryptAll();
    for (const r of await kura.catalog.storedMessageText("acme", { limit: 1000 }))
      expect(parseHeader(Buffer.from(r.preview.slice(7), "base64url"))?.version).toBe(2);
    await readsAsBefore(kura, "acme", written);
    await kura.encryption.shred("acme");
    expect(await code(kura.tenant("acme").messages.get(written.messageId))).toBe("TENANT_KEYS_DESTROYED");
    expect((await kura.tenant("acme").search(EN_WORD)).hits).toEqual([]);
    expect(await plaintextInTables(url)).toEqual([]);
  });
});
