/**
 * TEN-4 under SIGKILL: usage stays exact. A child runs a mixed workload for two tenants on
 * SQLite + fs (appends, batches, TTL expiry, edits, soft deletes, purges, erases racing edits,
 * object puts replacing each other, object deletes, writes refused by the tier's limits, usage
 * folding) and is killed at a random moment. After each kill the store is reopened and each
 * tenant's usage (`usage()`, what `GET /v1/usage` answers) must equal what is stored:
 *
 * - bytes: the sizes of every message version's body and every object's body;
 * - objects: how many such bodies there are;
 * - messages: how many message rows there are (soft-deleted ones included until purged);
 *
 * and the catalog's blob refs must be exactly those bodies (a ref no row points at is a body
 * nothing can reach and nothing will delete), each present in the blob store with its size: the
 * `blob_refs` rows are the objects' bodies, and the refs the catalog lists add the message bodies
 * (whose ref is their row).
 * Folding the usage deltas must not change the answer.
 */

import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Kura } from "../../src/kura.js";
import { listAllBlobRefs } from "../support/blob-refs.js";
import { runUntilKilled } from "./kill.js";
import { USAGE_TEST_CONFIG } from "./usage-config.js";

const TRIALS = 6;
const TENANTS = ["acme", "beta"];
const worker = resolve(import.meta.dirname, "usage-worker.ts");

interface Body {
  key: string;
  size: number;
}

/** What a tenant stores, read from the catalog's tables: its bodies and its message rows. */
function stored(db: Database.Database, tenant: string) {
  // A message's bodies are its version rows; one never edited may have none, its row being its
  // only version.
  const versions = db
    .prepare(
      "SELECT blob_key AS key, size_bytes AS size FROM message_versions WHERE tenant_id = ? UNION ALL " +
        "SELECT blob_key, size_bytes FROM messages m WHERE tenant_id = ? AND NOT EXISTS " +
        "(SELECT 1 FROM message_versions v WHERE v.tenant_id = m.tenant_id AND v.message_id = m.id)",
    )
    .all(tenant, tenant) as Body[];
  const objects = db
    .prepare("SELECT blob_key AS key, size_bytes AS size FROM objects WHERE tenant_id = ?")
    .all(tenant) as Body[];
  const refs = db
    .prepare("SELECT blob_key AS key, size_bytes AS size FROM blob_refs WHERE tenant_id = ?")
    .all(tenant) as Body[];
  const { n } = db.prepare("SELECT COUNT(*) AS n FROM messages WHERE tenant_id = ?").get(tenant) as {
    n: number;
  };
  const bodies = [...versions, ...objects];
  return {
    bodies,
    objects,
    refs,
    usage: {
      tenantId: tenant,
      bytes: bodies.reduce((sum, b) => sum + b.size, 0),
      objects: bodies.length,
      messages: n,
    },
  };
}

/** The tenant's refs as the catalog lists them, every store's. */
async function listedRefs(kura: Kura, db: Database.Database, tenant: string): Promise<Body[]> {
  const stores = db
    .prepare(
      "SELECT store_id FROM messages UNION SELECT store_id FROM objects UNION SELECT store_id FROM blob_refs",
    )
    .all() as { store_id: string }[];
  const refs: Body[] = [];
  for (const { store_id: storeId } of stores) {
    for (const r of await listAllBlobRefs(kura.catalog, storeId, 500))
      if (r.tenantId === tenant) refs.push({ key: r.blobKey, size: r.sizeBytes });
  }
  return refs;
}

const byKey = (bodies: readonly Body[]) => Object.fromEntries(bodies.map((b) => [b.key, b.size]));

describe("crash safety: usage is exact after SIGKILL (TEN-4)", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "kura-usage-crash-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("counts an erase once when two erases (or an erase and a purge) of one message race", async () => {
    const kura = await Kura.open({ data_dir: join(dir, "race"), ...USAGE_TEST_CONFIG });
    try {
      const t = kura.tenant("acme");
      for (let i = 0; i < 5; i++) {
        const a = await t.messages.append("c", { role: "user", content: `hello ${i}` });
        if (i % 2 === 1) await t.messages.edit(a.id, `edited ${i}`);
        if (i >= 3) await t.messages.delete(a.id);
        const raced = await Promise.allSettled([
          t.messages.erase(a.id),
          i >= 3 ? t.messages.purge({ olderThanDays: 0 }) : t.messages.erase(a.id),
          t.messages.append("c", { role: "user", content: `kept ${i}` }),
        ]);
        for (const r of raced)
          if (r.status === "rejected") expect((r.reason as { code?: string }).code).toBe("MESSAGE_NOT_FOUND");
      }
      const db = new Database(join(dir, "race", "kura.db"), { readonly: true, fileMustExist: true });
      try {
        expect(await t.usage()).toEqual(stored(db, "acme").usage);
        expect((await t.usage()).messages).toBe(5);
      } finally {
        db.close();
      }
    } finally {
      await kura.close();
    }
  });

  it(`equals the sum of what is stored after each of ${TRIALS} kills`, { timeout: 240_000 }, async () => {
    const seen = new Map<string, number>();
    for (let trial = 0; trial < TRIALS; trial++) {
      const killAfter = 300 + Math.floor(Math.random() * 1700);
      await runUntilKilled(worker, [dir, String(trial)], killAfter, (line) => {
        if (line.startsWith("OP ")) seen.set(line.slice(3), (seen.get(line.slice(3)) ?? 0) + 1);
      });
      const kura = await Kura.open({ data_dir: dir, ...USAGE_TEST_CONFIG });
      const db = new Database(join(dir, "kura.db"), { readonly: true, fileMustExist: true });
      try {
        for (const tenant of TENANTS) {
          const what = `${tenant} after kill ${trial} (${killAfter} ms)`;
          const s = stored(db, tenant);
          expect(byKey(s.refs), `${what}: ref rows are the stored objects`).toEqual(byKey(s.objects));
          expect(byKey(await listedRefs(kura, db, tenant)), `${what}: refs are the stored bodies`).toEqual(
            byKey(s.bodies),
          );
          for (const b of s.bodies) {
            expect((await kura.store.head(b.key)).size, `${what}: ${b.key}`).toBe(b.size);
          }
          expect(await kura.tenant(tenant).usage(), what).toEqual(s.usage);
        }
        // Folding the deltas into totals changes no tenant's usage.
        await kura.runJobs(Date.now());
        for (const tenant of TENANTS) {
          expect(await kura.tenant(tenant).usage(), `${tenant} folded`).toEqual(stored(db, tenant).usage);
        }
      } finally {
        db.close();
        await kura.close();
      }
    }
    // The workload did what it is meant to: every kind of operation happened.
    for (const op of ["append", "batch", "edit", "erase", "delete", "purge", "object.put", "object.delete"])
      expect(seen.get(op) ?? 0, op).toBeGreaterThan(0);
    expect(seen.get("refused:PAYLOAD_TOO_LARGE") ?? 0).toBeGreaterThan(0);
    console.log(`usage crash test: ${[...seen].map(([k, v]) => `${k} ${v}`).join(", ")}`);
  });
});
