/**
 * PostgreSQL stopped with `pg_ctl -m immediate` (connections cut, no goodbye) while `kura serve`
 * takes appends over HTTP: the process lives, requests answer 503 CATALOG_UNAVAILABLE with
 * Retry-After while the server is down, appends succeed again once it is back (no restart),
 * and every acknowledged message reads back intact.
 *
 * Before the fix a checked-out pool client (a group commit in progress) emitted an unhandled
 * 'error' event ("Connection terminated unexpectedly") and the process died.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { backendAvailable } from "../support/backends.js";
import {
  eventually,
  type PrivatePostgres,
  postgresBin,
  type ServeChild,
  startPrivatePostgres,
  startServe,
  token,
} from "./support.js";

const bin = postgresBin();
const runs = backendAvailable("fault-postgres", "problem" in bin ? bin.problem : undefined);

describe.runIf(runs)("fault: PostgreSQL stopped with -m immediate under load", () => {
  let pg: PrivatePostgres;
  let serve: ServeChild;
  let dir: string;
  let auth: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "kura-fault-pgserve-"));
    pg = await startPrivatePostgres((bin as { dir: string }).dir);
    serve = await startServe(
      {
        data_dir: join(dir, "data"),
        database: { backend: "postgres", url: pg.url, max_connections: 8 },
        search: { backend: "postgres" },
      },
      dir,
    );
    auth = `Bearer ${await token("acme")}`;
  }, 120_000);

  afterAll(async () => {
    await serve?.stop();
    pg?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("keeps serving: 503 + Retry-After while down, recovery without restart, no acked write lost", {
    timeout: 120_000,
  }, async () => {
    const acked = new Map<string, string>();
    const failures: { status: number; code: string; retryAfter: string | null }[] = [];
    let phase: "up" | "down" | "back" = "up";
    let seq = 0;
    const append = async (): Promise<number> => {
      const content = `message ${seq++} ${"x".repeat(200)}`;
      const r = await fetch(`${serve.url}/v1/chats/load/messages`, {
        method: "POST",
        headers: { authorization: auth, "content-type": "application/json" },
        body: JSON.stringify({ role: "user", content }),
        signal: AbortSignal.timeout(30_000),
      });
      const body = (await r.json()) as { data?: { id: string }; error_code?: string };
      if (r.status === 201 || r.status === 200) acked.set(body.data?.id as string, content);
      else
        failures.push({
          status: r.status,
          code: body.error_code ?? "",
          retryAfter: r.headers.get("retry-after"),
        });
      return r.status;
    };
    const appendBatch = async (): Promise<number> => {
      const contents = Array.from({ length: 100 }, () => `batched ${seq++} ${"y".repeat(100)}`);
      const r = await fetch(`${serve.url}/v1/chats/load/messages:batch`, {
        method: "POST",
        headers: { authorization: auth, "content-type": "application/json" },
        body: JSON.stringify({ messages: contents.map((content) => ({ role: "user", content })) }),
        signal: AbortSignal.timeout(30_000),
      });
      const body = (await r.json()) as { data?: { items: { id: string }[] }; error_code?: string };
      if (r.status === 201) {
        for (const [i, m] of (body.data?.items ?? []).entries()) acked.set(m.id, contents[i] as string);
      } else
        failures.push({
          status: r.status,
          code: body.error_code ?? "",
          retryAfter: r.headers.get("retry-after"),
        });
      return r.status;
    };
    // Concurrent writers, each bounded by count: single appends and 100-message batches (long
    // commits, so that the stop lands while a pooled client is checked out mid-transaction).
    let stop = false;
    const writer = (fn: () => Promise<number>) => async () => {
      for (let i = 0; i < 3000 && !stop; i++) {
        await fn().catch(() => undefined);
        if (phase === "down") await sleep(20);
      }
    };
    const writers = [
      ...Array.from({ length: 4 }, () => writer(append)()),
      ...Array.from({ length: 4 }, () => writer(appendBatch)()),
    ];
    // Three stop/start cycles under load.
    for (let cycle = 0; cycle < 3; cycle++) {
      const before = acked.size;
      expect(await eventually(async () => acked.size >= before + 150, 300, 50)).toBe(true);
      pg.stop("immediate");
      phase = "down";
      await sleep(1000);
      expect(serve.alive(), serve.output()).toBe(true);
      const ready = await fetch(`${serve.url}/readyz`);
      expect(ready.status).toBe(503);
      expect(ready.headers.get("retry-after")).toBeTruthy();
      pg.start();
      phase = "back";
    }
    const before = acked.size;
    expect(await eventually(async () => acked.size > before + 20, 300, 100)).toBe(true);
    stop = true;
    await Promise.all(writers);
    expect(serve.alive(), serve.output()).toBe(true);
    expect(failures.length).toBeGreaterThan(0);

    // Every failure while down was a 503 with Retry-After, from the catalog.
    for (const f of failures) {
      expect(f.status).toBe(503);
      expect(f.retryAfter).toBeTruthy();
      expect(f.code).toBe("CATALOG_UNAVAILABLE");
    }
    expect(await eventually(async () => (await fetch(`${serve.url}/readyz`)).status === 200, 100, 100)).toBe(
      true,
    );

    // No acknowledged message is lost.
    const ids = [...acked.keys()];
    for (let i = 0; i < ids.length; i += 100) {
      const r = await fetch(`${serve.url}/v1/messages:batchGet`, {
        method: "POST",
        headers: { authorization: auth, "content-type": "application/json" },
        body: JSON.stringify({ ids: ids.slice(i, i + 100) }),
      });
      expect(r.status).toBe(200);
      const body = (await r.json()) as {
        data: { items: { id: string; content: string }[]; missing: string[] };
      };
      expect(body.data.missing).toEqual([]);
      for (const m of body.data.items) expect(m.content).toBe(acked.get(m.id));
    }
  });
});
