import { describe, expect, it } from "vitest";
import { KuraError } from "../../src/core/errors.js";
import { type OperationEvent, OperationSink, withPortMetrics } from "../../src/layers/port-metrics.js";

class Port {
  private calls = 0;
  async get(key: string): Promise<string> {
    this.calls++;
    return `v:${key}`;
  }
  async fail(): Promise<never> {
    throw new KuraError("KV_UNAVAILABLE", "down");
  }
  async crash(): Promise<never> {
    throw new Error("boom");
  }
  countSync(): number {
    return this.calls;
  }
  async close(): Promise<void> {}
}

describe("the port metrics layer", () => {
  it("reports each asynchronous call with its plane, backend, method, duration and outcome", async () => {
    const sink = new OperationSink();
    const events: OperationEvent[] = [];
    const stop = sink.subscribe((e) => events.push(e));
    const port = withPortMetrics(new Port(), "kv", "test", sink);
    expect(await port.get("a")).toBe("v:a");
    await expect(port.fail()).rejects.toMatchObject({ code: "KV_UNAVAILABLE" });
    await expect(port.crash()).rejects.toThrow("boom");
    expect(port.countSync()).toBe(1);
    await port.close();
    expect(events.map((e) => [e.plane, e.backend, e.operation, e.ok, e.errorCode])).toEqual([
      ["kv", "test", "get", true, undefined],
      ["kv", "test", "fail", false, "KV_UNAVAILABLE"],
      ["kv", "test", "crash", false, "UNEXPECTED"],
    ]);
    expect(events.every((e) => e.durationMs >= 0)).toBe(true);
    stop();
    await port.get("b");
    expect(events).toHaveLength(3);
  });

  it("never fails an operation for a failing listener", async () => {
    const sink = new OperationSink();
    sink.subscribe(() => {
      throw new Error("listener broke");
    });
    const port = withPortMetrics(new Port(), "kv", "test", sink);
    expect(await port.get("x")).toBe("v:x");
  });

  it("wraps a method replaced on the port afresh", async () => {
    const sink = new OperationSink();
    const events: OperationEvent[] = [];
    sink.subscribe((e) => events.push(e));
    const raw = new Port();
    const port = withPortMetrics(raw, "kv", "test", sink);
    await port.get("a");
    Object.defineProperty(raw, "get", { value: async () => "replaced", configurable: true, writable: true });
    expect(await port.get("a")).toBe("replaced");
    expect(events).toHaveLength(2);
  });
});
