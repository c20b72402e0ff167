/**
 * The dashboards' request window (`http/activity.ts`): which requests are ingest and which are
 * queries, rates per slot over a window that slides with the clock, latency percentiles as the
 * upper bound of their bucket, per-tenant series, and the bound on how many tenants it keeps.
 */
import { describe, expect, it } from "vitest";
import { Activity, activityKind } from "../../src/http/activity.js";

describe("activity window", () => {
  it("classifies writes as ingest, reads and searches as queries, the rest as neither", () => {
    expect(activityKind("POST", "/v1/chats/{chat_id}/messages")).toBe("ingest");
    expect(activityKind("PUT", "/v1/objects/{key}")).toBe("ingest");
    expect(activityKind("DELETE", "/v1/messages/{id}")).toBe("ingest");
    expect(activityKind("GET", "/v1/chats/{chat_id}/messages")).toBe("query");
    expect(activityKind("POST", "/v1/search")).toBe("query");
    expect(activityKind("POST", "/v1/messages:batchGet")).toBe("query");
    expect(activityKind("POST", "/v1/users/{user_id}/memories:search")).toBe("query");
    expect(activityKind("GET", "/healthz")).toBe("other");
    expect(activityKind("POST", "/v1/admin/fsck")).toBe("other");
    expect(activityKind("GET", "/v1/dashboard")).toBe("other");
    expect(activityKind("GET", "/console/{path}")).toBe("other");
  });

  it("counts per slot, slides with the clock and reports percentiles by bucket", () => {
    let now = 1_000_000;
    const a = new Activity({ slotMs: 10_000, slots: 3, clock: () => now });
    for (let i = 0; i < 20; i++) a.record("POST", "/v1/chats/{chat_id}/messages", 0.004, "acme");
    for (let i = 0; i < 10; i++) a.record("GET", "/v1/search", 0.2, "globex");
    const s = a.snapshot();
    expect(s.rates).toHaveLength(3);
    expect(s.rates.at(-1)).toMatchObject({ ingest_per_s: 2, query_per_s: 1 });
    expect(s.rates[0]).toMatchObject({ ingest_per_s: 0, query_per_s: 0 });
    // 20 of 30 requests at ≤ 5 ms, 10 at ≤ 250 ms.
    expect(s.latency_ms).toEqual({ p50: 5, p90: 250, p99: 250, requests: 30 });
    expect(a.snapshot("acme").latency_ms).toMatchObject({ p50: 5, p99: 5, requests: 20 });
    expect(a.snapshot("globex").rates.at(-1)).toMatchObject({ ingest_per_s: 0, query_per_s: 1 });
    expect(a.snapshot("nobody").latency_ms).toEqual({ p50: null, p90: null, p99: null, requests: 0 });

    now += 10_000;
    a.record("GET", "/v1/chats", 0.001);
    const later = a.snapshot();
    expect(later.rates.map((r) => r.query_per_s)).toEqual([0, 1, 0.1]);
    // Past the window, what was counted is gone.
    now += 30_000;
    expect(a.snapshot().latency_ms.requests).toBe(0);
    expect(a.snapshot().rates.every((r) => r.ingest_per_s === 0 && r.query_per_s === 0)).toBe(true);
  });

  it("keeps at most maxTenants tenants, forgetting the least recently active", () => {
    const a = new Activity({ maxTenants: 2, clock: () => 0 });
    a.record("GET", "/v1/chats", 0.001, "t1");
    a.record("GET", "/v1/chats", 0.001, "t2");
    a.record("GET", "/v1/chats", 0.001, "t1");
    a.record("GET", "/v1/chats", 0.001, "t3");
    expect(a.snapshot("t1").latency_ms.requests).toBe(2);
    expect(a.snapshot("t2").latency_ms.requests).toBe(0);
    expect(a.snapshot("t3").latency_ms.requests).toBe(1);
    expect(a.snapshot().latency_ms.requests).toBe(4);
  });
});
