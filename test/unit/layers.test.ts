import { describe, expect, it } from "vitest";
import { memoryBlobStore } from "../../src/adapters/blob/memory/index.js";
import { KuraError } from "../../src/core/errors.js";
import { FaultController, withFaults } from "../../src/layers/fault-injection.js";
import { type BlobOperationEvent, withMetrics } from "../../src/layers/metrics.js";
import { backoffDelay, withRetry } from "../../src/layers/retry.js";
import { withTimeout } from "../../src/layers/timeout.js";

const memory = () => memoryBlobStore.create(memoryBlobStore.parseOptions({}));
const noSleep = { sleep: async () => undefined };

describe("retry layer", () => {
  it("retries retryable failures and then succeeds", async () => {
    const faults = new FaultController().failNext("put", 2);
    const store = withRetry(withFaults(await memory(), faults), noSleep);
    await store.put("k", Buffer.from("v"));
    expect(faults.calls.filter((c) => c.operation === "put")).toHaveLength(3);
    expect((await store.getBuffer("k")).data.toString()).toBe("v");
  });

  it("gives up after 3 retries with the backend's error and the attempt count", async () => {
    const faults = new FaultController().failNext("head", 10);
    const delays: number[] = [];
    const store = withRetry(withFaults(await memory(), faults), {
      ...noSleep,
      onRetry: (e) => delays.push(e.delayMs),
    });
    const err = await store.head("k").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KuraError);
    expect(err).toMatchObject({ code: "FAULT_INJECTED", kind: "Unavailable", context: { attempts: 4 } });
    expect(delays).toHaveLength(3);
  });

  it("never retries non-retryable errors or consumed streams", async () => {
    const faults = new FaultController().failNext("get", 5, "BLOB_CHECKSUM_MISMATCH");
    const store = withRetry(withFaults(await memory(), faults), noSleep);
    await expect(store.get("k")).rejects.toMatchObject({ code: "BLOB_CHECKSUM_MISMATCH" });
    expect(faults.calls).toHaveLength(1);
    faults.clear();
    faults.failNext("put", 5);
    await expect(
      store.put(
        "s",
        (async function* () {
          yield Buffer.from("x");
        })(),
      ),
    ).rejects.toMatchObject({
      code: "FAULT_INJECTED",
    });
    expect(faults.calls.filter((c) => c.operation === "put")).toHaveLength(1);
  });

  it("backs off exponentially with full jitter, capped", () => {
    expect(backoffDelay(1, 100, 2000, () => 0.999)).toBe(99);
    expect(backoffDelay(3, 100, 2000, () => 0.999)).toBe(399);
    expect(backoffDelay(10, 100, 2000, () => 0.999)).toBe(1998);
    expect(backoffDelay(2, 100, 2000, () => 0)).toBe(0);
  });
});

