/**
 * Online backup and restore (CONS-4) on real backends: a backup taken while appends and object
 * overwrites go on restores into a fresh SQLite + fs — and into PostgreSQL + radosgw — with every
 * message, object, session, KV value and search result as the source had them at the backup's
 * point in time; a non-empty target is refused without force; a damaged archive is rejected.
 */
import { createHash, randomBytes } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { S3Client } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { KuraConfig } from "../../src/config/index.js";
import { writeBackup } from "../../src/engine/backup.js";
import { readManifest } from "../../src/engine/backup-archive.js";
import { BACKUP_PIN, pinBodies } from "../../src/engine/backup-pin.js";
import { restoreBackup } from "../../src/engine/restore.js";
import { Kura } from "../../src/kura.js";
import { resolveConfig } from "../../src/open/config.js";
import { openDataPlanes } from "../../src/open/planes.js";
import { createBucket, emptyAndDeleteBucket } from "../conformance/s3-harness.js";
import { backendAvailable } from "../support/backends.js";
import { postgresForTests } from "../support/servers/postgres.js";
import {
  RADOSGW_ACCESS_KEY,
  RADOSGW_SECRET_KEY,
  type RadosgwServer,
  radosgwProblem,
  startRadosgw,
} from "../support/servers/radosgw.js";

const TENANTS = ["acme", "globex"];
/** Resumable uploads left half done in the source, by tenant: not in a backup (their parts are not). */
const uploadsInProgress = new Map<string, string>();
const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

/** Data that stays put while the load runs: what every restore must reproduce exactly. */
async function populate(kura: Kura): Promise<void> {
  for (const t of TENANTS) {
    const tenant = kura.tenant(t);
    const refs = [];
    for (let i = 0; i < 12; i++)
      refs.push(
        await tenant.messages.append(i % 2 === 0 ? "chat-a" : "chat-b", {
          role: i % 3 === 0 ? "assistant" : "user",
          content: `zebra ${t} number ${i} ${i % 4 === 0 ? "quokka" : "otter"} 蔵 ünïcode`,
          metadata: { i },
        }),
      );
    await tenant.messages.edit((refs[1] as { id: string }).id, `zebra ${t} edited quokka`);
    await tenant.messages.delete((refs[2] as { id: string }).id);
    await tenant.objects.put("docs/readme.txt", Buffer.from(`read me ${t}`), { contentType: "text/plain" });
    await tenant.objects.put("docs/big.bin", randomBytes(300_000), {
      contentType: "application/octet-stream",
    });
    await tenant.objects.put("docs/replaced.txt", Buffer.from("first"), { contentType: "text/plain" });
    await tenant.objects.put("docs/replaced.txt", Buffer.from("second"), { contentType: "text/plain" });
    await tenant.objects.put("docs/gone.txt", Buffer.from("gone"));
    await tenant.objects.delete("docs/gone.txt");
    await tenant.sessions.setMeta("s1", "cart", { items: [1, 2, 3], note: "ü" });
    await tenant.sessions.putFile("s1", "notes/a.txt", Buffer.from(`session file of ${t}`), {
      contentType: "text/plain",
    });
    await tenant.kv("prefs").set("theme", { dark: true, t });
    await tenant.kv("prefs").set("counter", 41);
    await tenant.kv("prefs").set("bytes", new Uint8Array([1, 2, 3]));
    // A vector collection: its index is the items' store of record.
    await tenant.vectors.create("embeddings", { dimensions: 8, metric: "l2" });
    await tenant.vectors.create("empty", { dimensions: 3, metric: "cosine" });
    for (let i = 0; i < 40; i++)
      await tenant.vectors.put("embeddings", `e${i}`, collectionVector(t, i), {
        ...(i % 2 === 0 ? { chatId: "chat-a" } : {}),
        ...(i % 5 === 0 ? { category: "five" } : {}),
      });
    await tenant.vectors.put("embeddings", "e3", collectionVector(t, 1003));
    const upload = await tenant.uploads.create({
      length: 10,
      metadata: { key: "docs/partial.bin" },
      body: { body: Buffer.from("12345"), size: 5 },
    });
    expect(upload.offset).toBe(5);
    uploadsInProgress.set(t, upload.id);
    await tenant.vectors.delete("embeddings", "e4");
  }
  await kura.pumpOutbox();
}

