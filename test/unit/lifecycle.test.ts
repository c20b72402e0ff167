import { describe, expect, it } from "vitest";
import { isKuraError } from "../../src/core/errors.js";
import { Lifecycle, withLifecycle } from "../../src/core/lifecycle.js";

describe("Lifecycle", () => {
  it("lets operations through until close, then fails them with CLOSED, not retryable", async () => {
    const life = new Lifecycle("the test store");
    expect(() => life.check("op")).not.toThrow();
    await life.close(() => undefined);
    expect(life.closed).toBe(true);
    let err: unknown;
    try {
      life.check("store.get");
    } catch (e) {
      err = e;
    }
    expect(isKuraError(err, "Unavailable")).toBe(true);
    expect(err).toMatchObject({ code: "CLOSED", operation: "store.get", retryable: false });
    expect((err as Error).message).toContain("the test store");
    await expect(life.rejection("store.put")).rejects.toMatchObject({ code: "CLOSED" });
  });

  it("releases once; concurrent and later closes wait for that release", async () => {
    const life = new Lifecycle("x");
    let releases = 0;
    let finish!: () => void;
    const gate = new Promise<void>((r) => {
      finish = r;
    });
    const first = life.close(async () => {
      releases++;
      await gate;
    });
    let secondDone = false;
    const second = life
      .close(() => {
        releases++;
      })
      .then(() => {
        secondDone = true;
      });
    await new Promise((r) => setTimeout(r, 10));
    expect(secondDone).toBe(false);
    finish();
    await Promise.all([first, second]);
    await life.close(() => {
      releases++;
    });
    expect(releases).toBe(1);
  });
});

describe("withLifecycle", () => {
  it("guards every method of a port; drop closes it; close releases once", async () => {
    let closes = 0;
    const port = withLifecycle(
      {
        value: 1,
        async get() {
          return this.value;
        },
        readSync() {
          return 2;
        },
        async drop() {},
        async close() {
          closes++;
        },
      },
      "the test port",
      "test",
    );
    expect(await port.get()).toBe(1);
    expect(port.readSync()).toBe(2);
    await port.drop();
    await expect(port.get()).rejects.toMatchObject({ code: "CLOSED", operation: "test.get" });
    expect(() => port.readSync()).toThrow(/the test port is closed/);
    await port.close();
    expect(closes).toBe(0);
    const other = withLifecycle(
      {
        async close() {
          closes++;
        },
      },
      "x",
      "test",
    );
    await Promise.all([other.close(), other.close()]);
    expect(closes).toBe(1);
  });
});