describe("timeout layer", () => {
  it("fails a slow operation with OPERATION_TIMEOUT and aborts it", async () => {
    const faults = new FaultController().add({ operations: ["head"], delayMs: 300 });
    const store = withTimeout(withFaults(await memory(), faults), { operationMs: 30 });
    await expect(store.head("k")).rejects.toMatchObject({
      code: "OPERATION_TIMEOUT",
      kind: "Unavailable",
      retryable: true,
    });
  });

  it("times out only the calls that outlive the limit among calls that started together", async () => {
    const faults = new FaultController().add({
      operations: ["head"],
      keyMatches: (k) => k === "slow",
      delayMs: 400,
    });
    const inner = await memory();
    await inner.put("fast", Buffer.from("v"));
    await inner.put("slow", Buffer.from("v"));
    const store = withTimeout(withFaults(inner, faults), { operationMs: 60 });
    const slow = store.head("slow");
    const fast = store.head("fast");
    await expect(fast).resolves.toMatchObject({ size: 1 });
    await expect(slow).rejects.toMatchObject({
      code: "OPERATION_TIMEOUT",
      context: { key: "slow", timeoutMs: 60, idle: false },
    });
    // A call that starts after that limit expired gets a whole limit of its own.
    const faults2 = new FaultController().add({ operations: ["head"], delayMs: 30 });
    const later = withTimeout(withFaults(inner, faults2), { operationMs: 60 });
    const first = later.head("slow");
    await new Promise((r) => setTimeout(r, 45));
    await expect(Promise.all([first, later.head("fast")])).resolves.toHaveLength(2);
  });

  it("aborts a call's signal when its limit expires, and the caller's own signal still works", async () => {
    const seen: AbortSignal[] = [];
    const inner = await memory();
    const hanging = {
      ...inner,
      head: (_key: string, options?: { signal?: AbortSignal }) => {
        if (options?.signal) seen.push(options.signal);
        return new Promise<never>((_, reject) =>
          options?.signal?.addEventListener("abort", () => reject(options.signal?.reason)),
        );
      },
    };
    const store = withTimeout(hanging, { operationMs: 40 });
    await expect(store.head("k")).rejects.toMatchObject({ code: "OPERATION_TIMEOUT" });
    expect(seen[0]?.aborted).toBe(true);
    const caller = new AbortController();
    const aborted = store.head("k", { signal: caller.signal });
    caller.abort(new Error("caller gave up"));
    await expect(aborted).rejects.toThrow("caller gave up");
  });

  it("lets many calls of one window listen to the shared signal without a listener-leak warning", async () => {
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on("warning", onWarning);
    try {
      const inner = await memory();
      const listening = {
        ...inner,
        head: async (key: string, options?: { signal?: AbortSignal }) => {
          options?.signal?.addEventListener("abort", () => undefined);
          await new Promise((r) => setTimeout(r, 5));
          return inner.head(key);
        },
      };
      const store = withTimeout(listening as typeof inner, { operationMs: 1000 });
      for (let i = 0; i < 50; i++) await inner.put(`k${i}`, Buffer.from("v"));
      await Promise.all(Array.from({ length: 50 }, (_, i) => store.head(`k${i}`)));
      await new Promise((r) => setImmediate(r));
    } finally {
      process.off("warning", onWarning);
    }
    expect(warnings.filter((w) => w.name === "MaxListenersExceededWarning")).toEqual([]);
  });

  it("lets fast operations through", async () => {
    const store = withTimeout(await memory(), { idleMs: 1000, operationMs: 1000 });
    await store.put("k", Buffer.from("v"));
    expect(await store.exists("k")).toBe(true);
  });
});

describe("metrics layer", () => {
  it("reports duration and outcome of every operation, and survives a failing sink", async () => {
    const events: BlobOperationEvent[] = [];
    const store = withMetrics(await memory(), (e) => events.push(e));
    await store.put("k", Buffer.from("v"));
    await store.head("missing").catch(() => undefined);
    expect(events.map((e) => [e.operation, e.ok, e.errorCode])).toEqual([
      ["put", true, undefined],
      ["head", false, "BLOB_NOT_FOUND"],
    ]);
    expect(events[0]?.durationMs).toBeGreaterThanOrEqual(0);
    const throwing = withMetrics(await memory(), () => {
      throw new Error("sink down");
    });
    await throwing.put("k", Buffer.from("v"));
  });
});

describe("fault-injection layer", () => {
  it("can fail after the store acted (a lost acknowledgement)", async () => {
    const inner = await memory();
    const faults = new FaultController().add({ operations: ["put"], when: "after", times: 1 });
    const store = withFaults(inner, faults);
    await expect(store.put("k", Buffer.from("v"))).rejects.toMatchObject({ code: "FAULT_INJECTED" });
    expect(await inner.exists("k")).toBe(true);
  });

  it("matches by key", async () => {
    const faults = new FaultController().add({
      keyMatches: (k) => k?.startsWith("bad/") ?? false,
      code: "BLOB_ACCESS_DENIED",
    });
    const store = withFaults(await memory(), faults);
    await store.put("good/x", Buffer.from("v"));
    await expect(store.put("bad/x", Buffer.from("v"))).rejects.toMatchObject({ kind: "PermissionDenied" });
  });
});