/** The `i`th vector of tenant `t`'s collection (deterministic). */
function collectionVector(t: string, i: number): number[] {
  return Array.from({ length: 8 }, (_, d) => Math.sin(i * 7.1 + d * 1.3 + t.length) * (1 + (i % 3)));
}

/** What the baseline looks like through the public API, in a form two deployments can be compared by. */
async function observe(kura: Kura, options: { only?: (id: string) => boolean } = {}) {
  const out: Record<string, unknown> = {};
  for (const t of TENANTS) {
    const tenant = kura.tenant(t);
    const chats: Record<string, unknown[]> = {};
    for (const chat of ["chat-a", "chat-b"]) {
      const page = await tenant.messages.history(chat, { order: "asc", limit: 1000 });
      const items = page.items.filter((m) => options.only?.(m.id) ?? true);
      chats[chat] = await Promise.all(
        items.map(async (m) => {
          const full = await tenant.messages.get(m.id);
          const versions = (await tenant.messages.versions(m.id)).map((v) => [
            v.version,
            v.checksum,
            v.sizeBytes,
          ]);
          return { id: full.id, role: full.role, content: full.content, versions };
        }),
      );
    }
    const objects = [];
    for (const o of (await tenant.objects.list({ prefix: "docs/" })).items) {
      const { info, data } = await tenant.objects.getBuffer(o.key);
      objects.push({ key: o.key, contentType: info.contentType, size: info.size, sha: sha(data) });
    }
    const session = {
      meta: await tenant.sessions.listMeta("s1"),
      file: (await tenant.sessions.readFile("s1", "notes/a.txt")).data.toString("utf8"),
    };
    const kv = {
      theme: await tenant.kv("prefs").get("theme"),
      counter: await tenant.kv("prefs").get("counter"),
      bytes: Array.from((await tenant.kv("prefs").get<Uint8Array>("bytes")) ?? []),
    };
    const search: Record<string, string[]> = {};
    for (const q of ["zebra", "quokka", "otter edited"]) {
      const r = await tenant.search(q, { limit: 100 });
      search[q] = r.hits
        .map((h) => h.id)
        .filter((id) => options.only?.(id) ?? true)
        .sort();
    }
    const vectors = {
      collections: (await tenant.vectors.list()).items.map((c) => [c.name, c.dimensions, c.metric]),
      count: await tenant.vectors.count("embeddings"),
      near: await Promise.all(
        [0, 3, 17].map(async (i) =>
          (
            await tenant.vectors.query("embeddings", {
              vector: collectionVector(t, i),
              k: 5,
              mode: "accurate",
            })
          ).map((h) => [h.id, Math.round(h.distance * 1e4), h.chatId ?? null, h.category ?? null]),
        ),
      ),
      filtered: (
        await tenant.vectors.query("embeddings", {
          vector: collectionVector(t, 2),
          k: 3,
          filter: { category: "five" },
          mode: "accurate",
        })
      ).map((h) => h.id),
    };
    out[t] = { chats, objects, session, kv, search, vectors };
  }
  return out;
}

async function configOf(raw: Record<string, unknown>): Promise<KuraConfig> {
  return resolveConfig(raw, { env: {} });
}

async function restoreInto(config: KuraConfig, archive: string, force = false) {
  const planes = await openDataPlanes(config);
  try {
    return await restoreBackup(planes, createReadStream(archive), {
      compression: archive.endsWith(".gz") ? "gzip" : "none",
      force,
    });
  } finally {
    await planes.close();
  }
}

/** Opens a restored deployment and rebuilds its search index, as `kura restore` does. */
async function openRestored(config: KuraConfig): Promise<Kura> {
  const kura = await Kura.open(config, { projectors: "inline" });
  await kura.rebuildSearch();
  await kura.pumpOutbox();
  return kura;
}

