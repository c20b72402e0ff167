/**
 * `kura serve` with the embedded defaults (SQLite catalog, fs blobs, LMDB KV) on a 16 MiB tmpfs
 * filled up through the API: every write that does not fit answers 507 STORAGE_FULL with
 * Retry-After (not 500, and the process lives), /readyz answers 503 "storage full", object
 * DELETEs still work and free space, after which writes succeed and /readyz is ready again.
 *
 * Before the fix: a KV write (and a vector upsert) ended the process (lmdb-js's unhandled
 * commit rejections), a SQLite commit answered 500, deletes failed with SQLITE_FULL and
 * /readyz stayed ready.
 */
import { spawnSync } from "node:child_process";
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openSqliteCatalog } from "../../src/adapters/catalog/sqlite/index.js";
import { openUsearchVectorIndex } from "../../src/adapters/vector/usearch/index.js";
import type { CatalogBatch, ObjectRow } from "../../src/ports/catalog.js";
import { backendAvailable } from "../support/backends.js";
import { eventually, type ServeChild, startServe, token } from "./support.js";

/** Mount a 16 MiB tmpfs at `mnt`; the reason when that is not possible here. */
function mountTmpfs(mnt: string): string | undefined {
  if (process.platform !== "linux") return "tmpfs mounts need Linux";
  if (process.getuid?.() !== 0) return "mounting a tmpfs needs root";
  mkdirSync(mnt, { recursive: true });
  const r = spawnSync("mount", ["-t", "tmpfs", "-o", "size=16m", "tmpfs", mnt], { encoding: "utf8" });
  return r.status === 0 ? undefined : `mount -t tmpfs failed: ${r.stderr.trim() || r.error?.message}`;
}

// Probe once (mount, unmount) so a skip is decided up front; the real mount is made in
// beforeAll, so a run that filters these tests out leaves nothing behind.
const probeDir = mkdtempSync(join(tmpdir(), "kura-fault-probe-"));
const problem = mountTmpfs(join(probeDir, "mnt"));
if (problem === undefined) spawnSync("umount", [join(probeDir, "mnt")]);
rmSync(probeDir, { recursive: true, force: true });
const runs = backendAvailable("fault-disk-full", problem);

