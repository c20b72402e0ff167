import { describe, expect, it } from "vitest";
import { isKuraError } from "../../src/core/errors.js";
import { assertStorableValue, MAX_VALUE_DEPTH } from "../../src/core/values.js";

function codeOf(value: unknown): string {
  try {
    assertStorableValue(value, "the value", "test");
    return "OK";
  } catch (e) {
    if (isKuraError(e)) return e.code;
    throw e;
  }
}

function nested(depth: number): unknown {
  let v: unknown = "leaf";
  for (let i = 0; i < depth; i++) v = i % 2 === 0 ? [v] : { k: v };
  return v;
}

describe("storable values", () => {
  it("accepts ordinary values, valid surrogate pairs and exactly the maximum depth", () => {
    expect(codeOf("plain 東京 😀")).toBe("OK");
    expect(codeOf({ a: [1, "x", null, true, { b: new Date(0), c: Buffer.from("hi") }] })).toBe("OK");
    expect(codeOf(nested(MAX_VALUE_DEPTH))).toBe("OK");
  });

  it("refuses lone surrogates in strings and object keys, at any depth", () => {
    expect(codeOf("a\ud800b")).toBe("INVALID_UTF8");
    expect(codeOf("\udc00")).toBe("INVALID_UTF8");
    expect(codeOf({ "k\ud800": 1 })).toBe("INVALID_UTF8");
    expect(codeOf([[{ x: ["ok", "bad\udfff"] }]])).toBe("INVALID_UTF8");
    expect(codeOf(new Map([["k", "\ud83d"]]))).toBe("INVALID_UTF8");
  });

  it("refuses values nested deeper than the maximum without overflowing the stack", () => {
    expect(codeOf(nested(MAX_VALUE_DEPTH + 1))).toBe("VALUE_TOO_DEEP");
    expect(codeOf(nested(200_000))).toBe("VALUE_TOO_DEEP");
    const cycle: unknown[] = [];
    cycle.push(cycle);
    expect(codeOf(cycle)).toBe("VALUE_TOO_DEEP");
  });

  it("counts shared sub-values as often as encoders would expand them, within a budget", () => {
    let v: unknown = ["x"];
    for (let i = 0; i < 60; i++) v = [v, v];
    expect(codeOf(v)).toBe("VALUE_TOO_DEEP");
    let bad: unknown = ["x\ud800"];
    for (let i = 0; i < 4; i++) bad = [bad, bad];
    expect(codeOf(bad)).toBe("INVALID_UTF8");
  });
});