describe("backup and restore", () => {
  let dir: string;
  let sourceConfig: KuraConfig;
  let source: Kura;
  let archive: string;
  let baseline: Awaited<ReturnType<typeof observe>>;
  const ackedBefore = new Set<string>();
  const ackedAfterSnapshot = new Set<string>();
  const baselineIds = new Set<string>();
  const hotVersions = new Set<string>();

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "kura-backup-"));
    sourceConfig = await configOf({ data_dir: join(dir, "source") });
    source = await Kura.open(sourceConfig, { projectors: "inline" });
    await populate(source);
    for (const t of TENANTS)
      for (const chat of ["chat-a", "chat-b"])
        for (const m of (await source.tenant(t).messages.history(chat, { limit: 1000 })).items)
          baselineIds.add(m.id);
    baseline = await observe(source);
  });

  afterAll(async () => {
    await source?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("takes a backup while appends and overwrites go on: acknowledged before → in it, committed after the snapshot → not", async () => {
    archive = join(dir, "backup.tar.gz");
    const load = source.tenant("acme");
    const state: { phase: "before" | "during" | "after" } = { phase: "before" };
    let stop = false;
    const appender = (async () => {
      let n = 0;
      while (!stop) {
        const phaseAtStart = state.phase;
        const ref = await load.messages.append("load", {
          role: "user",
          content: `load message ${n++} walrus`,
        });
        if (phaseAtStart === "before" && state.phase === "before") ackedBefore.add(ref.id);
        if (phaseAtStart === "after") ackedAfterSnapshot.add(ref.id);
        if (n % 5 === 0) {
          const body = Buffer.from(`hot ${n}`);
          hotVersions.add(sha(body));
          await load.objects.put("hot/object.txt", body, { contentType: "text/plain" });
        }
        await new Promise((r) => setImmediate(r));
      }
    })();
    while (ackedBefore.size < 20) await new Promise((r) => setTimeout(r, 5));
    const planes = await openDataPlanes(sourceConfig);
    try {
      state.phase = "during";
      const summary = await writeBackup(planes, createWriteStream(archive), {
        compression: "gzip",
        owner: "test-backup",
        afterSnapshot: async () => {
          state.phase = "after";
          // Let writes land after the snapshot (and overwrites drop bodies it references).
          while (ackedAfterSnapshot.size < 10) await new Promise((r) => setTimeout(r, 5));
        },
      });
      expect(summary.manifest.missing_bodies).toEqual([]);
      expect(summary.manifest.corrupt_bodies).toEqual([]);
      expect(summary.manifest.bodies.count).toBeGreaterThan(50);
      expect(summary.manifest.tables.messages?.rows).toBeGreaterThan(24);
      expect(summary.manifest.entries.every((e) => /^[0-9a-f]{64}$/.test(e.sha256) && e.size >= 0)).toBe(
        true,
      );
    } finally {
      stop = true;
      await appender;
      await planes.close();
    }
    // The pin is released: GC may delete again.
    expect(await source.catalog.leaseOwner(BACKUP_PIN, Date.now())).toBeUndefined();
  }, 120_000);

  it("restores an earlier release's ref row of a message body as nothing: the message's row is its ref", async () => {
    const config = await configOf({ data_dir: join(dir, "earlier-source") });
    const earlier = await Kura.open(config, { projectors: "inline" });
    let id: string;
    try {
      id = (await earlier.tenant("acme").messages.append("c", { role: "user", content: "from before" })).id;
      const row = await earlier.catalog.getMessage("acme", id);
      if (!row) throw new Error("no row");
      const { tenantId, storeId, blobKey, sizeBytes, checksum, createdAt } = row;
      const [outcome] = await earlier.catalog.commit([
        {
          ops: [
            {
              op: "putBlobRef",
              row: { tenantId, storeId, blobKey, sizeBytes, checksum, kind: "message", createdAt },
            },
          ],
        },
      ]);
      expect(outcome).toEqual({ ok: true });
    } finally {
      await earlier.close();
    }
    const file = join(dir, "earlier.tar");
    const planes = await openDataPlanes(config);
    try {
      const summary = await writeBackup(planes, createWriteStream(file), {
        compression: "none",
        owner: "test-earlier",
      });
      expect(summary.manifest.bodies.count).toBe(1);
    } finally {
      await planes.close();
    }
    const target = await configOf({ data_dir: join(dir, "earlier-target") });
    const result = await restoreInto(target, file);
    expect(result.tables.blob_refs).toEqual({ rows: 1, inserted: 0 });
    const kura = await openRestored(target);
    try {
      expect((await kura.tenant("acme").messages.get(id)).content).toEqual("from before");
      const row = await kura.catalog.getMessage("acme", id);
      const key = row?.blobKey as string;
      expect(await kura.catalog.existingBlobRefs(row?.storeId as string, [key])).toEqual(new Set([key]));
      await kura.tenant("acme").messages.erase(id);
      expect(await kura.catalog.existingBlobRefs(row?.storeId as string, [key])).toEqual(new Set());
    } finally {
      await kura.close();
    }
  }, 60_000);

  it("restores into a fresh SQLite + fs with the source's state at the snapshot", async () => {
    const config = await configOf({ data_dir: join(dir, "target-sqlite") });
    const result = await restoreInto(config, archive);
    expect(result.bodies.count).toBeGreaterThan(50);
    const target = await openRestored(config);
    try {
      expect(await observe(target, { only: (id) => baselineIds.has(id) })).toEqual(baseline);
      // The load: everything acknowledged before the backup started is there, nothing committed
      // after the snapshot, and whatever is there is whole.
      const restored = (await target.tenant("acme").messages.history("load", { order: "asc", limit: 1000 }))
        .items;
      const ids = new Set(restored.map((m) => m.id));
      for (const id of ackedBefore) expect(ids.has(id)).toBe(true);
      for (const id of ackedAfterSnapshot) expect(ids.has(id)).toBe(false);
      for (const m of restored) {
        const here = await target.tenant("acme").messages.get(m.id);
        expect(here.content).toEqual((await source.tenant("acme").messages.get(m.id)).content);
      }
      const walrus = new Set<string>();
      let cursor: string | undefined;
      do {
        const page = await target
          .tenant("acme")
          .search("walrus", { limit: 100, ...(cursor ? { cursor } : {}) });
        for (const h of page.hits) walrus.add(h.id);
        cursor = page.cursor;
      } while (cursor);
      expect(walrus).toEqual(ids);
      // Half-done uploads stay behind: a restored state would name parts the target lacks.
      for (const [t, id] of uploadsInProgress) {
        expect((await source.tenant(t).uploads.head(id)).offset).toBe(5);
        await expect(target.tenant(t).uploads.head(id)).rejects.toMatchObject({ code: "UPLOAD_NOT_FOUND" });
      }
      // The overwritten object: one of the versions written, intact.
      const hot = await target.tenant("acme").objects.getBuffer("hot/object.txt");
      expect(hotVersions.has(sha(hot.data))).toBe(true);
      expect((await target.tenant("acme").messages.count("load")) as number).toBe(restored.length);
    } finally {
      await target.close();
    }
  }, 120_000);

  it("refuses a target that holds data unless forced; a forced restore adds nothing that exists", async () => {
    const config = await configOf({ data_dir: join(dir, "target-sqlite") });
    await expect(restoreInto(config, archive)).rejects.toMatchObject({ code: "RESTORE_TARGET_NOT_EMPTY" });
    const again = await restoreInto(config, archive, true);
    expect(Object.values(again.tables).reduce((n, t) => n + t.inserted, 0)).toBe(0);
    const target = await openRestored(config);
    try {
      expect(await observe(target, { only: (id) => baselineIds.has(id) })).toEqual(baseline);
    } finally {
      await target.close();
    }
  }, 120_000);

  it("rejects a damaged archive entry with BACKUP_CORRUPT, and a cut-short archive too", async () => {
    const planes = await openDataPlanes(sourceConfig);
    const plain = join(dir, "plain.tar");
    try {
      await writeBackup(planes, createWriteStream(plain), { compression: "none", owner: "test-backup-2" });
    } finally {
      await planes.close();
    }
    const bytes = await readFile(plain);
    const at = bytes.indexOf(Buffer.from("read me acme"));
    expect(at).toBeGreaterThan(0);
    const flipped = Buffer.from(bytes);
    flipped[at] = (flipped[at] as number) ^ 0x20;
    await writeFile(join(dir, "flipped.tar"), flipped);
    await expect(
      restoreInto(await configOf({ data_dir: join(dir, "target-flipped") }), join(dir, "flipped.tar")),
    ).rejects.toMatchObject({ code: "BACKUP_CORRUPT", kind: "Corrupt" });

    await writeFile(join(dir, "short.tar"), bytes.subarray(0, Math.floor(bytes.length / 2)));
    await expect(
      restoreInto(await configOf({ data_dir: join(dir, "target-short") }), join(dir, "short.tar")),
    ).rejects.toMatchObject({ code: "BACKUP_CORRUPT" });
  }, 120_000);

  it("an incremental backup holds only bodies its base lacks, and restores with its base", async () => {
    const full = join(dir, "full.tar.gz");
    const planes = await openDataPlanes(sourceConfig);
    let incremental: string;
    let newId: string;
    try {
      const base = await writeBackup(planes, createWriteStream(full), {
        compression: "gzip",
        owner: "test-full",
      });
      newId = (
        await source.tenant("acme").messages.append("chat-a", { role: "user", content: "after the base" })
      ).id;
      await source.tenant("acme").objects.put("later/new.txt", Buffer.from("new after the base"));
      incremental = join(dir, "incremental.tar");
      const read = await readManifest(createReadStream(full), "gzip");
      expect(read.entries).toEqual(base.manifest.entries);
      const inc = await writeBackup(planes, createWriteStream(incremental), {
        compression: "none",
        owner: "test-inc",
        base: read,
      });
      expect(inc.manifest.incremental_from?.created_at).toBe(base.manifest.created_at);
      expect(inc.manifest.bodies.count).toBe(2);
      expect(inc.manifest.in_base.length).toBe(
        base.manifest.bodies.count - inc.manifest.missing_bodies.length,
      );
    } finally {
      await planes.close();
    }
    await expect(
      restoreInto(await configOf({ data_dir: join(dir, "target-inc-alone") }), incremental),
    ).rejects.toMatchObject({ code: "BACKUP_UNSUPPORTED" });

    const config = await configOf({ data_dir: join(dir, "target-inc") });
    const into = await openDataPlanes(config);
    try {
      await restoreBackup(into, createReadStream(incremental), {
        compression: "none",
        incremental: {
          manifest: await readManifest(createReadStream(incremental), "none"),
          bases: [{ open: () => createReadStream(full), compression: "gzip" }],
        },
      });
    } finally {
      await into.close();
    }
    const target = await openRestored(config);
    try {
      expect(await observe(target, { only: (id) => baselineIds.has(id) })).toEqual(baseline);
      expect((await target.tenant("acme").messages.get(newId)).content).toBe("after the base");
      expect((await target.tenant("acme").objects.getBuffer("later/new.txt")).data.toString()).toBe(
        "new after the base",
      );
    } finally {
      await target.close();
    }
  }, 120_000);

  it("while a backup pins the bodies, neither orphan GC nor a replacing write deletes one", async () => {
    const tenant = source.tenant("globex");
    await tenant.objects.put("pin/x.txt", Buffer.from("one"));
    const before = await source.catalog.getObject("globex", "pin/x.txt");
    const pin = await pinBodies(source.catalog, "test-pin");
    try {
      await tenant.objects.put("pin/x.txt", Buffer.from("two"));
      expect(await source.store.exists(before?.blobKey as string)).toBe(true);
      const reports = await source.runJobs(Date.now() + 10 * 86_400_000);
      expect(reports.find((r) => r.name === "gc-orphans")?.result).toMatchObject({ deleted: 0, pinned: 1 });
      await expect(pinBodies(source.catalog, "another")).rejects.toMatchObject({ code: "BACKUP_RUNNING" });
    } finally {
      await pin.release();
    }
    const reports = await source.runJobs(Date.now() + 10 * 86_400_000);
    expect(reports.find((r) => r.name === "gc-orphans")?.result?.deleted).toBeGreaterThanOrEqual(1);
    expect(await source.store.exists(before?.blobKey as string)).toBe(false);
  }, 60_000);

  it("a tenant deleted while a backup pins the bodies keeps them until the pin goes", async () => {
    await source.tenants.create({ tenantId: "initech" });
    await source.tenant("initech").objects.put("x.txt", Buffer.from("initech"));
    const row = await source.catalog.getObject("initech", "x.txt");
    const pin = await pinBodies(source.catalog, "test-pin-2");
    try {
      await source.tenants.delete("initech");
      await new Promise((r) => setTimeout(r, 1500));
      expect(await source.catalog.getObject("initech", "x.txt")).toBeUndefined();
      expect(await source.store.exists(row?.blobKey as string)).toBe(true);
    } finally {
      await pin.release();
    }
    await source.tenants.settleDeletions();
    expect(await source.store.exists(row?.blobKey as string)).toBe(false);
  }, 60_000);
});

