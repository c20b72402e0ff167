/**
 * The naming rule of the library (README, "Using the library"): every property name of what the
 * domains of `kura.tenant(t)` return is camelCase. Inside the caller's own data — message
 * metadata and content, KV, session, config and draft values, HTTP header names — nothing is
 * renamed: the test stores such data under snake_case names and expects it back as it was.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Kura, type TenantScope } from "../../src/index.js";

const CAMEL = /^[a-z][a-zA-Z0-9]*$/;

/** Properties whose value is the caller's data (or HTTP header names): not walked. */
const USER_DATA = new Set(["metadata", "content", "value", "headers"]);

/** Every property name of a result outside the caller's data, with where it was found. */
function namesOf(value: unknown, where: string, out: string[] = []): string[] {
  if (Array.isArray(value)) {
    for (const [i, v] of value.entries()) namesOf(v, `${where}[${i}]`, out);
  } else if (
    value !== null &&
    typeof value === "object" &&
    Object.getPrototypeOf(value) === Object.prototype
  ) {
    for (const [k, v] of Object.entries(value)) {
      out.push(`${where}.${k}`);
      if (!USER_DATA.has(k)) namesOf(v, `${where}.${k}`, out);
    }
  }
  return out;
}

const notCamel = (names: readonly string[]) =>
  names.filter((n) => !CAMEL.test(n.slice(n.lastIndexOf(".") + 1)));

