/**
 * `GET /v1/changes` over a pruned outbox (SPEC OUT-1): a cursor older than the retained tail
 * answers 410 CHANGES_CURSOR_EXPIRED instead of a feed with a hole in it; a reader without a
 * cursor starts at the oldest retained event.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { errorCode, type Harness, startServer } from "./harness.js";

describe("change feed over a pruned outbox", () => {
  let h: Harness;
  let acme: string;
  beforeAll(async () => {
    h = await startServer({ config: { outbox: { retention_hours: 0 } } });
    acme = await h.token("acme");
  });
  afterAll(async () => h?.close());

  const append = async (content: string): Promise<string> => {
    const r = await h.call("POST", "/v1/chats/c/messages", { token: acme, json: { role: "user", content } });
    expect(r.status).toBe(201);
    return r.json.data.id;
  };
  const changes = (since?: string) =>
    h.call("GET", `/v1/changes${since === undefined ? "" : `?since=${since}`}`, { token: acme });
  const prune = async () => {
    await h.kura.pumpOutbox();
    const reports = await h.kura.runJobs();
    return reports.find((r) => r.name === "prune-outbox")?.result?.deleted;
  };

  it("answers 410 CHANGES_CURSOR_EXPIRED for a cursor before the retained tail", async () => {
    const empty = await changes();
    expect(empty.json.data.items).toEqual([]);
    const start = empty.json.data.next_cursor as string;
    const ids = [await append("one"), await append("two"), await append("three")];
    const first = await h.call("GET", `/v1/changes?since=${start}&limit=1`, { token: acme });
    expect(first.json.data.items.map((e: { entity_id: string }) => e.entity_id)).toEqual([ids[0]]);
    const afterFirst = first.json.data.next_cursor as string;
    const all = await changes(start);
    expect(all.json.data.items.map((e: { seq: number }) => e.seq)).toEqual([1, 2, 3]);
    const end = all.json.data.next_cursor as string;

    expect(await prune()).toBe(3);

    for (const stale of [start, afterFirst]) {
      const r = await changes(stale);
      expect(r.status).toBe(410);
      expect(errorCode(r)).toBe("CHANGES_CURSOR_EXPIRED");
    }
    // The library call fails the same way.
    await expect(h.kura.tenant("acme").changes({ after: 1 })).rejects.toMatchObject({
      code: "CHANGES_CURSOR_EXPIRED",
    });
    // A reader that had everything goes on as if nothing happened.
    const caughtUp = await changes(end);
    expect(caughtUp.status).toBe(200);
    expect(caughtUp.json.data).toEqual({ items: [], next_cursor: end });

    // A fresh reader starts at the retained tail, and its cursor is a valid one.
    const fresh = await changes();
    expect(fresh.json.data.items).toEqual([]);
    expect(fresh.json.data.next_cursor).toBe(end);
    const four = await append("four");
    const next = await changes(fresh.json.data.next_cursor);
    expect(next.json.data.items.map((e: { seq: number; entity_id: string }) => [e.seq, e.entity_id])).toEqual(
      [[4, four]],
    );
  });

  it("documents the 410 in the OpenAPI document", async () => {
    const doc = (await h.call("GET", "/openapi.json")).json;
    expect(doc.paths["/v1/changes"].get.responses["410"].description).toContain("CHANGES_CURSOR_EXPIRED");
  });
});
