/**
 * Tenant isolation (TEN-1), as a property: three tenants drive random operations through the
 * real HTTP API of a `kura serve` on embedded defaults (SQLite + fs + LMDB), using chat ids,
 * object keys, KV keys, session ids, user ids, memory ids and collection names that collide with
 * each other's. A model of what each tenant wrote predicts every answer, and after every round:
 *
 * - a tenant's answers hold only its own data: no other tenant's message id, marker word (every
 *   body, key and value carries its writer's marker) or tenant id appears in any answer;
 * - another tenant's message id, object key, KV key, session file, collection or memory user
 *   gets exactly the answer a never-used one gets (status, code, message with the probed name
 *   blanked out);
 * - listings, search in every mode, the change feed and the audit log show only its own data;
 * - usage equals what the tenant itself stored.
 *
 * The seed is random unless KURA_ISOLATION_SEED is set, and printed when a property fails.
 */
import { v7 as uuidv7 } from "uuid";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CallOptions, type CallResult, type Harness, startServer } from "./harness.js";

const TENANTS = ["acme", "acme.io", "acme-io"] as const;
const ROUNDS = 600;
const FULL_CHECK_EVERY = 15;
const VOCAB = ["river", "stone", "cloud", "amber", "maple", "orbit", "lantern", "harbor", "violet"];
const COMMON = "pebble";
/** Marker words: `zq{tenant index}zq{n}`; nothing Kura writes (hex, base64 cursors) spells one. */
const MARKER = /zq(\d)zq\d+/g;
const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g;

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface MessageModel {
  id: string;
  chat: string;
  content: string;
  /** size_bytes of every stored version, oldest first. */
  sizes: number[];
  deleted: boolean;
}

interface CollectionModel {
  dimensions: number;
  items: Map<string, number[]>;
}

/** What one tenant wrote. */
class Model {
  readonly messages = new Map<string, MessageModel>();
  /** Every message id the tenant ever got (erased ones too). */
  readonly everIds = new Set<string>();
  readonly chats = new Set<string>();
  readonly idem = new Map<string, { id: string; chat: string; content: string }>();
  readonly objects = new Map<string, string>();
  readonly kv = new Map<string, unknown>();
  readonly meta = new Map<string, Map<string, unknown>>();
  readonly files = new Map<string, Map<string, string>>();
  readonly memories = new Map<string, Map<string, string>>();
  readonly collections = new Map<string, CollectionModel>();
  /** Catalog changes made: each is one event in the feed and one audit entry. */
  events = 0;
  markers = 0;

  constructor(
    readonly index: number,
    readonly id: string,
    readonly token: string,
  ) {}

  marker(): string {
    return `zq${this.index}zq${this.markers++}`;
  }

  live(): MessageModel[] {
    return [...this.messages.values()].filter((m) => !m.deleted);
  }

  usage() {
    let bytes = 0;
    let objects = 0;
    for (const m of this.messages.values()) {
      for (const s of m.sizes) bytes += s;
      objects += m.sizes.length;
    }
    for (const body of this.objects.values()) bytes += Buffer.byteLength(body);
    return { tenant_id: this.id, bytes, objects: objects + this.objects.size, messages: this.messages.size };
  }
}