describe.runIf(runs)("fault: the disk holding data_dir fills up", () => {
  let serve: ServeChild;
  let auth: string;
  let base: string;
  let mnt: string;

  beforeAll(async () => {
    base = mkdtempSync(join(tmpdir(), "kura-fault-full-"));
    mnt = join(base, "mnt");
    const failed = mountTmpfs(mnt);
    if (failed) throw new Error(failed);
    serve = await startServe({ data_dir: join(mnt, "data") }, base);
    auth = `Bearer ${await token("acme")}`;
  }, 120_000);

  afterAll(async () => {
    await serve?.stop();
    if (mnt) spawnSync("umount", ["-l", mnt]);
    if (base) rmSync(base, { recursive: true, force: true });
  });

  const call = async (method: string, path: string, body?: string | Buffer, type = "application/json") => {
    const r = await fetch(`${serve.url}${path}`, {
      method,
      headers: { authorization: auth, ...(body === undefined ? {} : { "content-type": type }) },
      ...(body === undefined ? {} : { body }),
      signal: AbortSignal.timeout(30_000),
    });
    const text = await r.text();
    let code: string | undefined;
    try {
      code = (JSON.parse(text) as { error_code?: string }).error_code;
    } catch {
      code = undefined;
    }
    return { status: r.status, code, text, retryAfter: r.headers.get("retry-after") };
  };

  /** Writes until one is refused (bounded); returns the refusal and how many succeeded. */
  const fill = async (write: (i: number) => ReturnType<typeof call>, max: number) => {
    for (let i = 0; i < max; i++) {
      const r = await write(i);
      if (r.status >= 300) return { refused: r, written: i };
    }
    return { refused: undefined, written: max };
  };

  const expectFull = (r: Awaited<ReturnType<typeof call>> | undefined) => {
    expect(r?.status, r?.text).toBe(507);
    expect(r?.code).toBe("STORAGE_FULL");
    expect(Number(r?.retryAfter)).toBeGreaterThan(0);
  };

  it("SQLite catalog: inserts fail with STORAGE_FULL, deletes still commit (reserve), then inserts again", async () => {
    const dir = join(mnt, "catalog-only");
    mkdirSync(dir, { recursive: true });
    const catalog = await openSqliteCatalog({ path: join(dir, "kura.db"), busy_timeout_ms: 1000 });
    expect(existsSync(join(dir, "kura.db.reserve"))).toBe(true);
    const filler = join(mnt, "filler");
    try {
      const row = (key: string): ObjectRow => ({
        tenantId: "acme",
        key,
        storeId: "primary",
        blobKey: `acme/objects/${key}`,
        sizeBytes: 1,
        checksum: "0".repeat(64),
        contentType: "text/plain",
        createdAt: 1,
        updatedAt: 1,
      });
      const put = (key: string): CatalogBatch => ({
        ops: [
          { op: "ensureTenant", tenantId: "acme", at: 1 },
          { op: "putObject", row: row(key) },
        ],
      });
      const del = (key: string): CatalogBatch => ({ ops: [{ op: "deleteObject", tenantId: "acme", key }] });
      for (let i = 0; i < 50; i++) expect((await catalog.commit([put(`k${i}`)]))[0]?.ok).toBe(true);
      // Take every free block of the file system.
      const fd = openSync(filler, "w");
      const block = Buffer.alloc(64 * 1024, 1);
      try {
        for (let i = 0; i < 1024; i++) writeSync(fd, block);
      } catch {
        // ENOSPC: the disk is full now
      } finally {
        closeSync(fd);
      }
      let refused: Awaited<ReturnType<typeof catalog.commit>>[number] | undefined;
      for (let i = 0; i < 500 && refused === undefined; i++) {
        const [o] = await catalog.commit([put(`big-${i}-${"x".repeat(2000)}`)]);
        if (o && !o.ok) refused = o;
      }
      expect(refused?.ok).toBe(false);
      expect(refused && !refused.ok ? refused.error.code : "").toBe("STORAGE_FULL");
      for (let i = 0; i < 20; i++) {
        const [o] = await catalog.commit([del(`k${i}`)]);
        expect(o?.ok, o && !o.ok ? o.error.message : "").toBe(true);
      }
      expect(await catalog.getObject("acme", "k0")).toBeUndefined();
      rmSync(filler, { force: true });
      expect((await catalog.commit([put("again")]))[0]?.ok).toBe(true);
    } finally {
      rmSync(filler, { force: true });
      await catalog.close();
    }
  });

  it("usearch vector index: an upsert on the full disk is STORAGE_FULL, the process lives", async () => {
    const index = await openUsearchVectorIndex({ dir: join(mnt, "vectors"), dimensions: 64, metric: "l2" });
    const filler = join(mnt, "filler");
    try {
      const fd = openSync(filler, "w");
      try {
        for (let i = 0; i < 1024; i++) writeSync(fd, Buffer.alloc(64 * 1024, 1));
      } catch {
        // ENOSPC: the disk is full now
      } finally {
        closeSync(fd);
      }
      let refused: unknown;
      for (let i = 0; i < 5000 && refused === undefined; i++) {
        const vector = Float32Array.from({ length: 64 }, (_, j) => Math.sin(i * 64 + j));
        await index.upsert([{ tenantId: "acme", id: `v${i}`, vector }]).catch((e: unknown) => {
          refused = e;
        });
      }
      expect((refused as { code?: string } | undefined)?.code).toBe("STORAGE_FULL");
    } finally {
      rmSync(filler, { force: true });
      await index.close().catch(() => undefined);
    }
  });

  it("answers 507 STORAGE_FULL from every plane, stays up, frees space by DELETE, recovers", {
    timeout: 120_000,
  }, async () => {
    const chunk = Buffer.alloc(512 * 1024, 7);
    const objects = await fill(
      (i) => call("PUT", `/v1/objects/fill/${i}`, chunk, "application/octet-stream"),
      64,
    );
    expect(objects.written).toBeGreaterThan(4);
    expectFull(objects.refused);

    const messages = await fill(
      (i) =>
        call(
          "POST",
          "/v1/chats/c/messages",
          JSON.stringify({ role: "user", content: `m${i} ${"z".repeat(2000)}` }),
        ),
      2000,
    );
    expectFull(messages.refused);

    const kv = await fill(
      (i) => call("PUT", `/v1/kv/ns/k${i}`, JSON.stringify({ v: "k".repeat(4000), i })),
      4000,
    );
    expectFull(kv.refused);

    expect(serve.alive(), serve.output()).toBe(true);
    expect((await fetch(`${serve.url}/healthz`)).status).toBe(200);
    const notReady = await fetch(`${serve.url}/readyz`);
    expect(notReady.status).toBe(503);
    expect(notReady.headers.get("retry-after")).toBeTruthy();
    expect(((await notReady.json()) as { error: string }).error).toMatch(/storage full/);

    // Deletes work on the full disk and give space back.
    for (let i = 0; i < Math.min(8, objects.written); i++) {
      const d = await call("DELETE", `/v1/objects/fill/${i}`);
      expect(d.status, d.text).toBe(204);
    }
    expect((await call("GET", "/v1/objects/fill/0")).status).toBe(404);

    // Writes succeed again on every plane, and readiness follows.
    const put = await call("PUT", "/v1/objects/after", Buffer.from("room again"), "application/octet-stream");
    expect(put.status, put.text).toBeLessThan(300);
    const msg = await call(
      "POST",
      "/v1/chats/c/messages",
      JSON.stringify({ role: "user", content: "after" }),
    );
    expect(msg.status, msg.text).toBe(201);
    const set = await call("PUT", "/v1/kv/ns/after", JSON.stringify({ v: 1 }));
    expect(set.status, set.text).toBe(200);
    expect(await eventually(async () => (await fetch(`${serve.url}/readyz`)).status === 200, 50, 100)).toBe(
      true,
    );
    expect(serve.alive(), serve.output()).toBe(true);
  });
});
