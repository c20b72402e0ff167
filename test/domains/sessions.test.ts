/**
 * Sessions (SESS-1) and the other state kinds (SESS-2) through `Kura.open` on embedded defaults:
 * SQLite catalog, fs blob store, lmdb KV store, with an injected clock for metadata TTLs.
 */
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { isKuraError, type KuraError } from "../../src/core/errors.js";
import { verifyPresignedRequest } from "../../src/core/presign.js";
import type { ConfigChange } from "../../src/domains/state.js";
import type { Kura } from "../../src/kura.js";
import { expectKuraError } from "../conformance/kv-store.suite.js";
import { type TestKuraFactory, testKura } from "../support/kura.js";

const DAY = 86_400_000;
const SECRET = "session-presign-secret-0123456789";

let factory: TestKuraFactory;
let kura: Kura;
let now = Date.now();
const warnings: string[] = [];

beforeAll(async () => {
  factory = await testKura("sqlite");
  kura = await factory.open({
    clock: () => now,
    onWarning: (m) => warnings.push(m),
    config: {
      sessions: { ttl_seconds: 60 },
      storage: { backend: "fs", options: { base_path: join(factory.dir, "blobs"), presign_secret: SECRET } },
    },
  });
});
afterAll(async () => {
  await kura.close();
  await factory.cleanup();
});

function urlPath(url: string): string {
  const u = new URL(url);
  return u.pathname + u.search;
}

describe("sessions: metadata", () => {
  it("stores metadata under {tenant}:session:{id}:meta:{key} with the TTL from config (sessions.ttl_seconds)", async () => {
    const s = kura.tenant("acme").sessions;
    await s.setMeta("s1", "user", { id: "u1", name: "Hana" });
    await s.setMeta("s1", "lang", "ja");
    await s.setMeta("s1", "theme:color", "dark");
    expect(await s.getMeta("s1", "user")).toEqual({ id: "u1", name: "Hana" });
    expect(await s.listMeta("s1")).toEqual({
      user: { id: "u1", name: "Hana" },
      lang: "ja",
      "theme:color": "dark",
    });
    const entry = await s.getMetaEntry("s1", "lang");
    expect(entry?.expiresAt).toBe(now + 60_000);
    // The key layout SESS-1 names, seen through the tenant-wide KV view.
    const raw = await kura.tenant("acme").kv("x").store.get("acme:session:s1:meta:lang");
    expect(raw).toBe("ja");
    expect(await s.deleteMeta("s1", "theme:color")).toBe(true);
    expect(await s.listMeta("s1")).toEqual({ user: { id: "u1", name: "Hana" }, lang: "ja" });
  });

  it("metadata expires after its TTL and is swept by the lifecycle job; touch renews it", async () => {
    const s = kura.tenant("acme").sessions;
    await s.setMeta("exp", "a", 1);
    await s.setMeta("exp", "b", 2, { ttlSeconds: 600 });
    await s.setMeta("slide", "a", 1);
    now += 50_000;
    expect(await s.touch("slide")).toBe(1);
    now += 20_000; // 70 s after the first writes
    expect(await s.getMeta("exp", "a")).toBeUndefined();
    expect(await s.listMeta("exp")).toEqual({ b: 2 });
    expect(await s.getMeta("slide", "a")).toBe(1);
    const reports = await kura.runJobs(now);
    const sweep = reports.find((r) => r.name === "lifecycle");
    expect(sweep?.ran).toBe(true);
    expect(sweep?.result?.kvExpired).toBeGreaterThanOrEqual(1);
    expect(await s.listMeta("exp")).toEqual({ b: 2 });
    now += 3600_000;
    expect(await s.listMeta("exp")).toEqual({});
    expect(await s.listMeta("slide")).toEqual({});
  });

  it("metadata CAS: ifVersion guards a session entry", async () => {
    const s = kura.tenant("acme").sessions;
    const { version } = await s.setMeta("cas", "cart", ["a"], { ifVersion: 0 });
    await s.setMeta("cas", "cart", ["a", "b"], { ifVersion: version });
    await expectKuraError(s.setMeta("cas", "cart", ["stale"], { ifVersion: version }), "KV_VERSION_CONFLICT");
    expect(await s.getMeta("cas", "cart")).toEqual(["a", "b"]);
  });
});