describe("three tenants with colliding names never see each other (TEN-1)", () => {
  let h: Harness;
  const models: Model[] = [];
  const seed = Number(process.env.KURA_ISOLATION_SEED ?? Math.floor(Math.random() * 2 ** 31));
  const rng = mulberry32(seed);
  const int = (n: number) => Math.floor(rng() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)] as T;
  let responses = 0;

  beforeAll(async () => {
    h = await startServer({ config: { vector: { dimensions: 32, embed_messages: true } } });
    for (const [i, t] of TENANTS.entries()) models.push(new Model(i, t, await h.token(t)));
  });
  afterAll(async () => h?.close());

  /** Other tenants' ids as whole words (`acme` inside `acme.io` is not one). */
  const tenantWord = (t: string) =>
    new RegExp(`(?<![A-Za-z0-9._-])${t.replace(/[.-]/g, "\\$&")}(?![A-Za-z0-9_-]|\\.[A-Za-z0-9])`);

  /** Asserts an answer to `m` names nothing of another tenant's. */
  function assertOwn(m: Model, what: string, text: string, sent = ""): void {
    for (const [marker, digit] of text.matchAll(MARKER)) {
      if (sent.includes(marker)) continue;
      expect(
        Number(digit),
        `${what}: a marker of tenant ${TENANTS[Number(digit)]} in ${text.slice(0, 400)}`,
      ).toBe(m.index);
    }
    for (const [uuid] of text.matchAll(UUID)) {
      if (sent.includes(uuid)) continue;
      for (const o of models) {
        if (o !== m && o.everIds.has(uuid))
          throw new Error(
            `${what}: ${m.id} was answered ${o.id}'s message id ${uuid}: ${text.slice(0, 400)}`,
          );
      }
    }
    for (const o of models) {
      if (o !== m && tenantWord(o.id).test(text))
        throw new Error(`${what}: ${m.id} was answered a text naming tenant ${o.id}: ${text.slice(0, 400)}`);
    }
  }

  async function call(
    m: Model,
    method: string,
    path: string,
    options: CallOptions = {},
  ): Promise<CallResult> {
    const r = await h.call(method, path, { token: m.token, ...options });
    responses++;
    // What the caller sent may come back (an error naming the id it asked for); nothing else may.
    const sent =
      path + JSON.stringify(options.json ?? null) + (typeof options.body === "string" ? options.body : "");
    assertOwn(m, `${method} ${path}`, r.text + [...r.headers.entries()].join("\n"), sent);
    return r;
  }

  const ok = (r: CallResult, status: number, what: string) =>
    expect(r.status, `${what}: ${r.text}`).toBe(status);

  /** What an answer reveals, with the probed name blanked out: equal for a foreign and a never-used name. */
  function shape(r: CallResult, probed: string): unknown {
    const word = new RegExp(
      `(?<![A-Za-z0-9._-])${probed.replace(/[.*+?^${}()|[\]\\/-]/g, "\\$&")}(?![A-Za-z0-9_-])`,
      "g",
    );
    const blank = (s: unknown) => (typeof s === "string" ? s.replace(word, "<probed>") : s);
    if (r.json?.success === false)
      return {
        status: r.status,
        code: r.json.error_code,
        error: blank(r.json.error),
        details: r.json.details,
      };
    if (r.json?.success === true)
      return { status: r.status, data: JSON.parse(blank(JSON.stringify(r.json.data)) as string) };
    return { status: r.status, text: blank(r.text) };
  }

  /** `probe(name)` gives the same answer for `foreign` (another tenant's) as for a never-used name. */
  async function sameAsNever(
    what: string,
    foreign: string,
    never: string,
    probe: (name: string) => Promise<CallResult>,
  ): Promise<void> {
    const a = shape(await probe(foreign), foreign);
    const b = shape(await probe(never), never);
    expect(a, `${what}: another tenant's ${foreign} vs never-used ${never}`).toEqual(b);
  }

  const others = (m: Model) => models.filter((o) => o !== m);

  const content = (m: Model) => `${COMMON} ${pick(VOCAB)} ${m.marker()} ${pick(VOCAB)}`;
  const chatPool = (m: Model) => ["c1", "c2", "shared", `chat-${m.marker()}`];
  const keyPool = (m: Model) => ["docs/a.txt", "docs/b.txt", "shared/x", "a", `u/${m.marker()}.txt`];

  // --- messages ----------------------------------------------------------------------------

  function record(m: Model, ref: { id: string; chat_id: string; size_bytes: number }, text: string) {
    m.messages.set(ref.id, {
      id: ref.id,
      chat: ref.chat_id,
      content: text,
      sizes: [ref.size_bytes],
      deleted: false,
    });
    m.everIds.add(ref.id);
    m.chats.add(ref.chat_id);
    m.events++;
  }

  async function append(m: Model): Promise<void> {
    const idemKey = rng() < 0.3 ? pick(["idem-a", "idem-b"]) : undefined;
    const earlier = idemKey ? m.idem.get(idemKey) : undefined;
    if (earlier && m.messages.has(earlier.id)) {
      // A retry of the very request: the tenant's own earlier message, whatever the others did.
      const r = await call(m, "POST", `/v1/chats/${earlier.chat}/messages`, {
        json: { role: "user", content: earlier.content, idempotency_key: idemKey },
      });
      ok(r, 201, "idempotent retry");
      expect(r.json.data.id).toBe(earlier.id);
      return;
    }
    const chat = pick(chatPool(m));
    const text = content(m);
    const r = await call(m, "POST", `/v1/chats/${chat}/messages`, {
      json: { role: "user", content: text, ...(idemKey ? { idempotency_key: idemKey } : {}) },
    });
    ok(r, 201, "append");
    expect(m.messages.has(r.json.data.id)).toBe(false);
    record(m, r.json.data, text);
    if (idemKey) m.idem.set(idemKey, { id: r.json.data.id, chat, content: text });
  }

  async function batch(m: Model): Promise<void> {
    const chat = pick(chatPool(m));
    const texts = Array.from({ length: 1 + int(4) }, () => content(m));
    const r = await call(m, "POST", `/v1/chats/${chat}/messages:batch`, {
      json: { messages: texts.map((c) => ({ role: "assistant", content: c })) },
    });
    ok(r, 201, "batch");
    for (const [i, ref] of (
      r.json.data.items as { id: string; chat_id: string; size_bytes: number }[]
    ).entries())
      record(m, ref, texts[i] as string);
  }

  async function edit(m: Model): Promise<void> {
    const target = m.live();
    if (target.length === 0) return;
    const msg = pick(target);
    const text = content(m);
    const r = await call(m, "PATCH", `/v1/messages/${msg.id}`, { json: { content: text } });
    ok(r, 200, "edit");
    msg.content = text;
    msg.sizes.push(r.json.data.size_bytes);
    expect(r.json.data.version).toBe(msg.sizes.length);
    m.events++;
  }

  async function remove(m: Model): Promise<void> {
    const all = [...m.messages.values()];
    if (all.length === 0) return;
    const msg = pick(all);
    const how = pick(["soft", "erase", "undelete"] as const);
    if (how === "undelete") {
      const r = await call(m, "POST", `/v1/messages/${msg.id}:undelete`);
      ok(r, 200, "undelete");
      if (msg.deleted) m.events++;
      msg.deleted = false;
    } else if (how === "soft") {
      const r = await call(m, "DELETE", `/v1/messages/${msg.id}`);
      ok(r, 204, "delete");
      if (!msg.deleted) m.events++;
      msg.deleted = true;
    } else {
      const r = await call(m, "DELETE", `/v1/messages/${msg.id}?mode=erase`);
      ok(r, 204, "erase");
      m.messages.delete(msg.id);
      m.events++;
    }
  }

  async function readMessages(m: Model): Promise<void> {
    const own = m.live();
    if (own.length > 0) {
      const msg = pick(own);
      const r = await call(m, "GET", `/v1/messages/${msg.id}`);
      ok(r, 200, "get");
      expect(r.json.data.content).toBe(msg.content);
      const v = await call(m, "GET", `/v1/messages/${msg.id}/versions`);
      ok(v, 200, "versions");
      expect(v.json.data.items).toHaveLength(msg.sizes.length);
    }
    // batchGet: own, foreign and never-used ids together.
    const foreign = others(m).flatMap((o) => [...o.everIds]);
    const ids = [...own.slice(0, 3).map((x) => x.id), ...foreign.slice(-4), uuidv7()];
    const r = await call(m, "POST", "/v1/messages:batchGet", { json: { ids } });
    ok(r, 200, "batchGet");
    const found = (r.json.data.items as { id: string }[]).map((x) => x.id).sort();
    expect(found).toEqual(
      own
        .slice(0, 3)
        .map((x) => x.id)
        .sort(),
    );
    expect([...r.json.data.missing].sort()).toEqual(ids.filter((id) => !found.includes(id)).sort());
  }

  async function probeMessages(m: Model): Promise<void> {
    const foreign = others(m).flatMap((o) => [...o.messages.keys()]);
    if (foreign.length === 0) return;
    const id = pick(foreign);
    const never = uuidv7();
    await sameAsNever("GET message", id, never, (x) => call(m, "GET", `/v1/messages/${x}`));
    await sameAsNever("GET versions", id, never, (x) => call(m, "GET", `/v1/messages/${x}/versions`));
    await sameAsNever("PATCH message", id, never, (x) =>
      call(m, "PATCH", `/v1/messages/${x}`, { json: { content: `${COMMON} overwritten` } }),
    );
    await sameAsNever("DELETE message", id, never, (x) => call(m, "DELETE", `/v1/messages/${x}`));
    await sameAsNever("erase message", id, never, (x) => call(m, "DELETE", `/v1/messages/${x}?mode=erase`));
    await sameAsNever("undelete message", id, never, (x) => call(m, "POST", `/v1/messages/${x}:undelete`));
    // A chat only the others have is as unknown as one no one has.
    const chat = pick(
      others(m)
        .flatMap((o) => [...o.chats].filter((c) => !m.chats.has(c)))
        .concat(["c1"]),
    );
    if (!m.chats.has(chat))
      await sameAsNever("history", chat, `never-${m.marker()}`, (x) =>
        call(m, "GET", `/v1/chats/${x}/messages`),
      );
  }

  // --- objects -----------------------------------------------------------------------------

  async function putObject(m: Model): Promise<void> {
    const key = pick(keyPool(m));
    const body = `object ${m.marker()} ${pick(VOCAB).repeat(1 + int(20))}`;
    const r = await call(m, "PUT", `/v1/objects/${key}`, { body, headers: { "content-type": "text/plain" } });
    ok(r, 200, "object put");
    expect(r.json.data.size).toBe(Buffer.byteLength(body));
    m.objects.set(key, body);
    m.events++;
  }

  async function deleteObject(m: Model): Promise<void> {
    const key = pick(keyPool(m));
    const r = await call(m, "DELETE", `/v1/objects/${key}`);
    ok(r, 204, "object delete");
    if (m.objects.delete(key)) m.events++;
  }

  async function readObjects(m: Model): Promise<void> {
    const own = [...m.objects.keys()];
    if (own.length > 0) {
      const key = pick(own);
      const r = await call(m, "GET", `/v1/objects/${key}`);
      ok(r, 200, "object get");
      expect(r.text).toBe(m.objects.get(key));
      const p = await call(m, "POST", "/v1/objects:presign", { json: { key, expires_in: 60 } });
      ok(p, 200, "presign");
      const url = new URL(p.json.data.url as string);
      const local = `${h.base}${url.pathname}${url.search}`;
      const got = await fetch(local);
      expect(got.status).toBe(200);
      expect(await got.text()).toBe(m.objects.get(key));
      // The same signature over another tenant's path is refused like any tampering.
      const other = pick(others(m));
      const swapped = local.replace(`/${encodeURIComponent(m.id)}/`, `/${encodeURIComponent(other.id)}/`);
      if (swapped !== local) {
        const s = await fetch(swapped);
        const text = await s.text();
        expect(s.status, text).toBe(403);
        assertOwn(m, "presigned URL of another tenant", text);
        expect(JSON.parse(text).error_code).toBe("PRESIGN_INVALID");
      }
    }
    const prefix = pick(["", "docs/", "shared/", "a", "u/", "d"]);
    const r = await call(m, "GET", `/v1/objects?prefix=${encodeURIComponent(prefix)}&limit=1000`);
    ok(r, 200, "object list");
    expect((r.json.data.items as { key: string }[]).map((o) => o.key)).toEqual(
      [...m.objects.keys()].filter((k) => k.startsWith(prefix)).sort(),
    );
  }

  async function probeObjects(m: Model): Promise<void> {
    const foreign = others(m).flatMap((o) => [...o.objects.keys()].filter((k) => !m.objects.has(k)));
    if (foreign.length === 0) return;
    const key = pick(foreign);
    const never = `docs/never-${m.marker()}.txt`;
    await sameAsNever("GET object", key, never, (x) => call(m, "GET", `/v1/objects/${x}`));
    await sameAsNever("HEAD object", key, never, (x) => call(m, "HEAD", `/v1/objects/${x}`));
    await sameAsNever("presign object", key, never, (x) =>
      call(m, "POST", "/v1/objects:presign", { json: { key: x } }),
    );
    await sameAsNever("list one key", key, never, (x) =>
      call(m, "GET", `/v1/objects?prefix=${encodeURIComponent(x)}`),
    );
    await sameAsNever("DELETE object", key, never, (x) => call(m, "DELETE", `/v1/objects/${x}`));
    // Create-only succeeds: the key is free in this tenant's namespace. (Undone at once; only a
    // shared name, so that this tenant's feed and audit log hold no marker of another's.)
    if (key.match(MARKER)) return;
    const created = await call(m, "PUT", `/v1/objects/${key}`, {
      body: `mine ${m.marker()}`,
      headers: { "if-none-match": "*" },
    });
    ok(created, 200, "PUT If-None-Match: * over another tenant's key");
    ok(await call(m, "DELETE", `/v1/objects/${key}`), 204, "undo");
    m.events += 2;
  }

  // --- KV and sessions ---------------------------------------------------------------------

  const kvKeys = ["k1", "k2", "shared/k", "prefs.theme"];

  async function kv(m: Model): Promise<void> {
    const key = pick(kvKeys);
    const roll = rng();
    if (roll < 0.5) {
      const value = { v: m.marker(), n: int(100) };
      ok(await call(m, "PUT", `/v1/kv/prefs/${key}`, { json: value }), 200, "kv put");
      m.kv.set(key, value);
    } else if (roll < 0.65) {
      ok(await call(m, "DELETE", `/v1/kv/prefs/${key}`), 204, "kv delete");
      m.kv.delete(key);
    } else if (m.kv.has(key)) {
      const r = await call(m, "GET", `/v1/kv/prefs/${key}`);
      ok(r, 200, "kv get");
      expect(r.json.data.value).toEqual(m.kv.get(key));
    } else {
      await sameAsNever("GET kv", key, `never-${m.marker()}`, (x) => call(m, "GET", `/v1/kv/prefs/${x}`));
    }
    const prefix = pick(["", "k", "shared/", "prefs"]);
    const r = await call(m, "GET", `/v1/kv/prefs?prefix=${encodeURIComponent(prefix)}&limit=1000`);
    ok(r, 200, "kv list");
    expect(
      Object.fromEntries(
        (r.json.data.items as { key: string; value: unknown }[]).map((e) => [e.key, e.value]),
      ),
    ).toEqual(Object.fromEntries([...m.kv].filter(([k]) => k.startsWith(prefix))));
  }

  const sessionIds = ["s1", "s2"];

  async function sessions(m: Model): Promise<void> {
    const sid = pick(sessionIds);
    const meta = m.meta.get(sid) ?? new Map<string, unknown>();
    const files = m.files.get(sid) ?? new Map<string, string>();
    m.meta.set(sid, meta);
    m.files.set(sid, files);
    const roll = rng();
    if (roll < 0.3) {
      const key = pick(["user", "lang"]);
      const value = { who: m.marker() };
      ok(await call(m, "PUT", `/v1/sessions/${sid}/meta/${key}`, { json: value }), 200, "meta put");
      meta.set(key, value);
    } else if (roll < 0.6) {
      const path = pick(["notes.txt", "img/a.png"]);
      const body = `file ${m.marker()}`;
      ok(await call(m, "PUT", `/v1/sessions/${sid}/files/${path}`, { body }), 200, "file put");
      files.set(path, body);
    } else if (roll < 0.7) {
      const r = await call(m, "DELETE", `/v1/sessions/${sid}`);
      ok(r, 200, "session delete");
      expect(r.json.data).toEqual({ metadata: meta.size, files: files.size });
      meta.clear();
      files.clear();
    } else {
      const path = pick(["notes.txt", "img/a.png"]);
      if (files.has(path)) {
        const r = await call(m, "GET", `/v1/sessions/${sid}/files/${path}`);
        ok(r, 200, "file get");
        expect(r.text).toBe(files.get(path));
        const p = await call(m, "POST", `/v1/sessions/${sid}/files:presign`, { json: { path } });
        ok(p, 200, "file presign");
        const url = new URL(p.json.data.url as string);
        const got = await fetch(`${h.base}${url.pathname}${url.search}`);
        expect(await got.text()).toBe(files.get(path));
      } else {
        const never = `never-${m.marker()}.txt`;
        await sameAsNever("GET session file", path, never, (x) =>
          call(m, "GET", `/v1/sessions/${sid}/files/${x}`),
        );
        await sameAsNever("presigned session file", path, never, async (x) => {
          const p = await call(m, "POST", `/v1/sessions/${sid}/files:presign`, { json: { path: x } });
          if (p.status !== 200) return p;
          const url = new URL(p.json.data.url as string);
          const got = await fetch(`${h.base}${url.pathname}${url.search}`);
          const text = await got.text();
          assertOwn(m, "presigned session file", text);
          return {
            status: got.status,
            headers: got.headers,
            text,
            json: text ? JSON.parse(text) : undefined,
          };
        });
      }
      const key = pick(["user", "lang"]);
      if (!meta.has(key))
        await sameAsNever("GET session meta", key, `never-${m.marker()}`, (x) =>
          call(m, "GET", `/v1/sessions/${sid}/meta/${x}`),
        );
    }
    const lm = await call(m, "GET", `/v1/sessions/${sid}/meta`);
    ok(lm, 200, "meta list");
    expect(lm.json.data).toEqual(Object.fromEntries(meta));
    const lf = await call(m, "GET", `/v1/sessions/${sid}/files`);
    ok(lf, 200, "file list");
    expect((lf.json.data.items as { path: string }[]).map((f) => f.path)).toEqual([...files.keys()].sort());
  }

  // --- memories and vectors ----------------------------------------------------------------

  async function memories(m: Model): Promise<void> {
    const user = pick(["alice", "bob"]);
    const mine = m.memories.get(user) ?? new Map<string, string>();
    m.memories.set(user, mine);
    if (rng() < 0.5) {
      const memoryId = pick(["m1", "m2", undefined]);
      const text = `${COMMON} memory ${m.marker()} ${pick(VOCAB)}`;
      const r = await call(m, "POST", `/v1/users/${user}/memories`, {
        json: { content: text, ...(memoryId ? { memory_id: memoryId } : {}) },
      });
      ok(r, 201, "memory put");
      mine.set(r.json.data.memory_id, text);
    }
    const list = await call(m, "GET", `/v1/users/${user}/memories?limit=1000`);
    ok(list, 200, "memory list");
    expect(
      Object.fromEntries(
        (list.json.data.items as { memory_id: string; content: string }[]).map((x) => [
          x.memory_id,
          x.content,
        ]),
      ),
    ).toEqual(Object.fromEntries(mine));
    const found = await call(m, "POST", `/v1/users/${user}/memories:search`, {
      json: { query: `${COMMON} ${pick(VOCAB)}`, k: 100 },
    });
    ok(found, 200, "memory search");
    expect((found.json.data.items as { memory_id: string }[]).map((x) => x.memory_id).sort()).toEqual(
      [...mine.keys()].sort(),
    );
  }

  const collectionPool = (m: Model) => ["col", "shared", "col", "shared", `v-${m.marker()}`];

  async function vectors(m: Model): Promise<void> {
    const roll = rng();
    const name = rng() < 0.7 ? pick(collectionPool(m)) : pick([...m.collections.keys(), "col"]);
    const c = m.collections.get(name);
    if (!c || roll < 0.1) {
      const dimensions = c?.dimensions ?? pick([3, 4, 5]);
      const r = await call(m, "PUT", `/v1/vectors/${name}`, { json: { dimensions, metric: "l2" } });
      ok(r, c ? 200 : 201, "collection create");
      if (!c) m.collections.set(name, { dimensions, items: new Map() });
      return;
    }
    if (roll < 0.15) {
      ok(await call(m, "DELETE", `/v1/vectors/${name}`), 200, "collection drop");
      m.collections.delete(name);
      return;
    }
    if (roll < 0.6) {
      const id = pick(["v1", "v2", `id-${m.marker()}`]);
      const vector = Array.from({ length: c.dimensions }, () => Math.round(rng() * 100) / 10);
      ok(
        await call(m, "PUT", `/v1/vectors/${name}/${id}`, { json: { vector, category: m.marker() } }),
        200,
        "vector put",
      );
      c.items.set(id, vector);
    } else if (roll < 0.7 && c.items.size > 0) {
      const id = pick([...c.items.keys()]);
      ok(await call(m, "DELETE", `/v1/vectors/${name}/${id}`), 200, "vector delete");
      c.items.delete(id);
    }
    const q = await call(m, "POST", `/v1/vectors/${name}:query`, {
      json: { vector: Array.from({ length: c.dimensions }, () => rng()), k: 1000, mode: "accurate" },
    });
    ok(q, 200, "vector query");
    expect((q.json.data.items as { id: string }[]).map((x) => x.id).sort()).toEqual(
      [...c.items.keys()].sort(),
    );
    const g = await call(m, "GET", `/v1/vectors/${name}`);
    ok(g, 200, "collection get");
    expect(g.json.data).toMatchObject({ dimensions: c.dimensions, count: c.items.size });
  }

  async function probeVectors(m: Model): Promise<void> {
    const foreign = others(m).flatMap((o) => [...o.collections.keys()].filter((n) => !m.collections.has(n)));
    if (foreign.length === 0) return;
    const name = pick(foreign);
    const never = `never-${m.marker()}`;
    await sameAsNever("GET collection", name, never, (x) => call(m, "GET", `/v1/vectors/${x}`));
    await sameAsNever("query collection", name, never, (x) =>
      call(m, "POST", `/v1/vectors/${x}:query`, { json: { vector: [1, 2, 3], k: 3 } }),
    );
    await sameAsNever("PUT vector", name, never, (x) =>
      call(m, "PUT", `/v1/vectors/${x}/v1`, { json: { vector: [1, 2, 3] } }),
    );
    await sameAsNever("DELETE vector", name, never, (x) => call(m, "DELETE", `/v1/vectors/${x}/v1`));
    await sameAsNever("drop collection", name, never, (x) => call(m, "DELETE", `/v1/vectors/${x}`));
    const users = others(m).flatMap((o) => [...o.memories.keys()].filter((u) => !m.memories.get(u)?.size));
    if (users.length > 0) {
      const user = pick(users);
      await sameAsNever("list memories", user, `u-${m.marker()}`, (x) =>
        call(m, "GET", `/v1/users/${x}/memories`),
      );
      await sameAsNever("search memories", user, `u-${m.marker()}`, (x) =>
        call(m, "POST", `/v1/users/${x}/memories:search`, { json: { query: COMMON } }),
      );
    }
  }

  // --- search, feed, audit, usage ------------------------------------------------------------

  async function search(m: Model): Promise<void> {
    const live = new Set(m.live().map((x) => x.id));
    const word = encodeURIComponent(COMMON);
    const full = await call(m, "GET", `/v1/search?q=${word}&limit=100&consistent=true`);
    ok(full, 200, "fulltext search");
    const hits = (full.json.data.items as { id: string }[]).map((x) => x.id);
    if (live.size <= 100) expect(new Set(hits)).toEqual(live);
    for (const mode of ["vector", "hybrid"]) {
      const r = await call(
        m,
        "GET",
        `/v1/search?q=${word}%20${pick(VOCAB)}&mode=${mode}&limit=100&consistent=true`,
      );
      ok(r, 200, `${mode} search`);
      for (const hit of r.json.data.items as { id: string }[])
        expect(live.has(hit.id), `${mode} hit`).toBe(true);
    }
    const post = await call(m, "POST", "/v1/search", {
      json: {
        q: `${COMMON} ${pick(VOCAB)}`,
        k: 100,
        mode: pick(["fulltext", "vector", "hybrid"]),
        consistent: true,
      },
    });
    ok(post, 200, "POST search");
    for (const hit of post.json.data.items as { id: string }[])
      expect(live.has(hit.id), "POST hit").toBe(true);
    const byVector = await call(m, "POST", "/v1/search", {
      json: { vector: Array.from({ length: 32 }, () => rng() - 0.5), k: 100 },
    });
    ok(byVector, 200, "search by vector");
    for (const hit of byVector.json.data.items as { id: string }[])
      expect(live.has(hit.id), "vector hit").toBe(true);
    // Another tenant's marker word finds nothing, in every mode's full-text half.
    const o = pick(others(m));
    const theirs = o.live().at(-1);
    if (theirs) {
      const marker = /zq\d+zq\d+/.exec(theirs.content)?.[0] as string;
      for (const mode of ["fulltext", "hybrid"]) {
        const r = await h.call("GET", `/v1/search?q=${marker}&mode=${mode}&consistent=true`, {
          token: m.token,
        });
        ok(r, 200, "foreign marker search");
        for (const hit of r.json.data.items as { id: string }[]) expect(live.has(hit.id)).toBe(true);
        expect(r.text).not.toContain(marker);
      }
    }
  }

  async function fullCheck(m: Model): Promise<void> {
    const chats = await call(m, "GET", "/v1/chats?limit=1000");
    ok(chats, 200, "chats");
    expect(
      (chats.json.data.items as { chat_id?: string; id?: string }[]).map((c) => c.chat_id ?? c.id).sort(),
    ).toEqual([...m.chats].sort());
    for (const chat of m.chats) {
      const r = await call(m, "GET", `/v1/chats/${chat}/messages?limit=1000&include=content&order=asc`);
      ok(r, 200, "history");
      const expected = m.live().filter((x) => x.chat === chat);
      expect(
        Object.fromEntries(
          (r.json.data.items as { id: string; content: string }[]).map((x) => [x.id, x.content]),
        ),
      ).toEqual(Object.fromEntries(expected.map((x) => [x.id, x.content])));
    }
    const objects = await call(m, "GET", "/v1/objects?limit=1000");
    expect(
      Object.fromEntries(
        (objects.json.data.items as { key: string; size: number }[]).map((o) => [o.key, o.size]),
      ),
    ).toEqual(Object.fromEntries([...m.objects].map(([k, v]) => [k, Buffer.byteLength(v)])));
    const cols = await call(m, "GET", "/v1/vectors?limit=1000");
    expect((cols.json.data.items as { name: string }[]).map((c) => c.name)).toEqual(
      [...m.collections.keys()].sort(),
    );
    await search(m);

    // The change feed: this tenant's events only, numbered 1, 2, 3, … with no gaps.
    const feed: { seq: number; type: string; entity_id: string }[] = [];
    let since: string | undefined;
    for (;;) {
      const r = await call(
        m,
        "GET",
        `/v1/changes?limit=1000${since ? `&since=${encodeURIComponent(since)}` : ""}`,
      );
      ok(r, 200, "changes");
      feed.push(...r.json.data.items);
      if (r.json.data.items.length === 0 || r.json.data.next_cursor === since) break;
      since = r.json.data.next_cursor;
    }
    expect(feed.map((e) => e.seq)).toEqual(feed.map((_, i) => i + 1));
    const catalogEvents = feed.filter((e) => e.type.startsWith("message.") || e.type.startsWith("object."));
    expect(catalogEvents, `events of ${m.id}`).toHaveLength(m.events);
    for (const e of feed) if (e.type.startsWith("message.")) expect(m.everIds.has(e.entity_id)).toBe(true);

    const audit = await call(m, "GET", "/v1/audit?limit=1000");
    ok(audit, 200, "audit");
    const entries = (audit.json.data.items as { action: string; target: string }[]).filter((e) =>
      /^(messages?|object)\./.test(e.action),
    );
    expect(entries, `audit of ${m.id}`).toHaveLength(m.events);
    for (const e of entries) if (e.action.startsWith("message")) expect(m.everIds.has(e.target)).toBe(true);

    const usage = await call(m, "GET", "/v1/usage");
    ok(usage, 200, "usage");
    expect(usage.json.data, `usage of ${m.id}`).toEqual(m.usage());
  }

  const OPS: [number, (m: Model) => Promise<void>][] = [
    [6, append],
    [3, batch],
    [3, edit],
    [3, remove],
    [2, readMessages],
    [2, probeMessages],
    [4, putObject],
    [2, deleteObject],
    [2, readObjects],
    [2, probeObjects],
    [3, kv],
    [3, sessions],
    [2, memories],
    [3, vectors],
    [2, probeVectors],
    [1, search],
  ];
  const totalWeight = OPS.reduce((n, [w]) => n + w, 0);
  function randomOp(): (m: Model) => Promise<void> {
    let r = int(totalWeight);
    for (const [w, op] of OPS) {
      if (r < w) return op;
      r -= w;
    }
    throw new Error("unreachable");
  }

  it(`holds over ${ROUNDS} rounds of random operations`, { timeout: 120_000 }, async () => {
    const started = Date.now();
    try {
      for (let round = 1; round <= ROUNDS; round++) {
        // One to three tenants act at once: their writes share group commits.
        const acting = models.filter(() => rng() < 0.6);
        const ops = acting.map((m) => [m, randomOp()] as const);
        await Promise.all(ops.map(([m, op]) => op(m)));
        if (round % FULL_CHECK_EVERY === 0) for (const m of models) await fullCheck(m);
      }
    } catch (e) {
      throw new Error(`tenant isolation failed with KURA_ISOLATION_SEED=${seed}: ${(e as Error).message}`, {
        cause: e,
      });
    }
    for (const m of models) expect(m.events + m.kv.size + m.collections.size).toBeGreaterThan(0);
    console.log(`tenant isolation: seed ${seed}, ${responses} answers checked in ${Date.now() - started} ms`);
  });
});