const pgDb = await postgresForTests();
const pgAvailable = backendAvailable("catalog-postgres", "problem" in pgDb ? pgDb.problem : undefined);
const rgwAvailable = backendAvailable("s3-radosgw", radosgwProblem());

describe.skipIf(!pgAvailable || !rgwAvailable)(
  "backup of SQLite + fs restored into PostgreSQL + radosgw and back",
  () => {
    let dir: string;
    let rgw: RadosgwServer;
    let s3: S3Client;
    let bucket: string;

    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), "kura-backup-pg-"));
      rgw = await startRadosgw();
      s3 = new S3Client({
        endpoint: rgw.endpoint,
        region: "us-east-1",
        forcePathStyle: true,
        credentials: { accessKeyId: RADOSGW_ACCESS_KEY, secretAccessKey: RADOSGW_SECRET_KEY },
      });
      bucket = await createBucket(s3, "backup");
    }, 300_000);

    afterAll(async () => {
      if (bucket) await emptyAndDeleteBucket(s3, bucket).catch(() => undefined);
      s3?.destroy();
      await rgw?.destroy();
      if ("destroy" in pgDb) await pgDb.destroy();
      await rm(dir, { recursive: true, force: true });
    });

    it("every message, object, session, KV value and search result equals the source's", async () => {
      const sourceConfig = await configOf({ data_dir: join(dir, "source") });
      const source = await Kura.open(sourceConfig, { projectors: "inline" });
      let baseline: Awaited<ReturnType<typeof observe>>;
      const archive = join(dir, "backup.tar");
      try {
        await populate(source);
        baseline = await observe(source);
        const planes = await openDataPlanes(sourceConfig);
        try {
          await writeBackup(planes, createWriteStream(archive), { compression: "none", owner: "test" });
        } finally {
          await planes.close();
        }
      } finally {
        await source.close();
      }
      const pgConfig = await configOf({
        data_dir: join(dir, "pg"),
        database: {
          backend: "postgres",
          url: "url" in pgDb ? pgDb.url : "",
          schema: `kura_${randomBytes(4).toString("hex")}`,
        },
        storage: {
          backend: "s3",
          options: {
            bucket,
            endpoint: rgw.endpoint,
            force_path_style: true,
            region: "us-east-1",
            credentials: "static",
            access_key_id: RADOSGW_ACCESS_KEY,
            secret_access_key: RADOSGW_SECRET_KEY,
          },
        },
      });
      await restoreInto(pgConfig, archive);
      const pg = await openRestored(pgConfig);
      const back = join(dir, "back.tar.gz");
      try {
        const seen = await observe(pg);
        expect(seen).toEqual(baseline);
        // And back: PostgreSQL + radosgw → SQLite + fs.
        const planes = await openDataPlanes(pgConfig);
        try {
          await writeBackup(planes, createWriteStream(back), { compression: "gzip", owner: "test" });
        } finally {
          await planes.close();
        }
      } finally {
        await pg.close();
      }
      const again = await configOf({ data_dir: join(dir, "again") });
      await restoreInto(again, back);
      const sqlite = await openRestored(again);
      try {
        expect(await observe(sqlite)).toEqual(baseline);
      } finally {
        await sqlite.close();
      }
    }, 300_000);
  },
);