describe("sessions: files", () => {
  it("puts, reads, lists and deletes files under {tenant}/sessions/{id}/{path}", async () => {
    const s = kura.tenant("acme").sessions;
    const data = randomBytes(4096);
    const put = await s.putFile("f1", "uploads/photo.jpg", data, { contentType: "image/jpeg" });
    expect(put).toMatchObject({ path: "uploads/photo.jpg", size: 4096 });
    await s.putFile("f1", "notes.txt", Buffer.from("hello"));
    expect(await kura.sessionFiles.exists("acme/sessions/f1/uploads/photo.jpg")).toBe(true);
    const read = await s.readFile("f1", "uploads/photo.jpg");
    expect(read.data.equals(data)).toBe(true);
    expect(read.file).toMatchObject({ path: "uploads/photo.jpg", contentType: "image/jpeg", size: 4096 });
    expect(read.file.expiresAt.getTime() - read.file.lastModified.getTime()).toBe(7 * DAY);
    const files = await s.listFiles("f1");
    expect(files.map((f) => f.path)).toEqual(["notes.txt", "uploads/photo.jpg"]);
    await s.deleteFile("f1", "notes.txt");
    await expectKuraError(s.readFile("f1", "notes.txt"), "SESSION_FILE_NOT_FOUND");
    await expectKuraError(s.openFile("f1", "notes.txt"), "SESSION_FILE_NOT_FOUND");
    const ranged = await s.openFile("f1", "uploads/photo.jpg", { range: { start: 10, end: 19 } });
    const chunks: Buffer[] = [];
    for await (const c of ranged.body) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks).equals(data.subarray(10, 20))).toBe(true);
  });

  it("files expire session_files_days (7) after they were written, by the lifecycle job; other objects stay", async () => {
    const t = kura.tenant("life");
    await t.sessions.putFile("old", "a.bin", Buffer.from("a"));
    await t.sessions.putFile("old", "deep/b.bin", Buffer.from("b"));
    const message = await t.messages.append("c1", { role: "user", content: "keep me" });
    const written = now; // the fs store stamps files with Kura's clock
    let reports = await kura.runJobs(written + 6 * DAY);
    expect(reports.find((r) => r.name === "lifecycle")?.result?.sessionFilesExpired).toBe(0);
    expect((await t.sessions.listFiles("old")).length).toBe(2);
    reports = await kura.runJobs(written + 7 * DAY + 60_000);
    const job = reports.find((r) => r.name === "lifecycle");
    expect(job?.error).toBeUndefined();
    expect(job?.result?.sessionFilesExpired).toBeGreaterThanOrEqual(2);
    expect(await t.sessions.listFiles("old")).toEqual([]);
    expect((await t.messages.get(message.id)).content).toBe("keep me");
  });

  it("deleting a session removes its metadata and files together, and nothing of other sessions", async () => {
    const s = kura.tenant("acme").sessions;
    for (const id of ["gone", "kept"]) {
      await s.setMeta(id, "a", 1);
      await s.setMeta(id, "b", 2);
      await s.putFile(id, "x.txt", Buffer.from(id));
      await s.putFile(id, "dir/y.txt", Buffer.from(id));
    }
    expect(await s.delete("gone")).toEqual({ metadata: 2, files: 2 });
    expect(await s.listMeta("gone")).toEqual({});
    expect(await s.listFiles("gone")).toEqual([]);
    expect(await s.listMeta("kept")).toEqual({ a: 1, b: 2 });
    expect((await s.listFiles("kept")).length).toBe(2);
    expect(await s.delete("never-existed")).toEqual({ metadata: 0, files: 0 });
  });

  it("rejects bad session ids and traversal paths with specific codes, writing nothing", async () => {
    const s = kura.tenant("acme").sessions;
    for (const id of ["../x", "a/b", "", "a:b", ".", "x.", "-lead", "a".repeat(129)]) {
      await expectKuraError(s.setMeta(id, "k", 1), "SESSION_ID_INVALID");
      await expectKuraError(s.getMeta(id, "k"), "SESSION_ID_INVALID");
      await expectKuraError(s.putFile(id, "f.txt", Buffer.from("x")), "SESSION_ID_INVALID");
      await expectKuraError(s.listFiles(id), "SESSION_ID_INVALID");
      await expectKuraError(s.delete(id), "SESSION_ID_INVALID");
    }
    const badPaths = [
      "../escape.txt",
      "a/../../b",
      "/etc/passwd",
      "a//b",
      "a\\b",
      "x\u0000y",
      "dir/",
      "",
      "./a",
      "a/.",
    ];
    for (const path of badPaths) {
      const err = await expectKuraError(s.putFile("ok", path, Buffer.from("x")), "SESSION_PATH_INVALID");
      expect(err.kind).toBe("InvalidArgument");
      await expectKuraError(s.readFile("ok", path), "SESSION_PATH_INVALID");
      await expectKuraError(s.presignUpload("ok", path), "SESSION_PATH_INVALID");
    }
    await expectKuraError(s.putFile("ok", "x".repeat(1100), Buffer.from("x")), "SESSION_PATH_INVALID");
    expect(await s.listFiles("ok")).toEqual([]);
    expect(await kura.sessionFiles.exists("acme/escape.txt")).toBe(false);
    await expectKuraError(s.setMeta("ok", "bad\u0000key", 1), "KV_KEY_INVALID");
  });

  it("presigned upload and download URLs point at the session key and verify with the store's secret", async () => {
    const s = kura.tenant("acme").sessions;
    const up = await s.presignUpload("p1", "docs/report.pdf", {
      expiresIn: 300,
      contentType: "application/pdf",
    });
    expect(up.method).toBe("PUT");
    const secret = SECRET;
    const claims = verifyPresignedRequest(secret, { method: "PUT", url: urlPath(up.url) }, now);
    expect(claims).toMatchObject({
      key: "acme/sessions/p1/docs/report.pdf",
      method: "PUT",
      contentType: "application/pdf",
    });
    const down = await s.presignDownload("p1", "docs/report.pdf", { expiresIn: 60 });
    expect(verifyPresignedRequest(secret, { method: "GET", url: urlPath(down.url) }, now).key).toBe(
      "acme/sessions/p1/docs/report.pdf",
    );
    expect(() =>
      verifyPresignedRequest(secret, { method: "GET", url: urlPath(down.url) }, now + 120_000),
    ).toThrow(expect.objectContaining({ code: "PRESIGN_EXPIRED" }));
    const tampered = urlPath(down.url).replace("/p1/", "/p2/");
    expect(() => verifyPresignedRequest(secret, { method: "GET", url: tampered }, now)).toThrow(
      expect.objectContaining({ code: "PRESIGN_INVALID" }),
    );
  });

  it("a tenant never sees another tenant's sessions", async () => {
    await kura.tenant("t-one").sessions.setMeta("shared-id", "k", "one");
    await kura.tenant("t-one").sessions.putFile("shared-id", "f.txt", Buffer.from("one"));
    const other = kura.tenant("t-one2").sessions;
    expect(await other.listMeta("shared-id")).toEqual({});
    expect(await other.listFiles("shared-id")).toEqual([]);
    await expectKuraError(other.readFile("shared-id", "f.txt"), "SESSION_FILE_NOT_FOUND");
    expect(await other.delete("shared-id")).toEqual({ metadata: 0, files: 0 });
    expect(await kura.tenant("t-one").sessions.getMeta("shared-id", "k")).toBe("one");
  });
});

