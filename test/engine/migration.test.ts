/**
 * Online migration of the blob plane (issue 16), fs → radosgw (S3), on real backends: under a
 * concurrent append and object-put load nothing acknowledged is lost; closing Kura mid-migration
 * and opening it again on the same configuration resumes and finishes; after `done`, a Kura
 * opened on the target configuration alone reads every message, object and session file.
 */
import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { S3Client } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isKuraError } from "../../src/core/errors.js";
import type { MigrationView } from "../../src/engine/migration/online-migration.js";
import { Kura } from "../../src/kura.js";
import { createBucket, emptyAndDeleteBucket } from "../conformance/s3-harness.js";
import { backendAvailable } from "../support/backends.js";
import {
  RADOSGW_ACCESS_KEY,
  RADOSGW_SECRET_KEY,
  type RadosgwServer,
  radosgwProblem,
  startRadosgw,
} from "../support/servers/radosgw.js";
import { dropPrefix, REDIS_URL, redisProblem } from "../support/servers/redis.js";

const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

async function until(kura: Kura, id: string, states: string[], timeoutMs = 120_000): Promise<MigrationView> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const view = await kura.migrations.get(id);
    if (states.includes(view.state)) return view;
    if (view.state === "failed") throw new Error(`migration failed: ${view.error}`);
    if (Date.now() > deadline) throw new Error(`migration still ${view.state}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const rgwAvailable = backendAvailable("s3-radosgw", radosgwProblem());

describe.skipIf(!rgwAvailable)("online migration of the blob plane: fs → radosgw", () => {
  let dir: string;
  let rgw: RadosgwServer;
  let s3: S3Client;
  let bucket: string;
  let storage: Record<string, unknown>;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "kura-migration-"));
    rgw = await startRadosgw();
    s3 = new S3Client({
      endpoint: rgw.endpoint,
      region: "us-east-1",
      forcePathStyle: true,
      credentials: { accessKeyId: RADOSGW_ACCESS_KEY, secretAccessKey: RADOSGW_SECRET_KEY },
    });
    bucket = await createBucket(s3, "migration");
    storage = {
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
    };
  }, 300_000);

  afterAll(async () => {
    if (bucket) await emptyAndDeleteBucket(s3, bucket).catch(() => undefined);
    s3?.destroy();
    await rgw?.destroy();
    await rm(dir, { recursive: true, force: true });
  });

  it("loses nothing under load, resumes after a restart, and the target alone has everything", async () => {
    const source = { data_dir: join(dir, "data") };
    let kura = await Kura.open(source, { projectors: "inline" });
    const messages = new Map<string, string>();
    const objects = new Map<string, string>();
    const acme = () => kura.tenant("acme");
    for (let i = 0; i < 300; i++) {
      const content = `before ${i} ${randomBytes(8).toString("hex")}`;
      messages.set((await acme().messages.append(`chat-${i % 7}`, { role: "user", content })).id, content);
    }
    for (let i = 0; i < 20; i++) {
      const body = randomBytes(1000 + i * 5000);
      await acme().objects.put(`docs/${i}.bin`, body);
      objects.set(`docs/${i}.bin`, sha(body));
    }
    await acme().sessions.putFile("s1", "notes/a.txt", Buffer.from("session file"), {
      contentType: "text/plain",
    });

    // The load: appends and object replacements, each recorded once acknowledged.
    let stop = false;
    let paused = false;
    let n = 0;
    const load = (async () => {
      while (!stop) {
        if (paused) {
          await new Promise((r) => setTimeout(r, 5));
          continue;
        }
        const content = `during ${n++}`;
        try {
          const ref = await acme().messages.append("load", { role: "user", content });
          messages.set(ref.id, content);
          if (n % 4 === 0) {
            const body = randomBytes(2000);
            await acme().objects.put(`hot/${n % 3}.bin`, body);
            objects.set(`hot/${n % 3}.bin`, sha(body));
          }
        } catch (e) {
          // Only a closing Kura may refuse (the restart below pauses the load first).
          if (!(isKuraError(e) && e.code === "CLOSED")) throw e;
        }
        await new Promise((r) => setImmediate(r));
      }
    })();

    try {
      await migrateUnderLoad();
    } finally {
      stop = true;
      await load.catch(() => undefined);
    }

    async function migrateUnderLoad(): Promise<void> {
      const started = await kura.migrations.start({ storage });
      expect(started.state).toBe("dual_write");
      await expect(kura.migrations.start({ storage })).rejects.toMatchObject({ code: "MIGRATION_RUNNING" });
      await expect(kura.migrations.start({ database: { backend: "postgres" } })).rejects.toMatchObject({
        code: "MIGRATION_UNSUPPORTED",
      });
      await expect(kura.migrations.get("nope")).rejects.toMatchObject({ code: "MIGRATION_NOT_FOUND" });

      // Restart mid-migration: close Kura (its state stays in the catalog) and open it again.
      await until(kura, started.id, ["copying", "verifying", "switched", "done"]);
      paused = true;
      await new Promise((r) => setTimeout(r, 50));
      const beforeRestart = await kura.migrations.get(started.id);
      await kura.close();
      kura = await Kura.open(source, { projectors: "inline" });
      const resumed = await kura.migrations.get(started.id);
      expect(resumed.state).toBe(beforeRestart.state === "dual_write" ? "copying" : resumed.state);
      paused = false;
      await new Promise((r) => setTimeout(r, 300));

      const done = await until(kura, started.id, ["done"]);
      stop = true;
      await load;
      expect(done.progress.listed).toBeGreaterThan(0);
      expect(done.target).toEqual({ storage });
      expect(n).toBeGreaterThan(10);
      // Writes after `done` still land in both (the source stays a complete fallback).
      const after = await acme().messages.append("load", { role: "user", content: "after done" });
      messages.set(after.id, "after done");
    }
    await kura.close();

    // A Kura on the target configuration alone: every acknowledged message, object and file.
    const target = await Kura.open({ ...source, storage }, { projectors: "inline" });
    try {
      const t = target.tenant("acme");
      expect(target.config.storage.backend).toBe("s3");
      for (const [id, content] of messages) expect((await t.messages.get(id)).content).toBe(content);
      for (const [key, digest] of objects) expect(sha((await t.objects.getBuffer(key)).data)).toBe(digest);
      expect((await t.sessions.readFile("s1", "notes/a.txt")).data.toString()).toBe("session file");
    } finally {
      await target.close();
    }
  }, 300_000);
});

const redisMissing = await redisProblem();
const redisAvailable = backendAvailable("kv-redis", redisMissing);

describe.skipIf(!redisAvailable)("online migration of the state plane: LMDB → Redis", () => {
  let dir: string;
  const prefix = `kura-migration-${randomBytes(4).toString("hex")}:`;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "kura-migration-kv-"));
  });
  afterAll(async () => {
    await dropPrefix(prefix).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  });

  it("loses no KV write under a set/incr load, resumes after a restart, and the target alone has every value", async () => {
    const source = { data_dir: join(dir, "data") };
    const kvTarget = { backend: "redis", url: REDIS_URL, key_prefix: prefix };
    let kura = await Kura.open(source, { projectors: "inline" });
    const ns = () => kura.tenant("acme").kv("prefs");
    const expected = new Map<string, unknown>();
    for (let i = 0; i < 400; i++) {
      const value = { i, bytes: new Uint8Array([i % 256, 1, 2]), text: `v${i} ü` };
      await ns().set(`k${i}`, value);
      expected.set(`k${i}`, value);
    }
    await kura.tenant("acme").sessions.setMeta("s1", "cart", { items: [1, 2, 3] });
    let stop = false;
    let paused = false;
    let counter = 0;
    const load = (async () => {
      let n = 0;
      while (!stop) {
        if (paused) {
          await new Promise((r) => setTimeout(r, 5));
          continue;
        }
        try {
          await ns().set(`k${n % 400}`, { rewritten: n });
          expected.set(`k${n % 400}`, { rewritten: n });
          counter = (await ns().incr("counter")).value;
          if (n % 7 === 0) {
            await ns().delete(`k${(n * 3) % 400}`);
            expected.delete(`k${(n * 3) % 400}`);
          }
          n++;
        } catch (e) {
          if (!(isKuraError(e) && e.code === "CLOSED")) throw e;
        }
        await new Promise((r) => setImmediate(r));
      }
    })();
    try {
      const started = await kura.migrations.start({ kv: kvTarget });
      await until(kura, started.id, ["copying", "verifying", "switched", "done"]);
      paused = true;
      await new Promise((r) => setTimeout(r, 50));
      await kura.close();
      kura = await Kura.open(source, { projectors: "inline" });
      paused = false;
      await new Promise((r) => setTimeout(r, 300));
      const done = await until(kura, started.id, ["done"]);
      expect(done.progress.keys).toBeGreaterThan(0);
      stop = true;
      await load;
    } finally {
      stop = true;
      await load.catch(() => undefined);
      await kura.close();
    }
    const target = await Kura.open({ ...source, kv: kvTarget }, { projectors: "inline" });
    try {
      const t = target.tenant("acme");
      expect(target.config.kv.backend).toBe("redis");
      for (let i = 0; i < 400; i++) {
        const got = await t.kv("prefs").get(`k${i}`);
        const want = expected.get(`k${i}`);
        if (want && typeof want === "object" && "bytes" in want) {
          const w = want as { i: number; bytes: Uint8Array; text: string };
          expect(got).toMatchObject({ i: w.i, text: w.text });
          expect(Array.from((got as { bytes: Uint8Array }).bytes)).toEqual(Array.from(w.bytes));
        } else expect(got).toEqual(want);
      }
      expect(await t.kv("prefs").get("counter")).toBe(counter);
      expect(await t.sessions.getMeta("s1", "cart")).toEqual({ items: [1, 2, 3] });
    } finally {
      await target.close();
    }
  }, 300_000);
});