describe("the library names every result's properties in camelCase", () => {
  let dir: string;
  let kura: Kura;
  let acme: TenantScope;
  /** Results of every call below, by call. */
  const results: Record<string, unknown> = {};

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "kura-naming-"));
    kura = await Kura.open({ data_dir: dir }, { projectors: "inline" });
    acme = kura.tenant("acme");
  });
  afterAll(async () => {
    await kura?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("messages: append, batch, get, history, versions, edit, search, changes, usage", async () => {
    const metadata = { source_app: "crm", nested_value: { created_at: 1 } };
    const parts = [
      { type: "text" as const, text: "会議は東京で" },
      { type: "image_url" as const, image_url: { url: "https://example.com/a.png" } },
    ];
    const ref = await acme.messages.append("chat-1", {
      role: "user",
      content: parts,
      metadata,
      idempotencyKey: "k-1",
      ttlSeconds: 3600,
    });
    expect(ref.metadata).toEqual(metadata);
    results["messages.append"] = ref;
    results["messages.appendMany"] = await acme.messages.appendMany("chat-1", [
      { role: "assistant", content: "了解" },
    ]);
    const got = await acme.messages.get(ref.id);
    expect(got.content).toEqual(parts);
    expect(got.metadata).toEqual(metadata);
    results["messages.get"] = got;
    results["messages.getMany"] = await acme.messages.getMany([
      ref.id,
      "01890000-0000-7000-8000-000000000000",
    ]);
    results["messages.history"] = await acme.messages.history("chat-1", { includeContent: true });
    results["messages.edit"] = await acme.messages.edit(ref.id, "会議は大阪で");
    results["messages.versions"] = await acme.messages.versions(ref.id);
    await kura.pumpOutbox();
    results.search = await acme.search("大阪");
    results.changes = await acme.changes();
    results.usage = await acme.usage();
  });

  it("memories: put, get, list, search", async () => {
    const memory = await acme.memories.put("alice", {
      memoryId: "m1",
      content: "likes tea",
      category: "food",
    });
    results["memories.put"] = memory;
    results["memories.get"] = await acme.memories.get("alice", "m1");
    results["memories.list"] = await acme.memories.list("alice");
    results["memories.search"] = await acme.memories.search("alice", { query: "tea", k: 1 });
    expect(Object.keys(memory).sort()).toEqual([
      "category",
      "content",
      "createdAt",
      "memoryId",
      "updatedAt",
      "userId",
    ]);
  });

  it("vector collections: create, get, list, put, query", async () => {
    results["vectors.create"] = await acme.vectors.create("docs", { dimensions: 3, metric: "l2" });
    results["vectors.get"] = await acme.vectors.get("docs");
    results["vectors.list"] = await acme.vectors.list();
    await acme.vectors.put("docs", "a", [1, 0, 0], { userId: "alice", chatId: "chat-1", category: "x" });
    results["vectors.query"] = await acme.vectors.query("docs", { vector: [1, 0, 0], k: 1 });
    expect(Object.keys((await acme.vectors.get("docs")) as object).sort()).toEqual([
      "createdAt",
      "dimensions",
      "metric",
      "name",
    ]);
  });

  it("objects: put, head, getBuffer, list, presign", async () => {
    results["objects.put"] = await acme.objects.put("docs/a.txt", Buffer.from("a"), {
      contentType: "text/plain",
    });
    results["objects.head"] = await acme.objects.head("docs/a.txt");
    results["objects.getBuffer"] = await acme.objects.getBuffer("docs/a.txt");
    results["objects.list"] = await acme.objects.list({ prefix: "docs/" });
    results["objects.presign"] = await acme.objects.presign("docs/a.txt", { expiresIn: 60 });
  });

  it("sessions: metadata and files", async () => {
    const value = { user_name: "alice" };
    results["sessions.setMeta"] = await acme.sessions.setMeta("s-1", "user_info", value);
    const entry = await acme.sessions.getMetaEntry("s-1", "user_info");
    expect(entry?.value).toEqual(value);
    results["sessions.getMetaEntry"] = entry;
    // A record of the caller's own keys: checked as user data, so not walked.
    expect(await acme.sessions.listMeta("s-1")).toEqual({ user_info: value });
    results["sessions.putFile"] = await acme.sessions.putFile("s-1", "up/a.txt", Buffer.from("f"));
    results["sessions.readFile"] = await acme.sessions.readFile("s-1", "up/a.txt");
    results["sessions.listFiles"] = await acme.sessions.listFiles("s-1");
    results["sessions.presignUpload"] = await acme.sessions.presignUpload("s-1", "up/b.txt");
    results["sessions.presignDownload"] = await acme.sessions.presignDownload("s-1", "up/a.txt");
    results["sessions.delete"] = await acme.sessions.delete("s-1");
  });

  it("kv, config, drafts and cache", async () => {
    const kv = acme.kv("prefs");
    const value = { dark_mode: true };
    results["kv.set"] = await kv.set("theme_name", value);
    const entry = await kv.getEntry("theme_name");
    expect(entry?.value).toEqual(value);
    results["kv.getEntry"] = entry;
    results["kv.scan"] = await kv.scan();
    results["kv.incr"] = await kv.incr("visit_count");
    results["kv.setMany"] = await kv.setMany([{ key: "a_b", value: { c_d: 1 } }]);
    results["config.set"] = await acme.config.set("feature_flag", { rollout_pct: 5 });
    results["config.getEntry"] = await acme.config.getEntry("feature_flag");
    expect(await acme.config.all()).toEqual({ feature_flag: { rollout_pct: 5 } });
    results["drafts.save"] = await acme.drafts.save("d-1", { body_text: "x" }, { expectedVersion: 0 });
    results["drafts.get"] = await acme.drafts.get("d-1");
    results["drafts.list"] = await acme.drafts.list();
    expect(await acme.cache.getOrSet("c_1", async () => ({ computed_at: 1 }))).toEqual({ computed_at: 1 });
  });

  it("no result of any call above has a property name that is not camelCase", () => {
    expect(Object.keys(results).length).toBeGreaterThan(40);
    const names = Object.entries(results).flatMap(([call, result]) => namesOf(result, call));
    expect(names.length).toBeGreaterThan(200);
    expect(notCamel(names)).toEqual([]);
  });

  it("the walk sees snake_case names outside the caller's data, and none inside it", () => {
    expect(
      notCamel(namesOf({ memory_id: "m", metadata: { a_b: 1 }, items: [{ created_at: "t" }] }, "r")),
    ).toEqual(["r.memory_id", "r.items[0].created_at"]);
  });
});