describe("state kinds: config and feature flags", () => {
  afterEach(() => {
    warnings.length = 0;
  });

  it("stores config and flags; subscribers of the tenant hear every change, others do not", async () => {
    const heard: ConfigChange[] = [];
    const heardOther: ConfigChange[] = [];
    const unsubscribe = kura.tenant("cfg").config.subscribe((c) => heard.push(c));
    kura.tenant("cfg2").config.subscribe((c) => heardOther.push(c));
    const config = kura.tenant("cfg").config; // another scope object of the same tenant
    expect(await config.enabled("new-editor")).toBe(false);
    expect(await config.enabled("new-editor", true)).toBe(true);
    const { version } = await config.set("new-editor", true);
    await config.set("max-upload-mb", 25);
    expect(await config.enabled("new-editor")).toBe(true);
    expect(await config.get("max-upload-mb")).toBe(25);
    expect(await config.all()).toEqual({ "new-editor": true, "max-upload-mb": 25 });
    expect(await config.delete("max-upload-mb")).toBe(true);
    expect(heard).toEqual([
      { tenantId: "cfg", name: "new-editor", value: true, version },
      { tenantId: "cfg", name: "max-upload-mb", value: 25, version: expect.any(Number) },
      { tenantId: "cfg", name: "max-upload-mb", value: undefined, version: 0 },
    ]);
    unsubscribe();
    await config.set("new-editor", false);
    expect(heard).toHaveLength(3);
    expect(heardOther).toEqual([]);
  });

  it("a subscriber that throws fails no write; the problem goes to onWarning", async () => {
    const unsubscribe = kura.tenant("cfg3").config.subscribe(() => {
      throw new Error("listener bug");
    });
    await kura.tenant("cfg3").config.set("x", 1);
    expect(await kura.tenant("cfg3").config.get("x")).toBe(1);
    expect(warnings.some((w) => w.includes("listener bug"))).toBe(true);
    unsubscribe();
  });
});

describe("state kinds: workspace drafts", () => {
  it("two writers saving over the same version: exactly one wins, the other gets ConditionFailed", async () => {
    const drafts = kura.tenant("ws").drafts;
    const created = await drafts.save("doc-1", { text: "v1" }, { expectedVersion: 0 });
    const base = await drafts.get("doc-1");
    expect(base).toMatchObject({ id: "doc-1", value: { text: "v1" }, version: created.version });
    const outcomes = await Promise.allSettled([
      kura.tenant("ws").drafts.save("doc-1", { text: "from writer A" }, { expectedVersion: created.version }),
      kura.tenant("ws").drafts.save("doc-1", { text: "from writer B" }, { expectedVersion: created.version }),
    ]);
    const failed = outcomes.filter((o) => o.status === "rejected");
    expect(failed).toHaveLength(1);
    const reason = (failed[0] as PromiseRejectedResult).reason as KuraError;
    expect(isKuraError(reason, "ConditionFailed")).toBe(true);
    expect(reason.code).toBe("KV_VERSION_CONFLICT");
    const winner = outcomes.findIndex((o) => o.status === "fulfilled");
    expect((await drafts.get("doc-1"))?.value).toEqual({
      text: winner === 0 ? "from writer A" : "from writer B",
    });
    // The loser re-reads and saves over the current version.
    const current = await drafts.get("doc-1");
    await drafts.save("doc-1", { text: "merged" }, { expectedVersion: current?.version as number });
    expect((await drafts.get("doc-1"))?.value).toEqual({ text: "merged" });
  });

  it("a new draft needs version 0; saving without a version is refused; delete can be conditional", async () => {
    const drafts = kura.tenant("ws").drafts;
    await drafts.save("doc-2", "a", { expectedVersion: 0 });
    await expectKuraError(drafts.save("doc-2", "b", { expectedVersion: 0 }), "KV_VERSION_CONFLICT");
    await expectKuraError(drafts.save("doc-2", "b", {} as { expectedVersion: number }), "INVALID_ARGUMENT");
    const v = (await drafts.get("doc-2"))?.version as number;
    await expectKuraError(drafts.delete("doc-2", { expectedVersion: v + 1000 }), "KV_VERSION_CONFLICT");
    expect((await drafts.list()).map((d) => d.id).sort()).toEqual(["doc-1", "doc-2"]);
    expect(await drafts.delete("doc-2", { expectedVersion: v })).toBe(true);
    expect(await drafts.get("doc-2")).toBeUndefined();
  });
});

describe("state kinds: cache and kv namespaces", () => {
  it("getOrSet loads once within the TTL and again after it", async () => {
    const cache = kura.tenant("c").cache;
    let loads = 0;
    const load = async () => ++loads;
    expect(await cache.getOrSet("expensive", load, { ttlSeconds: 10 })).toBe(1);
    expect(await cache.getOrSet("expensive", load, { ttlSeconds: 10 })).toBe(1);
    now += 11_000;
    expect(await cache.getOrSet("expensive", load, { ttlSeconds: 10 })).toBe(2);
    await cache.set("plain", "v");
    expect(await cache.get("plain")).toBe("v");
    now += 301_000; // default TTL 300 s
    expect(await cache.get("plain")).toBeUndefined();
  });

  it("kv(namespace) keys stay inside the tenant and the namespace", async () => {
    const a = kura.tenant("ns-a");
    await a.kv("prefs").set("lang", "ja");
    await a.kv("other").set("lang", "en");
    await kura.tenant("ns-b").kv("prefs").set("lang", "fr");
    expect(await a.kv("prefs").get("lang")).toBe("ja");
    expect((await a.kv("prefs").scanAll()).map((e) => [e.key, e.value])).toEqual([["lang", "ja"]]);
    expect(await kura.tenant("ns-b").kv("prefs").get("lang")).toBe("fr");
    expect(() => a.kv("../x")).toThrow(/kv namespace/);
  });
});
